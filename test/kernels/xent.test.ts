import { describe, expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { crossEntropy, crossEntropyBackward } from "../../src/kernels/xent.js";
import { Tensor } from "../../src/tensor.js";
import {
  BASE_SEED,
  expectBitwiseEqual,
  expectClose,
  finiteDifferences,
  randomF32,
  randomInts,
  rng,
} from "../helpers/reference.js";
import { ISAS, withSettings } from "../helpers/native.js";

const IGNORE = -100;
// lse and losses: each exp within 1 ulp, float partial sums over 4 vectors per block before
// float64, and lse rounded to float32 once: a few ulps of the row's scale at most.
const FORWARD_RTOL = 5e-7;
// softmax = exp(x - lse) with lse rounded to float32: the argument carries up to
// ulp(|lse|)/2 ≈ 4e-6 of error at |lse| = 80, which is the relative error of every p in the row.
const BACKWARD_RTOL = 2e-5;
// The vector exp (SLEEF's reduction and polynomial) and glibc's expf are within 1 ulp.
const EXP_MAX_ULP = 1;
const VOCABS = [1, 3, 17, 257, 32000];

/** Logits [N, V]: uniform in [-4, 4), with row 1 (when present) shifted to the ±80 range. */
function makeLogits(N: number, V: number, seed: number): Float32Array {
  const x = randomF32(N * V, seed, -4, 4);
  if (N > 1) for (let j = 0; j < V; j++) x[V + j] = x[V + j]! * 20 + (j % 2 ? 80 : -80) * (j % 3 === 0 ? 1 : 0.5);
  return x;
}

/** Targets in [0, V), with row 2 (when present) ignored. */
function makeTargets(N: number, V: number, seed: number): Int32Array {
  const t = randomInts(N, seed, V);
  if (N > 2) t[2] = IGNORE;
  return t;
}

interface Reference {
  lse: Float64Array;
  losses: Float64Array;
  sum: number;
  count: number;
}

function refForward(x: ArrayLike<number>, t: ArrayLike<number>, N: number, V: number): Reference {
  const lse = new Float64Array(N);
  const losses = new Float64Array(N);
  let sum = 0;
  let count = 0;
  for (let n = 0; n < N; n++) {
    if (t[n] === IGNORE) continue;
    let max = -Infinity;
    for (let j = 0; j < V; j++) max = Math.max(max, x[n * V + j]!);
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(x[n * V + j]! - max);
    lse[n] = max + Math.log(s);
    losses[n] = lse[n]! - x[n * V + t[n]!]!;
    sum += losses[n]!;
    count++;
  }
  return { lse, losses, sum, count };
}

function refBackward(x: ArrayLike<number>, t: ArrayLike<number>, N: number, V: number, dloss: number): Float64Array {
  const { lse } = refForward(x, t, N, V);
  const d = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    if (t[n] === IGNORE) continue;
    for (let j = 0; j < V; j++) d[n * V + j] = dloss * (Math.exp(x[n * V + j]! - lse[n]!) - (j === t[n] ? 1 : 0));
  }
  return d;
}

function rowsFor(V: number): number {
  return V >= 32000 ? 3 : 7;
}

