import { describe, expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { ropeBackward, ropeForward } from "../../src/kernels/rope.js";
import { Tensor } from "../../src/tensor.js";
import { dot, expectBitwiseEqual, expectClose, f64, finiteDifferences, randomF32, randomInts } from "../helpers/reference.js";
import { ISAS, expectDeterministic, withSettings } from "../helpers/native.js";

// cos/sin are fp32-rounded (1/2 ulp), then two products and a sum in fp32.
const ROPE_RTOL = 2 ** -22;
// Float64 analytic gradient vs float64 central differences: RoPE is linear, so only
// rounding in the differences remains.
const FD_RTOL = 1e-8;
const HEAD_SIZES = [2, 4, 18, 64, 128];

/** HF's fp32 inv_freq: 1 / fp32(theta ** fp32(2i / D)), each step rounded to fp32. */
function inverseFrequencies(D: number, theta: number): number[] {
  return Array.from({ length: D / 2 }, (_, i) => Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / D))));
}

/**
 * Float64 rotation by HF's fp32 angles fp32(pos · inv_freq[i]); sign -1 is the backward.
 * x is [B, T, H, D] flattened, positions [B, T].
 */
function rope64(x: Float64Array, positions: Int32Array, H: number, D: number, theta: number, sign = 1): Float64Array {
  const inv = inverseFrequencies(D, theta);
  const half = D / 2;
  const out = new Float64Array(x.length);
  for (let r = 0; r < positions.length; r++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(Math.fround(positions[r]!) * inv[i]!);
      const c = Math.cos(angle);
      const s = sign * Math.sin(angle);
      for (let h = 0; h < H; h++) {
        const o = (r * H + h) * D;
        const a = x[o + i]!;
        const b = x[o + half + i]!;
        out[o + i] = a * c - b * s;
        out[o + half + i] = b * c + a * s;
      }
    }
  }
  return out;
}

/** Every batch row at positions 0..T-1 (the usual case: one cos/sin table serves all rows). */
function arange(B: number, T: number, start = 0): Int32Array {
  return Int32Array.from({ length: B * T }, (_, i) => start + (i % T));
}

