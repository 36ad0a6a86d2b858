/**
 * Learning-rate schedules as transformers.get_scheduler builds them (LambdaLR over the
 * number of optimizer steps already taken): the step with index s (0 for the first
 * update) uses lr · factor(s). With warmup, the first update therefore uses lr 0, exactly as
 * in Hugging Face's Trainer.
 */
import { GrowlmError } from "../errors.js";

export type LrSchedulerType = "constant" | "constant_with_warmup" | "linear" | "cosine";
export const LR_SCHEDULER_TYPES: readonly LrSchedulerType[] = ["constant", "constant_with_warmup", "linear", "cosine"];

export interface LrScheduleConfig {
  type: LrSchedulerType;
  /** Peak learning rate. */
  learningRate: number;
  /** Total optimizer steps (required by linear and cosine). */
  totalSteps: number;
  /** Warmup steps; when 0, ceil(totalSteps · warmupRatio) as TrainingArguments.get_warmup_steps. */
  warmupSteps?: number;
  warmupRatio?: number;
}

export class LrSchedule {
  readonly warmupSteps: number;

  constructor(readonly config: LrScheduleConfig) {
    const op = "LrSchedule";
    if (!LR_SCHEDULER_TYPES.includes(config.type)) {
      throw new GrowlmError(op, `unknown lr_scheduler_type ${JSON.stringify(config.type)}; expected one of ${LR_SCHEDULER_TYPES.join(", ")}`);
    }
    if (!Number.isFinite(config.learningRate) || config.learningRate < 0) {
      throw new GrowlmError(op, `learning_rate must be a finite number >= 0 but is ${config.learningRate}`);
    }
    if (!Number.isSafeInteger(config.totalSteps) || config.totalSteps < 0) {
      throw new GrowlmError(op, `the total number of steps must be an integer >= 0 but is ${config.totalSteps}`);
    }
    const warmup = config.warmupSteps ?? 0;
    const ratio = config.warmupRatio ?? 0;
    if (!Number.isSafeInteger(warmup) || warmup < 0) throw new GrowlmError(op, `warmup_steps must be an integer >= 0 but is ${warmup}`);
    if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) throw new GrowlmError(op, `warmup_ratio must be in [0, 1] but is ${ratio}`);
    this.warmupSteps = warmup > 0 ? warmup : Math.ceil(config.totalSteps * ratio);
    if (config.type === "constant" && this.warmupSteps > 0) {
      throw new GrowlmError(op, `lr_scheduler_type "constant" has no warmup; use "constant_with_warmup"`);
    }
  }

  /** The multiplier of the learning rate at step index `step` (0-based). */
  factor(step: number): number {
    const { type, totalSteps } = this.config;
    const warmup = this.warmupSteps;
    if (type === "constant") return 1;
    if (step < warmup) return step / Math.max(1, warmup);
    if (type === "constant_with_warmup") return 1;
    if (type === "linear") return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmup));
    const progress = (step - warmup) / Math.max(1, totalSteps - warmup);
    return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 2 * 0.5 * progress)));
  }

  /** The learning rate of step index `step` (0-based). */
  lr(step: number): number {
    return this.config.learningRate * this.factor(step);
  }
}
