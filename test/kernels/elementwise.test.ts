import { describe, expect, it } from "vitest";

import { add, copy, exp, exp2, scaleInPlace, toBf16, toFloat32 } from "../../src/kernels/elementwise.js";
import { binding } from "../../src/native.js";
import { Tensor } from "../../src/tensor.js";
import { BASE_SEED, expectBitwiseEqual, expectClose, randomF32 } from "../helpers/reference.js";
import { ISAS, withSettings } from "../helpers/native.js";

// fp32 add/scale are correctly rounded: one rounding of the exact result.
const ADD_RTOL = 2 ** -24;
const SIZES = [1, 3, 17, 127, 257, 100_003];
// e^x and 2^x (native/cpu/vmath.h): a degree-6 polynomial after an exact or Cody-Waite
// reduction; over every fp32 input and every code path the worst normal results were
// 0.99 ulp (e^x) and 0.94 ulp (2^x).
const EXP_MAX_ULP = 1;
// Subnormal results are the polynomial's value rounded once to a multiple of 2^-149: its
// error (< 1/2 step) plus the rounding (<= 1/2 step).
const SUBNORMAL_MAX_STEPS = 1;

const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);
/**
 * |actual − exact| in units of the fp32 spacing at fround(exact): its ulp for normal
 * numbers (read from the exponent bits, so exact at powers of two), 2^-149 below 2^-126.
 */
function ulps(actual: number, exact: number): number {
  f32[0] = exact;
  const e = (f32Bits[0]! >>> 23) & 0xff;
  return Math.abs(actual - exact) / 2 ** (Math.max(e, 1) - 150);
}

interface ExpCase {
  name: string;
  fn: (x: Tensor, out?: Tensor) => Tensor<"float32">;
  exact: (x: number) => number;
  /** A sweep from below the underflow to zero to above the overflow threshold. */
  lo: number;
  hi: number;
  /** Inputs whose results the function must return exactly (NaN: NaN). */
  specials: [number, number][];
}

const EXP_CASES: ExpCase[] = [
  {
    name: "exp",
    fn: exp,
    exact: Math.exp,
    lo: -105,
    hi: 89.5,
    specials: [
      [0, 1],
      [-0, 1],
      [NaN, NaN],
      [Infinity, Infinity],
      [-Infinity, 0],
      [88.72283935546875, Infinity], // the smallest fp32 above ln(FLT_MAX)
      [1000, Infinity],
      [3e38, Infinity],
      [-103.98, 0], // below ln(2^-150)
      [-1000, 0],
      [-3e38, 0],
    ],
  },
  {
    name: "exp2",
    fn: exp2,
    exact: (x) => 2 ** x,
    lo: -152,
    hi: 129,
    specials: [
      [0, 1],
      [-0, 1],
      [NaN, NaN],
      [Infinity, Infinity],
      [-Infinity, 0],
      [128, Infinity],
      [1000, Infinity],
      [3e38, Infinity],
      [-150, 0], // 2^-150 is a tie between 0 and 2^-149: even
      [-150.5, 0],
      [-1000, 0],
      [-3e38, 0],
    ],
  },
];

