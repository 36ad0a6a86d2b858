/**
 * A stand-in for binding.cuda's model kernels that runs the CPU kernel on host copies of the
 * device buffers (download every buffer argument, call the CPU twin, upload them back). With
 * it, a model on "cuda" must give the CPU's bits exactly, which tests everything the model
 * does around the kernels (views, uploads, downloads, host mirrors) independently of the CUDA
 * kernels' own rounding. Install it only in a test file of its own (vitest runs each file in
 * its own process).
 */
import type { DeviceBuffer } from "../../src/device.js";
import { MODEL_OPS } from "../../src/model/backend.js";
import { binding } from "../../src/native.js";

type Kind = "f32" | "bf16" | "i32" | "i64" | "u8";
/** Per op, the kind of each positional argument that is a buffer (null: a number or flag). */
const SIGNATURES: Record<(typeof MODEL_OPS)[number], readonly (Kind | null)[]> = {
  add: ["f32", "f32", "f32", null],
  f32ToBf16: ["bf16", "f32", null],
  sgemm: [null, null, null, null, null, null, "f32", null, "f32", null, null, "f32", null],
  gemmBf16: [null, null, null, null, null, null, "bf16", null, "bf16", null, null, "f32", null],
  attentionForward: ["f32", "f32", "f32", "f32", "f32"],
  attentionBackward: ["f32", "f32", "f32", "f32", "f32", "f32", "f32", "f32", "f32"],
  attentionCachedForward: ["f32", "f32", "f32", "f32", "i32"],
  rmsnormForward: ["f32", "f32", "f32", "f32"],
  rmsnormBackward: ["f32", "f32", "f32", "f32", "f32", "f32"],
  rmsnormFilmForward: ["f32", "f32", "f32", "f32", "f32", "f32"],
  rmsnormFilmBackward: ["f32", "f32", "f32", "f32", "f32", "f32", "f32", "f32", "f32"],
  ropeForward: ["f32", "f32", "i32"],
  ropeBackward: ["f32", "f32", "i32"],
  swigluForward: ["f32", "f32", "f32"],
  swigluBackward: ["f32", "f32", "f32", "f32", "f32"],
  embeddingForward: ["f32", "i32", "f32"],
  embeddingBackward: ["f32", "f32", "i32"],
  crossEntropyForward: ["f32", "f32", "f32", "i32"],
  crossEntropyBackward: ["f32", "f32", "f32", "i32"],
  adamwStep: ["f32", "f32", "f32", "bf16", "f32", null, "i64", "u8"],
  globalGradNorm: ["f32"],
  rngDropout: ["f32", "f32", null, null, null, null, "i64"],
  ewcPenalty: ["f32", "f32", "f32", "f32"],
  ewcFisherAccumulate: ["f32", "f32"],
  distillTeacher: ["i32", "f32", "f32", "f32", "i32"],
  distillStudent: ["f32", "f32", "i32", "f32", "f32", "i32"],
};

const BYTES: Record<Kind, number> = { f32: 4, bf16: 2, i32: 4, i64: 8, u8: 1 };
const MAKE: Record<Kind, (n: number) => ArrayBufferView> = {
  f32: (n) => new Float32Array(n),
  bf16: (n) => new Uint16Array(n),
  i32: (n) => new Int32Array(n),
  i64: (n) => new BigInt64Array(n),
  u8: (n) => new Uint8Array(n),
};

function isDeviceBuffer(x: unknown): x is DeviceBuffer {
  return typeof x === "object" && x !== null && "freed" in x && "view" in x;
}

/** Replaces binding.cuda's model ops `names` (default all) with CPU round trips (see the module comment). */
export function installCpuShim(names: readonly (typeof MODEL_OPS)[number][] = MODEL_OPS): void {
  const cuda = binding.cuda as unknown as Record<string, unknown>;
  const cpu = binding as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const name of names) {
    const kinds = SIGNATURES[name];
    cuda[name] = (...args: unknown[]): unknown => {
      // The same DeviceBuffer object twice (an in-place op) is one host array, as on the CPU.
      const hosts = new Map<DeviceBuffer, ArrayBufferView>();
      const hostArgs = args.map((arg, i) => {
        const kind = kinds[i];
        if (!kind || !isDeviceBuffer(arg)) return arg;
        let host = hosts.get(arg);
        if (!host) {
          host = MAKE[kind](arg.byteLength / BYTES[kind]);
          if (arg.byteLength > 0) binding.cuda.copyToHost(host, arg);
          hosts.set(arg, host);
        }
        return host;
      });
      const result = cpu[name]!(...hostArgs);
      for (const [buffer, host] of hosts) if (buffer.byteLength > 0) binding.cuda.copyToDevice(buffer, host);
      return result;
    };
  }
}
