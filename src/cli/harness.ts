/** growlm harness: multiple-choice benchmarks scored by log-likelihood, written in lm-evaluation-harness's results layout. */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import { GrowlmError } from "../errors.js";
import { MULTIPLE_CHOICE_METRICS, runHarness, type MultipleChoiceMetric, type SampleRecord } from "../eval/harness.js";
import { ModelScorer } from "../eval/model-scorer.js";
import { BUILTIN_TASKS } from "../eval/tasks/registry.js";
import { writeFileAtomic } from "../io/atomic.js";
import { loadTokenizer } from "../io/tokenizer.js";
import { loadPretrained } from "../model/pretrained.js";
import { runtimeInfo } from "../runtime.js";
import type { Command } from "./command.js";
import { choiceFlag, integerFlag, required } from "./flags.js";

const COMMAND = "harness";

/** A comma-separated list flag, each item non-empty. */
function listFlag(name: string, value: string): string[] {
  const items = value.split(",").map((s) => s.trim());
  if (items.some((s) => s === "")) throw new GrowlmError(`growlm ${COMMAND}`, `--${name} must be a comma-separated list without empty items but is ${JSON.stringify(value)}`);
  return items;
}

/** --limit: a positive integer, or a fraction in (0, 1) of each task's documents. */
function limitFlag(value: string): number {
  const n = Number(value);
  if (!/^\d*\.?\d+(e-?\d+)?$/i.test(value.trim()) || !(n > 0) || (n >= 1 && !Number.isInteger(n))) {
    throw new GrowlmError(`growlm ${COMMAND}`, `--limit must be a positive integer or a fraction in (0, 1) but is ${JSON.stringify(value)}`);
  }
  return n;
}

