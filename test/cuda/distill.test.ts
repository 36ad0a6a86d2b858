import { expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { BASE_SEED, expectBitwiseEqual, expectClose, randomF32, randomInts } from "../helpers/reference.js";
import { describeCuda, downloadF32, downloadI32, poisoned, upload } from "../helpers/cuda.js";

// Both backends form u = fl(z·fl(1/T)) identically, so the teacher's ids (the order of u, ties
// to the lower id) are the same exactly. L = fl(logsumexp u) differs by the exponentials (the
// CPU's vexp and CUDA's expf, each within 2 ulp) and the order of the double sums: a few
// 2^-24 relative in the sum, i.e. a few ulp of L, which shows in every u − L: normwise 2e-6
// over the log-probabilities (whose largest magnitudes are a few units here).
const LOG_RTOL = 2e-6;
// The KL and the gradient are products of those probabilities (each a few ulp apart) summed
// in different orders: 1e-5 normwise, as the CPU's own test against float64 allows.
const LOSS_RTOL = 1e-5;
const GRAD_RTOL = 1e-5;

// (N, V, k): a single row and class, odd vocabularies, k = V (no rest mass), and V = 2051
// (blocks of 256 threads with 8 values each, a partial last round).
const SHAPES: [number, number, number][] = [[1, 1, 1], [3, 7, 2], [5, 33, 5], [4, 257, 16], [3, 9, 9], [2, 2051, 4]];

/**
 * Logits [N, V] on a grid of 1/4 (many exact ties), row 1 spread to ±40, and (when k leaves
 * room, so it is never a target: its log-probability would be −∞) one −∞ entry in row 0.
 */
function logitsOf(N: number, V: number, k: number, seed: number): Float32Array {
  const z = randomF32(N * V, seed, -4, 4).map((v) => Math.round(4 * v) / 4);
  if (N > 1) for (let j = 0; j < V; j++) z[V + j] = z[V + j]! * 10;
  if (V > 2 * k + 2) z[2] = -Infinity;
  return z;
}

/** The entries of a [P, width] target array that rows use, and whether each entry is used. */
function split(a: Float32Array, positions: Int32Array, width: number): { used: number[]; unused: number[] } {
  const isUsed = new Uint8Array(a.length / width);
  for (const p of positions) if (p >= 0) isUsed[p] = 1;
  const used: number[] = [], unused: number[] = [];
  a.forEach((v, i) => (isUsed[Math.floor(i / width)] ? used : unused).push(v === -Infinity ? -1e30 : v));
  return { used, unused };
}

/** Rows at distinct scattered positions of P = N + 2, every third row skipped. */
function positionsOf(N: number, seed: number): { positions: Int32Array; P: number } {
  const P = N + 2;
  const order = Array.from(randomInts(P, seed, 1 << 30)).map((r, i) => [r, i] as const).sort((a, b) => a[0] - b[0]);
  return { positions: Int32Array.from({ length: N }, (_, n) => (n % 3 === 2 ? -1 : order[n]![1])), P };
}

interface Targets {
  ids: Int32Array;
  logProbs: Float32Array;
  logRest: Float32Array;
}

function cpuTeacher(z: Float32Array, positions: Int32Array, N: number, V: number, P: number, k: number, T: number): Targets {
  const t = { ids: new Int32Array(P * k).fill(-1), logProbs: new Float32Array(P * k).fill(Number.NaN), logRest: new Float32Array(P).fill(Number.NaN) };
  binding.distillTeacher(t.ids, t.logProbs, t.logRest, z, positions, N, V, P, k, T);
  return t;
}

function cudaTeacher(z: Float32Array, positions: Int32Array, N: number, V: number, P: number, k: number, T: number): Targets {
  const ids = poisoned(4 * P * k), logProbs = poisoned(4 * P * k), logRest = poisoned(4 * P);
  binding.cuda.distillTeacher(ids, logProbs, logRest, upload(z), upload(positions), N, V, P, k, T);
  return { ids: downloadI32(ids), logProbs: downloadF32(logProbs), logRest: downloadF32(logRest) };
}

describeCuda("distillation (cuda)", () => {
  it.each(SHAPES)("teacher targets agree with the CPU backend for N=%i, V=%i, k=%i", (N, V, k) => {
    for (const T of [1, 1.7]) {
      const seed = BASE_SEED + 13 * N + V + k;
      const z = logitsOf(N, V, k, seed);
      const { positions, P } = positionsOf(N, seed + 1);
      const cpu = cpuTeacher(z, positions, N, V, P, k, T);
      const got = cudaTeacher(z, positions, N, V, P, k, T);
      // Unused entries keep the poison on both (-1 ids, NaN logs), written ones must match.
      expectBitwiseEqual(got.ids, cpu.ids, `ids, T=${T}`);
      for (const [name, width] of [["logProbs", k], ["logRest", 1]] as const) {
        const g = split(got[name], positions, width), c = split(cpu[name], positions, width);
        expectClose(g.used, c.used, LOG_RTOL, `${name}, T=${T}`);
        expect(g.unused.every((v) => Number.isNaN(v)), `${name}: unused entries written`).toBe(true);
      }
      // Run to run: the same bits.
      const again = cudaTeacher(z, positions, N, V, P, k, T);
      expectBitwiseEqual(again.logProbs, got.logProbs, "logProbs run to run");
      expectBitwiseEqual(again.logRest, got.logRest, "logRest run to run");
    }
  });

  it.each(SHAPES)("student loss and gradient agree with the CPU backend for N=%i, V=%i, k=%i", (N, V, k) => {
    const T = 1.7, scale = 0.6;
    const seed = BASE_SEED + 17 * N + V + k;
    const { positions, P } = positionsOf(N, seed + 1);
    const targets = cpuTeacher(logitsOf(N, V, k, seed), positions, N, V, P, k, T);
    const student = randomF32(N * V, seed + 2, -3, 3);
    const grad0 = randomF32(N * V, seed + 3, -0.1, 0.1);
    const cpuGrad = Float32Array.from(grad0);
    const cpu = binding.distillStudent(cpuGrad, student, targets.ids, targets.logProbs, targets.logRest, positions, N, V, P, k, T, scale);

    const ids = upload(targets.ids), logProbs = upload(targets.logProbs), logRest = upload(targets.logRest);
    const z = upload(student), pos = upload(positions);
    const g = upload(grad0);
    const got = binding.cuda.distillStudent(g, z, ids, logProbs, logRest, pos, N, V, P, k, T, scale);
    expectClose([got], [cpu], LOSS_RTOL, "loss");
    const gotGrad = downloadF32(g);
    expectClose(gotGrad, cpuGrad, GRAD_RTOL, "grad");
    // Skipped rows are untouched (bitwise grad0).
    for (let n = 0; n < N; n++) {
      if (positions[n]! < 0) expectBitwiseEqual(gotGrad.subarray(n * V, (n + 1) * V), grad0.subarray(n * V, (n + 1) * V), `skipped row ${n}`);
    }
    // Run to run: the same bits.
    const g2 = upload(grad0);
    expect(binding.cuda.distillStudent(g2, z, ids, logProbs, logRest, pos, N, V, P, k, T, scale)).toBe(got);
    expectBitwiseEqual(downloadF32(g2), gotGrad, "grad run to run");
  });

  it("a student whose logits are the teacher's gets exactly 0 and adds exactly 0", () => {
    const N = 5, V = 301, k = 8, T = 2;
    const z = logitsOf(N, V, k, BASE_SEED + 41);
    const { positions, P } = positionsOf(N, BASE_SEED + 42);
    const t = cudaTeacher(z, positions, N, V, P, k, T);
    const grad0 = randomF32(N * V, BASE_SEED + 43, -1, 1);
    const g = upload(grad0);
    const loss = binding.cuda.distillStudent(g, upload(z), upload(t.ids), upload(t.logProbs), upload(t.logRest), upload(positions), N, V, P, k, T, 0.9);
    expect(loss).toBe(0);
    expectBitwiseEqual(downloadF32(g), grad0, "grad");
  });

  it("repeated ids in a target are added one after the other, as on the CPU", () => {
    const N = 2, V = 40, k = 4, P = 2, T = 1.3;
    const ids = Int32Array.from([5, 5, 9, 5, 0, 39, 1, 2]);
    const logProbs = Float32Array.from([-1, -1.5, -2, -2.5, -0.5, -3, -3.5, -4]);
    const logRest = Float32Array.from([-0.8, -0.7]);
    const positions = Int32Array.from([0, 1]);
    const z = randomF32(N * V, BASE_SEED + 51, -2, 2);
    const cpuGrad = new Float32Array(N * V);
    const cpu = binding.distillStudent(cpuGrad, z, ids, logProbs, logRest, positions, N, V, P, k, T, 1);
    const g = upload(new Float32Array(N * V));
    const got = binding.cuda.distillStudent(g, upload(z), upload(ids), upload(logProbs), upload(logRest), upload(positions), N, V, P, k, T, 1);
    expectClose([got], [cpu], LOSS_RTOL, "loss");
    expectClose(downloadF32(g), cpuGrad, GRAD_RTOL, "grad");
  });

  it("checks positions and ids on the device with the CPU binding's messages", () => {
    const V = 10, k = 3, P = 2;
    const z = upload(randomF32(2 * V, BASE_SEED + 61));
    const out = () => [poisoned(4 * P * k), poisoned(4 * P * k), poisoned(4 * P)] as const;
    const teacher = (positions: number[]) => binding.cuda.distillTeacher(...out(), z, upload(Int32Array.from(positions)), 2, V, P, k, 1);
    expect(() => teacher([1, 1])).toThrow(/distillTeacher: "positions"\[1\] = 1 appears twice: positions must be -1 or in \[0, 2\), each at most once/);
    expect(() => teacher([0, 2])).toThrow(/distillTeacher: "positions"\[1\] = 2: positions must be -1 or in \[0, 2\), each at most once/);
    expect(() => teacher([-2, 0])).toThrow(/distillTeacher: "positions"\[0\] = -2: positions must be -1 or in \[0, 2\)/);
    expect(() => binding.cuda.distillTeacher(...out(), z, upload(Int32Array.from([0, 1])), 2, V, P, k, 0)).toThrow(/"temperature" must be a positive normal float32/);
    const ids = upload(Int32Array.from([1, 2, 3, 4, 99, 5]));
    const student = (positions: number[]) =>
      binding.cuda.distillStudent(poisoned(8 * V), z, ids, upload(new Float32Array(P * k)), upload(new Float32Array(P)), upload(Int32Array.from(positions)), 2, V, P, k, 1, 1);
    expect(() => student([-1, 1])).toThrow(/distillStudent: "ids"\[4\] = 99 is out of range \[0, 10\)/);
    // Positions are checked over every row before any id; repeats are allowed for the student.
    expect(() => student([1, 3])).toThrow(/distillStudent: "positions"\[1\] = 3: positions must be -1 or in \[0, 2\)$/);
    expect(() => student([0, 0])).not.toThrow();
    expect(() => binding.cuda.distillStudent(z, z, ids, upload(new Float32Array(P * k)), upload(new Float32Array(P)), upload(Int32Array.from([0, 0])), 2, V, P, k, 1, 1)).toThrow(
      /distillStudent: "grad" and "logits" share memory/,
    );
  });
});
