import { describe, expect, it } from "vitest";

import { add, copy, scaleInPlace, toBf16, toFloat32 } from "../../src/kernels/elementwise.js";
import { Tensor } from "../../src/tensor.js";
import { expectBitwiseEqual, expectClose, randomF32 } from "../helpers/reference.js";
import { ISAS, withSettings } from "../helpers/native.js";

// fp32 add/scale are correctly rounded: one rounding of the exact result.
const ADD_RTOL = 2 ** -24;
const SIZES = [1, 3, 17, 127, 257, 100_003];

describe.each(ISAS)("elementwise (%s)", (isa) => {
  it.each(SIZES)("add n=%i matches float64 and is thread-count independent", (n) => {
    const a = Tensor.from(randomF32(n, 1));
    const b = Tensor.from(randomF32(n, 2));
    const expected = Float64Array.from(a.data, (x, i) => x + b.data[i]!);
    const one = withSettings(isa, 1, () => add(a, b));
    const two = withSettings(isa, 2, () => add(a, b));
    expectClose(one.data, expected, ADD_RTOL, `add n=${n}`);
    expectBitwiseEqual(one.data, two.data, `add n=${n} 1 vs 2 threads`);
  });

  it.each(SIZES)("copy and scale n=%i", (n) => {
    const x = Tensor.from(randomF32(n, 3));
    const y = withSettings(isa, 2, () => copy(x));
    expectBitwiseEqual(y.data, x.data, "copy");
    withSettings(isa, 2, () => scaleInPlace(y, -0.37));
    expectClose(y.data, Float64Array.from(x.data, (v) => v * Math.fround(-0.37)), ADD_RTOL, "scale");
  });

  it.each(SIZES)("bf16 round trip n=%i rounds to nearest even", (n) => {
    const x = Tensor.from(randomF32(n, 4, -100, 100));
    const h = withSettings(isa, 2, () => toBf16(x));
    const back = withSettings(isa, 2, () => toFloat32(h));
    const bits = new Uint32Array(x.data.buffer, x.data.byteOffset, n);
    for (let i = 0; i < n; i++) {
      const u = bits[i]!;
      const expected = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
      if (h.data[i] !== expected) expect.fail(`bf16 of ${x.data[i]} is ${h.data[i]} not ${expected}`);
    }
    // bf16 keeps 8 significant bits: relative rounding error <= 2^-9.
    expectClose(back.data, x.data, 2 ** -8, "bf16 round trip");
  });
});

describe("elementwise special values and errors", () => {
  it("keeps NaN and Inf through bf16", () => {
    const x = Tensor.from([NaN, Infinity, -Infinity, 3.4e38]);
    const back = toFloat32(toBf16(x));
    expect(Number.isNaN(back.data[0])).toBe(true);
    expect(back.data[1]).toBe(Infinity);
    expect(back.data[2]).toBe(-Infinity);
    expect(back.data[3]).toBe(Infinity); // rounds up past the largest bf16, as torch does
  });

  it("refuses mismatched shapes and dtypes before touching memory", () => {
    const a = Tensor.from(randomF32(6, 5), [2, 3]);
    expect(() => add(a, Tensor.zeros([3, 2]))).toThrow(/add: expected "b" of shape \[d0, d1\] = \[2, 3\] but received \[3, 2\]/);
    expect(() => add(a, Tensor.zeros([2, 3], "int32"))).toThrow(TypeError);
    expect(() => scaleInPlace(a, NaN)).toThrow(/scale: expected a finite number for "s"/);
  });
});
