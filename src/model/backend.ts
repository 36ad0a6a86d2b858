/**
 * Where LlamaModel, its workspaces, KvCache and AdamW run: the kernels they call and the
 * memory those kernels read and write, behind one interface for the CPU and for a CUDA device.
 *
 * The kernels are the binding's own functions: `binding` on the CPU (typed arrays) and
 * `binding.cuda` on a GPU (DeviceBuffers), which have the same names and argument orders (the
 * CUDA contract), so the model's code is written once against `ops`. Buffers are typed by
 * `B`: HostBuffers or DeviceBuffers (src/device.ts). Lengths and offsets count ELEMENTS.
 *
 * The CPU backend copies nothing that the model did not copy before: `input` and `output`
 * hand host arrays straight to the kernels, and `upload`/`download` between an array and
 * itself do nothing.
 */
import { type Buffers, type Device, type DeviceBuffer, type DeviceBuffers, type HostBuffers, cudaOrdinal } from "../device.js";
import { GrowlmError } from "../errors.js";
import type { AdamwBinding } from "../kernels/adamw.js";
import type { AttentionBinding } from "../kernels/attention.js";
import type { DistillBinding } from "../kernels/distill.js";
import type { ElementwiseBinding } from "../kernels/elementwise.js";
import type { EmbeddingBinding } from "../kernels/embedding.js";
import type { EwcBinding } from "../kernels/ewc.js";
import type { GemmBinding } from "../kernels/gemm.js";
import type { NormBinding } from "../kernels/norm.js";
import type { RngBinding } from "../kernels/rng.js";
import type { RopeBinding } from "../kernels/rope.js";
import type { SwigluBinding } from "../kernels/swiglu.js";
import type { XentBinding } from "../kernels/xent.js";
import { binding } from "../native.js";

/** The element types a buffer can hold (keys of HostBuffers / DeviceBuffers). */
export type BufferKind = keyof HostBuffers;

/** The kernels the model, the KV cache, the optimizer and the continual-learning terms (EWC, LwF) call, on either backend. */
export type ModelOps<B extends Buffers> =
  Pick<ElementwiseBinding<B>, "add" | "f32ToBf16"> &
  Pick<GemmBinding<B>, "sgemm" | "gemmBf16"> &
  Pick<AttentionBinding<B>, "attentionForward" | "attentionBackward" | "attentionCachedForward"> &
  Pick<NormBinding<B>, "rmsnormForward" | "rmsnormBackward" | "rmsnormFilmForward" | "rmsnormFilmBackward"> &
  RopeBinding<B> &
  SwigluBinding<B> &
  EmbeddingBinding<B> &
  XentBinding<B> &
  Pick<AdamwBinding<B>, "adamwStep" | "globalGradNorm"> &
  Pick<RngBinding<B>, "rngDropout"> &
  EwcBinding<B> &
  DistillBinding<B>;

/** The names of ModelOps, which a CUDA binding must provide before a model runs on it. */
export const MODEL_OPS = [
  "add", "f32ToBf16", "sgemm", "gemmBf16", "attentionForward", "attentionBackward", "attentionCachedForward",
  "rmsnormForward", "rmsnormBackward", "rmsnormFilmForward", "rmsnormFilmBackward", "ropeForward", "ropeBackward", "swigluForward", "swigluBackward",
  "embeddingForward", "embeddingBackward", "crossEntropyForward", "crossEntropyBackward", "adamwStep", "globalGradNorm", "rngDropout",
  "ewcPenalty", "ewcFisherAccumulate", "distillTeacher", "distillStudent",
] as const satisfies readonly (keyof ModelOps<HostBuffers>)[];

