import { describe, expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { embeddingBackward, embeddingForward } from "../../src/kernels/embedding.js";
import { Tensor } from "../../src/tensor.js";
import { expectBitwiseEqual, expectClose, randomF32, randomInts } from "../helpers/reference.js";
import { ISAS, expectDeterministic, withSettings } from "../helpers/native.js";

// One fp32 rounding per token added to a dtable row: with V = 50 and N <= 257 an id
// repeats about 5 times (rarely 16), each rounding at most 2^-24 of the running sum.
const BACKWARD_RTOL = 2 ** -18;
const SIZES = [1, 3, 17, 127, 257];

function backward64(dout: Float32Array, ids: Int32Array, dtable0: Float32Array, C: number, paddingIdx = -1): Float64Array {
  const out = Float64Array.from(dtable0);
  for (let n = 0; n < ids.length; n++) {
    if (ids[n] === paddingIdx) continue;
    for (let c = 0; c < C; c++) out[ids[n]! * C + c] = out[ids[n]! * C + c]! + dout[n * C + c]!;
  }
  return out;
}

describe.each(ISAS)("embedding (%s)", (isa) => {
  describe.each(SIZES)("N=%i", (N) => {
    it.each(SIZES)("C=%i gathers rows and scatter-adds them back", (C) => {
      const V = 50;
      const ids = Tensor.from(randomInts(N, N + C, V), [N], "int32");
      const table = Tensor.from(randomF32(V * C, C), [V, C]);
      const out = withSettings(isa, 2, () => embeddingForward(ids, table));
      expect(out.shape).toEqual([N, C]);
      for (let n = 0; n < N; n++) {
        const id = ids.data[n]!;
        expectBitwiseEqual(out.data.subarray(n * C, (n + 1) * C), table.data.subarray(id * C, (id + 1) * C), `row ${n}`);
      }
      const dout = Tensor.from(randomF32(N * C, N * C), [N, C]);
      const dtable0 = randomF32(V * C, 3);
      const dtable = Tensor.from(dtable0, [V, C]);
      withSettings(isa, 2, () => embeddingBackward(dout, ids, dtable));
      expectClose(dtable.data, backward64(dout.data, ids.data, dtable0, C), BACKWARD_RTOL, `backward N=${N} C=${C}`);
      // With a padding id (one that occurs, where N allows), whose row keeps its value.
      const pad = ids.data[N >> 1]!;
      const padded = Tensor.from(dtable0, [V, C]);
      withSettings(isa, 2, () => embeddingBackward(dout, ids, padded, pad));
      expectClose(padded.data, backward64(dout.data, ids.data, dtable0, C, pad), BACKWARD_RTOL, `backward N=${N} C=${C} paddingIdx=${pad}`);
      expectBitwiseEqual(padded.data.subarray(pad * C, (pad + 1) * C), dtable0.subarray(pad * C, (pad + 1) * C), "the padding row");
    });
  });

  it("sums repeated ids exactly in token order, bitwise the same for 1 and 2 threads and on rerun", () => {
    const [N, V, C] = [4096, 7, 300]; // C > 128: three column tasks
    const ids = Tensor.from(randomInts(N, 1, V), [2, N / 2], "int32");
    const dout = Tensor.from(randomF32(N * C, 2), [2, N / 2, C]);
    const table = Tensor.from(randomF32(V * C, 4), [V, C]);
    const one = expectDeterministic(isa, () => {
      const dtable = Tensor.from(randomF32(V * C, 3), [V, C]);
      embeddingBackward(dout, ids, dtable);
      return { dtable, out: embeddingForward(ids, table) };
    });
    // The same fp32 additions in token order, replayed in JavaScript.
    const expected = Float32Array.from(randomF32(V * C, 3));
    for (let n = 0; n < N; n++) {
      const id = ids.data[n]!;
      for (let c = 0; c < C; c++) expected[id * C + c] = Math.fround(expected[id * C + c]! + dout.data[n * C + c]!);
    }
    expectBitwiseEqual(one.dtable.data, expected, "token-order fp32 sum");
    expect(one.out.shape).toEqual([2, N / 2, C]);
  });
});

describe("embedding errors", () => {
  const table = Tensor.zeros([10, 4]);
  it("refuses bad shapes and dtypes before touching memory", () => {
    const ids = Tensor.from([1, 2, 3], [3], "int32");
    expect(() => embeddingForward(Tensor.from([1, 2, 3]), table)).toThrow(/embeddingForward: expected "ids" of dtype int32/);
    expect(() => embeddingForward(Tensor.zeros([1, 2, 3], "int32"), table)).toThrow(/expected "ids" of shape \[N\] or \[B, T\]/);
    expect(() => embeddingForward(ids, Tensor.zeros([40]))).toThrow(/embeddingForward: expected "table" of rank 2/);
    expect(() => embeddingForward(ids, table, Tensor.zeros([3, 5]))).toThrow(
      /embeddingForward: expected "out" of shape \[N, C\] = \[3, 4\] but received \[3, 5\]/,
    );
    expect(() => embeddingBackward(Tensor.zeros([3, 5]), ids, table)).toThrow(/embeddingBackward: expected "dout"/);
  });

  it("refuses out-of-range ids, naming the op, the index and the value, before writing", () => {
    const out = Tensor.from(randomF32(12, 1), [3, 4]);
    const before = Float32Array.from(out.data);
    for (const bad of [10, -1, 2 ** 31 - 1]) {
      const ids = Tensor.from([0, 9, bad], [3], "int32");
      expect(() => embeddingForward(ids, table, out)).toThrow(RangeError);
      expect(() => embeddingForward(ids, table, out)).toThrow(
        new RegExp(`embeddingForward: "ids"\\[2\\] = ${bad} is out of range \\[0, 10\\)`),
      );
      expect(() => embeddingBackward(out, ids, table)).toThrow(new RegExp(`embeddingBackward: "ids"\\[2\\] = ${bad}`));
    }
    expectBitwiseEqual(out.data, before, "out untouched");
    expect(Array.from(table.data).every((v) => v === 0)).toBe(true);
  });

  it("the binding re-checks lengths", () => {
    expect(() => binding.embeddingForward(new Float32Array(8), new Int32Array(2), new Float32Array(39), 2, 10, 4)).toThrow(
      /embeddingForward: expected Float32Array of length 40 \(\[V, C\] = \[10, 4\]\) for "table" but received length 39/,
    );
    expect(() => binding.embeddingBackward(new Float32Array(40), new Float32Array(8), new Int32Array(3), 2, 10, 4, -1)).toThrow(RangeError);
    expect(() => binding.embeddingBackward(new Float32Array(40), new Float32Array(8), new Int32Array(2), 2, 10, 4, 10)).toThrow(
      /embeddingBackward: expected an integer in \[-1, 9\] for "paddingIdx" but received 10/,
    );
  });
});
