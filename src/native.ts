/**
 * Loads the native addon and types the whole binding in one interface (each kernel family
 * declares its slice next to its TypeScript wrapper in src/kernels/).
 *
 * The binding functions are positional and unforgiving by design: they re-check every
 * buffer length against the sizes they are given, but shape logic, defaults and friendly
 * names live in the wrappers. Call the wrappers, not the binding.
 */
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

import type { CudaCoreBinding, DeviceBuffers } from "./device.js";
import type { AdamwBinding } from "./kernels/adamw.js";
import type { AttentionBf16Binding, AttentionBinding } from "./kernels/attention.js";
import type { BaselineBinding } from "./kernels/baseline.js";
import type { DistillBinding } from "./kernels/distill.js";
import type { ElementwiseBinding } from "./kernels/elementwise.js";
import type { EmbeddingBinding } from "./kernels/embedding.js";
import type { EwcBinding } from "./kernels/ewc.js";
import type { GemmBinding, GemmCudaBinding } from "./kernels/gemm.js";
import type { NormBinding } from "./kernels/norm.js";
import type { RngBinding } from "./kernels/rng.js";
import type { RopeBinding } from "./kernels/rope.js";
import type { SwigluBinding } from "./kernels/swiglu.js";
import type { XentBinding } from "./kernels/xent.js";
import type { NcclBinding } from "./train/comm-nccl.js";

/** Code paths the CPU kernels are compiled for, slowest to fastest. */
export type Isa = "portable" | "avx2" | "avx512";

export interface NativeInfo {
  backends: string[];
  isa: Isa;
  bestIsa: Isa;
  bf16Dot: boolean;
  threads: number;
  cpuFeatures: Record<string, boolean>;
  availableIsas: Isa[];
}

export interface CoreBinding {
  info(): NativeInfo;
  setThreads(threads: number): void;
  setIsa(isa: Isa): void;
  setBf16Dot(enabled: boolean): void;
  measurePeakGflops(seconds: number): number;
  alloc(bytes: number, zero: boolean): ArrayBuffer;
  free(buffer: ArrayBuffer): void;
  address(array: ArrayBufferView): bigint;
  /** Row r of `cols` elements from src[r·srcStride] to dst[r·dstStride], r ascending; one element type, counts in elements. */
  copyRows<A extends Float32Array | Uint16Array | Int32Array | Uint8Array | BigInt64Array>(dst: A, src: A, rows: number, cols: number, dstStride: number, srcStride: number): void;
}

/**
 * binding.cuda: the CUDA backend's functions, each op under its CPU twin's name and argument
 * order with DeviceBuffers for typed arrays (each family declares which of its ops exist).
 */
export type CudaBinding = CudaCoreBinding &
  Pick<NormBinding<DeviceBuffers>, "rmsnormForward" | "rmsnormBackward" | "rmsnormFilmForward" | "rmsnormFilmBackward"> &
  Pick<ElementwiseBinding<DeviceBuffers>, "add" | "copy" | "scale" | "f32ToBf16" | "bf16ToF32"> &
  RopeBinding<DeviceBuffers> &
  SwigluBinding<DeviceBuffers> &
  EmbeddingBinding<DeviceBuffers> &
  GemmBinding<DeviceBuffers> &
  GemmCudaBinding &
  NcclBinding &
  XentBinding<DeviceBuffers> &
  AdamwBinding<DeviceBuffers> &
  Omit<RngBinding<DeviceBuffers>, "philox4x32"> &
  AttentionBinding<DeviceBuffers> &
  AttentionBf16Binding &
  EwcBinding<DeviceBuffers> &
  DistillBinding<DeviceBuffers>;

export type Binding = CoreBinding & { cuda: CudaBinding } &
  ElementwiseBinding &
  GemmBinding &
  AttentionBinding &
  NormBinding &
  RopeBinding &
  SwigluBinding &
  EmbeddingBinding &
  XentBinding &
  AdamwBinding &
  EwcBinding &
  DistillBinding &
  RngBinding &
  BaselineBinding;

const here = dirname(fileURLToPath(import.meta.url));
// src/ and dist/ both sit one level below the package root, next to build/.
const addonPath = join(here, "..", "build", "Release", "growlm.node");

function load(): Binding {
  const require = createRequire(import.meta.url);
  try {
    return require(addonPath) as Binding;
  } catch (cause) {
    throw new Error(
      `growlm: cannot load the native addon at ${addonPath}; run "npm install" (or "npm run build:native") to build it`,
      { cause },
    );
  }
}

/**
 * Applies GROWLM_NUM_THREADS and GROWLM_ISA (portable | avx2 | avx512) from the
 * environment, the way OMP_NUM_THREADS works for OpenMP programs.
 */
function configure(b: Binding): Binding {
  const threads = process.env.GROWLM_NUM_THREADS;
  if (threads !== undefined && threads !== "") {
    const n = Number(threads);
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`growlm: GROWLM_NUM_THREADS must be a positive integer, not "${threads}"`);
    }
    b.setThreads(n);
  }
  const isa = process.env.GROWLM_ISA;
  if (isa !== undefined && isa !== "") b.setIsa(isa as Isa);
  return b;
}

/** The loaded addon (one per process; each worker thread gets its own instance). */
export const binding: Binding = configure(load());
