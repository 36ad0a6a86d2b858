import { describe, expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { rmsnormBackward, rmsnormFilmBackward, rmsnormFilmForward, rmsnormForward } from "../../src/kernels/norm.js";
import { Tensor } from "../../src/tensor.js";
import { BASE_SEED, dot, expectBitwiseEqual, f64, finiteDifferences, randomF32 } from "../helpers/reference.js";
import { ISAS, expectDeterministic, withSettings } from "../helpers/native.js";

// rstd takes four fp32 roundings, out three more products and the shift's addition.
const FORWARD_RTOL = 2 ** -20;
// The backward's terms each carry a few fp32 roundings (rstd cubed, dout·gamma among them);
// measured against the size of the terms, since the sums may cancel.
const BACKWARD_RTOL = 2 ** -19;
// Float64 analytic gradients vs float64 central differences (h = FD_STEP): O(h²) truncation.
const FD_STEP = 1e-6;
const FD_RTOL = 1e-7;
const EPS = 1e-5;

interface Case {
  N: number;
  C: number;
  group: number;
  M: number;
}

/** Member of row n: runs of `group` rows alternate between the M members. */
const memberOf = (n: number, group: number, M: number): number => Math.floor(n / group) % M;

function forward64(x: Float64Array, w: Float64Array, gamma: Float64Array, beta: Float64Array, { N, C, group, M }: Case) {
  const out = new Float64Array(N * C);
  const rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[n * C + c]! ** 2;
    const r = 1 / Math.sqrt(ss / C + EPS);
    rstd[n] = r;
    const m = memberOf(n, group, M);
    for (let c = 0; c < C; c++) out[n * C + c] = x[n * C + c]! * r * w[c]! * gamma[m * C + c]! + beta[m * C + c]!;
  }
  return { out, rstd };
}

/** Analytic float64 gradients and, per output, the sizes of the terms each one sums. */
function backward64(g: Float64Array, x: Float64Array, w: Float64Array, gamma: Float64Array, rstd: Float64Array, { N, C, group, M }: Case) {
  const dinp = new Float64Array(N * C);
  const dinpScale = new Float64Array(N * C);
  const dweight = new Float64Array(C);
  const dweightScale = new Float64Array(C);
  const dgamma = new Float64Array(M * C);
  const dgammaScale = new Float64Array(M * C);
  const dbeta = new Float64Array(M * C);
  const dbetaScale = new Float64Array(M * C);
  for (let n = 0; n < N; n++) {
    const r = rstd[n]!;
    const m = memberOf(n, group, M);
    let s = 0;
    for (let c = 0; c < C; c++) s += g[n * C + c]! * gamma[m * C + c]! * w[c]! * x[n * C + c]!;
    const k = (r * r * r * s) / C;
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      const gs = g[i]! * gamma[m * C + c]!;
      dinp[i] = r * w[c]! * gs - k * x[i]!;
      dinpScale[i] = Math.abs(r * w[c]! * gs) + Math.abs(k * x[i]!);
      dweight[c] = dweight[c]! + gs * x[i]! * r;
      dweightScale[c] = dweightScale[c]! + Math.abs(gs * x[i]! * r);
      dgamma[m * C + c] = dgamma[m * C + c]! + g[i]! * x[i]! * r * w[c]!;
      dgammaScale[m * C + c] = dgammaScale[m * C + c]! + Math.abs(g[i]! * x[i]! * r * w[c]!);
      dbeta[m * C + c] = dbeta[m * C + c]! + g[i]!;
      dbetaScale[m * C + c] = dbetaScale[m * C + c]! + Math.abs(g[i]!);
    }
  }
  return { dinp, dinpScale, dweight, dweightScale, dgamma, dgammaScale, dbeta, dbetaScale };
}