describe.each(ISAS)("exp and exp2 (%s)", (isa) => {
  it.each(EXP_CASES)(`$name is within ${EXP_MAX_ULP} ulp over the whole range, subnormals and overflow included`, (c) => {
    const n = 1_000_003;
    const x = new Float32Array(n + 50_000);
    for (let i = 0; i < n; i++) x[i] = c.lo + ((c.hi - c.lo) * i) / (n - 1);
    // The reduced argument's range, densely: where the polynomial's error peaks.
    x.set(randomF32(50_000, 1, -1, 1), n);
    const y = withSettings(isa, 2, () => c.fn(Tensor.from(x)));
    let worst = 0;
    let worstAt = 0;
    let worstSub = 0;
    let worstSubAt = 0;
    for (let i = 0; i < x.length; i++) {
      const exact = c.exact(x[i]!);
      const rounded = Math.fround(exact);
      if (rounded === Infinity || rounded === 0) {
        // Beyond the thresholds the result is exact: overflow to +inf, underflow to +0.
        if (!Object.is(y.data[i], rounded)) expect.fail(`${c.name}(${x[i]}) = ${y.data[i]}, not ${rounded}`);
        continue;
      }
      const err = ulps(y.data[i]!, exact);
      if (rounded < 2 ** -126) {
        if (err > worstSub) [worstSub, worstSubAt] = [err, x[i]!];
      } else if (err > worst) {
        [worst, worstAt] = [err, x[i]!];
      }
    }
    expect(worst, `${c.name}(${worstAt}) is off by ${worst} ulp (seed ${BASE_SEED})`).toBeLessThanOrEqual(EXP_MAX_ULP);
    expect(worstSub, `${c.name}(${worstSubAt}) is off by ${worstSub} steps of 2^-149`).toBeLessThanOrEqual(SUBNORMAL_MAX_STEPS);
  });

  it.each(EXP_CASES)("$name returns the special values exactly", (c) => {
    const y = withSettings(isa, 1, () => c.fn(Tensor.from(c.specials.map(([x]) => x))));
    c.specials.forEach(([x, expected], i) => expect(y.data[i], `${c.name}(${x})`).toBe(expected));
  });

  it("exp2 of an integer k is exactly 2^k, subnormal or not, and e^x stays finite up to ln(FLT_MAX)", () => {
    const k = Array.from({ length: 277 }, (_, i) => i - 149); // -149 ... 127
    const y = withSettings(isa, 1, () => exp2(Tensor.from(k)));
    k.forEach((v, i) => expect(y.data[i], `2^${v}`).toBe(2 ** v));
    // The largest fp32 input with a finite e^x (3.40279e38, just below FLT_MAX).
    const top = withSettings(isa, 1, () => exp(Tensor.from([88.72283172607422])));
    expect(ulps(top.data[0]!, Math.exp(88.72283172607422))).toBeLessThanOrEqual(EXP_MAX_ULP);
  });

  it.each(EXP_CASES)("$name gives a value the same bits wherever it sits, whatever its neighbours", (c) => {
    const n = 300_007; // several parallel chunks
    const x = Tensor.from(randomF32(n, 2, -60, 60));
    const one = withSettings(isa, 1, () => c.fn(x));
    expectBitwiseEqual(one.data, withSettings(isa, 2, () => c.fn(x)).data, `${c.name} 1 vs 2 threads`);
    expectBitwiseEqual(one.data, withSettings(isa, 1, () => c.fn(x)).data, `${c.name} rerun`);
    const shifted = withSettings(isa, 1, () => c.fn(x.rows(n - 21, n)));
    expectBitwiseEqual(shifted.data, one.data.subarray(n - 21), `${c.name} offset vs body`);
    // Out-of-range neighbours send their whole vector through the slow path of the
    // AVX2 and portable code; the in-range lanes must not notice.
    const odd = Float32Array.from(x.data);
    const far = [NaN, Infinity, -Infinity, 200, -200, 1e30, -1e30];
    for (let i = 0; i < n; i += 5) odd[i] = far[(i / 5) % far.length]!;
    const mixed = withSettings(isa, 1, () => c.fn(Tensor.from(odd)));
    for (let i = 0; i < n; i++) {
      if (i % 5 !== 0 && !Object.is(mixed.data[i], one.data[i])) {
        expect.fail(`${c.name}(${x.data[i]}) is ${mixed.data[i]} beside an out-of-range value, ${one.data[i]} otherwise`);
      }
    }
  });

  it("computes in place", () => {
    const x = Tensor.from(randomF32(1000, 3, -10, 10));
    const expected = withSettings(isa, 1, () => exp(x));
    const result = withSettings(isa, 1, () => exp(x, x));
    expect(result).toBe(x);
    expectBitwiseEqual(x.data, expected.data, "exp in place");
  });
});

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
    expect(() => exp(a, Tensor.zeros([3, 2]))).toThrow(/exp: expected "out" of shape \[d0, d1\] = \[2, 3\] but received \[3, 2\]/);
    expect(() => exp2(Tensor.zeros([3], "bfloat16"))).toThrow(TypeError);
  });

  it("the exp bindings re-check lengths and types", () => {
    const a = new Float32Array(4);
    expect(() => binding.expF32(a, new Float32Array(3), 4)).toThrow(
      /expF32: expected Float32Array of length 4 \(\[n\] = \[4\]\) for "src" but received length 3/,
    );
    expect(() => binding.exp2F32(a, new Int32Array(4) as unknown as Float32Array, 4)).toThrow(TypeError);
    expect(() => binding.exp2F32(a, a, -1)).toThrow(RangeError);
  });
});
