import { describe, expect, it } from "vitest";

import { binding, type Isa } from "../../src/native.js";
import { adamwStep, clipGradNorm, globalGradNorm, type AdamwHyper, type AdamwSegment } from "../../src/kernels/adamw.js";
import { Tensor } from "../../src/tensor.js";
import { BASE_SEED, expectBitwiseEqual, expectClose, randomF32 } from "../helpers/reference.js";
import { ISAS, withSettings } from "../helpers/native.js";

// A float64 AdamW and the float32 kernel differ by float32 rounding of each op; over a few
// steps that stays within a few ulps of the largest term that entered the update.
const F64_RTOL = 2e-6;
// The hand-computed values are float64; the kernel's result is float32.
const HAND_RTOL = 2 ** -23;
// The gradient norm is a float64 sum of exact squares: only float64 rounding differs.
const NORM_RTOL = 1e-12;
const SIZES = [1, 17, 257, 100_003];

const f = Math.fround;
const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** The float32 next to f (a float32, nonzero) in the direction of target. */
function neighbour(x: number, target: number): number {
  scratch[0] = x;
  scratchBits[0] = scratchBits[0]! + ((target > x) === (x > 0) ? 1 : -1);
  return scratch[0]!;
}

/** fmaf(a, b, c) rounded once to float32, exactly (a·b of two floats is exact in float64). */
function fmaf(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const t = s - p;
  const e = p - (s - t) + (c - t); // p + c = s + e exactly (TwoSum)
  const r = f(s);
  if (e === 0 || r === s || r === 0) return r;
  // Double rounding can only go wrong when s sits exactly halfway between two floats.
  const other = neighbour(r, s);
  if (s - r === other - s) return (e > 0) === (other > r) ? other : r;
  return r;
}

function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}

/**
 * max|actual - expected| <= rtol · scale, where scale is the largest magnitude that entered
 * the computation: a moment can cancel to ~0 (one element at n = 1), where a relative
 * error means nothing.
 */
function expectWithin(actual: ArrayLike<number>, expected: ArrayLike<number>, scale: number, rtol: number, label: string): void {
  let err = 0;
  for (let i = 0; i < expected.length; i++) err = Math.max(err, Math.abs(actual[i]! - expected[i]!));
  expect(err / scale, `${label}: error ${err.toExponential(3)} = ${(err / scale).toExponential(3)} of ${scale.toExponential(3)} (seed ${BASE_SEED})`).toBeLessThanOrEqual(rtol);
}

