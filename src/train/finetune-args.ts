/**
 * TrainingArguments by their Hugging Face names: the table that maps `growlm finetune`'s flags
 * and a continual scenario's per-stage "training" objects onto FinetuneOptions.
 */
import { STRATEGY_FLAGS } from "../continual/strategy.js";
import { PROMPT_FORMATS } from "../data/prompts.js";
import { GrowlmError } from "../errors.js";
import type { FlagSpec } from "../cli/hf-args.js";
import { PROBABILISTIC_METHODS } from "../probabilistic/finetune-mode.js";
import { FINETUNE_DEFAULTS, type FinetuneOptions } from "./finetune.js";
import { LR_SCHEDULER_TYPES } from "./lr.js";

const STRATEGIES = ["no", "steps", "epoch"];

/** Flags with a meaning here, mapped to FinetuneOptions fields. */
export const TRAINING_FLAGS: Record<string, FlagSpec & { field: keyof FinetuneOptions }> = {
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
  device: { kind: "string", field: "device" },
  max_train_samples: { kind: "int", field: "maxTrainSamples" },
  max_eval_samples: { kind: "int", field: "maxEvalSamples" },
  // Probabilistic fine-tuning (src/probabilistic/finetune-mode.ts).
  probabilistic: { kind: "string", choices: PROBABILISTIC_METHODS, field: "probabilistic" },
  ensemble_size: { kind: "int", field: "ensembleSize" },
  film_init_gain: { kind: "float", field: "filmInitGain" },
  dropout: { kind: "float", field: "dropout" },
  mc_samples: { kind: "int", field: "mcSamples" },
  ...STRATEGY_FLAGS,
};


/**
 * FinetuneOptions from Hugging Face-named values (parsed flags, or a scenario's JSON), over the
 * defaults. Unknown names and values of the wrong type are refused by name.
 * @param op names the caller in errors
 */
export function finetuneOptions(op: string, values: Readonly<Record<string, unknown>>, base: Partial<FinetuneOptions> = {}): FinetuneOptions {
  const options: Record<string, unknown> = { ...FINETUNE_DEFAULTS, ...base };
  for (const [name, raw] of Object.entries(values)) {
    const spec = TRAINING_FLAGS[name];
    if (!spec) throw new GrowlmError(op, `unknown training argument "${name}"`);
    let value = raw;
    if (name === "resume_from_checkpoint" && typeof value === "string" && /^(true|false)$/i.test(value)) value = value.toLowerCase() === "true";
    const ok =
      (spec.kind === "bool" && typeof value === "boolean") ||
      (spec.kind === "int" && Number.isSafeInteger(value)) ||
      (spec.kind === "float" && typeof value === "number" && Number.isFinite(value)) ||
      (spec.kind === "string" && (typeof value === "string" || (name === "resume_from_checkpoint" && typeof value === "boolean")));
    if (!ok) throw new GrowlmError(op, `"${name}" must be ${spec.kind === "bool" ? "a boolean" : spec.kind === "string" ? "a string" : spec.kind === "int" ? "an integer" : "a number"} but is ${JSON.stringify(value)}`);
    if (spec.choices && typeof value === "string" && !spec.choices.includes(value)) {
      throw new GrowlmError(op, `"${name}" must be one of ${spec.choices.join(", ")} but is ${JSON.stringify(value)}`);
    }
    options[spec.field] = value;
  }
  for (const field of ["modelNameOrPath", "dataset", "outputDir"] as const) {
    if (typeof options[field] !== "string" || options[field] === "") {
      const flag = Object.entries(TRAINING_FLAGS).find(([, s]) => s.field === field)![0];
      throw new GrowlmError(op, `--${flag} is required`);
    }
  }
  return options as unknown as FinetuneOptions;
}
