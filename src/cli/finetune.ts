/** growlm finetune: fine-tuning with Hugging Face TrainingArguments' flags (see src/train/finetune.ts). */
import { PROMPT_FORMATS } from "../data/prompts.js";
import { GrowlmError } from "../errors.js";
import { LR_SCHEDULER_TYPES } from "../train/lr.js";
import { FINETUNE_DEFAULTS, type FinetuneOptions, type LogRecord, finetune as runFinetune } from "../train/finetune.js";
import type { Command } from "./command.js";
import { type FlagSpec, type FlagValue, parseHfArgs } from "./hf-args.js";

const STRATEGIES = ["no", "steps", "epoch"];

/** Flags with a meaning here, mapped to FinetuneOptions fields. */
const TRAINING_FLAGS: Record<string, FlagSpec & { field: keyof FinetuneOptions }> = {
  model_name_or_path: { kind: "string", field: "modelNameOrPath" },
  dataset: { kind: "string", field: "dataset" },
  dataset_format: { kind: "string", choices: PROMPT_FORMATS, field: "datasetFormat" },
  output_dir: { kind: "string", field: "outputDir" },
  num_train_epochs: { kind: "float", field: "numTrainEpochs" },
  max_steps: { kind: "int", field: "maxSteps" },
  per_device_train_batch_size: { kind: "int", field: "perDeviceTrainBatchSize" },
  per_device_eval_batch_size: { kind: "int", field: "perDeviceEvalBatchSize" },
  gradient_accumulation_steps: { kind: "int", field: "gradientAccumulationSteps" },
  learning_rate: { kind: "float", field: "learningRate" },
  lr_scheduler_type: { kind: "string", choices: LR_SCHEDULER_TYPES, field: "lrSchedulerType" },
  warmup_ratio: { kind: "float", field: "warmupRatio" },
  warmup_steps: { kind: "int", field: "warmupSteps" },
  weight_decay: { kind: "float", field: "weightDecay" },
  max_grad_norm: { kind: "float", field: "maxGradNorm" },
  adam_beta1: { kind: "float", field: "adamBeta1" },
  adam_beta2: { kind: "float", field: "adamBeta2" },
  adam_epsilon: { kind: "float", field: "adamEpsilon" },
  logging_steps: { kind: "int", field: "loggingSteps" },
  logging_first_step: { kind: "bool", field: "loggingFirstStep" },
  evaluation_strategy: { kind: "string", choices: STRATEGIES, aliases: ["eval_strategy"], field: "evalStrategy" },
  eval_steps: { kind: "int", field: "evalSteps" },
  save_strategy: { kind: "string", choices: STRATEGIES, field: "saveStrategy" },
  save_steps: { kind: "int", field: "saveSteps" },
  save_total_limit: { kind: "int", field: "saveTotalLimit" },
  seed: { kind: "int", field: "seed" },
  train_on_source: { kind: "bool", field: "trainOnSource" },
  source_max_len: { kind: "int", field: "sourceMaxLen" },
  target_max_len: { kind: "int", field: "targetMaxLen" },
  group_by_length: { kind: "bool", field: "groupByLength" },
  resume_from_checkpoint: { kind: "string", field: "resumeFromCheckpoint" },
  do_train: { kind: "bool", field: "doTrain" },
  do_eval: { kind: "bool", field: "doEval" },
  bf16: { kind: "bool", field: "bf16" },
  gradient_checkpointing: { kind: "bool", field: "gradientCheckpointing" },
  max_train_samples: { kind: "int", field: "maxTrainSamples" },
  max_eval_samples: { kind: "int", field: "maxEvalSamples" },
};

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

function optionsFrom(values: Map<string, FlagValue>): FinetuneOptions {
  const op = "growlm finetune";
  const options: Record<string, unknown> = { ...FINETUNE_DEFAULTS };
  for (const [name, spec] of Object.entries(TRAINING_FLAGS)) {
    if (!values.has(name)) continue;
    let value: unknown = values.get(name);
    if (name === "resume_from_checkpoint") value = value === "true" || value === "True" ? true : value === "false" || value === "False" ? false : value;
    options[spec.field] = value;
  }
  for (const name of ["model_name_or_path", "dataset", "output_dir"]) {
    if (!values.has(name)) throw new GrowlmError(op, `--${name} is required`);
  }
  return options as unknown as FinetuneOptions;
}

function formatRecord(r: LogRecord): string {
  return JSON.stringify(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Number.isInteger(v) ? v : Number(v.toPrecision(5))])));
}

export const finetune: Command = {
  name: "finetune",
  summary: "fine-tune a model on prompt/response data with Hugging Face TrainingArguments' flags",
  usage:
    "growlm finetune --model_name_or_path DIR --dataset FILE --output_dir DIR [TrainingArguments flags]\n\n" +
    `  flags: ${[...Object.keys(TRAINING_FLAGS), ...Object.keys(PREDICT_FLAGS)].map((f) => `--${f}`).join(" ")}\n` +
    `  accepted and ignored: ${[...IGNORED].map((f) => `--${f}`).join(" ")}\n` +
    "  Booleans take true/false (or stand alone). Logs go to OUTPUT_DIR/log.jsonl; checkpoints to OUTPUT_DIR/checkpoint-N.",
  async run(argv) {
    const op = "growlm finetune";
    const { values, ignored } = parseHfArgs(op, argv, { ...TRAINING_FLAGS, ...PREDICT_FLAGS }, IGNORED);
    if (ignored.length > 0) console.error(`growlm finetune: ignoring ${ignored.map((f) => `--${f}`).join(", ")} (no meaning here)`);
    if (values.get("do_predict") === true) {
      throw new GrowlmError(op, "--do_predict needs generation, which lands with the evaluation issue (5); run without it for now");
    }
    const options = optionsFrom(values);
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
    });
    if (tty) process.stderr.write("\r\x1b[K");
    console.log(
      `done: step ${result.globalStep}, train loss ${result.trainLoss.toFixed(4)}${Number.isNaN(result.evalLoss) ? "" : `, eval loss ${result.evalLoss.toFixed(4)}`}; model in ${options.outputDir}`,
    );
  },
};
