import { describe, expect, it } from "vitest";

import { distillStudent, distillTeacher } from "../../src/kernels/distill.js";
import { binding } from "../../src/native.js";
import { Tensor } from "../../src/tensor.js";
import { expectBitwiseEqual, expectClose, finiteDifferences, randomF32, randomInts } from "../helpers/reference.js";
import { ISAS, withSettings } from "../helpers/native.js";

// The kernel rounds u = z·fl(1/T), L = fl(lse) and u − L to float32 and takes vexp (1 ulp):
// a few 2^-24 relative in every probability and log-probability.
const LOG_ATOL = 2e-6;
const LOSS_RTOL = 1e-5;
const GRAD_RTOL = 1e-5;

const f = Math.fround;

/** The teacher's targets by the header's definition, in float64 (u rounded as the kernel rounds it). */
function teacherReference(z: Float32Array, T: number, k: number): { ids: number[]; logProbs: number[]; logRest: number } {
  const inv = f(1 / T);
  const u = Array.from(z, (v) => f(v * inv));
  const m = Math.max(...u);
  const lse = m + Math.log(u.reduce((s, v) => s + Math.exp(v - m), 0));
  const order = u.map((_, j) => j).sort((a, b) => u[b]! - u[a]! || a - b);
  const ids = order.slice(0, k);
  const rest = order.slice(k).reduce((s, j) => s + Math.exp(u[j]! - lse), 0);
  return { ids, logProbs: ids.map((j) => u[j]! - lse), logRest: Math.log(rest) };
}

/** T²·KL of the coarsened distributions for student logits z (float64), the teacher given by its stored targets. */
function studentKl(z: ArrayLike<number>, T: number, ids: ArrayLike<number>, logProbs: ArrayLike<number>, logRest: number): number {
  const u = Array.from(z, (v) => v / T);
  const m = Math.max(...u);
  const lse = m + Math.log(u.reduce((s, v) => s + Math.exp(v - m), 0));
  const top = new Set(Array.from(ids));
  let kl = 0;
  for (let i = 0; i < ids.length; i++) kl += Math.exp(logProbs[i]!) * (logProbs[i]! - (u[ids[i]!]! - lse));
  if (top.size < u.length) {
    const rest = u.reduce((s, v, j) => (top.has(j) ? s : s + Math.exp(v - lse)), 0);
    if (logRest > -Infinity) kl += Math.exp(logRest) * (logRest - Math.log(rest));
  }
  return T * T * kl;
}

interface Case {
  N: number;
  V: number;
  k: number;
  T: number;
  positions: Int32Array;
}

function targets(P: number, k: number) {
  return { ids: Tensor.zeros([P, k], "int32"), logProbs: Tensor.zeros([P, k]), logRest: Tensor.zeros([P]) };
}

/** Rows 0..N−1, every third skipped, the others at scattered distinct positions of P = N. */
function scattered(N: number, seed: number): Int32Array {
  const perm = Array.from(randomInts(N, seed, 1 << 30)).map((r, i) => [r, i] as const).sort((a, b) => a[0] - b[0]).map(([, i]) => i);
  return Int32Array.from(perm, (p, n) => (n % 3 === 2 ? -1 : p));
}

