/**
 * Devices: "cpu", and "cuda" / "cuda:N" for NVIDIA GPUs through the CUDA backend.
 *
 * The CUDA backend is compiled into the addon when nvcc was found at build time; it reaches
 * the GPU through the driver and loads cuBLAS and NCCL at run time. Its code also runs on the
 * CPU under the emulator (native/cuda/emu/) when GROWLM_CUDA_EMULATE=1 is set before growlm
 * loads: "cuda:0" is then the emulator, slow but exact about what the kernels compute, which
 * is how CPU-only machines (CI) test the CUDA code paths.
 *
 * Device memory is held by DeviceBuffer objects (a byte range of one device allocation from
 * the device's caching pool); `view()` makes sub-ranges, `free()` returns the allocation at
 * once, and the garbage collector returns it otherwise.
 */
import { GrowlmError } from "./errors.js";
import { binding } from "./native.js";

export type Device = "cpu" | `cuda:${number}`;

/** A byte range of device memory (bindings/cuda.cc). */
export interface DeviceBuffer {
  readonly byteLength: number;
  readonly byteOffset: number;
  /** The CUDA device ordinal. */
  readonly device: number;
  /** True once free() returned the allocation (every view of it is then unusable). */
  readonly freed: boolean;
  /** The bytes [byteOffset, byteOffset + byteLength) of this buffer, sharing its allocation. */
  view(byteOffset: number, byteLength: number): DeviceBuffer;
  /** Returns the whole allocation (every view of it) to the device pool now. */
  free(): void;
}

/** The buffer types a binding slice takes: typed arrays on the CPU, DeviceBuffers on a GPU. */
export interface HostBuffers {
  f32: Float32Array;
  bf16: Uint16Array;
  i32: Int32Array;
  u8: Uint8Array;
  i64: BigInt64Array;
}
export interface DeviceBuffers {
  f32: DeviceBuffer;
  bf16: DeviceBuffer;
  i32: DeviceBuffer;
  u8: DeviceBuffer;
  i64: DeviceBuffer;
}
export type Buffers = HostBuffers | DeviceBuffers;

export interface CudaDeviceInfo {
  index: number;
  name: string;
  totalBytes: number;
  /** "9.0" for an H100. */
  computeCapability: string;
  multiprocessors: number;
}

export interface CudaInfo {
  /** Whether the addon was built with nvcc (the emulated backend is always built). */
  compiled: boolean;
  /** Whether "cuda" is the CPU emulator (GROWLM_CUDA_EMULATE=1). */
  emulated: boolean;
  devices: CudaDeviceInfo[];
  /** Why no device is usable ("" when one is). */
  unavailableReason: string;
}

export interface CudaPoolStats {
  inUse: number;
  reserved: number;
  peakInUse: number;
}

/** binding.cuda's own functions (the ops are declared by each family in src/kernels/). */
export interface CudaCoreBinding {
  info(): CudaInfo;
  alloc(device: number, bytes: number): DeviceBuffer;
  copyToDevice(dst: DeviceBuffer, src: ArrayBufferView): void;
  copyToHost(dst: ArrayBufferView, src: DeviceBuffer): void;
  copyOnDevice(dst: DeviceBuffer, src: DeviceBuffer): void;
  /** Row r of rowBytes bytes from src + r·srcPitch to dst + r·dstPitch, queued. */
  copyRowsOnDevice(dst: DeviceBuffer, src: DeviceBuffer, rows: number, rowBytes: number, dstPitch: number, srcPitch: number): void;
  fillBytes(dst: DeviceBuffer, value: number): void;
  synchronize(device: number): void;
  poolStats(device: number): CudaPoolStats;
  releaseCached(device: number): void;
}

/** What the CUDA backend offers on this machine. */
export function cudaInfo(): CudaInfo {
  return binding.cuda.info();
}

/** Where a library loaded at run time comes from, or why it cannot be loaded. */
export interface LibraryStatus {
  /** The file the dynamic loader opened. */
  path?: string;
  /** Why it cannot be loaded (what was tried and how to fix it). */
  error?: string;
}

function libraryStatus(load: () => string): LibraryStatus {
  try {
    return { path: load() };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/**
 * cuBLAS and NCCL as the CUDA backend finds them (they are loaded at run time, so a build
 * without them works until an op needs one).
 */
export function cudaLibraries(): { cublas: LibraryStatus; nccl: LibraryStatus } {
  return { cublas: libraryStatus(() => binding.cuda.cublasLibrary()), nccl: libraryStatus(() => binding.cuda.ncclLibrary()) };
}

/** Whether a CUDA device (or the emulator) is usable: GPU tests run only then. */
export function cudaAvailable(): boolean {
  return cudaInfo().devices.length > 0;
}

/**
 * "cpu", "cuda" (= "cuda:0") or "cuda:N" as a Device; throws for anything else and for a
 * CUDA device this machine does not have, saying why.
 */
export function parseDevice(spec: string): Device {
  if (spec === "cpu") return "cpu";
  const m = /^cuda(?::(\d+))?$/.exec(spec);
  if (!m) throw new GrowlmError("device", `expected "cpu", "cuda" or "cuda:N" but received ${JSON.stringify(spec)}`);
  const index = m[1] === undefined ? 0 : Number(m[1]);
  const info = cudaInfo();
  if (index >= info.devices.length) {
    const why = info.devices.length === 0 ? `no CUDA device is usable (${info.unavailableReason})` : `this machine has ${info.devices.length} CUDA device(s)`;
    throw new GrowlmError("device", `cannot use "${spec}": ${why}`);
  }
  return `cuda:${index}`;
}

/**
 * The device a data-parallel rank trains on, as torchrun jobs choose it: "cuda" means this
 * process's GPU, cuda:LOCAL_RANK (the one its NCCL communicator uses); "cpu" and an explicit
 * "cuda:N" are kept (N is then every rank's choice: right for one process per machine).
 * @param localRank LOCAL_RANK, or null outside a data-parallel job
 */
export function deviceForRank(spec: string, localRank: number | null): string {
  return spec === "cuda" && localRank !== null ? `cuda:${localRank}` : spec;
}

/** The CUDA ordinal of a device ("cuda:1" → 1); throws for "cpu". */
export function cudaOrdinal(device: Device): number {
  if (device === "cpu") throw new GrowlmError("device", "expected a CUDA device but received \"cpu\"");
  return Number(device.slice(5));
}

/** A new DeviceBuffer holding a copy of `data`. */
export function toDevice(data: ArrayBufferView, device: number): DeviceBuffer {
  const buffer = binding.cuda.alloc(device, data.byteLength);
  binding.cuda.copyToDevice(buffer, data);
  return buffer;
}

/** The contents of `buffer` in a new typed array made by `make(length)`, after the device's queued work. */
export function toHost<A extends ArrayBufferView>(buffer: DeviceBuffer, make: (length: number) => A, bytesPerElement: number): A {
  if (buffer.byteLength % bytesPerElement !== 0) {
    throw new GrowlmError("toHost", `${buffer.byteLength} bytes are not whole ${bytesPerElement}-byte elements`);
  }
  const out = make(buffer.byteLength / bytesPerElement);
  binding.cuda.copyToHost(out, buffer);
  return out;
}
