/**
 * Growth in the middle of training: a LlamaModel and its Trainer at optimizer step d become a
 * larger model and a trainer that goes on from there, built tensor by tensor with the same
 * plan as growth on disk (new flat buffers laid out by the target's ParamLayout).
 *
 * Optimizer state:
 * - "reset" (what G_stack's code does: a fresh AdamW, step 0, zero moments).
 * - "carry" (StackBERT's double.py, MSG's transfer_states): AdamW's step count goes on and the
 *   moments go through the same mapping as the weights (growMoment): a layer copied in depth
 *   keeps its source layer's exp_avg and exp_avg_sq; along a widened axis a copy takes its
 *   source's exp_avg × gradScale and exp_avg_sq × gradScale², where gradScale = 1 / (copies ×
 *   the copy's weight factor) is exactly the factor between the grown model's gradient and the
 *   source's at growth (a unit split n ways sees 1/n of the gradient on its incoming weights
 *   and the full gradient on its split outgoing ones; test/growth/schedule.test.ts checks it
 *   against the grown model's own gradients). The one exception: k_proj/v_proj rows when the
 *   new GQA group size is not a multiple of the old (a copied kv head then serves only some of
 *   its source's query heads), where the mapping is an approximation. The carried moments are
 *   thus the averages the grown model would hold had it seen the mapped gradients all along.
 *   Because Adam's update m/√v does not depend on the gradient's scale, a copy then moves by
 *   the same amount per step as its source did: for an outgoing weight split n ways, n times
 *   faster relative to its size, so the split units together move the function n times as
 *   fast (a property of Adam under width growth, with or without carried moments). New
 *   entries, zero-output duplicates and random layers start with zero moments; since growlm's
 *   AdamW has one step count for all parameters, their early updates are bias-corrected as if
 *   they had been accumulating since step 0: (1−β1)/√(1−β2) × lr on their first step instead
 *   of lr once d is large enough for the bias corrections to be ≈ 1 (3.2× for β = (0.9,
 *   0.999), 0.45× for the paper's (0.9, 0.95)).
 *
 * Schedule: "restart" (the paper: the schedule starts again at its step 0, optionally with a
 * new LrScheduleConfig such as the grown run's warmup and length) or "continue" (the same
 * schedule goes on at the step it had reached). The trainer's scheduleOffset reconciles either
 * with either optimizer policy. The random stream (data order) continues where it was.
 */
import { GrowlmError } from "../errors.js";
import { LlamaModel } from "../model/llama.js";
import type { LrScheduleConfig } from "../train/lr.js";
import { Trainer } from "../train/trainer.js";
import { type GrowthPlan, growMoment, growTensor } from "./plan.js";

/**
 * MSG's mask on the new layers: before the s-th optimizer step after growth (s = 0 for the
 * first), each masked layer's residual branches are scaled by min(1, s / warmupSteps), so the
 * grown model is exactly the source at s = 0 and the plain grown model from s = warmupSteps on.
 * (MSG's code blends the whole block, m·Block(x) + (1−m)·x; scaling the two branches is the
 * same at m = 0 and m = 1 and differs in between only in that the MLP sees x + m·attn.)
 */
export class BranchMask {
  constructor(
    readonly model: LlamaModel,
    readonly layers: readonly number[],
    readonly warmupSteps: number,
    /** The trainer's optimizer step count at growth. */
    readonly startStep: number,
  ) {
    const op = "BranchMask";
    if (!Number.isSafeInteger(warmupSteps) || warmupSteps < 1) throw new GrowlmError(op, `warmupSteps must be a positive integer but is ${warmupSteps}`);
    if (!Number.isSafeInteger(startStep) || startStep < 0) throw new GrowlmError(op, `startStep must be an integer >= 0 but is ${startStep}`);
    for (const l of layers) {
      if (!Number.isSafeInteger(l) || l < 0 || l >= model.config.num_hidden_layers) {
        throw new GrowlmError(op, `layer ${l} is not a layer of the model (0..${model.config.num_hidden_layers - 1})`);
      }
    }
  }

  /** The scale at optimizer step count `step` (the trainer's `step` before its next update). */
  scaleAt(step: number): number {
    return Math.min(1, Math.max(0, (step - this.startStep) / this.warmupSteps));
  }

  /** Sets the masked layers' scales for the update the trainer is about to take; call before every trainStep. */
  beforeStep(step: number): number {
    const s = this.scaleAt(step);
    for (const l of this.layers) this.model.setBranchScale(l, s);
    return s;
  }

  /** Whether the mask has reached 1 at `step` (from then on the model is the plain grown model). */
  done(step: number): boolean {
    return this.scaleAt(step) >= 1;
  }
}

/**
 * The grown model of `plan` from `model` (which must have the plan's source config): a new
 * LlamaModel with the same options (recompute, matmul precision, head chunk), its parameters
 * computed tensor by tensor. MSG-masked layers start with branch scale 0. `model` is unchanged.
 */