/** max|actual − expected| <= rtol · max(scale) (error relative to the terms' size). */
function expectWithin(actual: ArrayLike<number>, expected: ArrayLike<number>, scale: ArrayLike<number>, rtol: number, label: string): void {
  let diff = 0;
  let size = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    size = Math.max(size, Math.abs(scale[i]!));
  }
  const err = size === 0 ? diff : diff / size;
  expect(err, `${label}: error ${err.toExponential(3)} > ${rtol} of the terms (GROWLM_TEST_SEED=${BASE_SEED})`).toBeLessThanOrEqual(rtol);
}

function inputs({ N, C, M }: Case, seed: number) {
  return {
    x: Tensor.from(randomF32(N * C, seed, -2, 2), [N, C]),
    w: Tensor.from(randomF32(C, seed + 1, 0.5, 1.5)),
    gamma: Tensor.from(randomF32(M * C, seed + 2, 0.7, 1.3), [M, C]),
    beta: Tensor.from(randomF32(M * C, seed + 3, -0.3, 0.3), [M, C]),
    g: Tensor.from(randomF32(N * C, seed + 4), [N, C]),
  };
}

/** Accumulators with non-zero starting values (the kernel adds to them). */
function accumulators({ C, M }: Case, seed: number) {
  return { dweight: Tensor.from(randomF32(C, seed + 5)), dgamma: Tensor.from(randomF32(M * C, seed + 6), [M, C]), dbeta: Tensor.from(randomF32(M * C, seed + 7), [M, C]) };
}

const CASES: Case[] = [
  { N: 1, C: 1, group: 1, M: 1 },
  { N: 12, C: 17, group: 3, M: 4 },
  { N: 40, C: 127, group: 5, M: 2 },
  { N: 7, C: 257, group: 2, M: 3 }, // the last run is cut short
  { N: 70, C: 33, group: 1, M: 5 }, // runs of one row: member = row mod M
  { N: 9, C: 600, group: 9, M: 4 }, // members 1..3 have no row; dgamma crosses a column chunk
];

