/**
 * The native runtime as users see it: version, compiled backends, CPU code path, threads.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { type CudaInfo, type LibraryStatus, cudaInfo, cudaLibraries } from "./device.js";
import { binding, type Isa } from "./native.js";
import { integer } from "./kernels/check.js";

export type { Isa };

export interface RuntimeInfo {
  /** growlm's package version. */
  version: string;
  /**
   * Backends compiled into the addon: "cpu"; "cuda" when built with nvcc; "cuda-emulated", the
   * CUDA backend's code run by the CPU emulator (always built; used with GROWLM_CUDA_EMULATE=1).
   */
  backends: string[];
  /** The CUDA devices this process can use (with the emulator: one emulated device). */
  cuda: CudaInfo & { libraries: { cublas: LibraryStatus; nccl: LibraryStatus } };
  /** CPU code path in use, the best one this CPU supports, and all it can run. */
  isa: Isa;
  bestIsa: Isa;
  availableIsas: Isa[];
  /** Whether bf16 GEMMs use AVX512_BF16 dot products (vdpbf16ps). */
  bf16Dot: boolean;
  /** Threads the CPU kernels use. */
  threads: number;
  cpuFeatures: Record<string, boolean>;
  node: string;
  platform: string;
}

function packageVersion(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const pkg = JSON.parse(readFileSync(join(here, "..", "package.json"), "utf8")) as { version: string };
  return pkg.version;
}

export function runtimeInfo(): RuntimeInfo {
  const native = binding.info();
  return {
    version: packageVersion(),
    ...native,
    cuda: { ...cudaInfo(), libraries: cudaLibraries() },
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

/** Sets the CPU kernels' thread count (default: all hardware threads). */
export function setThreads(threads: number): void {
  binding.setThreads(integer("setThreads", "threads", threads, 1, 1024));
}

/**
 * Selects the CPU code path: any of runtimeInfo().availableIsas (default: the best). Lower
 * paths exist for CPUs without AVX-512 and for testing them on CPUs with it.
 */
export function setIsa(isa: Isa): void {
  binding.setIsa(isa);
}
