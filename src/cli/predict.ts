/** growlm predict: a dataset split's predictions.jsonl, as the study's predict_with_generate writes it. */
import { readDataset, type Split, SPLITS } from "../data/dataset.js";
import { PROMPT_FORMATS, type PromptFormat } from "../data/prompts.js";
import { GrowlmError } from "../errors.js";
import type { EarlyStopping } from "../eval/beam-search.js";
import { predictExamples, predictionRecord } from "../eval/predict.js";
import { writeFileAtomic } from "../io/atomic.js";
import { readGenerationConfig } from "../io/hf.js";
import { loadTokenizer } from "../io/tokenizer.js";
import { loadPretrained } from "../model/pretrained.js";
import type { Command } from "./command.js";
import { type FlagSpec, type FlagValue, parseHfArgs } from "./hf-args.js";

const FLAGS: Record<string, FlagSpec> = {
  model: { kind: "string", aliases: ["model_name_or_path"] },
  dataset: { kind: "string" },
  split: { kind: "string", choices: SPLITS },
  out: { kind: "string" },
  dataset_format: { kind: "string", choices: PROMPT_FORMATS },
  task: { kind: "string" },
  max_test_samples: { kind: "int" },
  source_max_len: { kind: "int" },
  per_device_eval_batch_size: { kind: "int" },
  max_new_tokens: { kind: "int" },
  min_new_tokens: { kind: "int" },
  num_beams: { kind: "int" },
  length_penalty: { kind: "float" },
  early_stopping: { kind: "string", choices: ["true", "false", "never"] },
  do_sample: { kind: "bool" },
  temperature: { kind: "float" },
  top_k: { kind: "int" },
  top_p: { kind: "float" },
  repetition_penalty: { kind: "float" },
  no_repeat_ngram_size: { kind: "int" },
  seed: { kind: "int" },
  bf16: { kind: "bool" },
  device: { kind: "string" },
  json: { kind: "bool" },
};

/** Flags of the study's prediction runs that mean nothing here. */
const IGNORED = new Set(["run_name", "report_to", "dataloader_num_workers", "dataloader_pin_memory", "trust_remote_code", "remove_unused_columns", "overwrite_output_dir", "do_train", "do_eval", "do_predict", "predict_with_generate", "gradient_checkpointing", "output_dir"]);

/** The study filtered the Simp test split to its seen template (finetune.py, --task simp). */
const TASK_TEST_FILTERS: Record<string, { key: string; value: string }> = { simp: { key: "prompt_name", value: "simplification_1" } };

