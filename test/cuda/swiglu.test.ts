import { expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { BASE_SEED, dot, expectClose, f64, finiteDifferences, randomF32 } from "../helpers/reference.js";
import { describeCuda, downloadF32, poisoned, upload } from "../helpers/cuda.js";

// The CPU backend is within 2^-21 (forward) and 2^-20 (backward) of float64
// (test/kernels/swiglu.test.ts); a GPU's expf is within 2 ulp (vs the CPU's 1) and nvcc may
// fuse a multiply-add, so the backends may differ by the sum of the two bounds.
const FORWARD_RTOL = 2 ** -20;
const BACKWARD_RTOL = 2 ** -19;
// Float64 central differences (h = 1e-5) are exact to O(h²): far below the fp32 bound.
const FD_RTOL = 2 ** -19;
const SIZES = [1, 3, 17, 127, 1003];

const sigmoid = (g: number) => 1 / (1 + Math.exp(-g));

describeCuda("swiglu (cuda)", () => {
  it.each(SIZES)("forward and backward agree with the CPU backend for n=%i", (n) => {
    const g = randomF32(n, BASE_SEED + n, -8, 8);
    const u = randomF32(n, BASE_SEED + n + 1);
    const d = randomF32(n, BASE_SEED + n + 2);
    const out = new Float32Array(n), dg = new Float32Array(n), du = new Float32Array(n);
    binding.swigluForward(out, g, u, n);
    binding.swigluBackward(dg, du, d, g, u, n);

    const gg = upload(g), gu = upload(u), gd = upload(d);
    const gout = poisoned(n * 4), gdg = poisoned(n * 4), gdu = poisoned(n * 4);
    binding.cuda.swigluForward(gout, gg, gu, n);
    binding.cuda.swigluBackward(gdg, gdu, gd, gg, gu, n);
    expectClose(downloadF32(gout), out, FORWARD_RTOL, `out n=${n}`);
    expectClose(downloadF32(gdg), dg, BACKWARD_RTOL, `dgate n=${n}`);
    expectClose(downloadF32(gdu), du, BACKWARD_RTOL, `dup n=${n}`);

    // Views 4 bytes into their allocations: the one-element path gives the same results.
    const shifted = (a: Float32Array) => {
      const p = new Float32Array(n + 1);
      p.set(a, 1);
      return upload(p).view(4, n * 4);
    };
    const mout = poisoned(n * 4 + 4).view(4, n * 4);
    binding.cuda.swigluForward(mout, shifted(g), shifted(u), n);
    expectClose(downloadF32(mout), out, FORWARD_RTOL, `out misaligned n=${n}`);
  });

  it("backward matches float64 finite differences of the forward", () => {
    const n = 23;
    const g = randomF32(n, BASE_SEED + 11, -6, 6), u = randomF32(n, BASE_SEED + 12), d = randomF32(n, BASE_SEED + 13);
    const [g64, u64, d64] = [f64(g), f64(u), f64(d)];
    const forward64 = (gp: Float64Array, up: Float64Array) => Float64Array.from(gp, (x, i) => x * sigmoid(x) * up[i]!);
    const fdGate = finiteDifferences((gp) => dot(d64, forward64(gp, u64)), g64);
    const fdUp = finiteDifferences((up) => dot(d64, forward64(g64, up)), u64);
    const gdg = poisoned(n * 4), gdu = poisoned(n * 4);
    binding.cuda.swigluBackward(gdg, gdu, upload(d), upload(g), upload(u), n);
    expectClose(downloadF32(gdg), fdGate, FD_RTOL, "dgate vs finite differences");
    expectClose(downloadF32(gdu), fdUp, FD_RTOL, "dup vs finite differences");
  });

  it("stays finite for large |gate| and saturates as the CPU does", () => {
    const gates = Float32Array.from([100, -100, 88, -88, 89, -89, 104, -104, 1e30, -1e30, 3e38, -3e38, 0, -0]);
    const n = gates.length;
    const ones = new Float32Array(n).fill(1);
    const gout = poisoned(n * 4), gdg = poisoned(n * 4), gdu = poisoned(n * 4);
    binding.cuda.swigluForward(gout, upload(gates), upload(ones), n);
    binding.cuda.swigluBackward(gdg, gdu, upload(ones), upload(gates), upload(ones), n);
    const [out, dg, du] = [downloadF32(gout), downloadF32(gdg), downloadF32(gdu)];
    gates.forEach((x, i) => {
      for (const [name, v] of [["out", out[i]!], ["dgate", dg[i]!], ["dup", du[i]!]] as const) {
        expect(Number.isFinite(v), `${name}(${x}) = ${v}`).toBe(true);
      }
      if (x >= 100) {
        expect(out[i]).toBe(x);
        expect(dg[i]).toBe(1);
      }
      if (x <= -100) expect(Math.abs(out[i]!)).toBeLessThan(1e-40);
    });
  });
});
