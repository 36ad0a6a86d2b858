/**
 * Pretraining runs for the growth study: train on packed corpus blocks for a token budget,
 * optionally growing the model once at a token count d (G_stack: train small for d tokens,
 * grow, go on), recording loss against tokens and against training FLOPs (flops.ts, with the
 * model size of the moment); and the speedup as Du et al. (2024) define it: how many fewer
 * tokens (and FLOPs) the grown run needs to reach the from-scratch run's final loss.
 */
import { GrowlmError } from "../errors.js";
import type { PackedCorpus } from "../data/corpus.js";
import { trainFlopsPerToken } from "../model/flops.js";
import type { LlamaModel } from "../model/llama.js";
import { Tensor } from "../tensor.js";
import { type Communicator, sumAcrossRanks } from "./comm.js";
import type { DistributedTraining } from "./data-parallel.js";
import { RandomStream } from "./random.js";
import type { Trainer } from "./trainer.js";

/** One point of a curve. */
export interface CurvePoint {
  step: number;
  /** Training tokens so far (including those of the model before growth). */
  tokens: number;
  /** Training FLOPs so far. */
  flops: number;
  /** Mean training loss over the steps since the previous point. */
  loss: number;
  /** Validation NLL per token at this point (NaN where not evaluated). */
  evalLoss: number;
  /** Parameters of the model at this point. */
  parameters: number;
}

export interface GrowthEvent {
  /** Grow once this many training tokens have been seen. */
  atTokens: number;
  /**
   * Returns the trainer of the grown model (the old trainer and model may be disposed by it)
   * and, for MSG masks, what to call with the trainer's step before every update.
   */
  apply(trainer: Trainer): { trainer: Trainer; beforeStep?: (step: number) => void };
}

export interface PretrainRunOptions {
  corpus: PackedCorpus;
  /** Blocks per step (per rank when data-parallel: the global batch is batchSize × world size). */
  batchSize: number;
  /** Stop after this many training tokens. */
  maxTokens: number;
  /** Evaluate every this many steps (and at the end). */
  evalSteps: number;
  seed: number;
  growth?: GrowthEvent;
  /** Called with each point as it is made. */
  onPoint?: (point: CurvePoint) => void;
  /**
   * Data-parallel over these ranks: every rank runs pretrainRun with the same options; the
   * trainers (the grown one too) are distributed, each rank takes its DistributedSampler shard
   * of every global batch, and validation is sharded. Curves count the global tokens.
   */
  distributed?: DistributedTraining;
}

/**
 * Validation NLL per token of `model` on `blocks`. With a communicator, each rank evaluates
 * every worldSize-th block and the sums are added across ranks.
 */
export function validationLoss(model: LlamaModel, blocks: readonly Int32Array[], batchSize: number, communicator: Communicator | null = null): number {
  let sum = 0;
  let count = 0;
  const T = blocks[0]?.length ?? 0;
  const mine = communicator ? blocks.filter((_, i) => i % communicator.worldSize === communicator.rank) : blocks;
  for (let i = 0; i < mine.length; i += batchSize) {
    const chunk = mine.slice(i, i + batchSize);
    const ids = Tensor.empty([chunk.length, T], "int32");
    chunk.forEach((b, k) => (ids.data as Int32Array).set(b, k * T));
    const r = model.forward(ids, { labels: ids });
    sum += r.lossSum;
    count += r.count;
    ids.dispose();
  }
  if (communicator) [sum, count] = sumAcrossRanks(communicator, [sum, count]) as [number, number];
  return sum / count;
}

/**
 * Trains `trainer` on the corpus until maxTokens, growing it at growth.atTokens when given.
 * The data order of each pass over the blocks is a function of (seed, pass).
 * @returns the curve and the trainer at the end (the grown one after growth)
 */