export const predict: Command = {
  name: "predict",
  summary: "generate predictions for a dataset split (the study's predictions.jsonl)",
  usage:
    "growlm predict --model DIR --dataset FILE --out predictions.jsonl [--split test] [--dataset_format none|prompt|alpaca]\n" +
    "    [--max_new_tokens 256] [--min_new_tokens 0] [--num_beams 1] [--length_penalty 1.0] [--early_stopping false|true|never]\n" +
    "    [--do_sample] [--temperature 1.0] [--top_k 50] [--top_p 1.0] [--repetition_penalty 1.0] [--no_repeat_ngram_size 0]\n" +
    "    [--seed 42] [--per_device_eval_batch_size 8] [--source_max_len 1024] [--max_test_samples N] [--task simp] [--bf16] [--device cpu|cuda|cuda:N] [--json]\n\n" +
    '  FILE: the study\'s preprocessed JSON {"train": [...], "eval": [...], "test": [...]} of {input, output, src_info, index},\n' +
    "  or JSONL of {input, output} (all of it the split asked for). Each output line is the example with its formatted\n" +
    '  prompt as "input", plus "prediction_with_input" and "prediction". The prompt is BOS + the formatted input, truncated\n' +
    "  to --source_max_len tokens; EOS and padding come from the model's generation_config.json (else config.json, else\n" +
    "  the tokenizer). --task simp keeps the test examples of src_info.prompt_name simplification_1, as the study did.\n" +
    "  Flags and defaults are transformers' GenerationConfig ones, except --max_new_tokens 256 and --seed 42 (the study's).",
  async run(argv) {
    const op = "growlm predict";
    const { values, ignored } = parseHfArgs(op, argv, FLAGS, IGNORED);
    if (ignored.length > 0) console.error(`growlm predict: ignoring ${ignored.map((f) => `--${f}`).join(", ")} (no meaning here)`);
    const get = <T extends FlagValue>(name: string, fallback: T): T => (values.has(name) ? (values.get(name) as T) : fallback);
    const need = (name: string): string => {
      const v = values.get(name);
      if (typeof v !== "string" || v === "") throw new GrowlmError(op, `--${name} is required`);
      return v;
    };
    const dir = need("model");
    const file = need("dataset");
    const out = need("out");
    const split = get<string>("split", "test") as Split;
    const format = get<string>("dataset_format", "none") as PromptFormat;
    const early = get<string>("early_stopping", "false");
    const earlyStopping: EarlyStopping = early === "never" ? "never" : early === "true";

    let examples = readDataset(file, split)[split];
    const task = values.get("task");
    const filter = typeof task === "string" && split === "test" ? TASK_TEST_FILTERS[task] : undefined;
    if (filter) examples = examples.filter((e) => e.src_info?.[filter.key] === filter.value);
    const maxSamples = values.get("max_test_samples");
    if (maxSamples !== undefined) {
      if (typeof maxSamples !== "number" || maxSamples < 1) throw new GrowlmError(op, `--max_test_samples must be a positive integer but is ${String(maxSamples)}`);
      examples = examples.slice(0, maxSamples);
    }
    if (examples.length === 0) throw new GrowlmError(op, `${file} has no "${split}" examples${filter ? ` with src_info.${filter.key} = ${filter.value}` : ""}`);

    const tokenizer = await loadTokenizer(dir);
    const model = loadPretrained(dir, { matmul: get("bf16", false) ? "bfloat16" : "float32", device: get("device", "cpu") });
    try {
      const gen = readGenerationConfig(dir);
      const eos = gen?.eos_token_id ?? model.config.eos_token_id ?? tokenizer.eosId;
      const pad = gen?.pad_token_id ?? model.config.pad_token_id ?? tokenizer.padId;
      const tty = process.stderr.isTTY === true;
      const started = performance.now();
      const predictions = predictExamples(model, tokenizer, examples, {
        format,
        sourceMaxLen: get("source_max_len", 1024),
        batchSize: get("per_device_eval_batch_size", 8),
        generation: {
          maxNewTokens: get("max_new_tokens", 256),
          minNewTokens: get("min_new_tokens", 0),
          numBeams: get("num_beams", 1),
          lengthPenalty: get("length_penalty", 1),
          earlyStopping,
          doSample: get("do_sample", false),
          temperature: get("temperature", 1),
          topK: get("top_k", 50),
          topP: get("top_p", 1),
          repetitionPenalty: get("repetition_penalty", 1),
          noRepeatNgramSize: get("no_repeat_ngram_size", 0),
          seed: get("seed", 42),
          eosTokenId: eos,
          padTokenId: pad,
        },
        progress: tty ? (done, total) => process.stderr.write(`\rgrowlm predict: ${done}/${total} examples`) : undefined,
      });
      if (tty) process.stderr.write("\n");
      const seconds = (performance.now() - started) / 1000;
      const lines = examples.map((e, i) => JSON.stringify(predictionRecord(e, format, predictions[i]!)));
      writeFileAtomic(op, out, `${lines.join("\n")}\n`);
      const generated = predictions.reduce((n, p) => n + p.tokens.length, 0);
      const summary = { out, examples: examples.length, generated_tokens: generated, seconds, tokens_per_second: generated / seconds };
      console.log(get("json", false) ? JSON.stringify(summary) : `growlm predict: ${examples.length} predictions (${generated} tokens in ${seconds.toFixed(1)} s) written to ${out}`);
    } finally {
      model.dispose();
    }
  },
};
