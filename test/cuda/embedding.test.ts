import { expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { BASE_SEED, expectBitwiseEqual, randomF32, randomInts } from "../helpers/reference.js";
import { describeCuda, downloadF32, poisoned, upload } from "../helpers/cuda.js";

// No tolerance: the forward copies rows, and the backward makes the CPU backend's fp32
// additions in the CPU's order (each dtable row plus its tokens' dout rows in token order),
// so both backends give the same bits.
//
// [N, V, C, paddingIdx]: odd sizes, C a multiple of 4 (the float4 copy) and not, more than
// 128 columns (several column tiles), N > 2048 (sort steps across shared-memory chunks) with
// few ids (long groups of repeated ids) and one id for every token (one group), with and
// without a padding id (whose tokens add nothing).
const CASES: [number, number, number, number][] = [
  [1, 1, 1, -1],
  [3, 5, 4, 0],
  [17, 50, 17, -1],
  [127, 30, 300, 29],
  [1000, 500, 64, 7],
  [2500, 7, 129, 3],
  [5000, 1, 8, -1],
  [600, 1, 8, 0],
];

function cpu(ids: Int32Array, table: Float32Array, dout: Float32Array, dtable0: Float32Array, V: number, C: number, pad: number) {
  const N = ids.length;
  const out = new Float32Array(N * C);
  binding.embeddingForward(out, ids, table, N, V, C);
  const dtable = dtable0.slice();
  binding.embeddingBackward(dtable, dout, ids, N, V, C, pad);
  return { out, dtable };
}

describeCuda("embedding (cuda)", () => {
  it.each(CASES)("forward and backward give the CPU backend's bits for N=%i, V=%i, C=%i, paddingIdx=%i", (N, V, C, pad) => {
    const seed = BASE_SEED + N * 7 + C;
    const ids = randomInts(N, seed, V);
    const table = randomF32(V * C, seed + 1);
    const dout = randomF32(N * C, seed + 2);
    const dtable0 = randomF32(V * C, seed + 3);
    const want = cpu(ids, table, dout, dtable0, V, C, pad);

    const gids = upload(ids);
    const gout = poisoned(N * C * 4);
    binding.cuda.embeddingForward(gout, gids, upload(table), N, V, C);
    expectBitwiseEqual(downloadF32(gout), want.out, "out");
    const gdtable = upload(dtable0);
    binding.cuda.embeddingBackward(gdtable, upload(dout), gids, N, V, C, pad);
    expectBitwiseEqual(downloadF32(gdtable), want.dtable, "dtable (accumulated)");
    if (pad >= 0) expectBitwiseEqual(want.dtable.subarray(pad * C, (pad + 1) * C), dtable0.subarray(pad * C, (pad + 1) * C), "the padding row");
  });

  it("gives the same bits on every run", () => {
    const [N, V, C] = [3000, 11, 40];
    const ids = upload(randomInts(N, BASE_SEED + 41, V));
    const dout = upload(randomF32(N * C, BASE_SEED + 42));
    const start = randomF32(V * C, BASE_SEED + 43);
    const run = () => {
      const dtable = upload(start);
      binding.cuda.embeddingBackward(dtable, dout, ids, N, V, C, -1);
      return downloadF32(dtable);
    };
    expectBitwiseEqual(run(), run(), "rerun");
  });

  it("flags ids outside [0, V): NaN rows in the forward, skipped tokens in the backward", () => {
    const [V, C] = [6, 5];
    const ids = Int32Array.from([2, -1, 5, 6, 2, 2147483647, 0, -2147483648]);
    const N = ids.length;
    const valid = (id: number) => id >= 0 && id < V;
    const table = randomF32(V * C, BASE_SEED + 51);
    const dout = randomF32(N * C, BASE_SEED + 52);
    const dtable0 = randomF32(V * C, BASE_SEED + 53);

    const gout = poisoned(N * C * 4);
    binding.cuda.embeddingForward(gout, upload(ids), upload(table), N, V, C);
    const out = downloadF32(gout);
    ids.forEach((id, n) => {
      const row = out.subarray(n * C, (n + 1) * C);
      if (valid(id)) expectBitwiseEqual(row, table.subarray(id * C, (id + 1) * C), `row ${n}`);
      else expect(row.every(Number.isNaN), `row ${n} (id ${id}) is NaN`).toBe(true);
    });

    const gdtable = upload(dtable0);
    binding.cuda.embeddingBackward(gdtable, upload(dout), upload(ids), N, V, C, -1);
    // The CPU backend on the valid tokens alone.
    const keep = [...ids.keys()].filter((n) => valid(ids[n]!));
    const keptIds = Int32Array.from(keep, (n) => ids[n]!);
    const keptDout = new Float32Array(keep.length * C);
    keep.forEach((n, k) => keptDout.set(dout.subarray(n * C, (n + 1) * C), k * C));
    const want = dtable0.slice();
    binding.embeddingBackward(want, keptDout, keptIds, keep.length, V, C, -1);
    expectBitwiseEqual(downloadF32(gdtable), want, "dtable without the invalid tokens");
  });
});
