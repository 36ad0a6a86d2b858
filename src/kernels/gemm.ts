/**
 * Matrix multiply on 2-D tensors: out[M, N] = alpha * op(a) · op(b) + beta * out, with
 * op(x) = x or xᵀ. Inputs are both float32 or both bfloat16 (accumulation and output are
 * float32); all tensors are row-major and contiguous.
 *
 * The three layouts of a linear layer's training step are the fast ones:
 *   forward      y[BT, OC]  = x[BT, C] · W[OC, C]ᵀ        matmul(x, W, { transB: true })
 *   input grad   dx[BT, C]  = dy[BT, OC] · W[OC, C]       matmul(dy, W)
 *   weight grad  dW[OC, C] += dy[BT, OC]ᵀ · x[BT, C]      matmul(dy, x, { transA: true, beta: 1, out: dW })
 */
import type { Buffers, DeviceBuffer, HostBuffers } from "../device.js";
import { binding } from "../native.js";
import { Tensor } from "../tensor.js";
import { dimsOf, finite, formatShape, output } from "./check.js";

/**
 * The native GEMMs (row-major, BLAS-style leading dimensions; see growlm/gemm.h), on typed
 * arrays (CPU) or DeviceBuffers (binding.cuda, through cuBLAS: native/cuda/gemm.cu).
 */
export interface GemmBinding<B extends Buffers = HostBuffers> {
  /** C = alpha * op(A)·op(B) + beta * C in fp32; beta = 0 does not read C. */
  sgemm(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: B["f32"],
    lda: number,
    B: B["f32"],
    ldb: number,
    beta: number,
    C: B["f32"],
    ldc: number,
  ): void;
  /** The same with bf16 A and B (raw bit patterns) and fp32 C. */
  gemmBf16(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: B["bf16"],
    lda: number,
    B: B["bf16"],
    ldb: number,
    beta: number,
    C: B["f32"],
    ldc: number,
  ): void;
}

/** binding.cuda's GEMM-only functions. */
export interface GemmCudaBinding {
  /**
   * Where cuBLAS loads from (GROWLM_CUBLAS_PATH, libcublas.so.13 or libcublas.so.12), the
   * library GPU contexts use; throws naming it and every place searched when it is absent.
   */
  cublasLibrary(): string;
  /**
   * sgemm on TF32 tensor cores (PyTorch's allow_tf32): A and B rounded to TF32 (10 mantissa
   * bits, round to nearest), products summed in fp32; relative error about 2^-11 per product.
   */
  sgemmTf32(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: DeviceBuffer,
    lda: number,
    B: DeviceBuffer,
    ldb: number,
    beta: number,
    C: DeviceBuffer,
    ldc: number,
  ): void;
}

export interface MatmulOptions {
  /** Use aᵀ: `a` is then [K, M] instead of [M, K]. */
  transA?: boolean;
  /** Use bᵀ: `b` is then [N, K] instead of [K, N]. */
  transB?: boolean;
  /** Scale of the product (default 1). */
  alpha?: number;
  /** Scale of the previous `out` (default 0: `out` is overwritten, never read). */
  beta?: number;
  /** float32 [M, N] output; required when beta != 0. */
  out?: Tensor;
}

/**
 * out[M, N] = alpha * op(a) · op(b) + beta * out.
 *
 * @param a float32 or bfloat16, [M, K] (or [K, M] with transA)
 * @param b the same dtype as `a`, [K, N] (or [N, K] with transB)
 * @returns `opts.out` when given, else a new float32 [M, N] tensor
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor<"float32"> {
  const op = "matmul";
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const alpha = finite(op, "alpha", opts.alpha ?? 1);
  const beta = finite(op, "beta", opts.beta ?? 0);
  if (a.dtype !== "float32" && a.dtype !== "bfloat16") {
    throw new TypeError(`${op}: expected "a" of dtype float32 or bfloat16 but received ${a.dtype}`);
  }
  const [aRows, aCols] = dimsOf(op, "a", a, a.dtype, 2) as [number, number];
  const [bRows, bCols] = dimsOf(op, "b", b, a.dtype, 2) as [number, number];
  const [M, K] = transA ? [aCols, aRows] : [aRows, aCols];
  const [Kb, N] = transB ? [bCols, bRows] : [bRows, bCols];
  if (K !== Kb) {
    throw new RangeError(
      `${op}: inner dimensions differ: op(a) is [M, K] = ${formatShape([M, K])} (a ${formatShape(a.shape)}${transA ? ", transposed" : ""}) ` +
        `but op(b) is [K, N] = ${formatShape([Kb, N])} (b ${formatShape(b.shape)}${transB ? ", transposed" : ""})`,
    );
  }
  if (opts.out === undefined && beta !== 0) {
    throw new RangeError(`${op}: beta = ${beta} needs an "out" tensor to accumulate into`);
  }
  const out = output(op, "out", opts.out, "float32", "M, N", [M, N]);
  if (M === 0 || N === 0) return out as Tensor<"float32">;
  const C = out.data as Float32Array;
  if (a.dtype === "float32") {
    binding.sgemm(transA, transB, M, N, K, alpha, a.data as Float32Array, Math.max(1, aCols), b.data as Float32Array, Math.max(1, bCols), beta, C, N);
  } else {
    binding.gemmBf16(transA, transB, M, N, K, alpha, a.data as Uint16Array, Math.max(1, aCols), b.data as Uint16Array, Math.max(1, bCols), beta, C, N);
  }
  return out as Tensor<"float32">;
}