interface State {
  p: Float32Array;
  g: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

/**
 * torch.optim.AdamW's float32 op sequence (each tensor op rounds to float32; ATen's lerp
 * uses fmadd, which is an FMA on the AVX2/AVX-512 builds and mul + add on SSE2).
 */
function torchEmulation(s: State, segments: readonly AdamwSegment[], h: AdamwHyper, fma: boolean): void {
  const decay = f(1 - h.lr * h.weightDecay);
  const w = f(1 - h.beta1);
  const small = Math.abs(w) < 0.5;
  const coeff = small ? w : f(w - 1);
  const b2 = f(h.beta2);
  const c2 = f(1 - h.beta2);
  const bc2 = f(Math.sqrt(1 - h.beta2 ** h.step));
  const eps = f(h.eps);
  const negStep = f(-(h.lr / (1 - h.beta1 ** h.step)));
  const gs = f(h.gradScale ?? 1);
  for (const seg of segments) {
    for (let i = seg.begin; i < seg.end; i++) {
      const g = f(s.g[i]! * gs);
      const d = f(g - s.m[i]!);
      const base = small ? s.m[i]! : g;
      const m = fma ? fmaf(coeff, d, base) : f(f(coeff * d) + base);
      const v = f(f(s.v[i]! * b2) + f(f(c2 * g) * g));
      const denom = f(f(f(Math.sqrt(v)) / bc2) + eps);
      const p = seg.decay ? f(s.p[i]! * decay) : s.p[i]!;
      s.p[i] = f(p + f(f(negStep * m) / denom));
      s.m[i] = m;
      s.v[i] = v;
    }
  }
}

/** AdamW in float64 (the mathematical update). */
function float64AdamW(p: Float64Array, g: Float64Array, m: Float64Array, v: Float64Array, segments: readonly AdamwSegment[], h: AdamwHyper): void {
  const bc1 = 1 - h.beta1 ** h.step;
  const bc2 = 1 - h.beta2 ** h.step;
  for (const seg of segments) {
    for (let i = seg.begin; i < seg.end; i++) {
      const gi = g[i]! * (h.gradScale ?? 1);
      if (seg.decay) p[i] = p[i]! * (1 - h.lr * h.weightDecay);
      m[i] = h.beta1 * m[i]! + (1 - h.beta1) * gi;
      v[i] = h.beta2 * v[i]! + (1 - h.beta2) * gi * gi;
      p[i] = p[i]! - (h.lr / bc1) * (m[i]! / (Math.sqrt(v[i]! / bc2) + h.eps));
    }
  }
}

/** Three segments: decay, no decay (a norm's weight), decay; sizes follow n. */
function segmentsOf(n: number): AdamwSegment[] {
  const a = Math.floor(n / 3);
  const b = Math.floor((2 * n) / 3);
  return [
    { begin: 0, end: a, decay: true },
    { begin: a, end: b, decay: false },
    { begin: b, end: n, decay: true },
  ];
}

function bf16Of(x: number): number {
  scratch[0] = x;
  const u = scratchBits[0]!;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

function hasFma(isa: Isa): boolean {
  return isa !== "portable";
}

describe.each(ISAS)("adamw (%s)", (isa) => {
  // Steps 1, 2 (from zero moments), 10 and 1000 (from random moments): bias correction from
  // 0.1 to ~1, with and without grad scaling, beta1 above and below torch's lerp switch.
  const cases: [string, number, AdamwHyper][] = [
    ["t=1", 1, { lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 1 }],
    ["t=2 gradScale", 2, { lr: 0.02, beta1: 0.9, beta2: 0.95, eps: 1e-6, weightDecay: 0.01, step: 2, gradScale: 0.37 }],
    ["t=10 beta1<0.5", 10, { lr: 0.01, beta1: 0.3, beta2: 0.99, eps: 1e-8, weightDecay: 0.5, step: 10 }],
    ["t=1000", 1000, { lr: 0.003, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 1000, gradScale: 1.9 }],
  ];

  it.each(SIZES)("n=%i is bitwise torch's float32 op sequence and close to float64 AdamW", (n) => {
    for (const [label, start, hyper] of cases) {
      const segments = segmentsOf(n);
      const p = Tensor.from(randomF32(n, 1, -1, 1));
      const m = start === 1 ? Tensor.zeros([n]) : Tensor.from(randomF32(n, 2, -0.01, 0.01));
      const v = start === 1 ? Tensor.zeros([n]) : Tensor.from(randomF32(n, 3, 0, 1e-4));
      const paramsBf16 = Tensor.zeros([n], "bfloat16");
      const emu: State = { p: Float32Array.from(p.data), g: new Float32Array(n), m: Float32Array.from(m.data), v: Float32Array.from(v.data) };
      const p64 = Float64Array.from(p.data);
      const m64 = Float64Array.from(m.data);
      const v64 = Float64Array.from(v.data);
      const scale = { p: maxAbs(p.data), m: maxAbs(m.data), v: maxAbs(v.data) };
      for (let k = 0; k < 3; k++) {
        const grads = Tensor.from(randomF32(n, 10 + k, -0.1, 0.1));
        const g = maxAbs(grads.data) * (hyper.gradScale ?? 1);
        scale.m = Math.max(scale.m, g);
        scale.v = Math.max(scale.v, g * g);
        const h = { ...hyper, step: start + k };
        withSettings(isa, 2, () => adamwStep({ params: p, grads, m, v, paramsBf16 }, segments, h));
        emu.g = grads.data as Float32Array;
        torchEmulation(emu, segments, h, hasFma(isa));
        float64AdamW(p64, Float64Array.from(grads.data), m64, v64, segments, h);
      }
      expectBitwiseEqual(p.data, emu.p, `${label} n=${n} params vs torch emulation`);
      expectBitwiseEqual(m.data, emu.m, `${label} n=${n} m vs torch emulation`);
      expectBitwiseEqual(v.data, emu.v, `${label} n=${n} v vs torch emulation`);
      expectWithin(p.data, p64, scale.p, F64_RTOL, `${label} n=${n} params vs float64`);
      expectWithin(m.data, m64, scale.m, F64_RTOL, `${label} n=${n} m vs float64`);
      expectWithin(v.data, v64, scale.v, F64_RTOL, `${label} n=${n} v vs float64`);
      for (let i = 0; i < n; i++) {
        if (paramsBf16.data[i] !== bf16Of(p.data[i]!)) expect.fail(`${label}: bf16 copy [${i}] is not the rounding of ${p.data[i]}`);
      }
    }
  });

  it("matches AdamW values computed by hand with PyTorch's formula", () => {
    // Element 0 decays and takes steps 1 and 2; element 1 does not decay and is reset before
    // a step at t = 1000 (the empty first segment is allowed and skipped).
    const params = Tensor.from([1, -0.3]);
    const m = Tensor.from([0, 0]);
    const v = Tensor.from([0, 0]);
    const segments = [
      { begin: 0, end: 0, decay: false },
      { begin: 0, end: 1, decay: true },
      { begin: 1, end: 2, decay: false },
    ];
    const hyper = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
    // t = 1, g = 0.5: p = 1·(1 - 0.1·0.01) = 0.999; m = 0 + 0.1·(0.5 - 0) = 0.05;
    // v = 0.001·0.25 = 0.00025; step_size = 0.1 / (1 - 0.9) = 1;
    // denom = sqrt(0.00025)/sqrt(0.001) + 1e-8 = 0.50000001; p = 0.999 - 0.05/0.50000001.
    withSettings(isa, 1, () => adamwStep({ params, grads: Tensor.from([0.5, 0]), m, v }, segments, { ...hyper, step: 1 }));
    expectClose([params.data[0]!, m.data[0]!, v.data[0]!], [0.899000002, 0.05, 0.00025], HAND_RTOL, "hand t=1");
    // t = 2, g = -0.25: p = 0.899000002·0.999 = 0.898101002; m = 0.05 + 0.1·(-0.25 - 0.05) = 0.02;
    // v = 0.00025·0.999 + 0.001·0.0625 = 0.00031225; step_size = 0.1 / (1 - 0.81);
    // denom = sqrt(0.00031225)/sqrt(1 - 0.998001) + 1e-8 = 0.39522784; p = 0.898101002 - 0.0266336.
    withSettings(isa, 1, () => adamwStep({ params, grads: Tensor.from([-0.25, 0]), m, v }, segments, { ...hyper, step: 2 }));
    expectClose([params.data[0]!, m.data[0]!, v.data[0]!], [0.8714672987058463, 0.02, 0.00031225], HAND_RTOL, "hand t=2");
    // t = 1000, no decay, g = 0.8 scaled by 0.5 = 0.4, from m = 0.02, v = 0.0004:
    // m = 0.02 + 0.1·(0.4 - 0.02) = 0.058; v = 0.0004·0.999 + 0.001·0.16 = 0.0005596;
    // 1 - 0.9^1000 = 1; sqrt(1 - 0.999^1000) = 0.7951758; denom = 0.0236559/0.7951758 + 1e-8;
    // p = -0.3 - 0.1·0.058/0.0297490 = -0.494962981.
    params.data[1] = -0.3;
    m.data[1] = 0.02;
    v.data[1] = 0.0004;
    withSettings(isa, 1, () =>
      adamwStep({ params, grads: Tensor.from([0, 0.8]), m, v }, segments, { ...hyper, step: 1000, gradScale: 0.5 }),
    );
    expectClose([params.data[1]!, m.data[1]!, v.data[1]!], [-0.4949629810845523, 0.058, 0.0005596], HAND_RTOL, "hand t=1000");
  });

  it("is bitwise the same for 1 and 2 threads, with and without the bf16 copy", () => {
    const n = 300_007; // several tasks, an odd tail
    const segments = segmentsOf(n);
    const hyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 7 };
    const run = (threads: number, bf16: boolean) => {
      const params = Tensor.from(randomF32(n, 5));
      const m = Tensor.from(randomF32(n, 6, -0.01, 0.01));
      const v = Tensor.from(randomF32(n, 7, 0, 1e-4));
      const grads = Tensor.from(randomF32(n, 8));
      const paramsBf16 = bf16 ? Tensor.zeros([n], "bfloat16") : undefined;
      withSettings(isa, threads, () => adamwStep({ params, grads, m, v, paramsBf16 }, segments, hyper));
      return { params, m, v, paramsBf16 };
    };
    const one = run(1, true);
    const two = run(2, true);
    const plain = run(2, false);
    expectBitwiseEqual(one.params.data, two.params.data, "params 1 vs 2 threads");
    expectBitwiseEqual(one.m.data, two.m.data, "m 1 vs 2 threads");
    expectBitwiseEqual(one.v.data, two.v.data, "v 1 vs 2 threads");
    expectBitwiseEqual(one.paramsBf16!.data, two.paramsBf16!.data, "bf16 1 vs 2 threads");
    expectBitwiseEqual(plain.params.data, one.params.data, "params with vs without the bf16 copy");
  });

  it.each([1, 17, 257, 100_003, 300_007])("grad norm n=%i matches float64 and is bitwise the same for 1 and 2 threads", (n) => {
    const g = Tensor.from(randomF32(n, 9, -3, 3));
    let ss = 0;
    for (const x of g.data) ss += x * x;
    const one = withSettings(isa, 1, () => globalGradNorm(g));
    const two = withSettings(isa, 2, () => globalGradNorm(g));
    expectClose([one], [Math.sqrt(ss)], NORM_RTOL, `norm n=${n}`);
    expect(two).toBe(one);
    // The lanes and the reduction tree are the same on every code path: so are the bits.
    expect(withSettings("portable", 2, () => globalGradNorm(g))).toBe(one);
  });

  it("clips like torch.nn.utils.clip_grad_norm_", () => {
    const n = 100_003;
    const g0 = randomF32(n, 12, -1, 1);
    const g = Tensor.from(g0);
    const norm = withSettings(isa, 2, () => globalGradNorm(g));
    const maxNorm = norm / 4;
    const returned = withSettings(isa, 2, () => clipGradNorm(g, maxNorm));
    expect(returned).toBe(norm); // the norm before clipping
    const coef = f(maxNorm / (norm + 1e-6));
    expectBitwiseEqual(g.data, Float32Array.from(g0, (x) => x * coef), "clipped grads");
    expectClose([globalGradNorm(g)], [maxNorm], 1e-6, "norm after clipping");
    // Below the threshold nothing changes (coef >= 1).
    const h = Tensor.from(g0);
    expect(withSettings(isa, 2, () => clipGradNorm(h, norm * 2))).toBe(norm);
    expectBitwiseEqual(h.data, g0, "unclipped grads");
    // A NaN norm spreads to every gradient, as torch's multiply by clamp(NaN, max=1) does.
    const bad = Tensor.from(g0);
    bad.data[17] = NaN;
    expect(withSettings(isa, 2, () => clipGradNorm(bad, 1))).toBeNaN();
    expect(bad.data.every((x) => Number.isNaN(x))).toBe(true);
  });
});

describe("adamw errors", () => {
  const n = 10;
  const state = () => ({ params: Tensor.zeros([n]), grads: Tensor.zeros([n]), m: Tensor.zeros([n]), v: Tensor.zeros([n]) });
  const all = [{ begin: 0, end: n, decay: true }];
  const hyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 1 };

  it("refuses bad hyperparameters", () => {
    expect(() => adamwStep(state(), all, { ...hyper, lr: NaN })).toThrow(/adamwStep: expected a finite number for "lr"/);
    expect(() => adamwStep(state(), all, { ...hyper, lr: -1 })).toThrow(/adamwStep: expected "lr" in \[0, Infinity\]/);
    expect(() => adamwStep(state(), all, { ...hyper, beta1: 1 })).toThrow(/"beta1" in \[0, 1\)/);
    expect(() => adamwStep(state(), all, { ...hyper, beta2: -0.1 })).toThrow(/"beta2"/);
    expect(() => adamwStep(state(), all, { ...hyper, eps: 0 })).toThrow(/"eps" > 0/);
    expect(() => adamwStep(state(), all, { ...hyper, weightDecay: Infinity })).toThrow(/"weightDecay"/);
    expect(() => adamwStep(state(), all, { ...hyper, step: 0 })).toThrow(/adamwStep: expected an integer in \[1, .*\] for "step"/);
    expect(() => adamwStep(state(), all, { ...hyper, step: 1.5 })).toThrow(/"step"/);
    expect(() => adamwStep(state(), all, { ...hyper, gradScale: NaN })).toThrow(/"gradScale"/);
  });

  it("refuses segments that are not contiguous and covering", () => {
    expect(() => adamwStep(state(), [{ begin: 0, end: 5, decay: true }], hyper)).toThrow(/segments must cover \[0, 10\) but end at 5/);
    expect(() =>
      adamwStep(state(), [{ begin: 0, end: 5, decay: true }, { begin: 6, end: 10, decay: false }], hyper),
    ).toThrow(/segment 1 is \[6, 10\) after 5/);
    expect(() => adamwStep(state(), [{ begin: 0, end: 11, decay: true }], hyper)).toThrow(RangeError);
  });

  it("refuses wrong shapes and dtypes", () => {
    expect(() => adamwStep({ ...state(), m: Tensor.zeros([n + 1]) }, all, hyper)).toThrow(
      /adamwStep: expected "m" of shape \[d0\] = \[10\] but received \[11\]/,
    );
    expect(() => adamwStep({ ...state(), paramsBf16: Tensor.zeros([n]) }, all, hyper)).toThrow(TypeError);
    expect(() => clipGradNorm(Tensor.zeros([3]), -1)).toThrow(/clipGradNorm: expected "maxNorm"/);
    expect(() => globalGradNorm(Tensor.zeros([3], "int32"))).toThrow(TypeError);
  });

  it("refuses bad binding arguments before touching memory", () => {
    const a = () => new Float32Array(n);
    const ok = [0n, BigInt(n)];
    const call = (segBegin: bigint[], segDecay: number[], p = a(), m = a()) =>
      binding.adamwStep(p, m, a(), null, a(), n, BigInt64Array.from(segBegin), Uint8Array.from(segDecay), 1e-3, 0.9, 0.999, 1e-8, 0, 1, 1);
    expect(() => call(ok, [1])).not.toThrow();
    expect(() => call([0n, 4n, 3n, 10n], [1, 1, 1])).toThrow(/adamwStep: "segBegin" must start at 0, not decrease and end at n = 10, but segBegin\[2\] = 3/);
    expect(() => call([0n, 9n], [1])).toThrow(/segBegin\[1\] = 9/);
    expect(() => call([1n, 10n], [1])).toThrow(/segBegin\[0\] = 1/);
    expect(() => call([0n, 10n], [1, 0])).toThrow(/expected BigInt64Array of length 3/);
    const shared = a();
    expect(() => call(ok, [1], shared, shared)).toThrow(/adamwStep: "params" and "m" share memory/);
    expect(() => binding.globalGradNorm(a(), n + 1)).toThrow(/globalGradNorm: expected Float32Array of length 11/);
  });
});
