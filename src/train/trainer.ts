/**
 * One optimizer step of causal-LM training over micro-batches (gradient accumulation), the
 * way Hugging Face's Trainer takes it: zero the gradients, forward and backward every
 * micro-batch, clip the global norm, AdamW with the scheduled learning rate.
 *
 * Gradient accumulation weights every counted token equally across the micro-batches
 * (transformers >= 4.46, `num_items_in_batch`): the objective is Σ NLL / (tokens counted in
 * all micro-batches), so accumulating k micro-batches gives the gradient of one batch k times
 * as large, and data-parallel ranks can split a batch without changing the result.
 */
import { GrowlmError } from "../errors.js";
import type { LlamaModel, LogitsTerm } from "../model/llama.js";
import type { Tensor } from "../tensor.js";
import { type Communicator, sumAcrossRanks } from "./comm.js";
import { DataParallel } from "./data-parallel.js";
import { type LrScheduleConfig, LrSchedule } from "./lr.js";
import { AdamW, type AdamwOptions } from "./optimizer.js";
import { RandomStream } from "./random.js";

/** A micro-batch: int32 [B, T] input ids and labels (-100 ignored, shifted inside). */
export interface Batch {
  ids: Tensor;
  labels: Tensor;
}

export interface TrainerOptions {
  schedule: LrScheduleConfig;
  optimizer?: AdamwOptions;
  /** Seed of the trainer's random stream (data order, dropout); default 42 as TrainingArguments. */
  seed?: number;
  /**
   * Optimizer steps counted before the schedule's step 0 (default 0): an update takes the
   * learning rate schedule.lr(optimizer.step − scheduleOffset). Growth in the middle of training
   * uses it to restart the schedule while AdamW's step count (its bias correction) carries on,
   * or to continue the schedule with a fresh optimizer (a negative offset).
   */
  scheduleOffset?: number;
}

/**
 * Terms a continual-learning strategy adds to the objective of one step (src/continual/
 * strategy.ts): a logits term per micro-batch (distillation, weighted per token like the NLL)
 * and a parameter-space term (EWC) whose gradient is added once after every micro-batch's
 * backward, before clipping and the update.
 */
export interface ObjectiveTerms {
  /** The logits term of micro-batch `index` given the step's per-token weight, or null for none. */
  logitsTerm?(index: number, tokenWeight: number): LogitsTerm | null;
  /** Adds the term's gradient into model.grads. */
  addParameterTerm?(): void;
}

export interface StepResult {
  /** The optimizer step just taken (1 for the first). */
  step: number;
  /** Mean NLL over the counted tokens of all micro-batches (before the update). */
  loss: number;
  /** Tokens that counted in the loss. */
  tokens: number;
  gradNorm: number;
  lr: number;
}

/** Counts the positions t whose label labels[t + 1] is not -100 (what the loss counts). */
export function countedTokens(labels: Tensor): number {
  const [B, T] = labels.shape as [number, number];
  const data = labels.data as Int32Array;
  let n = 0;
  for (let b = 0; b < B; b++) for (let t = 1; t < T; t++) if (data[b * T + t] !== -100) n++;
  return n;
}

export class Trainer {
  readonly optimizer: AdamW;
  readonly schedule: LrSchedule;
  readonly rng: RandomStream;
  /** See TrainerOptions.scheduleOffset. */
  readonly scheduleOffset: number;
  #dataParallel: DataParallel | null = null;

  constructor(readonly model: LlamaModel, options: TrainerOptions) {
    this.schedule = new LrSchedule(options.schedule);
    this.optimizer = new AdamW(model, options.optimizer);
    const seed = options.seed ?? 42;
    if (!Number.isSafeInteger(seed) || seed < 0) throw new GrowlmError("Trainer", `seed must be an integer >= 0 but is ${seed}`);
    this.rng = new RandomStream(seed);
    this.scheduleOffset = options.scheduleOffset ?? 0;
    if (!Number.isSafeInteger(this.scheduleOffset)) {
      throw new GrowlmError("Trainer", `scheduleOffset must be an integer but is ${this.scheduleOffset}`);
    }
  }

  /** Optimizer steps taken so far (the schedule's position). */
  get step(): number {
    return this.optimizer.step;
  }

  /** The data-parallel reducer once distribute() was called, else null. */
  get dataParallel(): DataParallel | null {
    return this.#dataParallel;
  }

  /**
   * Trains data-parallel from now on (DistributedDataParallel): rank 0's parameters are copied
   * to every rank, and each step sums the ranks' gradients (src/train/data-parallel.ts), every
   * token weighted by 1 / (tokens of the global batch). Every rank calls it, and then trainStep
   * with its own shard of each global batch. Ranks other than 0 move their random stream
   * (dropout masks) 2⁴⁰ draws per rank further, so no two ranks drop the same units (PyTorch's
   * DDP with one seed everywhere does); rank 0's stream, the one checkpoints save, is untouched.
   * @param bucketCapMb MiB per gradient bucket (default 25, as DDP)
   */
  distribute(communicator: Communicator, bucketCapMb?: number): void {
    if (this.#dataParallel) throw new GrowlmError("Trainer.distribute", "the trainer is data-parallel already");
    this.#dataParallel = new DataParallel(this.model, communicator, bucketCapMb);
    this.#dataParallel.broadcastParameters();
    this.rng.offset += communicator.rank * 2 ** 40;
  }

  /**
   * One optimizer step over `microBatches` (accumulated), with a strategy's extra `terms`.
   * Data-parallel, they are this rank's shard of the global batch, and the loss and token
   * count returned are the global batch's.
   */
  trainStep(microBatches: readonly Batch[], terms: ObjectiveTerms = {}): StepResult {
    if (microBatches.length === 0) throw new GrowlmError("Trainer.trainStep", "no micro-batch given");
    const dp = this.#dataParallel;
    const localTokens = microBatches.reduce((n, b) => n + countedTokens(b.labels), 0);
    const tokens = dp ? sumAcrossRanks(dp.communicator, [localTokens])[0]! : localTokens;
    if (tokens === 0) throw new GrowlmError("Trainer.trainStep", "no label in the batch counts (all -100)");
    const model = this.model;
    model.zeroGrad();
    let lossSum = 0;
    for (const [index, batch] of microBatches.entries()) {
      const logitsTerm = terms.logitsTerm?.(index, 1 / tokens) ?? null;
      // Only the last micro-batch's gradients are final; the earlier ones accumulate locally.
      const onGradientsFinal = dp && index === microBatches.length - 1 ? dp.startBackward() : undefined;
      lossSum += model.forwardBackward(batch.ids, batch.labels, {
        lossWeight: 1 / tokens,
        ...(logitsTerm ? { logitsTerm } : {}),
        ...(onGradientsFinal ? { onGradientsFinal } : {}),
      }).lossSum;
    }
    if (dp) {
      dp.finishBackward();
      lossSum = sumAcrossRanks(dp.communicator, [lossSum])[0]!;
    }
    // A parameter-space term is the same on every rank: added once, to the summed gradient.
    terms.addParameterTerm?.();
    const position = this.optimizer.step - this.scheduleOffset;
    if (position < 0) {
      throw new GrowlmError("Trainer.trainStep", `the schedule position optimizer.step − scheduleOffset = ${this.optimizer.step} − ${this.scheduleOffset} is negative`);
    }
    const lr = this.schedule.lr(position);
    const { gradNorm } = this.optimizer.update(lr);
    return { step: this.optimizer.step, loss: lossSum / tokens, tokens, gradNorm, lr };
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