/** Kernels plus memory of one device. */
export interface ModelBackend<B extends Buffers> {
  readonly device: Device;
  readonly ops: ModelOps<B>;
  /** n uninitialised elements of `kind`, until free(). */
  alloc<K extends BufferKind>(n: number, kind: K): B[K];
  /** Returns a buffer from alloc() (not a view of one). */
  free<K extends BufferKind>(buffer: B[K]): void;
  /** Elements [offset, offset + length) of `buffer`, sharing its memory. */
  view<K extends BufferKind>(buffer: B[K], offset: number, length: number, kind: K): B[K];
  /** dst ← src (equal lengths), host to backend; nothing when they are the same memory (CPU). */
  upload<K extends BufferKind>(dst: B[K], src: HostBuffers[K]): void;
  /** dst ← src (equal lengths), backend to host, after the queued work; nothing when they are the same memory (CPU). */
  download<K extends BufferKind>(dst: HostBuffers[K], src: B[K]): void;
  /** dst ← src (equal lengths) on the backend. */
  copy<K extends BufferKind>(dst: B[K], src: B[K]): void;
  /**
   * Row r of `cols` elements from src[r·srcStride] to dst[r·dstStride], r ascending, on the
   * backend (one call where a loop of views and copies would cost one per row).
   */
  copyRows<K extends BufferKind>(dst: B[K], src: B[K], rows: number, cols: number, dstStride: number, srcStride: number, kind: K): void;
  /** Every byte of `buffer` set to 0. */
  zero<K extends BufferKind>(buffer: B[K]): void;
  /**
   * The kernels' copy of host data: `host` itself on the CPU; on a device, uploaded into the
   * first host.length elements of `scratch()` (a buffer at least as long).
   */
  input<K extends BufferKind>(host: HostBuffers[K], scratch: () => B[K], kind: K): B[K];
  /**
   * Where a kernel should write what the caller wants in `host`: `host` itself on the CPU,
   * the first host.length elements of `scratch()` on a device (then download(host, that)).
   */
  output<K extends BufferKind>(host: HostBuffers[K], scratch: () => B[K], kind: K): B[K];
}

const BYTES: Record<BufferKind, number> = { f32: 4, bf16: 2, i32: 4, u8: 1, i64: 8 };

type HostArray = HostBuffers[BufferKind];

function hostArray<K extends BufferKind>(kind: K, buffer: ArrayBuffer, offset: number, n: number): HostBuffers[K] {
  const make: { [T in BufferKind]: (b: ArrayBuffer, o: number, n: number) => HostBuffers[T] } = {
    f32: (b, o, k) => new Float32Array(b, o, k),
    bf16: (b, o, k) => new Uint16Array(b, o, k),
    i32: (b, o, k) => new Int32Array(b, o, k),
    u8: (b, o, k) => new Uint8Array(b, o, k),
    i64: (b, o, k) => new BigInt64Array(b, o, k),
  };
  return make[kind](buffer, offset, n);
}

/** The CPU: `binding` and typed arrays in native memory. */
export const cpuBackend: ModelBackend<HostBuffers> = {
  device: "cpu",
  ops: binding,
  alloc<K extends BufferKind>(n: number, kind: K): HostBuffers[K] {
    return hostArray(kind, binding.alloc(n * BYTES[kind], false), 0, n);
  },
  free(buffer: HostArray): void {
    binding.free(buffer.buffer as ArrayBuffer);
  },
  view<K extends BufferKind>(buffer: HostBuffers[K], offset: number, length: number): HostBuffers[K] {
    return buffer.subarray(offset, offset + length) as HostBuffers[K];
  },
  upload<K extends BufferKind>(dst: HostBuffers[K], src: HostBuffers[K]): void {
    if (dst !== src) copyHost(dst, src);
  },
  download<K extends BufferKind>(dst: HostBuffers[K], src: HostBuffers[K]): void {
    if (dst !== src) copyHost(dst, src);
  },
  copy<K extends BufferKind>(dst: HostBuffers[K], src: HostBuffers[K]): void {
    copyHost(dst, src);
  },
  copyRows<K extends BufferKind>(dst: HostBuffers[K], src: HostBuffers[K], rows: number, cols: number, dstStride: number, srcStride: number): void {
    binding.copyRows(dst, src, rows, cols, dstStride, srcStride);
  },
  zero(buffer: HostArray): void {
    new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength).fill(0);
  },
  input<K extends BufferKind>(host: HostBuffers[K]): HostBuffers[K] {
    return host;
  },
  output<K extends BufferKind>(host: HostBuffers[K]): HostBuffers[K] {
    return host;
  },
};

function copyHost(dst: HostArray, src: HostArray): void {
  if (dst.byteLength !== src.byteLength) throw new GrowlmError("copy", `the destination has ${dst.byteLength} bytes but the source ${src.byteLength}`);
  new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
}

