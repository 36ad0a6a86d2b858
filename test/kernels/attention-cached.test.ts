import { describe, expect, it } from "vitest";

import { attentionCachedForward } from "../../src/kernels/attention.js";
import { binding } from "../../src/native.js";
import { Tensor } from "../../src/tensor.js";
import { ISAS, withSettings } from "../helpers/native.js";
import { BASE_SEED, expectBitwiseEqual, expectClose, randomF32, randomInts } from "../helpers/reference.js";

const U = 2 ** -24; // fp32 unit roundoff
// fp32 dot products of length D (scores) and sums over at most Tk keys (P·V, the row sum),
// worst case (D + Tk)·u, plus a few ulps for exp2 and the final division.
const rtol = (c: Dims): number => (c.D + c.Tk + 4) * U;

interface Dims {
  B: number;
  Tq: number;
  Tk: number;
  S: number;
  H: number;
  Hkv: number;
  D: number;
}

interface Case extends Dims {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  begin: Tensor;
}

/**
 * Naive float64 reference: query i of row b at slot p = Tk − Tq + i, softmax over the slots
 * begin[b]..p of scale·q·k, times v; zeros where the query has no slot.
 */
function reference(c: Case, scale: number): Float64Array {
  const { B, Tq, Tk, S, H, Hkv, D } = c;
  const q = c.q.data as Float32Array;
  const k = c.k.data as Float32Array;
  const v = c.v.data as Float32Array;
  const begin = c.begin.data as Int32Array;
  const out = new Float64Array(B * Tq * H * D);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < Tq; i++) {
      const p = Tk - Tq + i;
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / (H / Hkv));
        const qo = ((b * Tq + i) * H + h) * D;
        const first = begin[b]!;
        if (p < first) continue;
        const w: number[] = [];
        let max = -Infinity;
        for (let j = first; j <= p; j++) {
          const ko = ((b * S + j) * Hkv + g) * D;
          let s = 0;
          for (let d = 0; d < D; d++) s += q[qo + d]! * k[ko + d]!;
          w.push(s * scale);
          max = Math.max(max, s * scale);
        }
        let sum = 0;
        for (let j = 0; j < w.length; j++) {
          w[j] = Math.exp(w[j]! - max);
          sum += w[j]!;
        }
        for (let j = 0; j < w.length; j++) {
          const vo = ((b * S + first + j) * Hkv + g) * D;
          for (let d = 0; d < D; d++) out[qo + d] = out[qo + d]! + (w[j]! / sum) * v[vo + d]!;
        }
      }
    }
  }
  return out;
}

function makeCase(d: Dims, begins: readonly number[], seed: number): Case {
  const { B, Tq, S, H, Hkv, D } = d;
  return {
    ...d,
    q: Tensor.from(randomF32(B * Tq * H * D, seed), [B, Tq, H, D]),
    k: Tensor.from(randomF32(B * S * Hkv * D, seed + 1, -2, 2), [B, S, Hkv, D]),
    v: Tensor.from(randomF32(B * S * Hkv * D, seed + 2), [B, S, Hkv, D]),
    begin: Tensor.from(Int32Array.from(begins), [B], "int32"),
  };
}

function label(d: Dims): string {
  return `B=${d.B} Tq=${d.Tq} Tk=${d.Tk} S=${d.S} H=${d.H} Hkv=${d.Hkv} D=${d.D}`;
}

// Decode steps (Tq = 1), prefills (Tq = Tk) and in between; Tk across the 64-slot chunks;
// D below, at and above the vector widths and odd; every query-head grouping; rows whose
// first valid slot is 0, inside the queries (some queries see nothing) or at Tk.
const CASES: { d: Dims; begins: number[] }[] = [
  { d: { B: 1, Tq: 1, Tk: 1, S: 1, H: 2, Hkv: 1, D: 3 }, begins: [0] },
  { d: { B: 3, Tq: 1, Tk: 9, S: 12, H: 4, Hkv: 2, D: 17 }, begins: [0, 4, 8] },
  { d: { B: 2, Tq: 7, Tk: 7, S: 10, H: 4, Hkv: 4, D: 16 }, begins: [0, 3] },
  { d: { B: 2, Tq: 5, Tk: 70, S: 80, H: 4, Hkv: 1, D: 64 }, begins: [2, 68] },
  { d: { B: 3, Tq: 1, Tk: 150, S: 151, H: 8, Hkv: 2, D: 64 }, begins: [0, 17, 150] },
  { d: { B: 2, Tq: 130, Tk: 130, S: 131, H: 2, Hkv: 1, D: 1 }, begins: [0, 65] },
  { d: { B: 1, Tq: 33, Tk: 200, S: 200, H: 4, Hkv: 2, D: 40 }, begins: [5] },
  // One sequence decoding: the heads split into groups of one per task (each thread's scratch
  // then holds the least; an overrun there once raced with the next thread's queries).
  { d: { B: 1, Tq: 1, Tk: 97, S: 100, H: 4, Hkv: 4, D: 64 }, begins: [0] },
  { d: { B: 1, Tq: 1, Tk: 40, S: 40, H: 6, Hkv: 3, D: 16 }, begins: [3] },
];