describe.each(ISAS)("cross-entropy (%s)", (isa) => {
  it.each(VOCABS)("forward V=%i matches float64 logsumexp and is thread-count independent", (V) => {
    const N = rowsFor(V);
    const logits = Tensor.from(makeLogits(N, V, 11 + V), [N, V]);
    const targets = Tensor.from(makeTargets(N, V, 12 + V), [N], "int32");
    const one = withSettings(isa, 1, () => crossEntropy(logits, targets, { reduction: "none" }));
    const two = withSettings(isa, 2, () => crossEntropy(logits, targets, { reduction: "none" }));
    const ref = refForward(logits.data, targets.data, N, V);
    expectClose(one.lse.data, ref.lse, FORWARD_RTOL, `lse V=${V}`);
    expectClose(one.losses!.data, ref.losses, FORWARD_RTOL, `losses V=${V}`);
    expect(one.count).toBe(ref.count);
    expectClose([one.lossSum], [ref.sum], FORWARD_RTOL, `loss sum V=${V}`);
    expect(one.loss).toBe(one.lossSum / one.count);
    expect(one.lse.data[2]).toBe(0); // ignored rows are not read
    expectBitwiseEqual(one.lse.data, two.lse.data, `lse V=${V} 1 vs 2 threads`);
    expectBitwiseEqual(one.losses!.data, two.losses!.data, `losses V=${V} 1 vs 2 threads`);
    expect(two.lossSum).toBe(one.lossSum);
  });

  it("forward over a 128k+ vocabulary", () => {
    const N = 2;
    const V = 131_072 + 5;
    const logits = Tensor.from(randomF32(N * V, 13, -8, 8), [N, V]);
    const targets = Tensor.from([5, V - 1], [N], "int32");
    const r = withSettings(isa, 2, () => crossEntropy(logits, targets, { reduction: "sum" }));
    const ref = refForward(logits.data, targets.data, N, V);
    expectClose(r.lse.data, ref.lse, FORWARD_RTOL, "lse V=128k");
    expectClose([r.loss], [ref.sum], FORWARD_RTOL, "loss sum V=128k");
  });

  it.each(VOCABS)("backward V=%i matches the float64 softmax - onehot", (V) => {
    const N = rowsFor(V);
    const x = makeLogits(N, V, 21 + V);
    const logits = Tensor.from(x, [N, V]);
    const targets = Tensor.from(makeTargets(N, V, 22 + V), [N], "int32");
    const { lse, count } = withSettings(isa, 1, () => crossEntropy(logits, targets));
    const dloss = 1 / count;
    const one = withSettings(isa, 1, () => crossEntropyBackward(logits, targets, lse, { dloss }));
    const two = withSettings(isa, 2, () => crossEntropyBackward(logits, targets, lse, { dloss }));
    expectClose(one.data, refBackward(x, targets.data, N, V, dloss), BACKWARD_RTOL, `dlogits V=${V}`);
    expectBitwiseEqual(one.data, two.data, `dlogits V=${V} 1 vs 2 threads`);
    for (let j = 0; j < V; j++) if (one.data[2 * V + j] !== 0) expect.fail(`ignored row 2 has dlogits[${j}] = ${one.data[2 * V + j]}`);
    // In place (the gradient replaces the logits) gives the same bits.
    const inPlace = withSettings(isa, 2, () => crossEntropyBackward(logits, targets, lse, { dloss, inPlace: true }));
    expect(inPlace).toBe(logits);
    expectBitwiseEqual(inPlace.data, one.data, `dlogits V=${V} in place vs out of place`);
  });

  it("backward matches finite differences of the float64 mean loss", () => {
    const N = 4;
    const V = 17;
    const x = randomF32(N * V, 31, -3, 3);
    const t = Int32Array.from([3, IGNORE, 16, 0]);
    const logits = Tensor.from(x, [N, V]);
    const targets = Tensor.from(t, [N], "int32");
    const { lse, count } = withSettings(isa, 2, () => crossEntropy(logits, targets));
    const d = withSettings(isa, 2, () => crossEntropyBackward(logits, targets, lse, { dloss: 1 / count }));
    const meanLoss = (p: Float64Array): number => {
      const r = refForward(p, t, N, V);
      return r.sum / r.count;
    };
    const fd = finiteDifferences(meanLoss, Float64Array.from(x));
    // The loss is a scalar, so its finite differences are the whole gradient.
    expectClose(d.data, fd, BACKWARD_RTOL, "dlogits vs finite differences");
  });

  it("counts a batch where all rows but one are ignored, and one where all are", () => {
    const N = 5;
    const V = 257;
    const x = randomF32(N * V, 41, -2, 2);
    const logits = Tensor.from(x, [N, V]);
    const t = Int32Array.from([IGNORE, IGNORE, 200, IGNORE, IGNORE]);
    const targets = Tensor.from(t, [N], "int32");
    const r = withSettings(isa, 2, () => crossEntropy(logits, targets));
    expect(r.count).toBe(1);
    expectClose([r.loss], [refForward(x, t, N, V).sum], FORWARD_RTOL, "single counted row");
    const d = withSettings(isa, 2, () => crossEntropyBackward(logits, targets, r.lse, { dloss: 1 }));
    expectClose(d.data, refBackward(x, t, N, V, 1), BACKWARD_RTOL, "single counted row backward");

    const none = Tensor.from(new Int32Array(N).fill(IGNORE), [N], "int32");
    const empty = withSettings(isa, 2, () => crossEntropy(logits, none));
    expect(empty.count).toBe(0);
    expect(empty.lossSum).toBe(0);
    expect(empty.loss).toBeNaN(); // mean over nothing, as torch
    const zero = withSettings(isa, 2, () => crossEntropyBackward(logits, none, empty.lse, { dloss: 1 }));
    expect(zero.data.every((v) => v === 0)).toBe(true);
  });

  it("computes exp within 1 ulp of Math.exp over the float range", () => {
    // With lse = 0 and dloss = 1, dlogits[j] = exp(logits[j]) for every j but the target.
    const V = 20_001;
    const next = rng(51);
    const x = new Float32Array(V);
    for (let j = 1; j < V; j++) x[j] = -103.5 + 192.2 * next(); // [-103.5, 88.7): subnormal to near overflow
    x[1] = 0;
    x[2] = -0;
    x[3] = 88.72;
    const d = new Float32Array(V);
    withSettings(isa, 2, () =>
      binding.crossEntropyBackward(d, x, new Float32Array(1), new Int32Array(1), 1, V, IGNORE, 1),
    );
    let worst = 0;
    let worstAt = 0;
    for (let j = 1; j < V; j++) {
      const exact = Math.exp(x[j]!);
      // ulp of the float32 result; below 2^-126 the spacing is 2^-149.
      const ulp = exact >= 2 ** -126 ? 2 ** (Math.floor(Math.log2(exact)) - 23) : 2 ** -149;
      const err = Math.abs(d[j]! - exact) / ulp;
      if (err > worst) {
        worst = err;
        worstAt = x[j]!;
      }
    }
    expect(worst, `exp(${worstAt}) is off by ${worst.toFixed(3)} ulp (seed ${BASE_SEED})`).toBeLessThanOrEqual(EXP_MAX_ULP);
    expect(d[1]).toBe(1);
  });

  it("propagates NaN and handles -inf logits", () => {
    const V = 40;
    const x = randomF32(3 * V, 61, -1, 1);
    x[5] = NaN; // row 0 is NaN
    for (let j = 0; j < V; j++) if (j !== 7) x[V + j] = -Infinity; // row 1: a single finite logit
    x[2 * V + 3] = -Infinity; // row 2: one masked logit
    const logits = Tensor.from(x, [3, V]);
    const targets = Tensor.from([0, 7, 4], [3], "int32");
    const r = withSettings(isa, 2, () => crossEntropy(logits, targets, { reduction: "none" }));
    expect(r.losses!.data[0]).toBeNaN();
    expect(r.losses!.data[1]).toBe(0);
    expect(r.lse.data[1]).toBe(x[V + 7]);
    expectClose([r.losses!.data[2]!], [refForward(x.subarray(2 * V), [4], 1, V).sum], FORWARD_RTOL, "masked logit");
    const d = withSettings(isa, 2, () => crossEntropyBackward(logits, targets, r.lse, { dloss: 1 }));
    expect(d.data[2 * V + 3]).toBe(0);
    expect(d.data[V + 7]).toBe(0);
  });
});

