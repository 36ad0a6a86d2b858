import { describe, expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { swigluBackward, swigluForward } from "../../src/kernels/swiglu.js";
import { Tensor } from "../../src/tensor.js";
import { dot, expectBitwiseEqual, expectClose, f64, finiteDifferences, randomF32 } from "../helpers/reference.js";
import { ISAS, expectDeterministic, withSettings } from "../helpers/native.js";

// e^x (about 1 ulp), 1 + e^x, a division and a product: a few fp32 roundings.
const FORWARD_RTOL = 2 ** -21;
// dgate also takes 1 - σ in fp32, whose absolute error 2^-24 is multiplied by g.
const BACKWARD_RTOL = 2 ** -20;
// Float64 analytic gradients vs float64 central differences (h = 1e-5): O(h²) truncation.
const FD_RTOL = 1e-8;
const SIZES = [1, 3, 17, 127, 257, 100_003];

const sigmoid = (g: number) => 1 / (1 + Math.exp(-g));

function forward64(g: Float64Array, u: Float64Array): Float64Array {
  return Float64Array.from(g, (x, i) => x * sigmoid(x) * u[i]!);
}

function backward64(d: Float64Array, g: Float64Array, u: Float64Array): { dgate: Float64Array; dup: Float64Array } {
  const dgate = Float64Array.from(g, (x, i) => {
    const s = sigmoid(x);
    return d[i]! * u[i]! * s * (1 + x * (1 - s));
  });
  const dup = Float64Array.from(g, (x, i) => d[i]! * x * sigmoid(x));
  return { dgate, dup };
}

describe.each(ISAS)("swiglu (%s)", (isa) => {
  it.each(SIZES)("n=%i forward and backward match float64", (n) => {
    const g = Tensor.from(randomF32(n, n, -8, 8));
    const u = Tensor.from(randomF32(n, n + 1));
    const d = Tensor.from(randomF32(n, n + 2));
    const out = withSettings(isa, 2, () => swigluForward(g, u));
    expectClose(out.data, forward64(f64(g.data), f64(u.data)), FORWARD_RTOL, `forward n=${n}`);
    const { dgate, dup } = withSettings(isa, 2, () => swigluBackward(d, g, u));
    const ref = backward64(f64(d.data), f64(g.data), f64(u.data));
    expectClose(dgate.data, ref.dgate, BACKWARD_RTOL, `dgate n=${n}`);
    expectClose(dup.data, ref.dup, BACKWARD_RTOL, `dup n=${n}`);
  });

  it("backward matches finite differences of the float64 forward", () => {
    const n = 17;
    const g = Tensor.from(randomF32(n, 1, -6, 6));
    const u = Tensor.from(randomF32(n, 2));
    const d = Tensor.from(randomF32(n, 3));
    const [g64, u64, d64] = [f64(g.data), f64(u.data), f64(d.data)];
    const fdGate = finiteDifferences((gp) => dot(d64, forward64(gp, u64)), g64);
    const fdUp = finiteDifferences((up) => dot(d64, forward64(g64, up)), u64);
    const ref = backward64(d64, g64, u64);
    expectClose(ref.dgate, fdGate, FD_RTOL, "float64 dgate vs finite differences");
    expectClose(ref.dup, fdUp, FD_RTOL, "float64 dup vs finite differences");
    const { dgate, dup } = withSettings(isa, 1, () => swigluBackward(d, g, u));
    expectClose(dgate.data, fdGate, BACKWARD_RTOL, "dgate vs finite differences");
    expectClose(dup.data, fdUp, BACKWARD_RTOL, "dup vs finite differences");
  });

  it("stays finite and exact in the limits for large |gate|", () => {
    const gates = [100, -100, 88, -88, 89, -89, 104, -104, 1e30, -1e30, 3e38, -3e38, 0, -0];
    const g = Tensor.from(gates);
    const ones = Tensor.from(gates.map(() => 1));
    const out = withSettings(isa, 1, () => swigluForward(g, ones));
    const { dgate, dup } = withSettings(isa, 1, () => swigluBackward(ones, g, ones));
    gates.forEach((x, i) => {
      for (const [name, v] of [
        ["out", out.data[i]!],
        ["dgate", dgate.data[i]!],
        ["dup", dup.data[i]!],
      ] as const) {
        expect(Number.isFinite(v), `${name}(${x}) = ${v}`).toBe(true);
      }
      if (x >= 100) {
        expect(out.data[i]).toBe(Math.fround(x)); // silu(x) = x once e^-x < 2^-24
        expect(dgate.data[i]).toBe(1);
      }
      if (x <= -100) {
        expect(Math.abs(out.data[i]!)).toBeLessThan(1e-40);
        expect(Math.abs(dgate.data[i]!)).toBeLessThan(1e-40);
      }
    });
  });

  it("is bitwise the same for 1 and 2 threads, on rerun and wherever an element sits", () => {
    const n = 300_007;
    const g = Tensor.from(randomF32(n, 5, -10, 10));
    const u = Tensor.from(randomF32(n, 6));
    const d = Tensor.from(randomF32(n, 7));
    const one = expectDeterministic(isa, () => ({ out: swigluForward(g, u), ...swigluBackward(d, g, u) }));
    // The tail of a call goes through the same vector code as the body.
    const tail = withSettings(isa, 1, () => swigluForward(g.rows(n - 5, n), u.rows(n - 5, n)));
    const shifted = withSettings(isa, 1, () => swigluForward(g.rows(n - 21, n), u.rows(n - 21, n)));
    expectBitwiseEqual(tail.data, one.out.data.subarray(n - 5), "tail vs body");
    expectBitwiseEqual(shifted.data, one.out.data.subarray(n - 21), "offset vs body");
  });
});

describe("swiglu errors", () => {
  it("refuses mismatched shapes and dtypes before touching memory", () => {
    const g = Tensor.zeros([2, 3, 8]);
    expect(() => swigluForward(g, Tensor.zeros([2, 3, 7]))).toThrow(
      /swigluForward: expected "up" of shape \[d0, d1, d2\] = \[2, 3, 8\] but received \[2, 3, 7\]/,
    );
    expect(() => swigluForward(g, Tensor.zeros([2, 3, 8], "int32"))).toThrow(TypeError);
    expect(() => swigluForward(g, g, Tensor.zeros([48]))).toThrow(/swigluForward: expected "out"/);
    expect(() => swigluBackward(Tensor.zeros([2, 3, 9]), g, g)).toThrow(/swigluBackward: expected "dout"/);
    expect(() => swigluBackward(g, g, g, undefined, Tensor.zeros([1]))).toThrow(/swigluBackward: expected "dup"/);
  });

  it("the binding re-checks lengths", () => {
    const a = new Float32Array(4);
    expect(() => binding.swigluForward(a, a, new Float32Array(3), 4)).toThrow(
      /swigluForward: expected Float32Array of length 4 \(\[n\] = \[4\]\) for "up" but received length 3/,
    );
    expect(() => binding.swigluBackward(a, a, a, a, a, -1)).toThrow(RangeError);
  });
});