describe.each(ISAS)("rmsnorm + FiLM (%s)", (isa) => {
  it.each(CASES)("N=$N C=$C group=$group M=$M: forward and backward match float64", (cse) => {
    const { N, C, M } = cse;
    const seed = 1000 + N * 7 + C;
    const { x, w, gamma, beta, g } = inputs(cse, seed);
    const ref = forward64(f64(x.data), f64(w.data), f64(gamma.data), f64(beta.data), cse);
    const { out, rstd } = withSettings(isa, 2, () => rmsnormFilmForward(x, w, gamma, beta, cse.group, EPS));
    // out's terms: |normed · gamma| + |beta|.
    const outScale = Float64Array.from(ref.out, (_, i) => {
      const m = memberOf(Math.floor(i / C), cse.group, M);
      return Math.abs((ref.out[i]! - beta.data[m * C + (i % C)]!)) + Math.abs(beta.data[m * C + (i % C)]!);
    });
    expectWithin(out.data, ref.out, outScale, FORWARD_RTOL, "out");
    expectWithin(rstd.data, ref.rstd, ref.rstd, FORWARD_RTOL, "rstd");

    const acc = accumulators(cse, seed);
    const start = { dweight: f64(acc.dweight.data), dgamma: f64(acc.dgamma.data), dbeta: f64(acc.dbeta.data) };
    const dinp = withSettings(isa, 2, () => rmsnormFilmBackward(g, x, w, gamma, rstd, cse.group, acc));
    const back = backward64(f64(g.data), f64(x.data), f64(w.data), f64(gamma.data), ref.rstd, cse);
    expectWithin(dinp.data, back.dinp, back.dinpScale, BACKWARD_RTOL, "dinp");
    const plus = (a: Float64Array, b: Float64Array): Float64Array => Float64Array.from(a, (v, i) => v + b[i]!);
    const withStart = (scale: Float64Array, s: Float64Array): Float64Array => Float64Array.from(scale, (v, i) => v + Math.abs(s[i]!));
    expectWithin(acc.dweight.data, plus(back.dweight, start.dweight), withStart(back.dweightScale, start.dweight), BACKWARD_RTOL, "dweight");
    expectWithin(acc.dgamma.data, plus(back.dgamma, start.dgamma), withStart(back.dgammaScale, start.dgamma), BACKWARD_RTOL, "dgamma");
    expectWithin(acc.dbeta.data, plus(back.dbeta, start.dbeta), withStart(back.dbetaScale, start.dbeta), BACKWARD_RTOL, "dbeta");
  });

  it("the backward matches finite differences of the float64 forward (gamma, beta, inp, weight)", () => {
    const cse: Case = { N: 6, C: 5, group: 2, M: 2 };
    const { x, w, gamma, beta, g } = inputs(cse, 77);
    const [x64, w64, ga64, be64, g64] = [x, w, gamma, beta, g].map((t) => f64(t.data)) as [Float64Array, Float64Array, Float64Array, Float64Array, Float64Array];
    const loss = (xp: Float64Array, wp: Float64Array, gp: Float64Array, bp: Float64Array): number => dot(g64, forward64(xp, wp, gp, bp, cse).out);
    const fd = {
      dinp: finiteDifferences((v) => loss(v, w64, ga64, be64), x64, FD_STEP),
      dweight: finiteDifferences((v) => loss(x64, v, ga64, be64), w64, FD_STEP),
      dgamma: finiteDifferences((v) => loss(x64, w64, v, be64), ga64, FD_STEP),
      dbeta: finiteDifferences((v) => loss(x64, w64, ga64, v), be64, FD_STEP),
    };
    const back = backward64(g64, x64, w64, ga64, forward64(x64, w64, ga64, be64, cse).rstd, cse);
    expectWithin(back.dinp, fd.dinp, back.dinpScale, FD_RTOL, "float64 dinp vs finite differences");
    expectWithin(back.dweight, fd.dweight, back.dweightScale, FD_RTOL, "float64 dweight vs finite differences");
    expectWithin(back.dgamma, fd.dgamma, back.dgammaScale, FD_RTOL, "float64 dgamma vs finite differences");
    expectWithin(back.dbeta, fd.dbeta, back.dbetaScale, FD_RTOL, "float64 dbeta vs finite differences");

    const { rstd } = withSettings(isa, 1, () => rmsnormFilmForward(x, w, gamma, beta, cse.group, EPS));
    const acc = { dweight: Tensor.zeros([cse.C]), dgamma: Tensor.zeros([cse.M, cse.C]), dbeta: Tensor.zeros([cse.M, cse.C]) };
    const dinp = withSettings(isa, 1, () => rmsnormFilmBackward(g, x, w, gamma, rstd, cse.group, acc));
    expectWithin(dinp.data, fd.dinp, back.dinpScale, BACKWARD_RTOL, "dinp vs finite differences");
    expectWithin(acc.dgamma.data, fd.dgamma, back.dgammaScale, BACKWARD_RTOL, "dgamma vs finite differences");
    expectWithin(acc.dbeta.data, fd.dbeta, back.dbetaScale, BACKWARD_RTOL, "dbeta vs finite differences");
  });

  it.each([
    [64, 513],
    [1000, 64],
  ])("one member with gamma = 1, beta = 0 is bitwise the plain RMSNorm (N=%i C=%i)", (N, C) => {
    const x = Tensor.from(randomF32(N * C, 5, -2, 2), [N, C]);
    const w = Tensor.from(randomF32(C, 6, 0.5, 1.5));
    const g = Tensor.from(randomF32(N * C, 7), [N, C]);
    const gamma = Tensor.from(new Float32Array(C).fill(1), [1, C]);
    const beta = Tensor.zeros([1, C]);
    withSettings(isa, 2, () => {
      const plain = rmsnormForward(x, w, EPS);
      const film = rmsnormFilmForward(x, w, gamma, beta, 8, EPS);
      expectBitwiseEqual(film.out.data, plain.out.data, "out");
      expectBitwiseEqual(film.rstd.data, plain.rstd.data, "rstd");
      const dwPlain = Tensor.from(randomF32(C, 8));
      const acc = { dweight: dwPlain.clone(), dgamma: Tensor.zeros([1, C]), dbeta: Tensor.zeros([1, C]) };
      const dinpPlain = rmsnormBackward(g, x, w, plain.rstd, dwPlain);
      const dinpFilm = rmsnormFilmBackward(g, x, w, gamma, film.rstd, 8, acc);
      expectBitwiseEqual(dinpFilm.data, dinpPlain.data, "dinp");
      expectBitwiseEqual(acc.dweight.data, dwPlain.data, "dweight");
    });
  });

  it.each([
    { N: 2000, C: 96, group: 50, M: 4 },
    { N: 300, C: 1100, group: 3, M: 3 },
  ])("N=$N C=$C M=$M is bitwise the same for 1 and 2 threads and on rerun", (cse) => {
    const { x, w, gamma, beta, g } = inputs(cse, 31);
    expectDeterministic(isa, () => {
      const { out, rstd } = rmsnormFilmForward(x, w, gamma, beta, cse.group, EPS);
      const acc = accumulators(cse, 31);
      const dinp = rmsnormFilmBackward(g, x, w, gamma, rstd, cse.group, acc);
      return { out, rstd, dinp, ...acc };
    });
  });
});