describe("cross-entropy errors", () => {
  const logits = Tensor.from(randomF32(6, 71), [2, 3]);
  const targets = Tensor.from([0, 2], [2], "int32");

  it("refuses wrong shapes and dtypes before touching memory", () => {
    expect(() => crossEntropy(logits.reshape([6]), targets)).toThrow(/crossEntropy: expected "logits" of rank 2/);
    expect(() => crossEntropy(logits, Tensor.from([0, 1, 2], [3], "int32"))).toThrow(
      /crossEntropy: expected "targets" of shape \[N\] = \[2\] but received \[3\]/,
    );
    expect(() => crossEntropy(logits, Tensor.from([0, 1], [2]))).toThrow(TypeError);
    expect(() => crossEntropy(logits, targets, { lse: Tensor.zeros([3]) })).toThrow(/"lse" of shape \[N\] = \[2\]/);
    const { lse } = crossEntropy(logits, targets);
    expect(() => crossEntropyBackward(logits, targets, lse, { dloss: NaN })).toThrow(
      /crossEntropyBackward: expected a finite number for "dloss"/,
    );
    expect(() => crossEntropyBackward(logits, targets, lse, { dloss: 1, out: Tensor.zeros([3, 2]) })).toThrow(
      /"out" of shape \[N, V\] = \[2, 3\]/,
    );
  });

  it("refuses targets outside [0, V) unless they are ignoreIndex", () => {
    expect(() => crossEntropy(logits, Tensor.from([0, 3], [2], "int32"))).toThrow(
      /crossEntropyForward: "targets"\[1\] = 3 is out of range \[0, 3\) and is not -100/,
    );
    expect(() => crossEntropy(logits, Tensor.from([-1, 0], [2], "int32"))).toThrow(RangeError);
    expect(() => crossEntropy(logits, Tensor.from([-1, 0], [2], "int32"), { ignoreIndex: -1 })).not.toThrow();
    const { lse } = crossEntropy(logits, targets);
    expect(() => crossEntropyBackward(logits, Tensor.from([0, -100], [2], "int32"), lse, { dloss: 1, ignoreIndex: 0 })).toThrow(
      /crossEntropyBackward: "targets"\[1\] = -100 is out of range/,
    );
  });

  it("refuses bad binding arguments", () => {
    const x = new Float32Array(6);
    expect(() => binding.crossEntropyForward(null, new Float32Array(2), x, new Int32Array(2), 2, 4, -100)).toThrow(
      /crossEntropyForward: expected Float32Array of length 8 \(\[N, V\] = \[2, 4\]\) for "logits"/,
    );
    expect(() => binding.crossEntropyBackward(x, x, new Float32Array(2), new Int32Array(2), 2, 3, -100, Infinity)).toThrow(
      /crossEntropyBackward: expected a finite number for "dloss"/,
    );
    expect(() => binding.crossEntropyForward(null, new Float32Array(2), x, new Int32Array(2), 2, 0, -100)).toThrow(RangeError);
  });
});
