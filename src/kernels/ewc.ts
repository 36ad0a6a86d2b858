/**
 * Elastic weight consolidation over flat float32 buffers (Kirkpatrick et al. 2017): the
 * quadratic penalty (λ/2)·Σ F·(θ − θ*)² with its gradient added into the gradients in one
 * fused native pass, and the accumulation of squared gradients into a diagonal Fisher. Both
 * work on whole flat buffers in a model's layout (the padding between tensors is zero in
 * params, anchor and Fisher alike, so it adds nothing). Functional: the caller owns the
 * buffers.
 */
import type { Buffers, HostBuffers } from "../device.js";
import { binding } from "../native.js";
import type { Tensor } from "../tensor.js";
import { dimNames, expectShape, finite } from "./check.js";

/** The same ops on host arrays (B = HostBuffers) or device buffers (DeviceBuffers; bitwise the CPU's results). */
export interface EwcBinding<B extends Buffers = HostBuffers> {
  ewcPenalty(grads: B["f32"] | null, params: B["f32"], anchor: B["f32"], fisher: B["f32"], n: number, lambda: number): number;
  ewcFisherAccumulate(fisher: B["f32"], grads: B["f32"], n: number, scale: number): void;
}

/** The buffers of the EWC penalty, all float32 of one shape (flat: [n]). */
export interface EwcState {
  /** θ, the current parameters. */
  params: Tensor;
  /** θ*, the parameters the penalty pulls towards (the end of the previous stage). */
  anchor: Tensor;
  /** F, the diagonal Fisher information (>= 0). */
  fisher: Tensor;
  /** When given, grads += λ·F·(θ − θ*) (float32, rounded per op: fl(fl(λ·F)·fl(θ − θ*))). */
  grads?: Tensor;
}

/**
 * (λ/2)·Σ_i F_i·(θ_i − θ*_i)², summed in float64 in a fixed order (the same bits for every
 * thread count and code path); adds its gradient λ·F·(θ − θ*) into `state.grads` when given.
 * @param lambda λ >= 0, rounded to float32 (the gradient's factor)
 */
export function ewcPenalty(state: EwcState, lambda: number): number {
  const op = "ewcPenalty";
  const { params, anchor, fisher, grads } = state;
  const shape = params.shape;
  const dims = dimNames(shape);
  expectShape(op, "params", params, "float32", dims, shape);
  expectShape(op, "anchor", anchor, "float32", dims, shape);
  expectShape(op, "fisher", fisher, "float32", dims, shape);
  if (grads) expectShape(op, "grads", grads, "float32", dims, shape);
  const l = finite(op, "lambda", lambda, 0, 3.4028234663852886e38);
  return binding.ewcPenalty(
    grads ? (grads.data as Float32Array) : null,
    params.data as Float32Array,
    anchor.data as Float32Array,
    fisher.data as Float32Array,
    params.numel,
    l,
  );
}

/**
 * fisher += scale·grads² elementwise (float32, rounded per op: fl(F + fl(scale·fl(g·g)))):
 * one example's squared gradient into the running diagonal Fisher estimate.
 * @param scale >= 0, typically 1 / (number of examples)
 */
export function ewcFisherAccumulate(fisher: Tensor, grads: Tensor, scale: number): void {
  const op = "ewcFisherAccumulate";
  const dims = dimNames(fisher.shape);
  expectShape(op, "fisher", fisher, "float32", dims, fisher.shape);
  expectShape(op, "grads", grads, "float32", dims, fisher.shape);
  binding.ewcFisherAccumulate(fisher.data as Float32Array, grads.data as Float32Array, fisher.numel, finite(op, "scale", scale, 0, 3.4028234663852886e38));
}