export function growModel(model: LlamaModel, plan: GrowthPlan): LlamaModel {
  checkSource("growModel", model, plan);
  const grown = new LlamaModel(plan.target, { recompute: model.recompute, matmul: model.matmul, headChunkRows: model.headChunkRows, device: model.device });
  try {
    const params = grown.params.data;
    for (const e of grown.layout.entries) {
      growTensor(plan, e.name, (name) => sourceView(model.layout.entry(name), model.params.data), params.subarray(e.offset, e.offset + e.numel));
    }
    grown.markParamsChanged();
    for (const l of plan.mask?.layers ?? []) grown.setBranchScale(l, 0);
  } catch (err) {
    grown.dispose();
    throw err;
  }
  return grown;
}

function sourceView(e: { offset: number; numel: number }, flat: Float32Array): Float32Array {
  return flat.subarray(e.offset, e.offset + e.numel);
}

function checkSource(op: string, model: LlamaModel, plan: GrowthPlan): void {
  const keys = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "tie_word_embeddings"] as const;
  const differ = keys.filter((k) => model.config[k] !== plan.source[k]);
  if (differ.length > 0) {
    throw new GrowlmError(op, `the model is not the plan's source: ${differ.map((k) => `${k} ${String(model.config[k])} vs ${String(plan.source[k])}`).join(", ")}`);
  }
}

export type OptimizerStatePolicy = "reset" | "carry";
export type SchedulePolicy = "restart" | "continue";

export interface GrowTrainerOptions {
  /** "reset" (default, the paper) or "carry" (moments through the growth mapping, step count continued). */
  optimizerState?: OptimizerStatePolicy;
  /**
   * "restart" (default, the paper: the schedule from its step 0), "continue" (the same schedule at
   * the step it had reached), or a new schedule config to restart with (the grown run's own).
   */
  schedule?: SchedulePolicy | LrScheduleConfig;
}

export interface GrownTraining {
  model: LlamaModel;
  trainer: Trainer;
  /** MSG's mask when the plan has one: call mask.beforeStep(trainer.step) before every trainStep. */
  mask: BranchMask | null;
}

/**
 * Grows `trainer`'s model by `plan` and returns a trainer that continues from there (the old
 * model and trainer are untouched: dispose them when done). The new trainer keeps the
 * optimizer's hyperparameters and the random stream's seed and position.
 *
 * ```ts
 * // G_stack at step d: stack ×4, fresh AdamW, the grown run's own warmup + cosine (the paper).
 * const plan = planGrowth(trainer.model.config, { depth: { operator: "stack", factor: 4 } });
 * const grown = growTrainer(trainer, plan, { optimizerState: "reset", schedule: { type: "cosine", learningRate: 3e-4, totalSteps: 5000, warmupSteps: 300 } });
 * trainer.dispose();
 * trainer.model.dispose();
 * for (const batches of data) {
 *   grown.mask?.beforeStep(grown.trainer.step); // MSG plans only (depth random with maskWarmupSteps)
 *   grown.trainer.trainStep(batches);
 * }
 * ```
 */
export function growTrainer(trainer: Trainer, plan: GrowthPlan, options: GrowTrainerOptions = {}): GrownTraining {
  const op = "growTrainer";
  const policy = options.optimizerState ?? "reset";
  if (policy !== "reset" && policy !== "carry") throw new GrowlmError(op, `optimizerState must be "reset" or "carry" but is ${JSON.stringify(policy)}`);
  const schedulePolicy = options.schedule ?? "restart";
  if (typeof schedulePolicy === "string" && schedulePolicy !== "restart" && schedulePolicy !== "continue") {
    throw new GrowlmError(op, `schedule must be "restart", "continue" or a schedule config but is ${JSON.stringify(schedulePolicy)}`);
  }
  const old = trainer.optimizer;
  const model = growModel(trainer.model, plan);
  let grown: Trainer | null = null;
  try {
    const optimizerStep = policy === "carry" ? old.step : 0;
    const reached = old.step - trainer.scheduleOffset;
    const scheduleOffset = schedulePolicy === "continue" ? optimizerStep - reached : optimizerStep;
    const schedule = typeof schedulePolicy === "object" ? schedulePolicy : { ...trainer.schedule.config };
    grown = new Trainer(model, {
      schedule,
      optimizer: { beta1: old.beta1, beta2: old.beta2, eps: old.eps, weightDecay: old.weightDecay, maxGradNorm: old.maxGradNorm },
      seed: trainer.rng.seed,
      scheduleOffset,
    });
    grown.rng.offset = trainer.rng.offset;
    if (policy === "carry") {
      const layout = trainer.model.layout;
      for (const [moment, from, to] of [["exp_avg", old.m, grown.optimizer.m], ["exp_avg_sq", old.v, grown.optimizer.v]] as const) {
        for (const e of model.layout.entries) {
          growMoment(plan, e.name, moment, (name) => sourceView(layout.entry(name), from.data), to.data.subarray(e.offset, e.offset + e.numel));
        }
      }
      grown.optimizer.markMomentsChanged();
      grown.optimizer.step = old.step;
    }
    const mask = plan.mask ? new BranchMask(model, plan.mask.layers, plan.mask.warmupSteps, grown.step) : null;
    return { model, trainer: grown, mask };
  } catch (err) {
    grown?.dispose();
    model.dispose();
    throw err;
  }
}
