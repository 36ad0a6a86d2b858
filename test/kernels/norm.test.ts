import { describe, expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { rmsnormBackward, rmsnormForward } from "../../src/kernels/norm.js";
import { Tensor } from "../../src/tensor.js";
import { BASE_SEED, dot, expectBitwiseEqual, expectClose, f64, finiteDifferences, randomF32 } from "../helpers/reference.js";
import { ISAS, expectDeterministic, withSettings } from "../helpers/native.js";

// rstd takes four fp32 roundings (mean, + eps, sqrt, divide), out two more products.
const FORWARD_RTOL = 2 ** -21;
// The backward's terms each carry a few fp32 roundings (rstd cubed among them); the error
// is measured against the size of the terms, since dinp may cancel (C = 1 cancels fully).
const BACKWARD_RTOL = 2 ** -20;
// Float64 analytic gradient vs float64 central differences (h = FD_STEP): O(h²) truncation.
const FD_STEP = 1e-6;
const FD_RTOL = 1e-7;
const EPS = 1e-5;
const SIZES = [1, 3, 17, 127, 257];

interface Forward64 {
  out: Float64Array;
  rstd: Float64Array;
}

function forward64(x: Float64Array, w: Float64Array, N: number, C: number, eps: number): Forward64 {
  const out = new Float64Array(N * C);
  const rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[n * C + c]! ** 2;
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[n] = r;
    for (let c = 0; c < C; c++) out[n * C + c] = x[n * C + c]! * r * w[c]!;
  }
  return { out, rstd };
}

interface Backward64 {
  dinp: Float64Array;
  dweight: Float64Array;
  /** |r·w·g| + |r³/C·x·Σ g·w·x| per element: the size of the terms dinp is made of. */
  scale: Float64Array;
  /** Σ_n |g·x·r| per channel: the size of the terms dweight sums. */
  dweightScale: Float64Array;
}

function backward64(g: Float64Array, x: Float64Array, w: Float64Array, rstd: Float64Array, N: number, C: number): Backward64 {
  const dinp = new Float64Array(N * C);
  const dweight = new Float64Array(C);
  const scale = new Float64Array(N * C);
  const dweightScale = new Float64Array(C);
  for (let n = 0; n < N; n++) {
    const r = rstd[n]!;
    let s = 0;
    for (let c = 0; c < C; c++) s += g[n * C + c]! * w[c]! * x[n * C + c]!;
    const k = (r * r * r * s) / C;
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      dinp[i] = r * w[c]! * g[i]! - k * x[i]!;
      scale[i] = Math.abs(r * w[c]! * g[i]!) + Math.abs(k * x[i]!);
      dweight[c] = dweight[c]! + g[i]! * x[i]! * r;
      dweightScale[c] = dweightScale[c]! + Math.abs(g[i]! * x[i]! * r);
    }
  }
  return { dinp, dweight, scale, dweightScale };
}

/** max|actual - expected| <= rtol · max(scale). */
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

function inputs(N: number, C: number, seed: number) {
  return {
    x: Tensor.from(randomF32(N * C, seed, -2, 2), [N, C]),
    w: Tensor.from(randomF32(C, seed + 1, 0.5, 1.5)),
    g: Tensor.from(randomF32(N * C, seed + 2), [N, C]),
    dw0: randomF32(C, seed + 3),
  };
}