/** CUDA device `ordinal`: `binding.cuda` and DeviceBuffers from the device's pool. */
function cudaBackend(ordinal: number): ModelBackend<DeviceBuffers> {
  const cuda = binding.cuda;
  const missing = MODEL_OPS.filter((name) => typeof (cuda as unknown as Partial<Record<string, unknown>>)[name] !== "function");
  if (missing.length > 0) {
    throw new GrowlmError("device", `this build's CUDA backend lacks ${missing.join(", ")}: the model cannot run on "cuda:${ordinal}"`);
  }
  const elements = (b: DeviceBuffer, kind: BufferKind): number => b.byteLength / BYTES[kind];
  return {
    device: `cuda:${ordinal}`,
    ops: cuda,
    alloc<K extends BufferKind>(n: number, kind: K): DeviceBuffer {
      // The pool refuses empty allocations; a zero-length buffer is a view of a small one.
      return n === 0 ? cuda.alloc(ordinal, BYTES[kind]).view(0, 0) : cuda.alloc(ordinal, n * BYTES[kind]);
    },
    free(buffer: DeviceBuffer): void {
      buffer.free();
    },
    view<K extends BufferKind>(buffer: DeviceBuffer, offset: number, length: number, kind: K): DeviceBuffer {
      return buffer.view(offset * BYTES[kind], length * BYTES[kind]);
    },
    upload<K extends BufferKind>(dst: DeviceBuffer, src: HostBuffers[K]): void {
      if (src.byteLength > 0 || dst.byteLength > 0) cuda.copyToDevice(dst, src);
    },
    download<K extends BufferKind>(dst: HostBuffers[K], src: DeviceBuffer): void {
      if (dst.byteLength > 0 || src.byteLength > 0) cuda.copyToHost(dst, src);
    },
    copy(dst: DeviceBuffer, src: DeviceBuffer): void {
      if (src.byteLength > 0 || dst.byteLength > 0) cuda.copyOnDevice(dst, src);
    },
    copyRows<K extends BufferKind>(dst: DeviceBuffer, src: DeviceBuffer, rows: number, cols: number, dstStride: number, srcStride: number, kind: K): void {
      const b = BYTES[kind];
      cuda.copyRowsOnDevice(dst, src, rows, cols * b, dstStride * b, srcStride * b);
    },
    zero(buffer: DeviceBuffer): void {
      if (buffer.byteLength > 0) cuda.fillBytes(buffer, 0);
    },
    input<K extends BufferKind>(host: HostBuffers[K], scratchOf: () => DeviceBuffer, kind: K): DeviceBuffer {
      const scratch = scratchOf();
      if (host.length > elements(scratch, kind)) throw new GrowlmError("upload", `${host.length} elements do not fit the ${elements(scratch, kind)} of the device buffer`);
      const dst = scratch.view(0, host.length * BYTES[kind]);
      if (host.length > 0) cuda.copyToDevice(dst, host);
      return dst;
    },
    output<K extends BufferKind>(host: HostBuffers[K], scratchOf: () => DeviceBuffer, kind: K): DeviceBuffer {
      const scratch = scratchOf();
      if (host.length > elements(scratch, kind)) throw new GrowlmError("download", `${host.length} elements do not fit the ${elements(scratch, kind)} of the device buffer`);
      return scratch.view(0, host.length * BYTES[kind]);
    },
  };
}

const cudaBackends = new Map<number, ModelBackend<DeviceBuffers>>();

/**
 * The backend of `device` (one per device, made on first use). Throws, naming the missing
 * kernels, when the addon's CUDA backend lacks any op the model needs.
 */
export function backendFor(device: Device): ModelBackend<Buffers> {
  if (device === "cpu") return cpuBackend as ModelBackend<Buffers>;
  const ordinal = cudaOrdinal(device);
  let backend = cudaBackends.get(ordinal);
  if (!backend) {
    backend = cudaBackend(ordinal);
    cudaBackends.set(ordinal, backend);
  }
  return backend as ModelBackend<Buffers>;
}

/**
 * Buffers allocated from one backend and freed together (a workspace, a cache, an
 * optimizer's state).
 */
export class BufferSet<B extends Buffers> {
  readonly #frees: (() => void)[] = [];

  constructor(readonly backend: ModelBackend<B>) {}

  /** n uninitialised elements of `kind`, freed by dispose(). */
  alloc<K extends BufferKind>(n: number, kind: K): B[K] {
    const buffer = this.backend.alloc(n, kind);
    this.#frees.push(() => this.backend.free(buffer));
    return buffer;
  }

  /** n zeros of `kind`, freed by dispose(). */
  zeros<K extends BufferKind>(n: number, kind: K): B[K] {
    const buffer = this.alloc(n, kind);
    this.backend.zero(buffer);
    return buffer;
  }

  dispose(): void {
    for (const free of this.#frees.splice(0)) free();
  }
}
