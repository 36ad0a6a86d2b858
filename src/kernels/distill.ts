/**
 * Knowledge distillation against stored top-k teacher targets (LwF; native/include/growlm/
 * distill.h states the exact arithmetic): the teacher's targets of rows of logits, and the
 * student's coarsened KL at temperature T with its gradient added into a gradient buffer.
 * Row n of the logits uses target entry positions[n] (−1: the row is skipped).
 */
import type { Buffers, HostBuffers } from "../device.js";
import { binding } from "../native.js";
import type { Tensor } from "../tensor.js";
import { dimsOf, expectShape, finite } from "./check.js";

/**
 * The same ops on host arrays (B = HostBuffers) or device buffers (DeviceBuffers). On a device
 * the positions and ids are checked by the device before the op runs (same messages as the
 * CPU's), and exponentials are CUDA's expf: values agree with the CPU's within a few ulp.
 */
export interface DistillBinding<B extends Buffers = HostBuffers> {
  distillTeacher(
    ids: B["i32"], logProbs: B["f32"], logRest: B["f32"], logits: B["f32"], positions: B["i32"],
    N: number, V: number, P: number, k: number, temperature: number,
  ): void;
  distillStudent(
    grad: B["f32"], logits: B["f32"], ids: B["i32"], logProbs: B["f32"], logRest: B["f32"], positions: B["i32"],
    N: number, V: number, P: number, k: number, temperature: number, scale: number,
  ): number;
}

/** Top-k targets of P positions: ids int32 [P, k], logProbs float32 [P, k], logRest float32 [P]. */
export interface DistillTargets {
  ids: Tensor;
  logProbs: Tensor;
  logRest: Tensor;
}

function targetDims(op: string, t: DistillTargets): [number, number] {
  const [P, k] = dimsOf(op, "ids", t.ids, "int32", 2) as [number, number];
  expectShape(op, "logProbs", t.logProbs, "float32", "P, k", [P, k]);
  expectShape(op, "logRest", t.logRest, "float32", "P", [P]);
  return [P, k];
}

function rows(op: string, logits: Tensor, positions: Tensor): [number, number] {
  const [N, V] = dimsOf(op, "logits", logits, "float32", 2) as [number, number];
  expectShape(op, "positions", positions, "int32", "N", [N]);
  return [N, V];
}

/**
 * Writes the teacher's top-k targets of every row n of `logits` [N, V] with positions[n] >= 0
 * into entry positions[n] of `out` (each entry at most once).
 */
export function distillTeacher(out: DistillTargets, logits: Tensor, positions: Tensor, temperature: number): void {
  const op = "distillTeacher";
  const [N, V] = rows(op, logits, positions);
  const [P, k] = targetDims(op, out);
  binding.distillTeacher(
    out.ids.data as Int32Array, out.logProbs.data as Float32Array, out.logRest.data as Float32Array,
    logits.data as Float32Array, positions.data as Int32Array, N, V, P, k, finite(op, "temperature", temperature),
  );
}

/**
 * grad [N, V] += scale·∂(T²·KL)/∂logits for every row with positions[n] >= 0; returns Σ T²·KL
 * over those rows.
 */
export function distillStudent(grad: Tensor, logits: Tensor, targets: DistillTargets, positions: Tensor, temperature: number, scale: number): number {
  const op = "distillStudent";
  const [N, V] = rows(op, logits, positions);
  expectShape(op, "grad", grad, "float32", "N, V", [N, V]);
  const [P, k] = targetDims(op, targets);
  return binding.distillStudent(
    grad.data as Float32Array, logits.data as Float32Array, targets.ids.data as Int32Array, targets.logProbs.data as Float32Array,
    targets.logRest.data as Float32Array, positions.data as Int32Array, N, V, P, k, finite(op, "temperature", temperature), finite(op, "scale", scale),
  );
}