describe.each(ISAS)("rmsnorm (%s)", (isa) => {
  describe.each(SIZES)("N=%i", (N) => {
    it.each(SIZES)("C=%i forward and backward match float64", (C) => {
      const { x, w, g, dw0 } = inputs(N, C, 10 * N + C);
      const ref = forward64(f64(x.data), f64(w.data), N, C, EPS);
      const { out, rstd } = withSettings(isa, 2, () => rmsnormForward(x, w, EPS));
      expectClose(out.data, ref.out, FORWARD_RTOL, `out N=${N} C=${C}`);
      expectClose(rstd.data, ref.rstd, FORWARD_RTOL, `rstd N=${N} C=${C}`);

      const dweight = Tensor.from(dw0);
      const dinp = withSettings(isa, 2, () => rmsnormBackward(g, x, w, rstd, dweight));
      const back = backward64(f64(g.data), f64(x.data), f64(w.data), ref.rstd, N, C);
      expectWithin(dinp.data, back.dinp, back.scale, BACKWARD_RTOL, `dinp N=${N} C=${C}`);
      const dwExpected = Float64Array.from(back.dweight, (v, c) => v + dw0[c]!);
      // dweight's terms: |dweight0| + Σ_n |dout·inp·rstd| per column.
      const dwScale = Float64Array.from(dw0, Math.abs);
      for (let i = 0; i < N * C; i++) dwScale[i % C] = dwScale[i % C]! + Math.abs(g.data[i]! * x.data[i]! * ref.rstd[Math.floor(i / C)]!);
      expectWithin(dweight.data, dwExpected, dwScale, BACKWARD_RTOL, `dweight N=${N} C=${C}`);
    });
  });

  it.each([
    [3, 17],
    [2, 1],
    [1, 64],
  ])("backward N=%i C=%i matches finite differences of the float64 forward", (N, C) => {
    const { x, w, g } = inputs(N, C, 7 + C);
    const x64 = f64(x.data);
    const w64 = f64(w.data);
    const g64 = f64(g.data);
    // h = 1e-6: with C = 1 the output is x·w/sqrt(x² + eps), curved on the scale sqrt(eps),
    // where h = 1e-5 leaves a truncation error above FD_RTOL for small x.
    const fdX = finiteDifferences((xp) => dot(g64, forward64(xp, w64, N, C, EPS).out), x64, FD_STEP);
    const fdW = finiteDifferences((wp) => dot(g64, forward64(x64, wp, N, C, EPS).out), w64, FD_STEP);
    const ref = forward64(x64, w64, N, C, EPS);
    const back = backward64(g64, x64, w64, ref.rstd, N, C);
    expectWithin(back.dinp, fdX, back.scale, FD_RTOL, "float64 dinp vs finite differences");
    expectClose(back.dweight, fdW, FD_RTOL, "float64 dweight vs finite differences");

    const { rstd } = withSettings(isa, 1, () => rmsnormForward(x, w, EPS));
    const dweight = Tensor.zeros([C]);
    const dinp = withSettings(isa, 1, () => rmsnormBackward(g, x, w, rstd, dweight));
    expectWithin(dinp.data, fdX, back.scale, BACKWARD_RTOL, "dinp vs finite differences");
    // dweight sums N terms that may cancel (C = 1, N = 2): bounded against the terms' sizes.
    expectWithin(dweight.data, fdW, back.dweightScale, BACKWARD_RTOL, "dweight vs finite differences");
  });

  it.each([
    [257, 257],
    [1000, 64],
    [3, 5000],
    [5000, 3],
  ])("N=%i C=%i is bitwise the same for 1 and 2 threads and on rerun, dweight summed over many blocks", (N, C) => {
    const { x, w, g, dw0 } = inputs(N, C, 99);
    const one = expectDeterministic(isa, () => {
      const { out, rstd } = rmsnormForward(x, w, EPS);
      const dweight = Tensor.from(dw0);
      const dinp = rmsnormBackward(g, x, w, rstd, dweight);
      return { out, rstd, dinp, dweight };
    });
    const ref = forward64(f64(x.data), f64(w.data), N, C, EPS);
    const back = backward64(f64(g.data), f64(x.data), f64(w.data), ref.rstd, N, C);
    expectClose(one.dweight.data, Float64Array.from(back.dweight, (v, c) => v + dw0[c]!), BACKWARD_RTOL, `dweight N=${N} C=${C}`);
  });
});

