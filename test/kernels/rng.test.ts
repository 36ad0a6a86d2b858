import { describe, expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { fillNormal, fillUniform, rand, randn } from "../../src/kernels/rng.js";
import { Tensor } from "../../src/tensor.js";
import { BASE_SEED, expectBitwiseEqual, expectClose } from "../helpers/reference.js";
import { ISAS, withSettings } from "../helpers/native.js";

// Box–Muller in float32 with polynomial ln, sin and cos (about 1 ulp each) against float64 on
// the same Philox words: a few ulps of the largest sample (|z| <= 5.8).
const NORMAL_RTOL = 5e-7;
// The statistical checks use fixed seeds, so they are reproducible; bounds are 5 standard
// errors for the moments and the 0.1 % critical value for Kolmogorov–Smirnov (1.95/sqrt(n)).
const STAT_N = 1_000_000;
const KS_CRITICAL = 1.95 / Math.sqrt(STAT_N);

// Random123's known-answer vectors for philox4x32-10 (kat_vectors).
const KATS: { counter: number[]; key: number[]; out: number[] }[] = [
  { counter: [0, 0, 0, 0], key: [0, 0], out: [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8] },
  {
    counter: [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
    key: [0xffffffff, 0xffffffff],
    out: [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
  },
  {
    counter: [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
    key: [0xa4093822, 0x299f31d0],
    out: [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
  },
];

/** Philox4x32-10 in TypeScript (BigInt products), checked against the same vectors. */
function philoxRef(counter: readonly number[], key: readonly number[]): number[] {
  let [c0, c1, c2, c3] = counter as [number, number, number, number];
  let [k0, k1] = key as [number, number];
  for (let r = 0; r < 10; r++) {
    const p0 = BigInt(c0) * 0xd2511f53n;
    const p1 = BigInt(c2) * 0xcd9e8d57n;
    const hi0 = Number(p0 >> 32n);
    const lo0 = Number(p0 & 0xffffffffn);
    const hi1 = Number(p1 >> 32n);
    const lo1 = Number(p1 & 0xffffffffn);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
    k0 = (k0 + 0x9e3779b9) >>> 0;
    k1 = (k1 + 0xbb67ae85) >>> 0;
  }
  return [c0, c1, c2, c3];
}

const U64 = (1n << 64n) - 1n;

/** The four words of Philox block `block` under key = seed (low word first). */
function blockWords(seed: bigint, block: bigint): number[] {
  return philoxRef([Number(block & 0xffffffffn), Number(block >> 32n), 0, 0], [Number(seed & 0xffffffffn), Number(seed >> 32n)]);
}

/** The stream contract: element j = offset + i (mod 2^64) is word j & 3 of block j >> 2. */
function streamWords(seed: bigint, offset: bigint, n: number): { words: number[][]; lane: number[] } {
  const words: number[][] = [];
  const lane: number[] = [];
  let cached = -1n;
  let w: number[] = [];
  for (let i = 0; i < n; i++) {
    const j = (offset + BigInt(i)) & U64;
    if (j >> 2n !== cached) {
      cached = j >> 2n;
      w = blockWords(seed, cached);
    }
    words.push(w);
    lane.push(Number(j & 3n));
  }
  return { words, lane };
}

/** Uniform [0, 2^24) reference: the top 24 bits of word j & 3. */
function uniformBitsRef(seed: bigint, offset: bigint, n: number): Float64Array {
  const { words, lane } = streamWords(seed, offset, n);
  return Float64Array.from(words, (w, i) => w[lane[i]!]! >>> 8);
}

/**
 * Float64 Box–Muller on the same words: words (0, 1) and (2, 3) of a block are pairs
 * (a, b); u1 = ((a >> 8) + 1)·2^-24, θ = 2π·(b >> 8)·2^-24, r = sqrt(-2 ln u1); the even
 * element of the pair is r cos θ, the odd one r sin θ.
 */
function normalRef(seed: bigint, offset: bigint, n: number, mu: number, sigma: number): Float64Array {
  const { words, lane } = streamWords(seed, offset, n);
  return Float64Array.from(words, (w, i) => {
    const pair = lane[i]! >> 1;
    const u1 = ((w[2 * pair]! >>> 8) + 1) * 2 ** -24;
    const theta = 2 * Math.PI * (w[2 * pair + 1]! >>> 8) * 2 ** -24;
    const r = Math.sqrt(-2 * Math.log(u1));
    return mu + sigma * r * (lane[i]! & 1 ? Math.sin(theta) : Math.cos(theta));
  });
}

/** One fill straight through the binding (n >= 1). */
function fill(kind: "normal" | "uniform", n: number, seed: bigint, offset: bigint): Float32Array {
  const out = new Float32Array(n);
  if (kind === "normal") binding.rngNormal(out, n, seed, offset, 0.25, 1.5);
  else binding.rngUniform(out, n, seed, offset, -1, 3);
  return out;
}

function mean(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v;
  return s / x.length;
}

function variance(x: Float32Array): number {
  const m = mean(x);
  let s = 0;
  for (const v of x) s += (v - m) ** 2;
  return s / x.length;
}

/**
 * Sample correlation of the pairs (x[i], x[i + lag]) for i = start, start + step, ...:
 * about N(0, 1/count) for independent samples.
 */
function correlation(x: ArrayLike<number>, lag: number, start = 0, step = 1): { r: number; count: number } {
  let sa = 0, sb = 0, count = 0;
  for (let i = start; i + lag < x.length; i += step) {
    sa += x[i]!;
    sb += x[i + lag]!;
    count++;
  }
  const ma = sa / count, mb = sb / count;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = start; i + lag < x.length; i += step) {
    const a = x[i]! - ma, b = x[i + lag]! - mb;
    sab += a * b;
    saa += a * a;
    sbb += b * b;
  }
  return { r: sab / Math.sqrt(saa * sbb), count };
}

/** Neighbours within a block and across blocks: every lag 1..4, and lag 1 within a
 *  Box–Muller pair (even i) and lag 2 between the two pairs of a block (i = 0 mod 4). */
function expectUncorrelated(x: ArrayLike<number>, label: string): void {
  const cases: [number, number, number][] = [[1, 0, 1], [2, 0, 1], [3, 0, 1], [4, 0, 1], [1, 0, 2], [2, 0, 4]];
  for (const [lag, start, step] of cases) {
    const { r, count } = correlation(x, lag, start, step);
    expect(Math.abs(r), `${label}: correlation at lag ${lag} (step ${step}) = ${r}`).toBeLessThan(5 / Math.sqrt(count));
  }
}

/** Kolmogorov–Smirnov statistic of the sample against the CDF. */
function ksStatistic(x: Float32Array, cdf: (v: number) => number): number {
  const s = Float64Array.from(x).sort();
  let d = 0;
  for (let i = 0; i < s.length; i++) {
    const F = cdf(s[i]!);
    d = Math.max(d, Math.abs(F - i / s.length), Math.abs((i + 1) / s.length - F));
  }
  return d;
}

/** erf to 1.2e-7 (Numerical Recipes' erfc Chebyshev fit), enough for a KS bound of 2e-3. */
function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 +
          t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}

const normalCdf = (v: number): number => 0.5 * (1 + erf(v / Math.SQRT2));

describe("philox4x32-10 reference", () => {
  it("the TypeScript reference reproduces Random123's vectors", () => {
    for (const k of KATS) expect(philoxRef(k.counter, k.key)).toEqual(k.out);
  });
});

describe.each(ISAS)("rng (%s)", (isa) => {
  it("philox4x32 reproduces Random123's known-answer vectors", () => {
    for (const k of KATS) {
      const out = withSettings(isa, 1, () => binding.philox4x32(Uint32Array.from(k.counter), Uint32Array.from(k.key)));
      expect(Array.from(out)).toEqual(k.out);
    }
  });

  it("uniform [0, 2^24) fills are exactly the top 24 bits of word j & 3 of block j >> 2", () => {
    const seed = 0x1234_5678_9abc_def0n ^ BigInt(BASE_SEED);
    // Across a carry into the counter's high word (block 2^32), and across j = 2^64 -> 0,
    // where the block index wraps from 2^62 - 1 to 0.
    for (const [offset, n] of [[2n ** 34n - 4003n, 3001], [2n ** 64n - 6n, 13], [2n ** 64n - 67n, 200]] as const) {
      const out = new Float32Array(n);
      withSettings(isa, 2, () => binding.rngUniform(out, n, seed, offset, 0, 2 ** 24));
      const expected = uniformBitsRef(seed, offset, n);
      for (let i = 0; i < n; i++) {
        if (out[i] !== expected[i]) expect.fail(`offset ${offset} element ${i}: ${out[i]} != ${expected[i]} (seed ${BASE_SEED})`);
      }
    }
  });

  it("normal fills match a float64 Box–Muller on the same words", () => {
    const seed = BigInt(BASE_SEED) * 7919n;
    // Long fills only: the error is normwise (relative to the largest sample), and short
    // fills are checked bitwise against slices of long ones below.
    for (const [offset, n] of [[123_456_789n, 3001], [2n ** 64n - 1001n, 2001]] as const) {
      const t = withSettings(isa, 2, () => randn([n], { seed, offset, mean: 0.5, std: 2 }));
      expectClose(t.data, normalRef(seed, offset, n, 0.5, 2), NORMAL_RTOL, `normal vs float64 Box–Muller, offset ${offset}, n ${n}`);
    }
  });

  it("every fill is bitwise the slice of a longer fill: any start mod 4, short and long lengths", () => {
    const seed = 0xfeed_beefn + BigInt(BASE_SEED);
    const base = 4n * 1_000_003n + 1n; // not a block boundary
    const total = 1000;
    const starts = [0, 1, 2, 3, 4, 5, 6, 7, 61, 62, 63, 64, 65, 66, 127, 130, 333, 498];
    const lengths = [1, 2, 3, 4, 5, 6, 7, 8, 9, 63, 64, 65, 67, 129, 300];
    for (const kind of ["uniform", "normal"] as const) {
      for (const threads of [1, 2]) {
        withSettings(isa, threads, () => {
          const whole = fill(kind, total, seed, base);
          for (const start of starts) {
            for (const len of lengths) {
              const part = fill(kind, len, seed, base + BigInt(start));
              expectBitwiseEqual(part, whole.subarray(start, start + len), `${kind} [${start}, +${len}) of a fill at ${base}, ${threads} threads`);
            }
          }
        });
      }
    }
  });

  it("a fill split at any position equals the whole fill, for every offset mod 4", () => {
    const seed = 31337n;
    const n = 150;
    for (const kind of ["uniform", "normal"] as const) {
      for (let r = 0n; r < 4n; r++) {
        const offset = 4n * 99_991n + r;
        withSettings(isa, 2, () => {
          const whole = fill(kind, n, seed, offset);
          for (let k = 1; k < n; k++) {
            const joined = new Float32Array(n);
            joined.set(fill(kind, k, seed, offset), 0);
            joined.set(fill(kind, n - k, seed, offset + BigInt(k)), k);
            expectBitwiseEqual(joined, whole, `${kind} split at ${k}, offset ${offset}`);
          }
        });
      }
    }
  });

  it("normal samples have mean 0, variance 1, pass Kolmogorov–Smirnov and are uncorrelated", () => {
    const x = withSettings(isa, 2, () => randn([STAT_N], { seed: 42 })).data as Float32Array;
    expect(Math.abs(mean(x))).toBeLessThan(5 / Math.sqrt(STAT_N));
    expect(Math.abs(variance(x) - 1)).toBeLessThan(5 * Math.sqrt(2 / STAT_N));
    expect(ksStatistic(x, normalCdf)).toBeLessThan(KS_CRITICAL);
    // Box–Muller from 24-bit u1 reaches |z| = sqrt(2·24·ln 2) ≈ 5.77 at most.
    expect(x.every((v) => Math.abs(v) <= 5.77)).toBe(true);
    // r cos θ and r sin θ of one pair are neighbours: independent in theory, so neither
    // they nor their squares (which share r²) may correlate.
    expectUncorrelated(x, "normal");
    expectUncorrelated(Float64Array.from(x, (v) => v * v), "normal squared");
  });

  it("uniform samples have mean 1/2, variance 1/12, pass Kolmogorov–Smirnov and chi-square and are uncorrelated", () => {
    const x = withSettings(isa, 2, () => rand([STAT_N], { seed: 7n })).data as Float32Array;
    expect(Math.abs(mean(x) - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / STAT_N));
    expect(Math.abs(variance(x) - 1 / 12)).toBeLessThan(5 * Math.sqrt((1 / 80 - 1 / 144) / STAT_N));
    expect(ksStatistic(x, (v) => v)).toBeLessThan(KS_CRITICAL);
    const bins = new Float64Array(1000);
    for (const v of x) bins[Math.floor(v * 1000)]!++;
    let chi2 = 0;
    for (const b of bins) chi2 += (b - STAT_N / 1000) ** 2 / (STAT_N / 1000);
    expect(chi2).toBeLessThan(999 + 5 * Math.sqrt(2 * 999)); // 999 degrees of freedom, 5 sd
    expect(x.every((v) => v >= 0 && v < 1)).toBe(true);
    expectUncorrelated(x, "uniform");
  });

  it("is independent of the thread count and of chunking across task boundaries", () => {
    const n = 200_003; // several tasks of 2^16 elements and a partial vector
    const offset = 5n; // tasks start in the middle of the output's first block
    const opts = { seed: 99n, offset, mean: -1, std: 3 };
    const one = withSettings(isa, 1, () => randn([n], opts));
    const two = withSettings(isa, 2, () => randn([n], opts));
    expectBitwiseEqual(one.data, two.data, "normal 1 vs 2 threads");
    const u = withSettings(isa, 1, () => rand([n], { seed: 3, offset: 7, low: -2, high: 5 }));
    const u2 = withSettings(isa, 2, () => rand([n], { seed: 3, offset: 7, low: -2, high: 5 }));
    expectBitwiseEqual(u.data, u2.data, "uniform 1 vs 2 threads");
    expect(u.data.every((v) => v >= -2 && v <= 5)).toBe(true);
    for (const k of [12_345, 65_535, 65_536, 65_538, 131_071]) {
      const parts = Tensor.empty([n]);
      const uParts = Tensor.empty([n]);
      withSettings(isa, 2, () => {
        fillNormal(parts.rows(0, k), opts);
        fillNormal(parts.rows(k, n), { ...opts, offset: offset + BigInt(k) });
        fillUniform(uParts.rows(0, k), { seed: 3, offset: 7, low: -2, high: 5 });
        fillUniform(uParts.rows(k, n), { seed: 3, offset: 7 + k, low: -2, high: 5 });
      });
      expectBitwiseEqual(parts.data, one.data, `normal [0, ${k}) + [${k}, n) vs [0, n)`);
      expectBitwiseEqual(uParts.data, u.data, `uniform [0, ${k}) + [${k}, n) vs [0, n)`);
    }
  });

  it("different seeds differ; a number seed equals the same bigint", () => {
    const a = withSettings(isa, 2, () => randn([1000], { seed: 1 }));
    const b = withSettings(isa, 2, () => randn([1000], { seed: 2 }));
    const c = withSettings(isa, 2, () => randn([1000], { seed: 1n }));
    const d = withSettings(isa, 2, () => randn([1000], { seed: 1n << 32n })); // high key word only
    expect(a.data.filter((v, i) => v === b.data[i]).length).toBeLessThan(5);
    expect(a.data.filter((v, i) => v === d.data[i]).length).toBeLessThan(5);
    expectBitwiseEqual(a.data, c.data, "number vs bigint seed");
  });

  it("agrees with the portable path: uniform bitwise, normal within rounding", () => {
    const n = 10_007;
    const opts = { seed: 2024n, offset: 77n };
    const u = withSettings(isa, 2, () => rand([n], opts));
    const uPortable = withSettings("portable", 2, () => rand([n], opts));
    expectBitwiseEqual(u.data, uPortable.data, "uniform [0, 1) vs portable"); // exact: 0 + 1·u
    const z = withSettings(isa, 2, () => randn([n], opts));
    const zPortable = withSettings("portable", 2, () => randn([n], opts));
    expectClose(z.data, zPortable.data, 2 * NORMAL_RTOL, "normal vs portable");
  });
});

describe("rng errors", () => {
  it("refuses bad seeds, offsets and parameters", () => {
    expect(() => randn([3], { seed: -1 })).toThrow(/fillNormal: expected "seed" as a bigint or a non-negative safe integer/);
    expect(() => randn([3], { seed: 1.5 })).toThrow(/"seed"/);
    expect(() => randn([3], { seed: 2n ** 64n })).toThrow(/fillNormal: expected "seed" in \[0, 2\^64\)/);
    expect(() => rand([3], { seed: 1, offset: -1n })).toThrow(/fillUniform: expected "offset"/);
    expect(() => randn([3], { seed: 1, std: -1 })).toThrow(/fillNormal: expected "std" in \[0, Infinity\]/);
    expect(() => randn([3], { seed: 1, mean: NaN })).toThrow(/fillNormal: expected a finite number for "mean"/);
    expect(() => rand([3], { seed: 1, low: 2, high: 1 })).toThrow(/fillUniform: expected "high" in \[2, Infinity\]/);
    expect(() => fillNormal(Tensor.zeros([3], "int32"), { seed: 1 })).toThrow(TypeError);
  });

  it("the binding re-checks everything", () => {
    const out = new Float32Array(4);
    expect(() => binding.rngNormal(out, 5, 1, 0, 0, 1)).toThrow(/rngNormal: expected Float32Array of length 5/);
    expect(() => binding.rngNormal(out, 4, -1n, 0, 0, 1)).toThrow(/rngNormal: expected "seed" in \[0, 2\^64\)/);
    expect(() => binding.rngNormal(out, 4, 2 ** 53, 0, 0, 1)).toThrow(/rngNormal: expected an integer/);
    expect(() => binding.rngUniform(out, 4, 1, 0, 1, 0)).toThrow(/rngUniform: expected low <= high/);
    expect(() => binding.rngUniform(out, 4, 1, 0, 0, 1e39)).toThrow(/"high" does not fit in float32/);
    expect(() => binding.rngNormal(out, 4, 1, 0, 0, -1)).toThrow(/rngNormal: expected std >= 0/);
    expect(() => binding.philox4x32(new Uint32Array(3), new Uint32Array(2))).toThrow(/philox4x32: expected a Uint32Array of length 4 for "counter"/);
  });

  it("an empty fill inside a block writes nothing", () => {
    const out = new Float32Array(0);
    expect(() => binding.rngNormal(out, 0, 1, 3, 0, 1)).not.toThrow();
    expect(() => binding.rngUniform(out, 0, 1, 2n ** 64n - 1n, 0, 1)).not.toThrow();
  });
});
