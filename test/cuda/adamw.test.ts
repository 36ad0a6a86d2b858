import { expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { ISAS, withSettings } from "../helpers/native.js";
import { BASE_SEED, expectBitwiseEqual, expectClose, randomF32 } from "../helpers/reference.js";
import { describeCuda, downloadF32, downloadU16, poisoned, upload } from "../helpers/cuda.js";

// The device update rounds every op where the CPU's FMA paths (AVX2, AVX-512) round, the lerp
// being one fused multiply-add on both: bitwise equal. The portable CPU path rounds the lerp
// twice, so without an FMA path to compare with, m (and what follows from it) may differ in
// its last bit; a few steps keep that within a few ulps of the largest term.
const FMA_ISA = ISAS.find((isa) => isa !== "portable");
const PORTABLE_RTOL = 2 ** -20;
const SIZES = [1, 17, 1023, 1025, 5003];

interface Hyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  gradScale: number;
}

// beta1 = 0.9 lerps from m (weight 0.1 < 0.5), beta1 = 0.3 from g (weight 0.7): both of
// torch's lerp branches.
const HYPERS: Hyper[] = [
  { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, gradScale: 1 },
  { lr: 3e-2, beta1: 0.3, beta2: 0.95, eps: 1e-6, weightDecay: 0.01, gradScale: 0.37 },
];

/** Segments over [0, n): decaying and not, with empty ones at the start, middle and end. */
function segments(n: number): { begin: BigInt64Array; decay: Uint8Array } {
  const cuts = [0, 0, Math.floor(n / 3), Math.floor(n / 3), Math.floor((2 * n) / 3), n, n];
  return {
    begin: BigInt64Array.from(cuts, (c) => BigInt(c)),
    decay: Uint8Array.from({ length: cuts.length - 1 }, (_, s) => (s % 2 === 0 ? 1 : 0)),
  };
}

interface HostState {
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  grads: Float32Array[];
}

function makeState(n: number, seed: number, steps: number): HostState {
  return {
    params: randomF32(n, seed, -2, 2),
    m: new Float32Array(n),
    v: new Float32Array(n),
    grads: Array.from({ length: steps }, (_, k) => randomF32(n, seed + 1 + k, -0.5, 0.5)),
  };
}

/** `bytes` of device memory whose view starts 4 bytes in: float4 loads are then not allowed. */
function misaligned(data: Float32Array): ReturnType<typeof upload> {
  const padded = new Float32Array(data.length + 1);
  padded.set(data, 1);
  return upload(padded).view(4, data.byteLength);
}