export const harness: Command = {
  name: COMMAND,
  summary: "score multiple-choice benchmarks by log-likelihood as lm-evaluation-harness does (acc, acc_norm, stderr, groups)",
  usage:
    "growlm harness --model DIR --tasks piqa,boolq --data_dir DIR --out results.json [--num_fewshot 0] [--limit N]\n" +
    "                   [--batch_size 32] [--max_batch_tokens 8192] [--seed 1234] [--bf16] [--device cpu|cuda|cuda:N] [--add_bos_token true|false]\n" +
    "                   [--max_length N] [--extra_metrics acc_bytes,exact_match] [--log_samples]\n\n" +
    "  tasks: piqa, boolq, hellaswag, winogrande, arc_easy, arc_challenge, crows_pairs_english, mmlu (57 subjects;\n" +
    "  also mmlu_stem, mmlu_other, mmlu_social_sciences, mmlu_humanities, mmlu_<subject>). Each task reads\n" +
    "  DATA_DIR/<task>/<split>.jsonl (mmlu: DATA_DIR/mmlu/<subject>/{test,dev}.jsonl), one document of the\n" +
    "  Hugging Face dataset a line: piqa, boolq, hellaswag, winogrande: validation (+ train for few-shot);\n" +
    "  arc_*: test (+ train); crows_pairs_english: test. Nothing is downloaded.\n" +
    "  --limit: documents per task (a fraction < 1 of each split, rounded up). --seed: the few-shot sampler's\n" +
    "  seed (lm-evaluation-harness's fewshot_random_seed). --add_bos_token: override the tokenizer's special\n" +
    "  tokens (default: the tokenizer's own, as lm-evaluation-harness 0.4.13). --log_samples writes\n" +
    "  samples_<task>.jsonl beside --out. The results file is written atomically.",
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: "string" },
        tasks: { type: "string" },
        data_dir: { type: "string" },
        out: { type: "string" },
        num_fewshot: { type: "string", default: "0" },
        limit: { type: "string" },
        batch_size: { type: "string", default: "32" },
        max_batch_tokens: { type: "string", default: "8192" },
        seed: { type: "string" },
        bf16: { type: "boolean", default: false },
        device: { type: "string", default: "cpu" },
        add_bos_token: { type: "string" },
        max_length: { type: "string" },
        extra_metrics: { type: "string" },
        log_samples: { type: "boolean", default: false },
      },
    });
    const op = `growlm ${COMMAND}`;
    const modelDir = required(COMMAND, "model", values.model);
    const taskNames = listFlag("tasks", required(COMMAND, "tasks", values.tasks));
    const dataDir = required(COMMAND, "data_dir", values.data_dir);
    const out = required(COMMAND, "out", values.out);
    const numFewshot = integerFlag(COMMAND, "num_fewshot", values.num_fewshot!);
    const limit = values.limit === undefined ? null : limitFlag(values.limit);
    const batchSize = integerFlag(COMMAND, "batch_size", values.batch_size!, 1);
    const maxBatchTokens = integerFlag(COMMAND, "max_batch_tokens", values.max_batch_tokens!, 1);
    const seed = values.seed === undefined ? null : integerFlag(COMMAND, "seed", values.seed, 0);
    const addBosToken = values.add_bos_token === undefined ? null : choiceFlag(COMMAND, "add_bos_token", values.add_bos_token, ["true", "false"] as const) === "true";
    const extraMetrics = (values.extra_metrics === undefined ? [] : listFlag("extra_metrics", values.extra_metrics)).map((m) =>
      choiceFlag(COMMAND, "extra_metrics", m, MULTIPLE_CHOICE_METRICS),
    ) as MultipleChoiceMetric[];
    if (!fs.existsSync(dataDir) || !fs.statSync(dataDir).isDirectory()) throw new GrowlmError(op, `--data_dir ${dataDir} is not a directory`);

    const startTime = performance.now();
    const date = Date.now() / 1000;
    const tokenizer = await loadTokenizer(modelDir);
    const model = loadPretrained(modelDir, { matmul: values.bf16 ? "bfloat16" : "float32", device: values.device });
    try {
      const maxLength = values.max_length === undefined ? model.config.max_position_embeddings : integerFlag(COMMAND, "max_length", values.max_length, 1, model.config.max_position_embeddings);
      // Long runs report progress on stderr, at most every 30 s.
      let reported = performance.now();
      const onProgress = (scored: number, total: number): void => {
        const now = performance.now();
        if (now - reported < 30_000 && scored < total) return;
        reported = now;
        console.error(`growlm harness: ${scored}/${total} model inputs scored (${((now - startTime) / 1000).toFixed(0)} s)`);
      };
      const scorer = new ModelScorer(model, tokenizer, { addBosToken, maxLength, batchSize, maxBatchTokens, onProgress });
      const run = await runHarness({
        tasks: taskNames,
        registry: BUILTIN_TASKS,
        dataDir,
        scorer,
        numFewshot,
        limit,
        fewshotSeed: seed ?? 1234,
        extraMetrics,
        logSamples: values.log_samples,
      });
      const dtype = values.bf16 ? "bfloat16" : "float32";
      const modelArgs = [`pretrained=${modelDir}`, `dtype=${dtype}`, ...(addBosToken === null ? [] : [`add_bos_token=${addBosToken}`]), `max_length=${maxLength}`].join(",");
      const endTime = performance.now();
      const token = (text: string | null, id: number | null): [string | null, string] => [text, String(id ?? "None")];
      const results = {
        ...run.results,
        config: {
          model: "growlm",
          model_args: modelArgs,
          model_num_parameters: model.layout.parameterCount,
          model_dtype: dtype,
          batch_size: String(batchSize),
          batch_sizes: [],
          device: "cpu",
          use_cache: null,
          limit,
          bootstrap_iters: 100000,
          gen_kwargs: null,
          random_seed: seed ?? 0,
          numpy_seed: seed ?? 1234,
          torch_seed: seed ?? 1234,
          fewshot_seed: seed ?? 1234,
        },
        git_hash: null,
        date,
        growlm_version: runtimeInfo().version,
        tokenizer_pad_token: token(tokenizer.padToken, tokenizer.padId),
        tokenizer_eos_token: token(tokenizer.eosToken, tokenizer.eosId),
        tokenizer_bos_token: token(tokenizer.bosToken, tokenizer.bosId),
        eot_token_id: tokenizer.eosId,
        max_length: maxLength,
        model_source: "growlm",
        model_name: modelDir,
        model_name_sanitized: modelDir.replace(/[/\\]/g, "__"),
        system_instruction: null,
        system_instruction_sha: null,
        fewshot_as_multiturn: false,
        chat_template: null,
        chat_template_sha: null,
        total_evaluation_time_seconds: String((endTime - startTime) / 1000),
      };
      writeFileAtomic(op, out, `${JSON.stringify(results, null, 2)}\n`);
      if (run.samples) {
        for (const [task, records] of Object.entries(run.samples)) {
          const file = path.join(path.dirname(out), `samples_${task}.jsonl`);
          writeFileAtomic(op, file, records.map((r: SampleRecord) => JSON.stringify(r)).join("\n") + "\n");
        }
      }
      const show = (v: unknown): string => (typeof v === "number" ? v.toFixed(4) : String(v));
      for (const [name, entry] of Object.entries(run.results.results)) {
        const metrics = Object.keys(entry)
          .filter((k) => k.endsWith(",none") && !k.endsWith("_stderr,none"))
          .map((k) => `${k.slice(0, -",none".length)} ${show(entry[k])} ± ${show(entry[k.replace(/,none$/, "_stderr,none")])}`);
        console.log(`${name}: ${metrics.join(", ")}`);
      }
      console.log(`wrote ${out}`);
    } finally {
      model.dispose();
    }
  },
};