describe("attentionCachedForward against a float64 reference", () => {
  describe.each(CASES.map((c, i) => ({ ...c, seed: 700 + 10 * i, name: label(c.d) })))("$name", ({ d, begins, seed }) => {
    const c = makeCase(d, begins, seed);
    const scale = 1 / Math.sqrt(d.D);
    const ref = reference(c, scale);

    it.each(ISAS)("%s: matches the reference, 1 vs 2 threads bitwise, zeros before keyBegin", (isa) => {
      const run = (threads: number) => withSettings(isa, threads, () => attentionCachedForward(c.q, c.k, c.v, c.begin, d.Tk));
      const one = run(1);
      expectClose(one.data, ref, rtol(d), `${isa} ${label(d)}`);
      expectBitwiseEqual(run(2).data, one.data, `${isa} ${label(d)} 1 vs 2 threads`);
      for (let b = 0; b < d.B; b++) {
        for (let i = 0; i < d.Tq; i++) {
          if (d.Tk - d.Tq + i >= begins[b]!) continue;
          const row = one.data.subarray((b * d.Tq + i) * d.H * d.D, (b * d.Tq + i + 1) * d.H * d.D);
          expect(row.every((x) => x === 0), `row ${b} query ${i} has no key (seed ${BASE_SEED})`).toBe(true);
        }
      }
    });
  });
});

describe("attentionCachedForward: a row's bits depend only on its own query and valid keys", () => {
  // Row 0 of a left-padded batch (3 padding slots holding garbage) against the same prompt
  // alone and unpadded, computed as one prefill and as a prefill followed by single steps.
  const [H, Hkv, D, L, pad] = [4, 2, 24, 80, 3];
  const S = L + pad + 4;
  const q = randomF32(L * H * D, 41);
  const k = randomF32(L * Hkv * D, 42);
  const v = randomF32(L * Hkv * D, 43);

  /** The prompt placed at slot `first` of row 0 of a [B, S] cache, other slots random. */
  const cache = (B: number, first: number, seed: number) => {
    const kc = randomF32(B * S * Hkv * D, seed);
    const vc = randomF32(B * S * Hkv * D, seed + 1);
    kc.set(k, first * Hkv * D);
    vc.set(v, first * Hkv * D);
    return { k: Tensor.from(kc, [B, S, Hkv, D]), v: Tensor.from(vc, [B, S, Hkv, D]) };
  };
  /** Queries of positions [t0, t1) of the prompt placed in row 0 of a [B, t1 − t0] block. */
  const queries = (B: number, t0: number, t1: number) => {
    const out = randomF32(B * (t1 - t0) * H * D, 44 + t0);
    out.set(q.subarray(t0 * H * D, t1 * H * D));
    return Tensor.from(out, [B, t1 - t0, H, D]);
  };

  it.each(ISAS)("%s: alone, in a padded batch, in one call or step by step", (isa) =>
    withSettings(isa, 2, () => {
      const alone = cache(1, 0, 45);
      const whole = attentionCachedForward(queries(1, 0, L), alone.k, alone.v, Tensor.from(Int32Array.of(0), [1], "int32"), L);
      const rowBytes = H * D;
      const batch = cache(3, pad, 47);
      const begin = Tensor.from(Int32Array.from([pad, 0, 5]), [3], "int32");
      // A prefill of the first 50 positions, then single steps.
      const prefill = attentionCachedForward(queries(3, 0, 50), batch.k, batch.v, begin, pad + 50);
      expectBitwiseEqual(prefill.data.subarray(0, 50 * rowBytes), whole.data.subarray(0, 50 * rowBytes), `${isa} padded prefill`);
      for (let t = 50; t < L; t++) {
        const step = attentionCachedForward(queries(3, t, t + 1), batch.k, batch.v, begin, pad + t + 1);
        expectBitwiseEqual(step.data.subarray(0, rowBytes), whole.data.subarray(t * rowBytes, (t + 1) * rowBytes), `${isa} step ${t}`);
      }
    }),
  );
});

