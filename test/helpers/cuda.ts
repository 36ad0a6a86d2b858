/**
 * Helpers of the CUDA tests (test/cuda/): each compares a CUDA op with the CPU backend. They
 * run on a GPU, or on the CPU emulator when GROWLM_CUDA_EMULATE=1 (vitest.config.ts sets it
 * unless the caller chose), and are skipped where neither is usable.
 */
import { describe } from "vitest";

import { cudaAvailable, cudaInfo, type DeviceBuffer, toDevice } from "../../src/device.js";
import { binding } from "../../src/native.js";

/** describe() that runs only where a CUDA device (or the emulator) is usable. */
export const describeCuda: typeof describe = describe.runIf(cudaAvailable()) as typeof describe;

/** Whether the tests run on the emulator (exact math) rather than a GPU (fast intrinsics). */
export function emulated(): boolean {
  return cudaInfo().emulated;
}

export const DEVICE = 0;

/** A device copy of `data`. */
export function upload(data: ArrayBufferView): DeviceBuffer {
  return toDevice(data, DEVICE);
}

/**
 * A device buffer of `bytes` poisoned with 0xff bytes (NaN as float32 and bf16, -1 as int32):
 * an element an op should write but does not shows in the comparison.
 */
export function poisoned(bytes: number): DeviceBuffer {
  const b = binding.cuda.alloc(DEVICE, bytes);
  binding.cuda.fillBytes(b, 0xff);
  return b;
}

export function downloadF32(b: DeviceBuffer): Float32Array {
  const out = new Float32Array(b.byteLength / 4);
  binding.cuda.copyToHost(out, b);
  return out;
}

export function downloadU16(b: DeviceBuffer): Uint16Array {
  const out = new Uint16Array(b.byteLength / 2);
  binding.cuda.copyToHost(out, b);
  return out;
}

export function downloadI32(b: DeviceBuffer): Int32Array {
  const out = new Int32Array(b.byteLength / 4);
  binding.cuda.copyToHost(out, b);
  return out;
}
