/**
 * The binding.cuda ops the GPU benchmarks time, looked up at run time: each family adds its ops
 * to binding.cuda (same names and argument orders as the CPU twins, plus CUDA-only variants),
 * and a build without one must fail the case that needs it with the op's name, not the whole
 * check. Signatures as the families declare them (src/kernels/<family>.ts); all buffers are
 * DeviceBuffers, bf16 ones hold raw bit patterns.
 */
import type { DeviceBuffer } from "../../src/device.js";
import { binding } from "../../src/native.js";

export interface GpuOps {
  /** C[M, N] = alpha·op(A)·op(B) + beta·C, fp32 (cuBLAS, no TF32). */
  sgemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, A: DeviceBuffer, lda: number, B: DeviceBuffer, ldb: number, beta: number, C: DeviceBuffer, ldc: number): void;
  /** The same on TF32 tensor cores. */
  sgemmTf32(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, A: DeviceBuffer, lda: number, B: DeviceBuffer, ldb: number, beta: number, C: DeviceBuffer, ldc: number): void;
  /** bf16 A and B, fp32 accumulation and C. */
  gemmBf16(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, A: DeviceBuffer, lda: number, B: DeviceBuffer, ldb: number, beta: number, C: DeviceBuffer, ldc: number): void;
  /** bf16 flash attention, causal: q, out [B, T, H, D], k, v [B, T, Hkv, D] bf16; lse [B, H, T] fp32. */
  attentionForwardBf16(out: DeviceBuffer, lse: DeviceBuffer, q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, B: number, T: number, H: number, Hkv: number, D: number, scale: number): void;
  attentionBackwardBf16(dq: DeviceBuffer, dk: DeviceBuffer, dv: DeviceBuffer, dout: DeviceBuffer, q: DeviceBuffer, k: DeviceBuffer, v: DeviceBuffer, out: DeviceBuffer, lse: DeviceBuffer, B: number, T: number, H: number, Hkv: number, D: number, scale: number): void;
  /** Fused AdamW over n fp32 params; segBegin int64 [S + 1], segDecay uint8 [S]; paramsBf16 optional working copy. */
  adamwStep(params: DeviceBuffer, m: DeviceBuffer, v: DeviceBuffer, paramsBf16: DeviceBuffer | null, grads: DeviceBuffer, n: number, segBegin: DeviceBuffer, segDecay: DeviceBuffer, lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number, gradScale: number): void;
  rmsnormForward(out: DeviceBuffer, rstd: DeviceBuffer, inp: DeviceBuffer, weight: DeviceBuffer, N: number, C: number, eps: number): void;
  rmsnormBackward(dinp: DeviceBuffer, dweight: DeviceBuffer, dout: DeviceBuffer, inp: DeviceBuffer, weight: DeviceBuffer, rstd: DeviceBuffer, N: number, C: number): void;
  /** Returns the loss sum and counted rows (so it waits for the device). */
  crossEntropyForward(losses: DeviceBuffer | null, lse: DeviceBuffer, logits: DeviceBuffer, targets: DeviceBuffer, N: number, V: number, ignoreIndex: number): { lossSum: number; count: number };
  crossEntropyBackward(dlogits: DeviceBuffer, logits: DeviceBuffer, lse: DeviceBuffer, targets: DeviceBuffer, N: number, V: number, ignoreIndex: number, dloss: number): void;
}

/** binding.cuda's `names`, typed; throws naming every one this build lacks. */
export function gpuOps<K extends keyof GpuOps>(...names: K[]): Pick<GpuOps, K> {
  const cuda = binding.cuda as unknown as Record<string, unknown>;
  const missing = names.filter((name) => typeof cuda[name] !== "function");
  if (missing.length > 0) throw new Error(`this build's binding.cuda has no ${missing.join(", ")} (the family's CUDA ops are not merged in)`);
  return cuda as unknown as Pick<GpuOps, K>;
}