describe("rmsnorm shapes, accumulation and errors", () => {
  it("takes [..., C] activations and returns rstd of the leading shape", () => {
    const x = Tensor.from(randomF32(2 * 3 * 8, 1), [2, 3, 8]);
    const w = Tensor.from(randomF32(8, 2));
    const { out, rstd } = rmsnormForward(x, w, 1e-6);
    expect(out.shape).toEqual([2, 3, 8]);
    expect(rstd.shape).toEqual([2, 3]);
    const flat = rmsnormForward(x.reshape([6, 8]), w, 1e-6);
    expectBitwiseEqual(out.data, flat.out.data, "[2, 3, 8] vs [6, 8]");
    const dinp = rmsnormBackward(Tensor.from(randomF32(48, 3), [2, 3, 8]), x, w, rstd, Tensor.zeros([8]));
    expect(dinp.shape).toEqual([2, 3, 8]);
  });

  it("accumulates dweight over calls", () => {
    const { x, w, g } = inputs(5, 9, 4);
    const { rstd } = rmsnormForward(x, w, EPS);
    const once = Tensor.zeros([9]);
    rmsnormBackward(g, x, w, rstd, once);
    const twice = Tensor.zeros([9]);
    rmsnormBackward(g, x, w, rstd, twice);
    rmsnormBackward(g, x, w, rstd, twice);
    expectClose(twice.data, Float64Array.from(once.data, (v) => 2 * v), 2 ** -23, "dweight twice");
  });

  it("refuses bad shapes, dtypes and eps before touching memory", () => {
    const x = Tensor.from(randomF32(12 * 512, 5), [12, 512]);
    const w = Tensor.zeros([512]);
    expect(() => rmsnormForward(x, Tensor.zeros([500]), EPS)).toThrow(
      /rmsnormForward: expected "weight" of shape \[C\] = \[512\] but received \[500\]/,
    );
    expect(() => rmsnormForward(x, Tensor.zeros([512], "int32"), EPS)).toThrow(TypeError);
    expect(() => rmsnormForward(x, w, NaN)).toThrow(/rmsnormForward: expected a finite number for "eps"/);
    expect(() => rmsnormForward(x, w, 0)).toThrow(/rmsnormForward: expected "eps" > 0 but received 0/);
    expect(() => rmsnormForward(x, w, -1e-5)).toThrow(RangeError);
    expect(() => rmsnormForward(x, w, EPS, Tensor.zeros([12, 511]))).toThrow(/rmsnormForward: expected "out"/);
    const { rstd } = rmsnormForward(x, w, EPS);
    expect(() => rmsnormBackward(x, x, w, Tensor.zeros([11]), Tensor.zeros([512]))).toThrow(/rmsnormBackward: expected "rstd"/);
    expect(() => rmsnormBackward(x, x, w, rstd, Tensor.zeros([511]))).toThrow(/rmsnormBackward: expected "dweight"/);
    expect(() => rmsnormBackward(Tensor.zeros([12, 512], "int32"), x, w, rstd, Tensor.zeros([512]))).toThrow(TypeError);
  });

  it("the binding re-checks lengths and eps (also eps that is 0 in fp32)", () => {
    const out = new Float32Array(6);
    const rstd = new Float32Array(2);
    const inp = new Float32Array(6);
    const w = new Float32Array(3);
    expect(() => binding.rmsnormForward(out, rstd, new Float32Array(5), w, 2, 3, EPS)).toThrow(
      /rmsnormForward: expected Float32Array of length 6 \(\[N, C\] = \[2, 3\]\) for "inp" but received length 5/,
    );
    expect(() => binding.rmsnormForward(out, rstd, inp, w, 2, 3, 1e-50)).toThrow(RangeError);
    expect(() => binding.rmsnormForward(out, rstd, inp, w, 2, 3, Infinity)).toThrow(RangeError);
    expect(() => binding.rmsnormForward(out, rstd, inp, w, 2 ** 40, 2 ** 40, EPS)).toThrow(/more than 2\^53 - 1 elements/);
    expect(() => binding.rmsnormBackward(out, w, out, inp, w, new Float32Array(3), 2, 3)).toThrow(/"rstd"/);
  });
});