export function pretrainRun(initial: Trainer, options: PretrainRunOptions): { curve: CurvePoint[]; trainer: Trainer } {
  const op = "pretrainRun";
  const { corpus, batchSize, maxTokens, evalSteps, seed } = options;
  const communicator = options.distributed?.communicator ?? null;
  const rank = communicator?.rank ?? 0;
  const world = communicator?.worldSize ?? 1;
  const globalBatch = batchSize * world;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new GrowlmError(op, `the batch size must be a positive integer but is ${batchSize}`);
  if (!Number.isSafeInteger(evalSteps) || evalSteps < 1) throw new GrowlmError(op, `eval_steps must be a positive integer but is ${evalSteps}`);
  if (corpus.train.length < globalBatch) throw new GrowlmError(op, `the corpus has ${corpus.train.length} training blocks, fewer than one batch of ${globalBatch}`);
  const T = corpus.blockSize;
  if (T > initial.model.config.max_position_embeddings) {
    throw new GrowlmError(op, `the block size ${T} exceeds max_position_embeddings = ${initial.model.config.max_position_embeddings}`);
  }
  const stepsPerPass = Math.floor(corpus.train.length / globalBatch);
  let trainer = initial;
  const distribute = (t: Trainer): void => {
    if (communicator && !t.dataParallel) t.distribute(communicator, options.distributed?.bucketCapMb);
  };
  distribute(trainer);
  let tokens = 0;
  let flops = 0;
  let step = 0;
  let windowLoss = 0;
  let windowSteps = 0;
  let grown = options.growth === undefined;
  let beforeStep: ((step: number) => void) | undefined;
  const curve: CurvePoint[] = [];
  const point = (evaluate: boolean): void => {
    const p: CurvePoint = {
      step,
      tokens,
      flops,
      loss: windowSteps > 0 ? windowLoss / windowSteps : Number.NaN,
      evalLoss: evaluate ? validationLoss(trainer.model, corpus.validation, batchSize, communicator) : Number.NaN,
      parameters: trainer.model.layout.parameterCount,
    };
    curve.push(p);
    options.onPoint?.(p);
    windowLoss = 0;
    windowSteps = 0;
  };
  point(true);
  let order: number[] = [];
  const ids = Tensor.empty([batchSize, T], "int32");
  try {
    while (tokens < maxTokens) {
      if (!grown && tokens >= options.growth!.atTokens) {
        if (windowSteps > 0) point(true);
        ({ trainer, beforeStep } = options.growth!.apply(trainer));
        distribute(trainer);
        grown = true;
        point(true);
      }
      const inPass = step % stepsPerPass;
      if (inPass === 0) order = new RandomStream(seed, (step / stepsPerPass) * corpus.train.length).permutation(corpus.train.length);
      // DistributedSampler's shard of the global batch: its (k · world + rank)-th block.
      for (let k = 0; k < batchSize; k++) (ids.data as Int32Array).set(corpus.train[order[inPass * globalBatch + k * world + rank]!]!, k * T);
      beforeStep?.(trainer.step);
      const r = trainer.trainStep([{ ids, labels: ids }]);
      step++;
      tokens += globalBatch * T;
      flops += globalBatch * T * trainFlopsPerToken(trainer.model.config, T);
      windowLoss += r.loss;
      windowSteps++;
      if (step % evalSteps === 0 || tokens >= maxTokens) point(true);
    }
  } finally {
    ids.dispose();
  }
  return { curve, trainer };
}

/** The first x (tokens or FLOPs) at which the curve's eval loss reaches `target` (linear between evaluations), or null. */
export function reachAt(curve: readonly CurvePoint[], target: number, x: "tokens" | "flops"): number | null {
  const evaluated = curve.filter((p) => Number.isFinite(p.evalLoss));
  for (let i = 0; i < evaluated.length; i++) {
    const p = evaluated[i]!;
    if (p.evalLoss > target) continue;
    if (i === 0) return p[x];
    const q = evaluated[i - 1]!;
    const t = (q.evalLoss - target) / (q.evalLoss - p.evalLoss);
    return q[x] + t * (p[x] - q[x]);
  }
  return null;
}

export interface Speedup {
  /** The from-scratch run's final eval loss, the target. */
  targetLoss: number;
  scratchTokens: number;
  scratchFlops: number;
  /** Where the grown run reached the target (null: it did not). */
  grownTokens: number | null;
  grownFlops: number | null;
  /** scratch / grown − 1 (0.546 is the paper's "54.6 % speedup"); null when not reached. */
  tokenSpeedup: number | null;
  flopSpeedup: number | null;
}

/** The paper's speedup of a grown run over a from-scratch run (both curves must end with an evaluation). */
export function growthSpeedup(scratch: readonly CurvePoint[], grown: readonly CurvePoint[]): Speedup {
  const last = [...scratch].reverse().find((p) => Number.isFinite(p.evalLoss));
  if (!last) throw new GrowlmError("growthSpeedup", "the from-scratch curve has no evaluation");
  const grownTokens = reachAt(grown, last.evalLoss, "tokens");
  const grownFlops = reachAt(grown, last.evalLoss, "flops");
  return {
    targetLoss: last.evalLoss,
    scratchTokens: last.tokens,
    scratchFlops: last.flops,
    grownTokens,
    grownFlops,
    tokenSpeedup: grownTokens ? last.tokens / grownTokens - 1 : null,
    flopSpeedup: grownFlops ? last.flops / grownFlops - 1 : null,
  };
}
