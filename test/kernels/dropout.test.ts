import { describe, expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { dropout, fillUniform } from "../../src/kernels/rng.js";
import { Tensor } from "../../src/tensor.js";
import { expectBitwiseEqual, randomF32 } from "../helpers/reference.js";
import { ISAS, expectDeterministic, withSettings } from "../helpers/native.js";

/** Row offsets as the kernel takes them. */
const offsets = (values: readonly (number | bigint)[]): BigInt64Array => BigInt64Array.from(values.map((v) => BigInt(v)));

/** The expected result from the stream's uniforms (fillUniform draws the same u). */
function reference(inp: Float32Array, C: number, p: number, seed: number, rowOffsets: BigInt64Array): Float32Array {
  const scale = Math.fround(1 / (1 - p));
  const out = new Float32Array(inp.length);
  const u = Tensor.empty([C]);
  for (let r = 0; r < rowOffsets.length; r++) {
    fillUniform(u, { seed, offset: BigInt.asUintN(64, rowOffsets[r]!) });
    for (let c = 0; c < C; c++) out[r * C + c] = Math.fround(inp[r * C + c]! * (u.data[c]! >= Math.fround(p) ? scale : 0));
  }
  u.dispose();
  return out;
}

describe.each(ISAS)("dropout (%s)", (isa) => {
  it.each([
    [1, 1, 0.5],
    [3, 17, 0.1],
    [5, 131, 0.3],
    [2, 64, 0],
  ])("rows=%i C=%i p=%f keeps exactly the stream's draws >= p, at any offset alignment", (rows, C, p) => {
    const inp = Tensor.from(randomF32(rows * C, 11 + C), [rows, C]);
    // Offsets hit every position within a Philox block, and one wraps past 2^64.
    const rowOffsets = offsets(Array.from({ length: rows }, (_, r) => (r === rows - 1 && rows > 1 ? (1n << 64n) - 5n : BigInt(r * 1001 + r))).map((v) => BigInt.asIntN(64, v)));
    const out = withSettings(isa, 2, () => dropout(inp, p, 42, rowOffsets));
    expectBitwiseEqual(out.data, reference(inp.data, C, p, 42, rowOffsets), "dropout vs the stream");
  });

  it("in place equals out of place, and the backward (the same call on dout) uses the same mask", () => {
    const rows = 9;
    const C = 40;
    const inp = Tensor.from(randomF32(rows * C, 3), [rows, C]);
    const rowOffsets = offsets(Array.from({ length: rows }, (_, r) => r * C));
    const outOfPlace = withSettings(isa, 1, () => dropout(inp, 0.25, 7, rowOffsets));
    const inPlace = inp.clone();
    withSettings(isa, 1, () => dropout(inPlace, 0.25, 7, rowOffsets, inPlace));
    expectBitwiseEqual(inPlace.data, outOfPlace.data, "in place");
    const ones = Tensor.from(new Float32Array(rows * C).fill(1), [rows, C]);
    const mask = withSettings(isa, 1, () => dropout(ones, 0.25, 7, rowOffsets));
    for (let i = 0; i < rows * C; i++) expect(outOfPlace.data[i]).toBe(Math.fround(inp.data[i]! * mask.data[i]!));
  });

  it("is bitwise the same for 1 and 2 threads on a large input", () => {
    const rows = 3000;
    const C = 77;
    const inp = Tensor.from(randomF32(rows * C, 5), [rows, C]);
    const rowOffsets = offsets(Array.from({ length: rows }, (_, r) => 3 + r * C));
    expectDeterministic(isa, () => ({ out: dropout(inp, 0.4, 123, rowOffsets) }));
  });
});

describe("dropout statistics and errors", () => {
  it("keeps a share 1 − p of the elements and preserves the mean in expectation", () => {
    const rows = 1000;
    const C = 1000;
    const n = rows * C;
    const ones = Tensor.from(new Float32Array(n).fill(1), [rows, C]);
    const out = dropout(ones, 0.3, 9, offsets(Array.from({ length: rows }, (_, r) => r * C)));
    let kept = 0;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      if (out.data[i] !== 0) kept++;
      sum += out.data[i]!;
    }
    // Five standard errors of a binomial share (fixed seed: reproducible).
    const se = Math.sqrt((0.3 * 0.7) / n);
    expect(Math.abs(kept / n - 0.7)).toBeLessThan(5 * se);
    expect(Math.abs(sum / n - 1)).toBeLessThan((5 * se) / 0.7);
  });

  it("refuses p outside [0, 1), wrong offsets and shapes", () => {
    const inp = Tensor.from(randomF32(6, 1), [2, 3]);
    expect(() => dropout(inp, 1, 0, offsets([0, 3]))).toThrow(/dropout: expected "p" in \[0, 1\) but received 1/);
    expect(() => dropout(inp, 1 - 1e-12, 0, offsets([0, 3]))).toThrow(/"p" in \[0, 1\)/);
    expect(() => dropout(inp, -0.1, 0, offsets([0, 3]))).toThrow(RangeError);
    expect(() => dropout(inp, 0.1, 0, offsets([0]))).toThrow(/"rowOffsets" BigInt64Array of length 2/);
    expect(() => dropout(inp, 0.1, 0, offsets([0, 3]), Tensor.zeros([3, 2]))).toThrow(/"out" of shape \[2, 3\]/);
    expect(() => binding.rngDropout(new Float32Array(6), new Float32Array(5), 2, 3, 0.1, 0, offsets([0, 3]))).toThrow(
      /rngDropout: expected Float32Array of length 6 \(\[rows, C\] = \[2, 3\]\) for "inp" but received length 5/,
    );
    expect(() => binding.rngDropout(new Float32Array(6), new Float32Array(6), 2, 3, 0.1, 0, offsets([0]))).toThrow(/"rowOffsets"/);
    expect(() => binding.rngDropout(new Float32Array(6), new Float32Array(6), 2, 3, 1 - 1e-12, 0, offsets([0, 3]))).toThrow(/in \[0, 1\) \(in fp32\)/);
  });
});
