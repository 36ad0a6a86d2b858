/**
 * Benchmark baselines that are not part of growlm: OpenBLAS sgemm, loaded at run time from
 * Debian's libopenblas0 when it is installed. Nothing in growlm needs it.
 */
import { existsSync } from "node:fs";

import { binding } from "../native.js";

export interface BaselineBinding {
  openblasLoad(path: string, threads: number): boolean;
  openblasSgemm(
    transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, lda: number, B: Float32Array, ldb: number, beta: number, C: Float32Array, ldc: number,
  ): void;
}

/** Row-major C = alpha·op(A)·op(B) + beta·C through cblas_sgemm. */
export interface OpenBlas {
  readonly path: string;
  sgemm: BaselineBinding["openblasSgemm"];
}

/** Where Debian puts libopenblas.so.0 (the alternatives link first, then each variant). */
export const OPENBLAS_PATHS: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
  "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
];

/**
 * Loads OpenBLAS with `threads` threads, or returns null when it is not installed.
 *
 * By default OpenBLAS's idle workers spin (sched_yield) for about 0.1 s after every call,
 * stealing the cores from whichever contender is timed next; a short timeout, read by the
 * library when it is opened, makes alternating comparisons fair.
 */
export function loadOpenBlas(threads: number, paths: readonly string[] = OPENBLAS_PATHS): OpenBlas | null {
  process.env.OPENBLAS_THREAD_TIMEOUT ??= "4";
  for (const path of paths) {
    if (existsSync(path) && binding.openblasLoad(path, threads)) {
      return { path, sgemm: binding.openblasSgemm };
    }
  }
  return null;
}