describe("attentionCachedForward argument errors", () => {
  const c = makeCase({ B: 2, Tq: 1, Tk: 4, S: 6, H: 4, Hkv: 2, D: 8 }, [0, 1], 3);

  it("rejects bad shapes, lengths and key ranges by name", () => {
    expect(() => attentionCachedForward(c.q, c.k, c.v, c.begin, 7)).toThrow(/attentionCachedForward: expected an integer in \[1, 6\] for "length" but received 7/);
    expect(() => attentionCachedForward(c.q, c.k, c.v, Tensor.from(Int32Array.of(0, 5), [2], "int32"), 4)).toThrow(
      /attentionCachedForward: "keyBegin"\[1\] = 5 is outside \[0, length = 4\]/,
    );
    expect(() => attentionCachedForward(c.q, c.k, Tensor.zeros([2, 5, 2, 8]), c.begin, 4)).toThrow(
      /attentionCachedForward: expected "v" of shape \[B, S, Hkv, D\] = \[2, 6, 2, 8\] but received \[2, 5, 2, 8\]/,
    );
    expect(() => attentionCachedForward(c.q, Tensor.zeros([2, 6, 3, 8]), Tensor.zeros([2, 6, 3, 8]), c.begin, 4)).toThrow(
      /attentionCachedForward: H = 4 \(from "q"\) must be a multiple of Hkv = 3/,
    );
    expect(() => attentionCachedForward(c.q, c.k, c.v, Tensor.zeros([2], "float32"), 4)).toThrow(TypeError);
    expect(() => attentionCachedForward(c.q, c.k, c.v, c.begin, 4, { out: c.q })).toThrow(/attentionCachedForward: "out" must not share memory with "q"/);
  });

  it("the binding re-checks lengths and key ranges before touching memory", () => {
    const q = new Float32Array(2 * 4 * 8);
    const kv = new Float32Array(2 * 6 * 2 * 8);
    expect(() => binding.attentionCachedForward(new Float32Array(64), q, kv, new Float32Array(10), Int32Array.of(0, 1), 2, 1, 4, 6, 4, 2, 8, 0.5)).toThrow(
      /attentionCachedForward: expected Float32Array of length 192 \(\[B, S, Hkv, D\] = \[2, 6, 2, 8\]\) for "v" but received length 10/,
    );
    expect(() => binding.attentionCachedForward(new Float32Array(64), q, kv, kv, Int32Array.of(0, -1), 2, 1, 4, 6, 4, 2, 8, 0.5)).toThrow(
      /attentionCachedForward: "keyBegin"\[1\] = -1 is outside \[0, Tk = 4\]/,
    );
    expect(() => binding.attentionCachedForward(new Float32Array(64), q, kv, kv, Int32Array.of(0, 1), 2, 1, 7, 6, 4, 2, 8, 0.5)).toThrow(RangeError);
    expect(() => binding.attentionCachedForward(new Float32Array(64), q, kv, kv, Int32Array.of(0, 1), 2, 5, 4, 6, 4, 2, 8, 0.5)).toThrow(RangeError);
  });
});

it("random key ranges and steps agree with the reference (fuzz, every ISA)", () => {
  const ints = randomInts(64, 91, 1 << 30);
  let n = 0;
  for (const isa of ISAS) {
    for (let trial = 0; trial < 6; trial++) {
      const r = (limit: number) => ints[n++ % ints.length]! % limit;
      const Hkv = 1 + r(2);
      const d: Dims = { B: 1 + r(3), Tq: 1 + r(4), Tk: 0, S: 0, H: Hkv * (1 + r(3)), Hkv, D: 1 + r(40) };
      d.Tk = d.Tq + r(90);
      d.S = d.Tk + r(3);
      const begins = Array.from({ length: d.B }, () => r(d.Tk + 1));
      const c = makeCase(d, begins, 900 + trial);
      const scale = 0.1 + r(10) / 10;
      const got = withSettings(isa, 2, () => attentionCachedForward(c.q, c.k, c.v, c.begin, d.Tk, { scale }));
      expectClose(got.data, reference(c, scale), rtol(d), `${isa} fuzz ${label(d)} begins ${begins.join(",")}`);
    }
  }
});