// HF's apply_rotary_pos_emb on x[k] = ((37k mod 17) - 8) / 8, D = 8, H = 2, B = 1 and the
// positions below, computed in numpy with HF's fp32 inv_freq and angles, cos/sin of those
// fp32 angles and the rotation in float64.
const FIXTURE_POSITIONS = [0, 1, 7, 100, 4095, 65535];
const FIXTURE: Record<"THETA_10000" | "THETA_500000", number[]> = {
  THETA_10000: [
    -1.0, -0.625, -0.25, 0.125, 0.5, 0.875, -0.875, -0.5, -0.125, 0.25, 0.625, 1.0, -0.75, -0.375, 0.0,
    0.375, 0.30004285630011773, -1.0449208741940124, -0.6337186042336407, -0.24912487510427161,
    0.6986410268394398, 0.39766866443513127, 0.868706354672375, -0.8752495624702026,
    -1.1116221377419664, -0.04950045704403287, 0.25373743752122274, 0.6249996874999963,
    0.11956681346419151, -0.7587323011131343, -0.3724812918794225, 0.0006249999255192308,
    0.4469599950584365, 0.4931044364581135, -1.032522424049848, -0.6311096377299237,
    0.05789441093371975, 0.5787685329605664, 0.4288326524813914, 0.8706035981802537,
    -1.0702810967496346, -1.0266387756021425, -0.07223673930293478, 0.25261885366820785,
    -0.10367436491437504, 0.4427333559041308, -0.7569061061286796, -0.3732408267745647,
    -0.31647852569359924, -0.4506571011260121, 0.30004285630011773, -1.0449208741940124,
    -0.5389492951798024, 0.005759965685599444, 0.6986410268394398, 0.39766866443513127,
    0.8811204235291631, 1.074200782247752, -1.1116221377419664, -0.04950045704403287,
    -0.22749021789911797, -0.04840123364458415, 0.11956681346419151, -0.7587323011131343,
    -0.9730802116677, 0.5549935631400699, -0.4000321132650621, -0.3322568178363502, 0.44015895044943026,
    -0.2874145870916945, 0.20760372914928227, -0.6839081860902547, -0.15771564957615425,
    0.18038299667234436, 0.9379532140052033, 1.1048468854614824, -0.49066360561872907,
    0.8919568232327756, -0.5258267474532933, -0.1712114472985442, -0.8802536833777531,
    -0.23415947580065916, 0.5916989951995317, -0.2333979561652494, -0.5917376554689572,
    -1.0420145583881064, 0.20128909329584774, 0.3855520640041813, 0.5147067819413031,
    0.5124266773532378, -0.5184843286939995, 0.5269065059321962, 0.02649393560096054,
    -0.0551715536913787, 0.7478629559610054, -0.9373470723303745
  ],
  THETA_500000: [
    -1.0, -0.625, -0.25, 0.125, 0.5, 0.875, -0.875, -0.5, -0.125, 0.25, 0.625, 1.0, -0.75, -0.375, 0.0,
    0.375, 0.30004285630011773, -1.0180915603083027, -0.6262368113529511, -0.24995346455879194,
    0.6986410268394398, 0.46204932077539695, 0.8741152418911871, -0.8750132945018931,
    -1.1116221377419664, -0.09671374644234748, 0.25053007986554454, 0.6249999991161166,
    0.11956681346419151, -0.7541693783554761, -0.37464607175648307, 3.323934832476112e-05,
    0.4469599950584365, 0.69163698750542, -1.004900666680716, -0.6253257023086543, 0.05789441093371975,
    0.31585325313257034, 0.49007616765626594, 0.8747672639234897, -1.0702810967496346,
    -0.7429881341346047, -0.11756937564042963, 0.2501395879411458, -0.10367436491437504,
    0.835445170274614, -0.7512006668737187, -0.37490690383698433, -0.31647852569359924,
    -0.4504772608599802, 0.724893690730661, -1.0026449932016894, -0.5389492951798024,
    -0.013972739462585954, 0.22946489304222756, 0.4946746583438292, 0.8811204235291631,
    1.0752898327786133, -0.635958742969903, -0.12100952928315105, -0.22749021789911797,
    -0.001332487501524371, 0.9195414494410467, -0.750654177249864, -0.9730802116677,
    -0.036634500265925664, 0.21243120875420696, 0.7052756147336402, 0.44015895044943026,
    0.6239254069119688, -0.39748959929440486, 0.28409735525359225, -0.15771564957615425,
    -0.858841769570386, -0.4759906055450777, -0.7042560083493254, -0.49066360561872907,
    -0.3008584631370834, 0.9642006759139043, 0.8683452508673464, -0.8802536833777531,
    0.9721173284124712, -0.6249961769606703, -0.43731683531234855, -0.5917376554689572,
    -0.4422814712377171, -0.0021860431254654596, 0.10899075902291985, 0.5147067819413031,
    0.15878605725575637, 0.2530589311599198, 1.0344485488969142, 0.02649393560096054,
    0.4903182517724296, -0.8741202304947523, -0.2935407973094511
  ],
};

describe("rope fixture (Hugging Face formulas)", () => {
  const T = FIXTURE_POSITIONS.length;
  const x = Tensor.from(
    Array.from({ length: T * 2 * 8 }, (_, k) => (((k * 37) % 17) - 8) / 8),
    [1, T, 2, 8],
  );
  const positions = Tensor.from(FIXTURE_POSITIONS, [1, T], "int32");
  it.each(ISAS)("matches theta 10000 and 500000 (%s)", (isa) => {
    for (const [theta, expected] of [
      [10000, FIXTURE.THETA_10000],
      [500000, FIXTURE.THETA_500000],
    ] as const) {
      const out = withSettings(isa, 1, () => ropeForward(x, positions, theta));
      expectClose(out.data, expected, ROPE_RTOL, `fixture theta=${theta}`);
      // The angles are fp32 as in HF; against exact float64 angles the difference is the
      // angle's rounding, |pos · inv_freq| · 2^-24 each, at most 65535 · 2^-23 here.
      const inv = Array.from({ length: 4 }, (_, i) => 1 / theta ** ((2 * i) / 8));
      let worst = 0;
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < 2; h++) {
          for (let i = 0; i < 4; i++) {
            const angle = FIXTURE_POSITIONS[t]! * inv[i]!;
            const o = (t * 2 + h) * 8;
            const a = x.data[o + i]!;
            const b = x.data[o + 4 + i]!;
            worst = Math.max(worst, Math.abs(out.data[o + i]! - (a * Math.cos(angle) - b * Math.sin(angle))));
          }
        }
      }
      expect(worst, "fixture vs exact float64 angles").toBeLessThan(65535 * 2 ** -23 * 2);
      expect(worst, "fp32 angles differ from exact ones at position 65535").toBeGreaterThan(0);
    }
  });
});

