/**
 * Elementwise kernels: residual add, copy, scale, fp32 <-> bf16 conversion, and e^x, 2^x
 * with the vectorised exponentials the other kernels use (SwiGLU, cross-entropy, attention).
 * Shapes must match exactly; outputs may be passed in (`out`) or are allocated.
 */
import { binding } from "../native.js";
import { Tensor } from "../tensor.js";
import { expectShape, finite } from "./check.js";

export interface ElementwiseBinding {
  add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void;
  copy(dst: Float32Array, src: Float32Array, n: number): void;
  scale(x: Float32Array, s: number, n: number): void;
  f32ToBf16(dst: Uint16Array, src: Float32Array, n: number): void;
  bf16ToF32(dst: Float32Array, src: Uint16Array, n: number): void;
  expF32(out: Float32Array, inp: Float32Array, n: number): void;
  exp2F32(out: Float32Array, inp: Float32Array, n: number): void;
}

function names(shape: readonly number[]): string {
  return shape.map((_, i) => `d${i}`).join(", ");
}

/** Residual add: out = a + b (float32, same shape; out may be a or b). */
export function add(a: Tensor, b: Tensor, out?: Tensor): Tensor<"float32"> {
  const op = "add";
  expectShape(op, "a", a, "float32", names(a.shape), a.shape);
  expectShape(op, "b", b, "float32", names(a.shape), a.shape);
  const result = out ?? Tensor.empty(a.shape);
  expectShape(op, "out", result, "float32", names(a.shape), a.shape);
  binding.add(result.data as Float32Array, a.data as Float32Array, b.data as Float32Array, a.numel);
  return result as Tensor<"float32">;
}

/** dst = src (float32, same number of elements), multithreaded. */
export function copy(src: Tensor, dst?: Tensor): Tensor<"float32"> {
  const op = "copy";
  expectShape(op, "src", src, "float32", names(src.shape), src.shape);
  const result = dst ?? Tensor.empty(src.shape);
  expectShape(op, "dst", result, "float32", names(src.shape), src.shape);
  binding.copy(result.data as Float32Array, src.data as Float32Array, src.numel);
  return result as Tensor<"float32">;
}

/** x *= s in place. */
export function scaleInPlace(x: Tensor, s: number): void {
  expectShape("scale", "x", x, "float32", names(x.shape), x.shape);
  binding.scale(x.data as Float32Array, finite("scale", "s", s), x.numel);
}

/** float32 -> bfloat16, round to nearest even (NaN stays NaN). */
export function toBf16(src: Tensor, out?: Tensor): Tensor<"bfloat16"> {
  const op = "toBf16";
  expectShape(op, "src", src, "float32", names(src.shape), src.shape);
  const result = out ?? Tensor.empty(src.shape, "bfloat16");
  expectShape(op, "out", result, "bfloat16", names(src.shape), src.shape);
  binding.f32ToBf16(result.data as Uint16Array, src.data as Float32Array, src.numel);
  return result as Tensor<"bfloat16">;
}

/** bfloat16 -> float32 (exact). */
export function toFloat32(src: Tensor, out?: Tensor): Tensor<"float32"> {
  const op = "toFloat32";
  expectShape(op, "src", src, "bfloat16", names(src.shape), src.shape);
  const result = out ?? Tensor.empty(src.shape);
  expectShape(op, "out", result, "float32", names(src.shape), src.shape);
  binding.bf16ToF32(result.data as Float32Array, src.data as Uint16Array, src.numel);
  return result as Tensor<"float32">;
}

/**
 * e^x elementwise (float32, any shape) within 1 ulp; results below 2^-126 within one step
 * of 2^-149. +Infinity where e^x rounds above the largest float32 (x > 88.72283), +0 where
 * it rounds to 0 (x < -103.972), NaN kept.
 * @param out optional output, the shape of x; may be x itself
 */
export function exp(x: Tensor, out?: Tensor): Tensor<"float32"> {
  const op = "exp";
  expectShape(op, "x", x, "float32", names(x.shape), x.shape);
  const result = out ?? Tensor.empty(x.shape);
  expectShape(op, "out", result, "float32", names(x.shape), x.shape);
  binding.expF32(result.data as Float32Array, x.data as Float32Array, x.numel);
  return result as Tensor<"float32">;
}

/**
 * 2^x elementwise (float32, any shape) within 1 ulp; results below 2^-126 within one step
 * of 2^-149. +Infinity from x = 128 on, +0 from x = -150 down, NaN kept.
 * @param out optional output, the shape of x; may be x itself
 */
export function exp2(x: Tensor, out?: Tensor): Tensor<"float32"> {
  const op = "exp2";
  expectShape(op, "x", x, "float32", names(x.shape), x.shape);
  const result = out ?? Tensor.empty(x.shape);
  expectShape(op, "out", result, "float32", names(x.shape), x.shape);
  binding.exp2F32(result.data as Float32Array, x.data as Float32Array, x.numel);
  return result as Tensor<"float32">;
}
