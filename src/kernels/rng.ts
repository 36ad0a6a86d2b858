/**
 * Counter-based random fills (Philox4x32-10). Element i of a fill with (seed, offset) is a
 * pure function of (seed, offset + i): the result does not depend on the thread count, and
 * filling [0, k) then [k, n) with offset k gives the same bits as one fill of [0, n), for
 * any k. Elements come four to a Philox block (element j uses word j mod 4 of block
 * floor(j / 4)); native/include/growlm/rng.h states the exact stream.
 * Seeds and offsets are bigints in [0, 2^64) or non-negative safe integers.
 */
import type { Buffers, HostBuffers } from "../device.js";
import { binding } from "../native.js";
import { Tensor } from "../tensor.js";
import { dimsOf, finite, formatShape } from "./check.js";

/** The fills on a device (B = DeviceBuffers) give the CPU's portable path bit for bit. */
export interface RngBinding<B extends Buffers = HostBuffers> {
  rngUniform(out: B["f32"], n: number, seed: bigint | number, offset: bigint | number, low: number, high: number): void;
  rngNormal(out: B["f32"], n: number, seed: bigint | number, offset: bigint | number, mean: number, std: number): void;
  /** The raw Philox4x32-10 block (counter [4], key [2] -> 4 words), for known-answer tests (CPU only). */
  philox4x32(counter: Uint32Array, key: Uint32Array): Uint32Array;
  rngDropout(out: B["f32"], inp: B["f32"], rows: number, C: number, p: number, seed: bigint | number, rowOffsets: B["i64"]): void;
}

export interface RngStream {
  /** The Philox key. */
  seed: bigint | number;
  /** Counter of element 0 (default 0): a stream position, e.g. the elements used so far. */
  offset?: bigint | number;
}

export interface NormalOptions extends RngStream {
  mean?: number;
  /** Standard deviation, >= 0 (default 1). */
  std?: number;
}

export interface UniformOptions extends RngStream {
  /** Inclusive lower bound (default 0). */
  low?: number;
  /** Exclusive upper bound up to float32 rounding, >= low (default 1). */
  high?: number;
}

const U64_LIMIT = 1n << 64n;

function counter(op: string, name: string, value: bigint | number): bigint | number {
  if (typeof value === "bigint") {
    if (value < 0n || value >= U64_LIMIT) throw new RangeError(`${op}: expected "${name}" in [0, 2^64) but received ${value}`);
    return value;
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${op}: expected "${name}" as a bigint or a non-negative safe integer but received ${String(value)}`);
  }
  return value;
}

function float32(op: string, t: Tensor): Float32Array {
  dimsOf(op, "t", t, "float32", t.ndim);
  return t.data as Float32Array;
}

/**
 * Fills t (float32, any shape) with normal samples: mean + std · N(0, 1) by Box–Muller,
 * each pair giving two neighbouring elements (r cos θ at even stream positions offset + i, r sin θ at odd ones).
 */
export function fillNormal(t: Tensor, opts: NormalOptions): Tensor {
  const op = "fillNormal";
  const data = float32(op, t);
  const mean = finite(op, "mean", opts.mean ?? 0);
  const std = finite(op, "std", opts.std ?? 1, 0);
  binding.rngNormal(data, data.length, counter(op, "seed", opts.seed), counter(op, "offset", opts.offset ?? 0), mean, std);
  return t;
}

/** Fills t (float32, any shape) with uniform samples in [low, high) from 24 random bits each. */
export function fillUniform(t: Tensor, opts: UniformOptions): Tensor {
  const op = "fillUniform";
  const data = float32(op, t);
  const low = finite(op, "low", opts.low ?? 0);
  const high = finite(op, "high", opts.high ?? 1, low);
  binding.rngUniform(data, data.length, counter(op, "seed", opts.seed), counter(op, "offset", opts.offset ?? 0), low, high);
  return t;
}

/** A new float32 tensor of `shape` with normal samples (see fillNormal). */
export function randn(shape: readonly number[], opts: NormalOptions): Tensor<"float32"> {
  return fillNormal(Tensor.empty(shape), opts) as Tensor<"float32">;
}

/** A new float32 tensor of `shape` with uniform samples (see fillUniform). */
export function rand(shape: readonly number[], opts: UniformOptions): Tensor<"float32"> {
  return fillUniform(Tensor.empty(shape), opts) as Tensor<"float32">;
}

/**
 * Dropout with counter-based masks (torch.nn.functional.dropout's rule: keep with probability
 * 1 − p and scale the kept values by 1 / (1 − p)): element c of row r of inp [rows, C] is
 * kept iff the uniform element rowOffsets[r] + c of the Philox stream of `seed` (as
 * fillUniform draws it in [0, 1)) is >= p. Each row's mask is a pure function of (seed, its
 * offset), so a forward and its backward (the same call on the gradient) agree, and a row's
 * mask does not depend on the rows around it. out may be inp (in place).
 * @param inp float32 [rows, C] (any shape whose last dimension is C)
 * @param p drop probability in [0, 1)
 * @param rowOffsets stream position of each row's first element (rows values in [0, 2^64))
 * @returns out
 */
export function dropout(inp: Tensor, p: number, seed: bigint | number, rowOffsets: BigInt64Array, out?: Tensor): Tensor<"float32"> {
  const op = "dropout";
  if (inp.ndim === 0) throw new RangeError(`${op}: expected "inp" of shape [..., C] but received ${formatShape(inp.shape)}`);
  const shape = dimsOf(op, "inp", inp, "float32", inp.ndim);
  const C = shape[shape.length - 1]!;
  if (C === 0) throw new RangeError(`${op}: expected "inp" with C >= 1 but received ${formatShape(shape)}`);
  finite(op, "p", p);
  if (!(p >= 0 && Math.fround(p) < 1)) throw new RangeError(`${op}: expected "p" in [0, 1) but received ${p}`);
  const rows = inp.numel / C;
  if (!(rowOffsets instanceof BigInt64Array) || rowOffsets.length !== rows) {
    throw new RangeError(`${op}: expected "rowOffsets" BigInt64Array of length ${rows} (one per row) but received ${rowOffsets instanceof BigInt64Array ? `length ${rowOffsets.length}` : typeof rowOffsets}`);
  }
  const result = out ?? Tensor.empty(shape);
  if (result !== inp) {
    dimsOf(op, "out", result, "float32", shape.length);
    if (result.shape.some((d, i) => d !== shape[i])) throw new RangeError(`${op}: expected "out" of shape ${formatShape(shape)} but received ${formatShape(result.shape)}`);
  }
  binding.rngDropout(result.data as Float32Array, inp.data as Float32Array, rows, C, p, counter(op, "seed", seed), rowOffsets);
  return result as Tensor<"float32">;
}