describe.each(ISAS)("rope (%s)", (isa) => {
  it.each(HEAD_SIZES)("D=%i forward and backward match float64 at odd sizes", (D) => {
    for (const [B, T, H] of [
      [1, 1, 1],
      [3, 17, 3],
      [2, 5, 1],
    ] as const) {
      for (const [label, positions] of [
        ["arange", arange(B, T)],
        ["random", randomInts(B * T, D + T, 5000)],
      ] as const) {
        const x = Tensor.from(randomF32(B * T * H * D, D + B), [B, T, H, D]);
        const pos = Tensor.from(positions, [B, T], "int32");
        for (const theta of [10000, 500000]) {
          const out = withSettings(isa, 2, () => ropeForward(x, pos, theta));
          expectClose(out.data, rope64(f64(x.data), positions, H, D, theta), ROPE_RTOL, `forward ${label} B=${B} T=${T} H=${H} D=${D}`);
          const dinp = withSettings(isa, 2, () => ropeBackward(x, pos, theta));
          expectClose(dinp.data, rope64(f64(x.data), positions, H, D, theta, -1), ROPE_RTOL, `backward ${label} B=${B} T=${T} H=${H} D=${D}`);
        }
      }
    }
  });

  it("cos and sin are the fp32 roundings of the exact values, for any int32 position", () => {
    // D = 2 gives inv_freq = [1], and x = (1, 0) rotates to (cos pos, sin pos) exactly.
    const positions = Int32Array.from([
      ...randomInts(20000, 21, 4096),
      ...randomInts(20000, 22, 1 << 24),
      ...randomInts(20000, 23, 2 ** 31 - 1),
      // Around the end of the vector range reduction (2^20 · pi/2 = 1647099.3) and beyond.
      ...Array.from({ length: 64 }, (_, i) => 1647099 - 32 + i),
      2 ** 24 - 1,
      2 ** 24 + 1,
      2 ** 31 - 1,
    ]);
    const n = positions.length;
    const x = Tensor.from(Array.from({ length: 2 * n }, (_, i) => (i % 2 === 0 ? 1 : 0)), [1, n, 1, 2]);
    const out = withSettings(isa, 2, () => ropeForward(x, Tensor.from(positions, [1, n], "int32"), 10000));
    let worst = 0;
    let at = 0;
    for (let t = 0; t < n; t++) {
      const angle = Math.fround(positions[t]!);
      for (const [value, exact] of [
        [out.data[2 * t]!, Math.cos(angle)],
        [out.data[2 * t + 1]!, Math.sin(angle)],
      ] as const) {
        const ulp = 2 ** (Math.floor(Math.log2(Math.abs(Math.fround(exact)))) - 23);
        const err = Math.abs(value - exact) / ulp;
        if (err > worst) [worst, at] = [err, positions[t]!];
      }
    }
    // Correctly rounded up to the double evaluation's own error near ties.
    expect(worst, `worst ${worst} ulp at position ${at}`).toBeLessThanOrEqual(0.5001);
  });

  it.each([2, 18])("backward D=%i matches finite differences of the float64 forward", (D) => {
    const [B, T, H] = [1, 3, 2];
    const positions = Int32Array.from([0, 5, 4095]);
    const x = Tensor.from(randomF32(B * T * H * D, 3), [B, T, H, D]);
    const g = Tensor.from(randomF32(B * T * H * D, 4), [B, T, H, D]);
    const g64 = f64(g.data);
    const fd = finiteDifferences((xp) => dot(g64, rope64(xp, positions, H, D, 10000)), f64(x.data));
    const analytic = rope64(g64, positions, H, D, 10000, -1);
    expectClose(analytic, fd, FD_RTOL, "float64 backward vs finite differences");
    const dinp = withSettings(isa, 1, () => ropeBackward(g, Tensor.from(positions, [B, T], "int32"), 10000));
    expectClose(dinp.data, fd, ROPE_RTOL, "backward vs finite differences");
  });

  it("works in place, and the position table and per-row paths agree bitwise", () => {
    const [B, T, H, D] = [2, 33, 3, 18];
    const x = Tensor.from(randomF32(B * T * H * D, 8), [B, T, H, D]);
    const pos = Tensor.from(arange(B, T), [B, T], "int32");
    const out = withSettings(isa, 2, () => ropeForward(x, pos, 10000));
    // One batch row has as many positions as rows, so it takes the per-row path.
    const firstRow = withSettings(isa, 2, () => ropeForward(x.rows(0, 1), pos.rows(0, 1), 10000));
    expectBitwiseEqual(firstRow.data, out.data.subarray(0, T * H * D), "table vs per-row cos/sin");
    const inPlace = x.clone();
    withSettings(isa, 2, () => ropeForward(inPlace, pos, 10000, inPlace));
    expectBitwiseEqual(inPlace.data, out.data, "in place forward");
    const back = withSettings(isa, 2, () => ropeBackward(x, pos, 10000));
    const backInPlace = x.clone();
    withSettings(isa, 2, () => ropeBackward(backInPlace, pos, 10000, backInPlace));
    expectBitwiseEqual(backInPlace.data, back.data, "in place backward");
  });

  it.each([
    ["arange", arange(4, 300)],
    ["random", randomInts(4 * 300, 11, 1 << 30)],
  ] as const)("positions %s: bitwise the same for 1 and 2 threads and on rerun", (_, positions) => {
    const [B, T, H, D] = [4, 300, 4, 64];
    const x = Tensor.from(randomF32(B * T * H * D, 9), [B, T, H, D]);
    const pos = Tensor.from(positions, [B, T], "int32");
    expectDeterministic(isa, () => ({ out: ropeForward(x, pos, 500000), dinp: ropeBackward(x, pos, 500000) }));
  });
});

