import { describe, expect, it } from "vitest";

import { attentionBackward, attentionForward } from "../../src/kernels/attention.js";
import { binding } from "../../src/native.js";
import { Tensor } from "../../src/tensor.js";
import { ISAS, withSettings } from "../helpers/native.js";
import { dot, expectBitwiseEqual, expectClose, f64, finiteDifferences, randomF32 } from "../helpers/reference.js";

const U = 2 ** -24; // fp32 unit roundoff
// Forward: fp32 dot products of length D (scores) and sums of length T (P·V, row sums),
// worst case (D + T)·u, plus a few ulps for exp2 and the final division and log.
const fwdRtol = (d: Dims): number => (d.D + d.T + 4) * U;
// Backward: dk, dv also sum T·H/Hkv query rows: worst case (D + T·(1 + H/Hkv))·u + a few ulps.
const bwdRtol = (d: Dims): number => (d.D + d.T * (1 + d.H / d.Hkv) + 4) * U;
// Float64 analytic backward against float64 central differences (h = 1e-5): O(h²)
// truncation and ~1e-16/h rounding.
const FD_RTOL = 1e-7;

interface Dims {
  B: number;
  T: number;
  H: number;
  Hkv: number;
  D: number;
}

/**
 * Query row (b, h, t): p[c] = exp(s_c - max) for keys c <= t, s_c = scale · q·k_c, with the
 * row max and the sum of p (the softmax is p / sum, the log-sum-exp max + log(sum)).
 */
function causalRow(p: Float64Array, q: Float64Array, k: Float64Array, d: Dims, scale: number, b: number, h: number, t: number) {
  const { T, H, Hkv, D } = d;
  const g = Math.floor(h / (H / Hkv));
  const qo = ((b * T + t) * H + h) * D;
  let max = -Infinity;
  for (let c = 0; c <= t; c++) {
    const ko = ((b * T + c) * Hkv + g) * D;
    let s = 0;
    for (let i = 0; i < D; i++) s += q[qo + i]! * k[ko + i]!;
    p[c] = s * scale;
    max = Math.max(max, p[c]!);
  }
  let sum = 0;
  for (let c = 0; c <= t; c++) {
    p[c] = Math.exp(p[c]! - max);
    sum += p[c]!;
  }
  return { max, sum };
}

// Naive causal softmax attention with GQA in float64.
function refForward(q: Float64Array, k: Float64Array, v: Float64Array, d: Dims, scale: number) {
  const { B, T, H, Hkv, D } = d;
  const G = H / Hkv;
  const out = new Float64Array(B * T * H * D);
  const lse = new Float64Array(B * H * T);
  const p = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / G);
      for (let t = 0; t < T; t++) {
        const qo = ((b * T + t) * H + h) * D;
        const { max, sum } = causalRow(p, q, k, d, scale, b, h, t);
        lse[(b * H + h) * T + t] = max + Math.log(sum);
        for (let c = 0; c <= t; c++) {
          const w = p[c]! / sum;
          const vo = ((b * T + c) * Hkv + g) * D;
          for (let i = 0; i < D; i++) out[qo + i] = out[qo + i]! + w * v[vo + i]!;
        }
      }
    }
  }
  return { out, lse };
}

