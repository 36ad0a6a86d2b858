/**
 * Fused softmax cross-entropy over the vocabulary (the LM head's loss), as
 * torch.nn.functional.cross_entropy with `ignore_index`: logits [N, V] float32, targets
 * int32 [N]; rows whose target is `ignoreIndex` (Hugging Face: -100) do not count.
 */
import type { Buffers, HostBuffers } from "../device.js";
import { binding } from "../native.js";
import { Tensor } from "../tensor.js";
import { dimsOf, expectShape, finite, integer, output } from "./check.js";

/**
 * On a device (B = DeviceBuffers) the forward range-checks the targets in its kernel and
 * throws after the pass; the backward does not check them (an out-of-range target loses only
 * its one-hot).
 */
export interface XentBinding<B extends Buffers = HostBuffers> {
  crossEntropyForward(
    losses: B["f32"] | null,
    lse: B["f32"],
    logits: B["f32"],
    targets: B["i32"],
    N: number,
    V: number,
    ignoreIndex: number,
  ): { lossSum: number; count: number };
  crossEntropyBackward(
    dlogits: B["f32"],
    logits: B["f32"],
    lse: B["f32"],
    targets: B["i32"],
    N: number,
    V: number,
    ignoreIndex: number,
    dloss: number,
  ): void;
}

/** Hugging Face's (and torch's) default ignore_index. */
export const IGNORE_INDEX = -100;

export interface CrossEntropyOptions {
  /** Targets equal to this are ignored (default -100). */
  ignoreIndex?: number;
  /**
   * "mean" (default): `loss` is the mean over counted rows (NaN when none counts, as torch);
   * "sum": `loss` is their sum; "none": `loss` is the mean and `losses` [N] is returned.
   */
  reduction?: "mean" | "sum" | "none";
  /** Output for the per-row losses [N] (implies they are computed). */
  losses?: Tensor;
  /** Output for the per-row logsumexp [N]. */
  lse?: Tensor;
}

export interface CrossEntropyResult {
  /** The reduced loss, in nats (see `reduction`). */
  loss: number;
  /** Sum of the counted rows' losses (accumulated in float64, in row order). */
  lossSum: number;
  /** Number of counted rows (targets != ignoreIndex). */
  count: number;
  /** Per-row losses [N] (0 for ignored rows), when asked for. */
  losses?: Tensor<"float32">;
  /** Per-row logsumexp [N] (0 for ignored rows): what crossEntropyBackward needs. */
  lse: Tensor<"float32">;
}

function checkInputs(op: string, logits: Tensor, targets: Tensor): [number, number] {
  const [N, V] = dimsOf(op, "logits", logits, "float32", 2) as [number, number];
  if (V < 1) throw new RangeError(`${op}: expected "logits" with V >= 1 but received shape [${N}, ${V}]`);
  expectShape(op, "targets", targets, "int32", "N", [N]);
  return [N, V];
}

/**
 * Forward: lse[n] = logsumexp(logits[n, :]), loss[n] = lse[n] - logits[n, targets[n]].
 * One pass over each row; rows with target `ignoreIndex` are skipped.
 * @param logits [N, V] float32
 * @param targets [N] int32, each in [0, V) or equal to ignoreIndex
 */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): CrossEntropyResult {
  const op = "crossEntropy";
  const [N, V] = checkInputs(op, logits, targets);
  const ignoreIndex = integer(op, "ignoreIndex", opts.ignoreIndex ?? IGNORE_INDEX, -(2 ** 31), 2 ** 31 - 1);
  const reduction = opts.reduction ?? "mean";
  if (reduction !== "mean" && reduction !== "sum" && reduction !== "none") {
    throw new RangeError(`${op}: expected reduction "mean", "sum" or "none" but received ${String(reduction)}`);
  }
  const lse = output(op, "lse", opts.lse, "float32", "N", [N]);
  const losses = opts.losses ?? (reduction === "none" ? Tensor.empty([N]) : undefined);
  if (losses) expectShape(op, "losses", losses, "float32", "N", [N]);
  const { lossSum, count } = binding.crossEntropyForward(
    losses ? (losses.data as Float32Array) : null,
    lse.data as Float32Array,
    logits.data as Float32Array,
    targets.data as Int32Array,
    N,
    V,
    ignoreIndex,
  );
  const result: CrossEntropyResult = {
    loss: reduction === "sum" ? lossSum : lossSum / count,
    lossSum,
    count,
    lse: lse as Tensor<"float32">,
  };
  if (losses) result.losses = losses as Tensor<"float32">;
  return result;
}

export interface CrossEntropyBackwardOptions {
  /**
   * Gradient of the reduced loss: 1 / count for "mean", 1 for "sum" (the scale applied to
   * every counted row).
   */
  dloss: number;
  /** Write the gradient over the logits (no allocation). */
  inPlace?: boolean;
  /** Output for dlogits [N, V] (ignored with inPlace). */
  out?: Tensor;
  /** Must match the forward's (default -100). */
  ignoreIndex?: number;
}

/**
 * Backward: dlogits[n, :] = dloss · (softmax(logits[n, :]) - onehot(targets[n])) for counted
 * rows, 0 for ignored ones, using the forward's lse.
 * @param logits [N, V] float32 (overwritten when inPlace)
 * @param targets [N] int32
 * @param lse [N] float32 from crossEntropy
 * @returns dlogits [N, V] (the logits tensor itself when inPlace)
 */
export function crossEntropyBackward(
  logits: Tensor,
  targets: Tensor,
  lse: Tensor,
  opts: CrossEntropyBackwardOptions,
): Tensor<"float32"> {
  const op = "crossEntropyBackward";
  const [N, V] = checkInputs(op, logits, targets);
  expectShape(op, "lse", lse, "float32", "N", [N]);
  const dloss = finite(op, "dloss", opts.dloss);
  const ignoreIndex = integer(op, "ignoreIndex", opts.ignoreIndex ?? IGNORE_INDEX, -(2 ** 31), 2 ** 31 - 1);
  const out = output(op, "out", opts.inPlace ? logits : opts.out, "float32", "N, V", [N, V]);
  binding.crossEntropyBackward(
    out.data as Float32Array,
    logits.data as Float32Array,
    lse.data as Float32Array,
    targets.data as Int32Array,
    N,
    V,
    ignoreIndex,
    dloss,
  );
  return out as Tensor<"float32">;
}
