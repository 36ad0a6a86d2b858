/** growlm finetune: fine-tuning with Hugging Face TrainingArguments' flags (see src/train/finetune.ts). */
import fs from "node:fs";
import path from "node:path";

import { TRAINING_FLAGS, finetuneOptions } from "../train/finetune-args.js";
import type { DistributedTraining } from "../train/data-parallel.js";
import { type FinetuneOptions, type LogRecord, finetune as runFinetune } from "../train/finetune.js";
import type { Command } from "./command.js";
import { DISTRIBUTED_FLAGS, DISTRIBUTED_USAGE, startDistributed } from "./distributed.js";
import { type FlagSpec, type FlagValue, parseHfArgs } from "./hf-args.js";
import { metrics } from "./metrics.js";
import { predict } from "./predict.js";

/** Flags of the prediction phase (--do_predict). */
const PREDICT_FLAGS: Record<string, FlagSpec> = {
  do_predict: { kind: "bool" },
  predict_with_generate: { kind: "bool" },
  num_beams: { kind: "int" },
  length_penalty: { kind: "float" },
  max_new_tokens: { kind: "int" },
  no_repeat_ngram_size: { kind: "int" },
  do_sample: { kind: "bool" },
  temperature: { kind: "float" },
  top_k: { kind: "int" },
  top_p: { kind: "float" },
  compute_bleu: { kind: "bool" },
  compute_rouge: { kind: "bool" },
  compute_sari: { kind: "bool" },
  task: { kind: "string" },
  run_name: { kind: "string" },
};

/** Accepted for compatibility with the study's scripts, without effect here. */
const IGNORED = new Set([
  "deepspeed",
  "report_to",
  "dataloader_num_workers",
  "dataloader_pin_memory",
  "trust_remote_code",
  "remove_unused_columns",
  "eval_accumulation_steps",
  "overwrite_output_dir",
  "fp16",
  "ddp_find_unused_parameters",
  "optim",
  "full_finetune",
  "use_auth_token",
  "lora_r",
  "lora_alpha",
  "lora_dropout",
  "bits",
  "double_quant",
  "quant_type",
]);


function formatRecord(r: LogRecord): string {
  return JSON.stringify(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number.isInteger(v) ? v : Number(v.toPrecision(5))])));
}

/**
 * The study's metrics per --task (finetune.py): Simp was scored with SARI, BLEU and ROUGE,
 * EmDg and InqQG with BLEU and ROUGE besides BERTScore (which growlm does not compute).
 */
const TASK_METRICS: Record<string, ("bleu" | "rouge" | "sari")[]> = { simp: ["sari", "bleu", "rouge"], empd: ["bleu", "rouge"], inqqg: ["bleu", "rouge"] };

/** --do_train / --do_eval: the fine-tuning run, with a progress bar on a terminal (rank 0 reports, data-parallel). */
async function runTraining(options: FinetuneOptions, distributed: DistributedTraining | null): Promise<void> {
  const tty = process.stderr.isTTY === true;
  const result = await runFinetune(options, {
    log: (r) => {
      if (tty) process.stderr.write("\r\x1b[K");
      console.log(formatRecord(r));
    },
    progress: tty
      ? (p) => {
          const width = 24;
          const done = Math.round((p.step / p.maxSteps) * width);
          const eta = p.step > 0 ? (p.elapsed / p.step) * (p.maxSteps - p.step) : 0;
          process.stderr.write(
            `\r\x1b[K[${"#".repeat(done)}${".".repeat(width - done)}] ${p.step}/${p.maxSteps} loss ${p.loss.toFixed(4)} lr ${p.lr.toExponential(2)} ${p.tokensPerSecond.toFixed(0)} tok/s eta ${eta.toFixed(0)}s`,
          );
        }
      : undefined,
  }, distributed);
  if ((distributed?.communicator.rank ?? 0) !== 0) return;
  if (tty) process.stderr.write("\r\x1b[K");
  const evalText = Number.isNaN(result.evalLoss) ? "" : `, eval loss ${result.evalLoss.toFixed(4)}`;
  console.log(`done: step ${result.globalStep}, train loss ${result.trainLoss.toFixed(4)}${evalText}; model in ${options.outputDir}`);
}

/**
 * --do_predict, as the study's test command: predictions of the test split (growlm predict)
 * with the model just trained (or --model_name_or_path without --do_train) into
 * OUTPUT_DIR/predictions.jsonl, then the --compute_* metrics into OUTPUT_DIR/metrics.json.
 */
async function runPredict(values: Map<string, FlagValue>, options: FinetuneOptions): Promise<void> {
  const modelDir = options.doTrain ? options.outputDir : options.modelNameOrPath;
  const predictions = path.join(options.outputDir, "predictions.jsonl");
  fs.mkdirSync(options.outputDir, { recursive: true });
  const passOn = ["task", "num_beams", "length_penalty", "max_new_tokens", "no_repeat_ngram_size", "do_sample", "temperature", "top_k", "top_p", "seed", "per_device_eval_batch_size"];
  const argv = ["--model", modelDir, "--dataset", options.dataset, "--split", "test", "--out", predictions, "--dataset_format", options.datasetFormat, "--source_max_len", String(options.sourceMaxLen)];
  for (const name of passOn) if (values.has(name)) argv.push(`--${name}`, String(values.get(name)));
  if (options.bf16) argv.push("--bf16", "true");
  argv.push("--device", options.device);
  await predict.run(argv);
  // --compute_* choose the metrics; without any, --task picks the study's set for that task.
  const chosen = (["bleu", "rouge", "sari"] as const).filter((m) => values.get(`compute_${m}`) === true);
  const task = values.get("task");
  const names = chosen.length > 0 || typeof task !== "string" ? chosen : (TASK_METRICS[task] ?? []);
  if (names.length > 0) await metrics.run(["--predictions", predictions, "--metric", names.join(","), "--out", path.join(options.outputDir, "metrics.json")]);
}

export const finetune: Command = {
  name: "finetune",
  summary: "fine-tune a model on prompt/response data with Hugging Face TrainingArguments' flags",
  usage:
    "growlm finetune --model_name_or_path DIR --dataset FILE --output_dir DIR [TrainingArguments flags]\n\n" +
    `  flags: ${[...Object.keys(TRAINING_FLAGS), ...Object.keys(PREDICT_FLAGS)].map((f) => `--${f}`).join(" ")}\n` +
    `  accepted and ignored: ${[...IGNORED].map((f) => `--${f}`).join(" ")}\n` +
    "  Booleans take true/false (or stand alone). Logs go to OUTPUT_DIR/log.jsonl; checkpoints to OUTPUT_DIR/checkpoint-N.\n" +
    DISTRIBUTED_USAGE,
  async run(argv) {
    const op = "growlm finetune";
    const { values, ignored } = parseHfArgs(op, argv, { ...TRAINING_FLAGS, ...PREDICT_FLAGS, ...DISTRIBUTED_FLAGS }, IGNORED);
    const options = finetuneOptions(op, Object.fromEntries([...values].filter(([name]) => name in TRAINING_FLAGS)));
    const start = await startDistributed("finetune", argv, values);
    if (start.launched) return;
    if (ignored.length > 0 && start.rank === 0) console.error(`growlm finetune: ignoring ${ignored.map((f) => `--${f}`).join(", ")} (no meaning here)`);
    if (options.doTrain || options.doEval) await runTraining(options, start.distributed);
    // Only after success: a rank that fails drops its connections, and the others report a failure, not an orderly exit.
    await start.distributed?.communicator.close();
    if (values.get("do_predict") === true && start.rank === 0) await runPredict(values, options);
  },
};
