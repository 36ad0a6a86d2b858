/**
 * Elementwise kernels: residual add, copy, scale, fp32 <-> bf16 conversion, and e^x, 2^x
 * with the vectorised exponentials the other kernels use (SwiGLU, cross-entropy, attention).
 * Shapes must match exactly; outputs may be passed in (`out`) or are allocated.
 */
import type { Buffers, HostBuffers } from "../device.js";
import { binding } from "../native.js";
import type { DType, DTypeArray, Tensor } from "../tensor.js";
import { dimNames, expectShape, finite, output } from "./check.js";

/**
 * The binding's elementwise ops: typed arrays on the CPU, DeviceBuffers under binding.cuda
 * (which has all but expF32 and exp2F32).
 */
export interface ElementwiseBinding<B extends Buffers = HostBuffers> {
  add(out: B["f32"], a: B["f32"], b: B["f32"], n: number): void;
  copy(dst: B["f32"], src: B["f32"], n: number): void;
  scale(x: B["f32"], s: number, n: number): void;
  f32ToBf16(dst: B["bf16"], src: B["f32"], n: number): void;
  bf16ToF32(dst: B["f32"], src: B["bf16"], n: number): void;
  expF32(dst: B["f32"], src: B["f32"], n: number): void;
  exp2F32(dst: B["f32"], src: B["f32"], n: number): void;
}

type ArrayOf<D extends DType> = DTypeArray[D];

/** out = f(src) elementwise through a (dst, src, n) binding, out allocated when not given. */
function unary<I extends DType, O extends DType>(
  op: string,
  src: Tensor,
  inDtype: I,
  outDtype: O,
  out: Tensor | undefined,
  kernel: (dst: ArrayOf<O>, src: ArrayOf<I>, n: number) => void,
): Tensor<O> {
  expectShape(op, "src", src, inDtype, dimNames(src.shape), src.shape);
  const result = output(op, "out", out, outDtype, dimNames(src.shape), src.shape);
  kernel(result.data as ArrayOf<O>, src.data as ArrayOf<I>, src.numel);
  return result;
}

/** Residual add: out = a + b (float32, same shape; out may be a or b). */
export function add(a: Tensor, b: Tensor, out?: Tensor): Tensor<"float32"> {
  const op = "add";
  expectShape(op, "a", a, "float32", dimNames(a.shape), a.shape);
  expectShape(op, "b", b, "float32", dimNames(a.shape), a.shape);
  const result = output(op, "out", out, "float32", dimNames(a.shape), a.shape);
  binding.add(result.data as Float32Array, a.data as Float32Array, b.data as Float32Array, a.numel);
  return result;
}

/** dst = src (float32, same number of elements), multithreaded. */
export function copy(src: Tensor, dst?: Tensor): Tensor<"float32"> {
  return unary("copy", src, "float32", "float32", dst, binding.copy);
}

/** x *= s in place. */
export function scaleInPlace(x: Tensor, s: number): void {
  expectShape("scale", "x", x, "float32", dimNames(x.shape), x.shape);
  binding.scale(x.data as Float32Array, finite("scale", "s", s), x.numel);
}

/** float32 -> bfloat16, round to nearest even (NaN stays NaN). */
export function toBf16(src: Tensor, out?: Tensor): Tensor<"bfloat16"> {
  return unary("toBf16", src, "float32", "bfloat16", out, binding.f32ToBf16);
}

/** bfloat16 -> float32 (exact). */
export function toFloat32(src: Tensor, out?: Tensor): Tensor<"float32"> {
  return unary("toFloat32", src, "bfloat16", "float32", out, binding.bf16ToF32);
}

/**
 * e^x elementwise (float32, any shape) within 1 ulp; results below 2^-126 within one step
 * of 2^-149. +Infinity where e^x rounds above the largest float32 (x > 88.72283), +0 where
 * it rounds to 0 (x < -103.972), NaN kept.
 * @param out optional output, the shape of x; may be x itself
 */
export function exp(x: Tensor, out?: Tensor): Tensor<"float32"> {
  return unary("exp", x, "float32", "float32", out, binding.expF32);
}

/**
 * 2^x elementwise (float32, any shape) within 1 ulp; results below 2^-126 within one step
 * of 2^-149. +Infinity from x = 128 on, +0 from x = -150 down, NaN kept.
 * @param out optional output, the shape of x; may be x itself
 */
export function exp2(x: Tensor, out?: Tensor): Tensor<"float32"> {
  return unary("exp2", x, "float32", "float32", out, binding.exp2F32);
}