describe.each(ISAS)("distill (%s)", (isa) => {
  const cases: Case[] = [
    { N: 7, V: 37, k: 5, T: 2, positions: scattered(7, 1) },
    { N: 5, V: 300, k: 32, T: 1.5, positions: scattered(5, 2) },
    { N: 3, V: 16, k: 16, T: 1, positions: Int32Array.from([2, 0, 1]) },
  ];

  it.each(cases)("teacher targets of V=$V k=$k T=$T match the float64 definition", ({ N, V, k, T, positions }) => {
    const logits = Tensor.from(randomF32(N * V, 3, -4, 4), [N, V]);
    const out = targets(N, k);
    withSettings(isa, 2, () => distillTeacher(out, logits, Tensor.from(positions, [N], "int32"), T));
    positions.forEach((p, n) => {
      if (p < 0) return;
      const ref = teacherReference((logits.data as Float32Array).subarray(n * V, (n + 1) * V), T, k);
      expect(Array.from((out.ids.data as Int32Array).subarray(p * k, (p + 1) * k))).toEqual(ref.ids);
      const lp = (out.logProbs.data as Float32Array).subarray(p * k, (p + 1) * k);
      ref.logProbs.forEach((v, i) => expect(Math.abs(lp[i]! - v), `logProbs[${p}, ${i}]`).toBeLessThan(LOG_ATOL * Math.max(1, Math.abs(v))));
      const lr = out.logRest.data[p]!;
      if (k === V) expect(lr).toBe(-Infinity);
      else expect(Math.abs(lr - ref.logRest), `logRest[${p}]`).toBeLessThan(LOG_ATOL * Math.max(1, Math.abs(ref.logRest)));
    });
  });

  it.each(cases)("student loss and gradient of V=$V k=$k T=$T match float64 and its finite differences", ({ N, V, k, T, positions }) => {
    const teacherLogits = Tensor.from(randomF32(N * V, 4, -3, 3), [N, V]);
    const studentLogits = Tensor.from(randomF32(N * V, 5, -3, 3), [N, V]);
    const pos = Tensor.from(positions, [N], "int32");
    const t = targets(N, k);
    withSettings(isa, 1, () => distillTeacher(t, teacherLogits, pos, T));
    const g0 = randomF32(N * V, 6, -0.1, 0.1);
    const grad = Tensor.from(g0, [N, V]);
    const scale = 0.3;
    const loss = withSettings(isa, 2, () => distillStudent(grad, studentLogits, t, pos, T, scale));
    let expected = 0;
    positions.forEach((p, n) => {
      const row = (studentLogits.data as Float32Array).subarray(n * V, (n + 1) * V);
      const gRow = (grad.data as Float32Array).subarray(n * V, (n + 1) * V);
      if (p < 0) {
        expectBitwiseEqual(gRow, g0.subarray(n * V, (n + 1) * V), `row ${n} skipped`);
        return;
      }
      const ids = (t.ids.data as Int32Array).subarray(p * k, (p + 1) * k);
      const lp = (t.logProbs.data as Float32Array).subarray(p * k, (p + 1) * k);
      const lr = t.logRest.data[p]!;
      expected += studentKl(row, T, ids, lp, lr);
      const fd = finiteDifferences((z) => scale * studentKl(z, T, ids, lp, lr), Float64Array.from(row), 1e-4);
      const added = Float64Array.from(gRow, (g, j) => g - g0[n * V + j]!);
      expectClose(added, fd, GRAD_RTOL, `row ${n}: ∂(scale·T²·KL)/∂z vs finite differences`);
    });
    expectClose([loss], [expected], LOSS_RTOL, "Σ T²·KL");
  });

  it("a student equal to the teacher gets exactly 0 loss and adds exactly 0, for any thread count", () => {
    const N = 64;
    const V = 1000;
    const k = 20;
    const logits = Tensor.from(randomF32(N * V, 7, -6, 6), [N, V]);
    const pos = Tensor.from(Int32Array.from({ length: N }, (_, n) => n), [N], "int32");
    const t = targets(N, k);
    withSettings(isa, 2, () => distillTeacher(t, logits, pos, 2));
    for (const threads of [1, 2]) {
      const g0 = randomF32(N * V, 8);
      const grad = Tensor.from(g0, [N, V]);
      expect(withSettings(isa, threads, () => distillStudent(grad, logits, t, pos, 2, 1))).toBe(0);
      expectBitwiseEqual(grad.data, g0, `gradient on ${threads} thread(s)`);
    }
  });

  it("is bitwise the same for 1 and 2 threads", () => {
    const N = 96;
    const V = 777;
    const k = 16;
    const pos = Tensor.from(scattered(N, 9), [N], "int32");
    const teacherLogits = Tensor.from(randomF32(N * V, 10, -5, 5), [N, V]);
    const studentLogits = Tensor.from(randomF32(N * V, 11, -5, 5), [N, V]);
    const run = (threads: number) =>
      withSettings(isa, threads, () => {
        const t = targets(N, k);
        distillTeacher(t, teacherLogits, pos, 1.7);
        const grad = Tensor.zeros([N, V]);
        const loss = distillStudent(grad, studentLogits, t, pos, 1.7, 0.5);
        return { t, grad, loss };
      });
    const one = run(1);
    const two = run(2);
    expectBitwiseEqual(one.t.ids.data, two.t.ids.data, "ids");
    expectBitwiseEqual(one.t.logProbs.data, two.t.logProbs.data, "logProbs");
    expectBitwiseEqual(one.t.logRest.data, two.t.logRest.data, "logRest");
    expectBitwiseEqual(one.grad.data, two.grad.data, "grad");
    expect(two.loss).toBe(one.loss);
  });

  it("keeps a finite gradient when the student's rest mass is far below the teacher's", () => {
    const V = 8;
    const teacher = Tensor.from([0, 0, 0, 0, 0, 0, 0, 0], [1, V]);
    const student = Tensor.from([80, 0, -80, -80, -80, -80, -80, -80], [1, V]);
    const pos = Tensor.from([0], [1], "int32");
    const t = targets(1, 2);
    withSettings(isa, 1, () => distillTeacher(t, teacher, pos, 1));
    const grad = Tensor.zeros([1, V]);
    const loss = withSettings(isa, 1, () => distillStudent(grad, student, t, pos, 1, 1));
    expect(Number.isFinite(loss) && loss > 0).toBe(true);
    expect(grad.data.every((g) => Number.isFinite(g))).toBe(true);
  });
});

