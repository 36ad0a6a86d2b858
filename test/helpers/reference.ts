/**
 * Shared tools of the kernel tests: seeded random inputs, float64 comparison and central
 * finite differences.
 *
 * Inputs are fresh each run: the base seed comes from GROWLM_TEST_SEED or the clock and
 * is printed in every failure message, so a failing case can be replayed exactly.
 */
import { expect } from "vitest";

export const BASE_SEED: number = process.env.GROWLM_TEST_SEED
  ? Number(process.env.GROWLM_TEST_SEED)
  : Date.now() % 1_000_000_007;

/** mulberry32: a small seeded generator for test inputs (not the product RNG). */
export function rng(seed: number): () => number {
  let a = (seed ^ BASE_SEED) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n values uniform in [lo, hi), never all zero. */
export function randomF32(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const next = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * next();
  return out;
}

/** n integers uniform in [0, limit). */
export function randomInts(n: number, seed: number, limit: number): Int32Array {
  const next = rng(seed);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(next() * limit);
  return out;
}

/** Widens to float64 for the references. */
export function f64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a);
}

/**
 * Normwise relative error max|a - e| / max|e|: element-wise relative error is meaningless
 * near zero, and every kernel here is bounded by a multiple of eps times the magnitude of
 * its largest outputs.
 */
export function relError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(a) !== Number.isNaN(e)) return Infinity;
    diff = Math.max(diff, Math.abs(a - e));
    scale = Math.max(scale, Math.abs(e));
  }
  return scale === 0 ? diff : diff / scale;
}

/** Asserts relError(actual, expected) <= rtol, naming the case and the seed. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, label: string): void {
  const err = relError(actual, expected);
  expect(err, `${label}: relative error ${err.toExponential(3)} > ${rtol} (GROWLM_TEST_SEED=${BASE_SEED})`).toBeLessThanOrEqual(rtol);
}

/** Asserts two typed arrays hold the same bits. */
export function expectBitwiseEqual(a: ArrayBufferView, b: ArrayBufferView, label: string): void {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  let first = -1;
  if (x.length === y.length) {
    for (let i = 0; i < x.length; i++) {
      if (x[i] !== y[i]) {
        first = i;
        break;
      }
    }
  }
  expect(x.length === y.length && first < 0, `${label}: results differ (first differing byte ${first}, seed ${BASE_SEED})`).toBe(true);
}

/**
 * Central finite differences of a scalar function of x, in float64:
 * g[i] = (f(x + h e_i) - f(x - h e_i)) / 2h. Used on the float64 reference forward, so
 * the truncation error O(h²) is far below the fp32 tolerances it is compared with.
 */
export function finiteDifferences(f: (x: Float64Array) => number, x: Float64Array, h = 1e-5): Float64Array {
  const g = new Float64Array(x.length);
  const probe = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    const xi = probe[i]!;
    probe[i] = xi + h;
    const plus = f(probe);
    probe[i] = xi - h;
    const minus = f(probe);
    probe[i] = xi;
    g[i] = (plus - minus) / (2 * h);
  }
  return g;
}

/** sum_i w[i] * y[i]: turns a vector output into the scalar loss whose gradient is w. */
export function dot(w: ArrayLike<number>, y: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += w[i]! * y[i]!;
  return s;
}
