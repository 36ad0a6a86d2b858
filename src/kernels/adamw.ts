/**
 * Fused AdamW over flat buffers (torch.optim.AdamW semantics, torch's float32 operation
 * order), the global gradient norm and torch.nn.utils.clip_grad_norm_. Functional: the
 * caller owns the state (params, grads, first and second moments) and the step counter.
 */
import type { Buffers, HostBuffers } from "../device.js";
import { binding } from "../native.js";
import type { Tensor } from "../tensor.js";
import { dimNames, expectShape, finite, integer } from "./check.js";

/**
 * On a device (B = DeviceBuffers) segBegin and segDecay are device buffers too, which the
 * binding cannot read: callers pass segment starts that begin at 0, never decrease and end at n.
 */
export interface AdamwBinding<B extends Buffers = HostBuffers> {
  adamwStep(
    params: B["f32"],
    m: B["f32"],
    v: B["f32"],
    paramsBf16: B["bf16"] | null,
    grads: B["f32"],
    n: number,
    segBegin: B["i64"],
    segDecay: B["u8"],
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
    gradScale: number,
  ): void;
  globalGradNorm(grads: B["f32"], n: number): number;
  clipGradNorm(grads: B["f32"], n: number, maxNorm: number): number;
}

/** The buffers of one AdamW update, all with the shape of `params` (flat: [n]). */
export interface AdamwState {
  /** float32 master weights, updated in place. */
  params: Tensor;
  /** float32 gradients (read only). */
  grads: Tensor;
  /** float32 first moment (exp_avg), updated in place; zeros before step 1. */
  m: Tensor;
  /** float32 second moment (exp_avg_sq), updated in place; zeros before step 1. */
  v: Tensor;
  /** bfloat16 working copy, overwritten with the updated params rounded to nearest even. */
  paramsBf16?: Tensor;
}

/** A range [begin, end) of the flat buffer and whether weight decay applies to it. */
export interface AdamwSegment {
  begin: number;
  end: number;
  decay: boolean;
}

export interface AdamwHyper {
  /** Learning rate, >= 0. */
  lr: number;
  /** First-moment decay, in [0, 1) (torch default 0.9). */
  beta1: number;
  /** Second-moment decay, in [0, 1) (torch default 0.999). */
  beta2: number;
  /** > 0, added to sqrt(v_hat) (torch default 1e-8). */
  eps: number;
  /** Decoupled weight decay, >= 0 (torch.optim.AdamW default 0.01), in decaying segments. */
  weightDecay: number;
  /** The step being taken, an integer >= 1 (bias correction uses beta^step). */
  step: number;
  /** Multiplies every gradient first (e.g. a clipping coefficient); default 1. */
  gradScale?: number;
}

/**
 * One AdamW step over the whole flat buffer, exactly torch.optim.AdamW's update per
 * element (p ← p·(1 − lr·wd) in decaying segments; m ← lerp(m, g, 1 − β1);
 * v ← v·β2 + (1 − β2)·g²; p ← p − lr/(1 − β1^t) · m / (sqrt(v)/sqrt(1 − β2^t) + eps)).
 * @param segments contiguous ranges covering [0, n) in order, each with its decay flag
 */
export function adamwStep(state: AdamwState, segments: readonly AdamwSegment[], hyper: AdamwHyper): void {
  const op = "adamwStep";
  const { params, grads, m, v, paramsBf16 } = state;
  const shape = params.shape;
  const dims = dimNames(shape);
  expectShape(op, "params", params, "float32", dims, shape);
  expectShape(op, "grads", grads, "float32", dims, shape);
  expectShape(op, "m", m, "float32", dims, shape);
  expectShape(op, "v", v, "float32", dims, shape);
  if (paramsBf16) expectShape(op, "paramsBf16", paramsBf16, "bfloat16", dims, shape);
  const n = params.numel;

  const segBegin = new BigInt64Array(segments.length + 1);
  const segDecay = new Uint8Array(segments.length);
  let expected = 0;
  segments.forEach((s, i) => {
    if (!Number.isSafeInteger(s.begin) || !Number.isSafeInteger(s.end) || s.begin !== expected || s.end < s.begin) {
      throw new RangeError(
        `${op}: segments must be contiguous ranges covering [0, ${n}) in order, but segment ${i} is [${s.begin}, ${s.end}) after ${expected}`,
      );
    }
    segBegin[i] = BigInt(s.begin);
    segDecay[i] = s.decay ? 1 : 0;
    expected = s.end;
  });
  if (expected !== n) {
    throw new RangeError(`${op}: segments must cover [0, ${n}) but end at ${expected}`);
  }
  segBegin[segments.length] = BigInt(n);

  const lr = finite(op, "lr", hyper.lr, 0);
  const beta1 = finite(op, "beta1", hyper.beta1, 0);
  const beta2 = finite(op, "beta2", hyper.beta2, 0);
  if (beta1 >= 1) throw new RangeError(`${op}: expected "beta1" in [0, 1) but received ${beta1}`);
  if (beta2 >= 1) throw new RangeError(`${op}: expected "beta2" in [0, 1) but received ${beta2}`);
  const eps = finite(op, "eps", hyper.eps, 0);
  if (eps <= 0) throw new RangeError(`${op}: expected "eps" > 0 but received ${eps}`);
  const weightDecay = finite(op, "weightDecay", hyper.weightDecay, 0);
  const step = integer(op, "step", hyper.step, 1);
  const gradScale = finite(op, "gradScale", hyper.gradScale ?? 1);

  binding.adamwStep(
    params.data as Float32Array,
    m.data as Float32Array,
    v.data as Float32Array,
    paramsBf16 ? (paramsBf16.data as Uint16Array) : null,
    grads.data as Float32Array,
    n,
    segBegin,
    segDecay,
    lr,
    beta1,
    beta2,
    eps,
    weightDecay,
    step,
    gradScale,
  );
}

/**
 * L2 norm of all gradients (float32 buffer of any shape), summed in float64 over fixed
 * blocks: the same bits for every thread count and code path.
 */
export function globalGradNorm(grads: Tensor): number {
  expectShape("globalGradNorm", "grads", grads, "float32", dimNames(grads.shape), grads.shape);
  return binding.globalGradNorm(grads.data as Float32Array, grads.numel);
}

/**
 * torch.nn.utils.clip_grad_norm_: when maxNorm / (norm + 1e-6) < 1, scales the gradients in
 * place by that coefficient (a NaN norm makes them all NaN, as in torch). Returns the norm
 * before clipping.
 */
export function clipGradNorm(grads: Tensor, maxNorm: number): number {
  expectShape("clipGradNorm", "grads", grads, "float32", dimNames(grads.shape), grads.shape);
  return binding.clipGradNorm(grads.data as Float32Array, grads.numel, finite("clipGradNorm", "maxNorm", maxNorm, 0));
}
