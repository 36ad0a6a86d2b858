import { expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { BASE_SEED, expectBitwiseEqual, expectClose, randomF32, randomInts } from "../helpers/reference.js";
import { describeCuda, downloadF32, poisoned, upload } from "../helpers/cuda.js";

const IGNORE = -100;
// lse: both backends sum fp32 exponentials in float64 (in other orders) and take the log in
// float64; each exp is within 1 ulp on the CPU and 2 ulp with CUDA's expf, so the sums agree
// to ~3 ulp relative, i.e. lse to ~3·2^-24 absolute, plus one fp32 rounding of lse.
const FORWARD_RTOL = 1e-6;
// The backward is given the same lse on both backends: each element is dloss·exp(x - lse)
// (minus 1 at the target), so they differ by the two exps' errors (1 + 2 ulp) and the
// product's rounding: 8 half-ulps of the largest element, normwise.
const BACKWARD_RTOL = 8 * 2 ** -24;
// Vocabularies: tiny, odd (scalar path), multiples of 4 (float4 path), and beyond 16k, where
// the block has 1024 threads and each thread several values.
const SHAPES: [number, number][] = [[1, 1], [3, 3], [4, 17], [5, 64], [6, 257], [3, 4096], [2, 33001], [2, 32000]];

/** Logits [N, V] in [-4, 4), row 1 shifted to the ±80 range, one masked (-inf) entry in row 0. */
function makeLogits(N: number, V: number, seed: number): Float32Array {
  const x = randomF32(N * V, seed, -4, 4);
  if (N > 1) for (let j = 0; j < V; j++) x[V + j] = x[V + j]! * 20 + (j % 2 ? 80 : -80) * (j % 3 === 0 ? 1 : 0.5);
  if (V > 2) x[V - 1] = -Infinity;
  return x;
}

/** Targets in [0, V) (never the masked entry), row 2 (when present) ignored. */
function makeTargets(N: number, V: number, seed: number): Int32Array {
  const t = randomInts(N, seed, V > 2 ? V - 1 : V);
  if (N > 2) t[2] = IGNORE;
  return t;
}

/** A device copy of `data` starting 4 bytes into its allocation (no float4 loads). */
function misaligned(data: Float32Array): ReturnType<typeof upload> {
  const padded = new Float32Array(data.length + 1);
  padded.set(data, 1);
  return upload(padded).view(4, data.byteLength);
}

describeCuda("cross-entropy (cuda)", () => {
  it.each(SHAPES)("forward and backward agree with the CPU backend for N=%i, V=%i", (N, V) => {
    const seed = BASE_SEED + 31 * N + V;
    const x = makeLogits(N, V, seed);
    const t = makeTargets(N, V, seed + 1);
    const dloss = 0.37;
    const lse = new Float32Array(N);
    const losses = new Float32Array(N);
    const cpu = binding.crossEntropyForward(losses, lse, x, t, N, V, IGNORE);
    const dx = new Float32Array(N * V);
    binding.crossEntropyBackward(dx, x, lse, t, N, V, IGNORE, dloss);

    const dT = upload(t);
    for (const layout of ["aligned", "misaligned"] as const) {
      const dX = layout === "aligned" ? upload(x) : misaligned(x);
      const gLse = poisoned(4 * N), gLosses = poisoned(4 * N);
      const got = binding.cuda.crossEntropyForward(gLosses, gLse, dX, dT, N, V, IGNORE);
      expect(got.count, layout).toBe(cpu.count);
      expectClose([got.lossSum], [cpu.lossSum], FORWARD_RTOL, `lossSum (${layout})`);
      expectClose(downloadF32(gLse), lse, FORWARD_RTOL, `lse (${layout})`);
      expectClose(downloadF32(gLosses), losses, FORWARD_RTOL, `losses (${layout})`);

      const gDx = poisoned(4 * N * V);
      binding.cuda.crossEntropyBackward(gDx, dX, upload(lse), dT, N, V, IGNORE, dloss);
      const gotDx = downloadF32(gDx);
      expectClose(gotDx, dx, BACKWARD_RTOL, `dlogits (${layout})`);
      // In place (dlogits = logits) gives the same bits.
      binding.cuda.crossEntropyBackward(dX, dX, upload(lse), dT, N, V, IGNORE, dloss);
      expectBitwiseEqual(downloadF32(dX), gotDx, `dlogits in place (${layout})`);
    }
  });

  it("ignore_index may be a class index, and losses may be null", () => {
    const N = 9, V = 12;
    const x = makeLogits(N, V, BASE_SEED + 3);
    const t = randomInts(N, BASE_SEED + 4, 4); // class 0 appears and is ignored
    const lse = new Float32Array(N);
    const cpu = binding.crossEntropyForward(null, lse, x, t, N, V, 0);
    const gLse = poisoned(4 * N);
    const got = binding.cuda.crossEntropyForward(null, gLse, upload(x), upload(t), N, V, 0);
    expect(got.count).toBe(cpu.count);
    expectClose([got.lossSum], [cpu.lossSum], FORWARD_RTOL, "lossSum");
    expectClose(downloadF32(gLse), lse, FORWARD_RTOL, "lse");
  });

  it("gives the same bits on every run (fixed-order reductions)", () => {
    const N = 4, V = 5000;
    const x = upload(makeLogits(N, V, BASE_SEED + 5)), t = upload(makeTargets(N, V, BASE_SEED + 6));
    const run = (): [number, Float32Array, Float32Array] => {
      const lse = poisoned(4 * N), losses = poisoned(4 * N);
      const r = binding.cuda.crossEntropyForward(losses, lse, x, t, N, V, IGNORE);
      return [r.lossSum, downloadF32(lse), downloadF32(losses)];
    };
    const [sa, la, pa] = run();
    const [sb, lb, pb] = run();
    expect(sb).toBe(sa);
    expectBitwiseEqual(lb, la, "lse");
    expectBitwiseEqual(pb, pa, "losses");
  });

  it("the forward refuses targets outside [0, V) that are not ignore_index (checked on the device)", () => {
    const N = 3, V = 5;
    const x = upload(randomF32(N * V, BASE_SEED + 7));
    expect(() => binding.cuda.crossEntropyForward(null, poisoned(4 * N), x, upload(Int32Array.from([1, 5, IGNORE])), N, V, IGNORE)).toThrow(
      /1 targets outside \[0, 5\) and not ignore_index -100/,
    );
    expect(() => binding.cuda.crossEntropyForward(null, poisoned(4 * N), x, upload(Int32Array.from([-1, 0, -7])), N, V, IGNORE)).toThrow(
      /2 targets outside \[0, 5\)/,
    );
  });

  it("names the op and the argument at fault", () => {
    const N = 2, V = 3;
    expect(() => binding.cuda.crossEntropyForward(null, poisoned(4 * N), poisoned(4 * N * V - 4), upload(new Int32Array(N)), N, V, IGNORE)).toThrow(
      /crossEntropyForward: expected float32 DeviceBuffer of length 6 \(\[N, V\] = \[2, 3\]\) for "logits" but received length 5/,
    );
    expect(() => binding.cuda.crossEntropyBackward(poisoned(4 * N * V), poisoned(4 * N * V), poisoned(4 * N), new Int32Array(N) as never, N, V, IGNORE, 1)).toThrow(
      /crossEntropyBackward: expected a DeviceBuffer \(int32\) for "targets"/,
    );
  });
});