describe("distill errors", () => {
  const V = 10;
  const logits = () => Tensor.from(randomF32(2 * V, 12), [2, V]);
  it("refuses bad positions, ids, k, temperature and shapes by name", () => {
    const t = targets(2, 3);
    expect(() => distillTeacher(t, logits(), Tensor.from([1, 1], [2], "int32"), 1)).toThrow(/distillTeacher: "positions"\[1\] = 1 appears twice: positions must be -1 or in \[0, 2\), each at most once/);
    expect(() => distillTeacher(t, logits(), Tensor.from([0, 2], [2], "int32"), 1)).toThrow(/"positions"\[1\] = 2: positions must be -1 or in \[0, 2\)/);
    expect(() => distillTeacher(t, logits(), Tensor.from([0, 1], [2], "int32"), 0)).toThrow(/"temperature" must be a positive normal float32/);
    expect(() => distillTeacher(targets(2, 11), logits(), Tensor.from([0, 1], [2], "int32"), 1)).toThrow(/distillTeacher: "k" must be at most V/);
    expect(() => distillTeacher(t, logits(), Tensor.from([0, 1, 0], [3], "int32"), 1)).toThrow(/distillTeacher: expected "positions" of shape \[N\] = \[2\] but received \[3\]/);
    t.ids.data[4] = 99;
    expect(() => distillStudent(Tensor.zeros([2, V]), logits(), t, Tensor.from([-1, 1], [2], "int32"), 1, 1)).toThrow(/distillStudent: "ids"\[4\] = 99 is out of range \[0, 10\)/);
    expect(() => distillStudent(Tensor.zeros([2, V]), logits(), t, Tensor.from([-1, 0], [2], "int32"), 1, Number.NaN)).toThrow(/expected a finite number for "scale"/);
    expect(() => distillStudent(Tensor.zeros([2, 9]), logits(), t, Tensor.from([-1, 0], [2], "int32"), 1, 1)).toThrow(/expected "grad" of shape \[N, V\] = \[2, 10\]/);
    const shared = logits();
    expect(() => binding.distillStudent(shared.data as Float32Array, shared.data as Float32Array, new Int32Array(6), new Float32Array(6), new Float32Array(2), Int32Array.from([0, 1]), 2, V, 2, 3, 1, 1)).toThrow(
      /distillStudent: "grad" and "logits" share memory/,
    );
  });
});