describe("rmsnorm + FiLM errors", () => {
  it("refuses shapes, member layouts and eps before touching memory", () => {
    const x = Tensor.from(randomF32(12 * 8, 1), [12, 8]);
    const w = Tensor.zeros([8]);
    const gamma = Tensor.zeros([3, 8]);
    expect(() => rmsnormFilmForward(x, w, gamma, Tensor.zeros([2, 8]), 4, EPS)).toThrow(/rmsnormFilmForward: expected "beta" of shape \[M, C\] = \[3, 8\] but received \[2, 8\]/);
    expect(() => rmsnormFilmForward(x, w, Tensor.zeros([3, 7]), Tensor.zeros([3, 7]), 4, EPS)).toThrow(/"gamma" of shape \[M, C\] = \[3, 8\]/);
    expect(() => rmsnormFilmForward(x, w, gamma, gamma, 0, EPS)).toThrow(/expected "group" a positive integer but received 0/);
    expect(() => rmsnormFilmForward(x, w, gamma, gamma, 4, 0)).toThrow(/"eps" > 0/);
    const { rstd } = rmsnormFilmForward(x, w, gamma, gamma, 4, EPS);
    const acc = { dweight: Tensor.zeros([8]), dgamma: Tensor.zeros([3, 8]), dbeta: Tensor.zeros([2, 8]) };
    expect(() => rmsnormFilmBackward(x, x, w, gamma, rstd, 4, acc)).toThrow(/rmsnormFilmBackward: expected "dbeta" of shape \[M, C\] = \[3, 8\]/);
  });

  it("the binding re-checks every length", () => {
    const f = (n: number): Float32Array => new Float32Array(n);
    expect(() => binding.rmsnormFilmForward(f(6), f(2), f(6), f(3), f(5), f(6), 2, 3, 1, 2, EPS)).toThrow(
      /rmsnormFilmForward: expected Float32Array of length 6 \(\[M, C\] = \[2, 3\]\) for "gamma" but received length 5/,
    );
    expect(() => binding.rmsnormFilmForward(f(6), f(2), f(6), f(3), f(6), f(6), 2, 3, 0, 2, EPS)).toThrow(/"group"/);
    expect(() => binding.rmsnormFilmBackward(f(6), f(3), f(6), f(5), f(6), f(6), f(3), f(6), f(2), 2, 3, 1, 2)).toThrow(/"dbeta"/);
  });
});