// Analytic backward in float64: dS = P ∘ (dP − rowsum(dO ∘ O)), dq = scale·dS·k, dk = scale·dSᵀ·q, dv = Pᵀ·dO.
function refBackward(dout: Float64Array, q: Float64Array, k: Float64Array, v: Float64Array, d: Dims, scale: number) {
  const { B, T, H, Hkv, D } = d;
  const G = H / Hkv;
  const dq = new Float64Array(B * T * H * D);
  const dk = new Float64Array(B * T * Hkv * D);
  const dv = new Float64Array(B * T * Hkv * D);
  const p = new Float64Array(T);
  const dp = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / G);
      for (let t = 0; t < T; t++) {
        const qo = ((b * T + t) * H + h) * D;
        const { sum } = causalRow(p, q, k, d, scale, b, h, t);
        let delta = 0;
        for (let c = 0; c <= t; c++) {
          p[c] = p[c]! / sum;
          const vo = ((b * T + c) * Hkv + g) * D;
          let s = 0;
          for (let i = 0; i < D; i++) s += dout[qo + i]! * v[vo + i]!;
          dp[c] = s;
          delta += p[c]! * s;
        }
        for (let c = 0; c <= t; c++) {
          const ds = p[c]! * (dp[c]! - delta) * scale;
          const ko = ((b * T + c) * Hkv + g) * D;
          for (let i = 0; i < D; i++) {
            dq[qo + i] = dq[qo + i]! + ds * k[ko + i]!;
            dk[ko + i] = dk[ko + i]! + ds * q[qo + i]!;
            dv[ko + i] = dv[ko + i]! + p[c]! * dout[qo + i]!;
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}

interface Case extends Dims {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  dout: Tensor;
  scale: number;
}

function makeCase(d: Dims, seed: number): Case {
  const { B, T, H, Hkv, D } = d;
  return {
    ...d,
    q: Tensor.from(randomF32(B * T * H * D, seed), [B, T, H, D]),
    k: Tensor.from(randomF32(B * T * Hkv * D, seed + 1), [B, T, Hkv, D]),
    v: Tensor.from(randomF32(B * T * Hkv * D, seed + 2), [B, T, Hkv, D]),
    dout: Tensor.from(randomF32(B * T * H * D, seed + 3), [B, T, H, D]),
    scale: 1 / Math.sqrt(D),
  };
}

function label(d: Dims): string {
  return `B=${d.B} T=${d.T} H=${d.H} Hkv=${d.Hkv} D=${d.D}`;
}

// T around the block size (64) and odd; D below, at and above the vector widths (4, 8,
// 16) and not a multiple of them; every query-head grouping (H / Hkv = 1, 2, 4).
const SHAPES: Dims[] = [
  { B: 1, T: 1, H: 4, Hkv: 4, D: 3 },
  { B: 2, T: 3, H: 4, Hkv: 2, D: 17 },
  { B: 1, T: 17, H: 4, Hkv: 1, D: 64 },
  { B: 2, T: 127, H: 4, Hkv: 4, D: 1 },
  { B: 1, T: 127, H: 4, Hkv: 2, D: 3 },
  { B: 2, T: 65, H: 4, Hkv: 2, D: 16 },
  { B: 1, T: 128, H: 4, Hkv: 2, D: 64 },
  { B: 1, T: 257, H: 4, Hkv: 2, D: 64 },
  { B: 2, T: 257, H: 4, Hkv: 1, D: 17 },
  { B: 1, T: 130, H: 2, Hkv: 1, D: 128 },
  { B: 1, T: 600, H: 2, Hkv: 1, D: 64 }, // ten blocks: long online-softmax and dK/dV chains
];

describe("attention against float64 references", () => {
  describe.each(SHAPES.map((d, i) => ({ ...d, seed: 100 * i, name: label(d) })))("$name", (d) => {
    const c = makeCase(d, d.seed);
    const ref = refForward(f64(c.q.data), f64(c.k.data), f64(c.v.data), d, c.scale);
    const grad = refBackward(f64(c.dout.data), f64(c.q.data), f64(c.k.data), f64(c.v.data), d, c.scale);

    it.each(ISAS)("%s: forward, backward, and 1 vs 2 threads bitwise", (isa) => {
      const run = (threads: number) =>
        withSettings(isa, threads, () => {
          const f = attentionForward(c.q, c.k, c.v);
          const g = attentionBackward(c.dout, c.q, c.k, c.v, f.out, f.lse);
          return { ...f, ...g };
        });
      const one = run(1);
      expectClose(one.out.data, ref.out, fwdRtol(d), `${isa} ${d.name} out`);
      expectClose(one.lse.data, ref.lse, fwdRtol(d), `${isa} ${d.name} lse`);
      expectClose(one.dq.data, grad.dq, bwdRtol(d), `${isa} ${d.name} dq`);
      expectClose(one.dk.data, grad.dk, bwdRtol(d), `${isa} ${d.name} dk`);
      expectClose(one.dv.data, grad.dv, bwdRtol(d), `${isa} ${d.name} dv`);
      // With 2 threads and B·Hkv < 2 (or odd and small) the backward takes its two-pass
      // schedule, with 1 thread the fused one: both must give the same bits.
      const two = run(2);
      for (const key of ["out", "lse", "dq", "dk", "dv"] as const) {
        expectBitwiseEqual(one[key].data, two[key].data, `${isa} ${d.name} ${key} 1 vs 2 threads`);
      }
    });
  });
});

describe("attention backward against finite differences", () => {
  const d: Dims = { B: 1, T: 5, H: 4, Hkv: 2, D: 3 };
  const c = makeCase(d, 7);
  const q = f64(c.q.data);
  const k = f64(c.k.data);
  const v = f64(c.v.data);
  const w = f64(c.dout.data);
  const loss = (qq: Float64Array, kk: Float64Array, vv: Float64Array) => dot(w, refForward(qq, kk, vv, d, c.scale).out);
  const fd = {
    dq: finiteDifferences((x) => loss(x, k, v), q),
    dk: finiteDifferences((x) => loss(q, x, v), k),
    dv: finiteDifferences((x) => loss(q, k, x), v),
  };

  it("float64 analytic backward matches central differences", () => {
    const g = refBackward(w, q, k, v, d, c.scale);
    for (const key of ["dq", "dk", "dv"] as const) expectClose(g[key], fd[key], FD_RTOL, `reference ${key}`);
  });

  it.each(ISAS)("%s kernel backward matches central differences", (isa) => {
    const g = withSettings(isa, 2, () => {
      const f = attentionForward(c.q, c.k, c.v);
      return attentionBackward(c.dout, c.q, c.k, c.v, f.out, f.lse);
    });
    for (const key of ["dq", "dk", "dv"] as const) expectClose(g[key].data, fd[key], bwdRtol(d), `${isa} ${key}`);
  });
});

describe("attention determinism", () => {
  // B·Hkv = 1 and 3 leave 2 threads partly idle under the fused schedule: the two-pass
  // schedule runs with 2 threads, the fused one with 1.
  const cases: Dims[] = [
    { B: 1, T: 200, H: 4, Hkv: 1, D: 64 },
    { B: 3, T: 150, H: 2, Hkv: 1, D: 17 },
    { B: 2, T: 200, H: 4, Hkv: 2, D: 64 },
  ];
  it.each(ISAS)("%s: bitwise equal across thread counts and reruns", (isa) => {
    for (const d of cases) {
      const c = makeCase(d, 11);
      const run = (threads: number) =>
        withSettings(isa, threads, () => {
          const f = attentionForward(c.q, c.k, c.v, { scale: 0.3 });
          return { ...f, ...attentionBackward(c.dout, c.q, c.k, c.v, f.out, f.lse, { scale: 0.3 }) };
        });
      const one = run(1);
      const two = run(2);
      const again = run(2);
      for (const key of ["out", "lse", "dq", "dk", "dv"] as const) {
        expectBitwiseEqual(one[key].data, two[key].data, `${isa} ${label(d)} ${key} 1 vs 2 threads`);
        expectBitwiseEqual(two[key].data, again[key].data, `${isa} ${label(d)} ${key} rerun`);
      }
    }
  });

  it("writes into given outputs and leaves them consistent with fresh ones", () => {
    const d: Dims = { B: 1, T: 70, H: 2, Hkv: 1, D: 16 };
    const c = makeCase(d, 13);
    const fresh = attentionForward(c.q, c.k, c.v);
    const out = Tensor.from(randomF32(c.q.numel, 14), c.q.shape);
    const lse = Tensor.from(randomF32(d.B * d.H * d.T, 15), [d.B, d.H, d.T]);
    const given = attentionForward(c.q, c.k, c.v, { out, lse });
    expect(given.out).toBe(out);
    expectBitwiseEqual(given.out.data, fresh.out.data, "out");
    expectBitwiseEqual(given.lse.data, fresh.lse.data, "lse");
    const g1 = attentionBackward(c.dout, c.q, c.k, c.v, fresh.out, fresh.lse);
    const dk = Tensor.from(randomF32(c.k.numel, 16), c.k.shape);
    const g2 = attentionBackward(c.dout, c.q, c.k, c.v, fresh.out, fresh.lse, { dk });
    expect(g2.dk).toBe(dk);
    expectBitwiseEqual(g2.dk.data, g1.dk.data, "dk overwritten, not accumulated");
  });
});

describe("attention argument errors", () => {
  const d: Dims = { B: 1, T: 4, H: 4, Hkv: 2, D: 8 };
  const c = makeCase(d, 3);
  const f = attentionForward(c.q, c.k, c.v);

  it("rejects H not a multiple of Hkv", () => {
    const k3 = Tensor.zeros([1, 4, 3, 8]);
    expect(() => attentionForward(c.q, k3, k3)).toThrow(/attentionForward: H = 4 \(from "q"\) must be a multiple of Hkv = 3/);
    const q = new Float32Array(1 * 4 * 4 * 8);
    const kv = new Float32Array(1 * 4 * 3 * 8);
    expect(() => binding.attentionForward(new Float32Array(q.length), new Float32Array(16), q, kv, kv, 1, 4, 4, 3, 8, 0.5)).toThrow(
      /attentionForward: H = 4 must be a multiple of Hkv = 3/,
    );
    expect(() => binding.attentionForward(new Float32Array(q.length), new Float32Array(16), q, kv, kv, 1, 4, 4, 3, 8, 0.5)).toThrow(RangeError);
  });

  it("rejects wrong shapes and dtypes", () => {
    expect(() => attentionForward(c.q, Tensor.zeros([1, 5, 2, 8]), c.v)).toThrow(
      /attentionForward: expected "k" of shape \[B, T, Hkv, D\] = \[1, 4, Hkv, 8\] but received \[1, 5, 2, 8\]/,
    );
    expect(() => attentionForward(c.q, c.k, Tensor.zeros([1, 4, 1, 8]))).toThrow(
      /attentionForward: expected "v" of shape \[B, T, Hkv, D\] = \[1, 4, 2, 8\] but received \[1, 4, 1, 8\]/,
    );
    expect(() => attentionForward(c.q.reshape([4, 4, 8]), c.k, c.v)).toThrow(/attentionForward: expected "q" of rank 4/);
    expect(() => attentionForward(Tensor.zeros([1, 4, 4, 8], "int32"), c.k, c.v)).toThrow(TypeError);
    expect(() => attentionForward(c.q, c.k, c.v, { lse: Tensor.zeros([1, 4, 5]) })).toThrow(
      /attentionForward: expected "lse" of shape \[B, H, T\] = \[1, 4, 4\] but received \[1, 4, 5\]/,
    );
    expect(() => attentionBackward(c.dout, c.q, c.k, c.v, f.out, Tensor.zeros([1, 4, 5]))).toThrow(
      /attentionBackward: expected "lse" of shape \[B, H, T\] = \[1, 4, 4\] but received \[1, 4, 5\]/,
    );
    expect(() => attentionBackward(c.dout, c.q, c.k, c.v, f.out, f.lse, { dv: Tensor.zeros([1, 4, 4, 8]) })).toThrow(
      /attentionBackward: expected "dv" of shape \[B, T, Hkv, D\] = \[1, 4, 2, 8\] but received \[1, 4, 4, 8\]/,
    );
    // The binding re-checks every length against the sizes it is given.
    const q = new Float32Array(128);
    expect(() => binding.attentionForward(new Float32Array(128), new Float32Array(16), q, new Float32Array(63), new Float32Array(64), 1, 4, 4, 2, 8, 0.5)).toThrow(
      /attentionForward: expected Float32Array of length 64 \(\[B, T, Hkv, D\] = \[1, 4, 2, 8\]\) for "k" but received length 63/,
    );
    expect(() => binding.attentionBackward(q, new Float32Array(64), new Float32Array(64), q, q, new Float32Array(64), new Float32Array(64), q, new Float32Array(15), 1, 4, 4, 2, 8, 0.5)).toThrow(
      /attentionBackward: expected Float32Array of length 16 \(\[B, H, T\] = \[1, 4, 4\]\) for "lse" but received length 15/,
    );
  });

  it("rejects a non-finite or non-positive scale", () => {
    expect(() => attentionForward(c.q, c.k, c.v, { scale: NaN })).toThrow(/attentionForward: expected a finite "scale" > 0 but received NaN/);
    expect(() => attentionBackward(c.dout, c.q, c.k, c.v, f.out, f.lse, { scale: -1 })).toThrow(/attentionBackward: expected a finite "scale" > 0/);
    const q = new Float32Array(128);
    const kv = new Float32Array(64);
    expect(() => binding.attentionForward(new Float32Array(128), new Float32Array(16), q, kv, kv, 1, 4, 4, 2, 8, NaN)).toThrow(
      /attentionForward: expected a finite number for "scale"/,
    );
    expect(() => binding.attentionForward(new Float32Array(128), new Float32Array(16), q, kv, kv, 1, 4, 4, 2, 8, 0)).toThrow(
      /attentionForward: expected "scale" > 0/,
    );
  });

  it("rejects outputs that share memory with inputs", () => {
    expect(() => attentionForward(c.q, c.k, c.v, { out: c.q })).toThrow(/attentionForward: "out" must not share memory with "q"/);
    expect(() => attentionBackward(c.dout, c.q, c.k, c.v, f.out, f.lse, { dq: c.dout })).toThrow(
      /attentionBackward: "dq" must not share memory with "dout"/,
    );
  });
});
