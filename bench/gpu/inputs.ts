/**
 * Device inputs of the GPU benchmarks and the check: random data made on the host by growlm's
 * Philox stream (the CPU binding) and uploaded, and LlamaModel on a CUDA device.
 */
import { type DeviceBuffer, toDevice } from "../../src/device.js";
import type { LlamaConfig } from "../../src/model/config.js";
import { LlamaModel, type LlamaModelOptions, type MatmulPrecision } from "../../src/model/llama.js";
import { binding } from "../../src/native.js";

/** n floats uniform in [low, high) on the device. */
export function deviceUniform(device: number, n: number, seed: number, low = -1, high = 1): DeviceBuffer {
  const host = new Float32Array(n);
  binding.rngUniform(host, n, seed, 0, low, high);
  return toDevice(host, device);
}

/** n bf16 values (raw bits) uniform in [-1, 1) on the device. */
export function deviceUniformBf16(device: number, n: number, seed: number): DeviceBuffer {
  const host = new Float32Array(n);
  binding.rngUniform(host, n, seed, 0, -1, 1);
  const bits = new Uint16Array(n);
  binding.f32ToBf16(bits, host, n);
  return toDevice(bits, device);
}

/** n int32 in [0, bound) on the device. */
export function deviceInts(device: number, n: number, seed: number, bound: number): DeviceBuffer {
  const host = new Float32Array(n);
  binding.rngUniform(host, n, seed, 0, 0, 1);
  return toDevice(Int32Array.from(host, (u) => Math.min(bound - 1, Math.floor(u * bound))), device);
}

/** `bytes` of uninitialised device memory. */
export function deviceEmpty(device: number, bytes: number): DeviceBuffer {
  return binding.cuda.alloc(device, bytes);
}

/**
 * A LlamaModel on `device` ("cpu" or "cuda:N"). Throws when the model did not take the device
 * (a build whose LlamaModel has no `device` option would silently train on the CPU, and the
 * check would compare the CPU with itself).
 */
export function modelOn(config: LlamaConfig, matmul: MatmulPrecision, device: string): LlamaModel {
  // `device` is LlamaModelOptions' field once the CUDA model lands (src/model/llama.ts); the
  // wider type keeps this file compiling before, and the check below catches that build.
  const options: LlamaModelOptions & { device?: string } = { matmul, device };
  const model = new LlamaModel(config, options);
  const actual = (model as unknown as { device?: string }).device ?? "cpu";
  if (actual !== device) {
    model.dispose();
    throw new Error(`LlamaModel was asked for device "${device}" but is on "${actual}": this build's model has no CUDA support (src/model/llama.ts)`);
  }
  return model;
}