describeCuda("adamw (cuda)", () => {
  for (const [h, hyper] of HYPERS.entries()) {
    it.each(SIZES)(`three steps agree with the CPU backend bitwise, with and without bf16 copies, n=%i (hyper ${h})`, (n) => {
      const steps = 3;
      const st = makeState(n, BASE_SEED + n + 97 * h, steps);
      const { begin, decay } = segments(n);
      const cpu = { params: st.params.slice(), m: st.m.slice(), v: st.v.slice(), bf16: new Uint16Array(n) };
      const run = (): void => {
        for (let t = 1; t <= steps; t++) {
          binding.adamwStep(cpu.params, cpu.m, cpu.v, cpu.bf16, st.grads[t - 1]!, n, begin, decay, hyper.lr, hyper.beta1,
            hyper.beta2, hyper.eps, hyper.weightDecay, t, hyper.gradScale);
        }
      };
      if (FMA_ISA) withSettings(FMA_ISA, 2, run);
      else run();

      for (const layout of ["aligned", "misaligned"] as const) {
        const put = layout === "aligned" ? upload : misaligned;
        const params = put(st.params), m = put(st.m), v = put(st.v);
        const bf16 = poisoned(2 * n);
        const gBegin = upload(begin), gDecay = upload(decay);
        for (let t = 1; t <= steps; t++) {
          // The bf16 copy only on the last step: the other steps run the path without it.
          binding.cuda.adamwStep(params, m, v, t === steps ? bf16 : null, put(st.grads[t - 1]!), n, gBegin, gDecay,
            hyper.lr, hyper.beta1, hyper.beta2, hyper.eps, hyper.weightDecay, t, hyper.gradScale);
        }
        const got = { params: downloadF32(params), m: downloadF32(m), v: downloadF32(v), bf16: downloadU16(bf16) };
        if (FMA_ISA) {
          for (const name of ["params", "m", "v", "bf16"] as const) expectBitwiseEqual(got[name], cpu[name], `${name} (${layout}) vs ${FMA_ISA}`);
        } else {
          for (const name of ["params", "m", "v"] as const) expectClose(got[name], cpu[name], PORTABLE_RTOL, `${name} (${layout}) vs portable`);
        }
      }
    });
  }

  it.each([1, 31, 65_536, 65_543, 200_003])("the gradient norm is bitwise the CPU's, n=%i", (n) => {
    // Wide magnitudes, so the order of the double sum shows if it differs.
    const g = randomF32(n, BASE_SEED + n, -1, 1).map((x, i) => x * 2 ** ((i % 41) - 20));
    const cpu = binding.globalGradNorm(g, n);
    const dev = upload(g);
    expect(binding.cuda.globalGradNorm(dev, n)).toBe(cpu);
    expect(binding.cuda.globalGradNorm(misaligned(g), n)).toBe(cpu);
  });

  it.each([
    ["clips", 0.5],
    ["leaves small gradients alone", 1e6],
  ] as const)("clipGradNorm %s as the CPU does, bitwise", (_, maxNorm) => {
    const n = 70_001;
    const g = randomF32(n, BASE_SEED + 5, -3, 3);
    const host = g.slice();
    const cpuNorm = binding.clipGradNorm(host, n, maxNorm);
    const dev = upload(g);
    expect(binding.cuda.clipGradNorm(dev, n, maxNorm)).toBe(cpuNorm);
    expectBitwiseEqual(downloadF32(dev), host, "clipped gradients");
  });

  it("a NaN gradient makes every clipped gradient NaN, as torch", () => {
    const g = randomF32(100, BASE_SEED + 6);
    g[17] = NaN;
    const dev = upload(g);
    expect(binding.cuda.clipGradNorm(dev, 100, 1)).toBeNaN();
    expect(downloadF32(dev).every((x) => Number.isNaN(x))).toBe(true);
  });

  it("names the op and the argument at fault", () => {
    const n = 8;
    const b = (): ReturnType<typeof upload> => upload(new Float32Array(n).fill(0.5));
    const { begin, decay } = segments(n);
    expect(() => binding.cuda.adamwStep(b(), b(), b(), null, upload(new Float32Array(n - 1)), n, upload(begin), upload(decay),
      1e-3, 0.9, 0.999, 1e-8, 0, 1, 1)).toThrow(/adamwStep: expected float32 DeviceBuffer of length 8 .* for "grads" but received length 7/);
    expect(() => binding.cuda.adamwStep(b(), b(), b(), null, b(), n, upload(begin.subarray(1)), upload(decay),
      1e-3, 0.9, 0.999, 1e-8, 0, 1, 1)).toThrow(/adamwStep: expected int64 DeviceBuffer of length 7 .* for "segBegin" but received length 6/);
    const shared = b();
    expect(() => binding.cuda.adamwStep(shared, shared, b(), null, b(), n, upload(begin), upload(decay),
      1e-3, 0.9, 0.999, 1e-8, 0, 1, 1)).toThrow(/adamwStep: "params" and "m" share memory/);
    expect(() => binding.cuda.globalGradNorm(new Float32Array(n) as never, n)).toThrow(/globalGradNorm: expected a DeviceBuffer \(float32\) for "grads"/);
  });
});