describe("rope errors", () => {
  const x = Tensor.zeros([2, 3, 4, 8]);
  const pos = Tensor.zeros([2, 3], "int32");
  it("refuses bad shapes, dtypes, odd D and bad theta before touching memory", () => {
    expect(() => ropeForward(Tensor.zeros([2, 3, 4, 7]), pos, 10000)).toThrow(/ropeForward: expected "x" of shape \[B, T, H, D\] with D even/);
    expect(() => ropeForward(Tensor.zeros([2, 3, 32]), pos, 10000)).toThrow(/ropeForward: expected "x" of rank 4/);
    expect(() => ropeForward(x, Tensor.zeros([3, 2], "int32"), 10000)).toThrow(
      /ropeForward: expected "positions" of shape \[B, T\] = \[2, 3\] but received \[3, 2\]/,
    );
    expect(() => ropeForward(x, Tensor.zeros([2, 3]), 10000)).toThrow(TypeError);
    expect(() => ropeForward(x, pos, NaN)).toThrow(/ropeForward: expected a finite number for "theta"/);
    expect(() => ropeForward(x, pos, 0)).toThrow(/ropeForward: expected "theta" > 0 but received 0/);
    expect(() => ropeBackward(x, pos, -1)).toThrow(/ropeBackward/);
    expect(() => ropeBackward(x, pos, 10000, Tensor.zeros([2, 3, 4, 6]))).toThrow(/ropeBackward: expected "dinp"/);
  });

  it("refuses negative positions, naming the index and the value", () => {
    const bad = Tensor.from([0, 1, 2, 0, -1, 2], [2, 3], "int32");
    expect(() => ropeForward(x, bad, 10000)).toThrow(RangeError);
    expect(() => ropeForward(x, bad, 10000)).toThrow(/ropeForward: "positions"\[4\] = -1 is out of range/);
    expect(() => ropeBackward(x, bad, 10000)).toThrow(/ropeBackward: "positions"\[4\] = -1/);
  });

  it("the binding re-checks D, lengths and theta", () => {
    const out = new Float32Array(14);
    const p = new Int32Array(1);
    expect(() => binding.ropeForward(out, out, p, 1, 1, 2, 7, 10000)).toThrow(RangeError);
    expect(() => binding.ropeForward(out, out, p, 1, 1, 2, 7, 10000)).toThrow(/ropeForward: expected an even head size "D" but received 7/);
    expect(() => binding.ropeForward(out, new Float32Array(16), p, 1, 1, 2, 8, 10000)).toThrow(/"out" but received length 14/);
    expect(() => binding.ropeBackward(out, out, p, 1, 1, 1, 14, 1e39)).toThrow(/"theta" > 0 and finite in fp32/);
    expect(() => binding.ropeBackward(out, out, new Int32Array(2), 1, 1, 1, 14, 10000)).toThrow(/"positions"/);
  });
});
