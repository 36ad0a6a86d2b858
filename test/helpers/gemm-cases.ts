/** The GEMM cases every backend's GEMM test runs (test/kernels/gemm.test.ts, test/cuda/gemm.test.ts). */

/** [transA, transB]: every layout. */
export const GEMM_LAYOUTS = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;

/** alpha, beta and the padding added to every leading dimension. */
export const GEMM_VARIANTS = [
  { alpha: 1, beta: 0, pad: 0 },
  { alpha: -0.75, beta: 1, pad: 3 },
  { alpha: 1.5, beta: -0.5, pad: 1 },
] as const;
