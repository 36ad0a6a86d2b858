/** LwF: the teacher's top-k targets, the distillation loss and its gradient, and the first step of a stage. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test } from "vitest";

import { type TeacherTargets, distillRow, readTeacherTargets, teacherRow, writeTeacherTargets } from "../../src/continual/lwf.js";
import { loadPretrained } from "../../src/model/pretrained.js";
import { type FinetuneOptions, type LogRecord, finetune } from "../../src/train/finetune.js";
import { expectBitwiseEqual, expectClose, finiteDifferences, randomF32, randomInts } from "../helpers/reference.js";
import { tinyOptions, writeArithmetic, writeTinyModel } from "../helpers/tiny-finetune.js";

// distillRow rounds the student's log-probabilities to float32 (as the stored teacher's are):
// 2^-24·|log q| relative in each q, about 1e-6 of the gradient's scale.
const GRAD_RTOL = 1e-5;

/** T²·KL between the teacher's distribution coarsened to `top` plus a rest bucket, and the student's, in float64. */
function coarsenedKl(teacher: Float64Array, student: Float64Array, T: number, top: readonly number[]): number {
  const soft = (z: Float64Array): Float64Array => {
    const u = z.map((v) => v / T);
    const m = Math.max(...u);
    const e = u.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };
  const p = soft(teacher);
  const q = soft(student);
  let kl = 0;
  let pRest = 1;
  let qRest = 1;
  for (const j of top) {
    kl += p[j]! * Math.log(p[j]! / q[j]!);
    pRest -= p[j]!;
    qRest -= q[j]!;
  }
  if (top.length < teacher.length) kl += pRest * Math.log(pRest / qRest);
  return T * T * kl;
}

describe("LwF distillation", () => {
  test("the teacher's row keeps its k most probable tokens in order with log-probabilities at T and the log of the rest", () => {
    const V = 40;
    const z = randomF32(V, 1, -3, 3);
    z[7] = z[3]!; // a tie: the lower id first
    const k = 6;
    const ids = new Int32Array(k);
    const logProbs = new Float32Array(k);
    const T = 1.5;
    const logRest = teacherRow(z, T, k, ids, logProbs);
    const order = Array.from({ length: V }, (_, j) => j).sort((a, b) => z[b]! - z[a]! || a - b);
    expect(Array.from(ids)).toEqual(order.slice(0, k));
    const u = Array.from(z, (v) => v / T);
    const lse = Math.log(u.reduce((s, v) => s + Math.exp(v), 0));
    expectClose(logProbs, order.slice(0, k).map((j) => u[j]! - lse), 1e-6, "top-k log-probabilities");
    expectClose([logRest], [Math.log(order.slice(k).reduce((s, j) => s + Math.exp(u[j]! - lse), 0))], 1e-6, "log of the rest");
  });

  test.each([
    ["top-k of the vocabulary", 5],
    ["the full distribution", 24],
  ])("with %s the loss is the coarsened KL·T² and its gradient matches finite differences", (_, k) => {
    const V = 24;
    const T = 2;
    const teacher = randomF32(V, 2, -2, 2);
    const student = randomF32(V, 3, -2, 2);
    const ids = new Int32Array(k);
    const logProbs = new Float32Array(k);
    const logRest = teacherRow(teacher, T, k, ids, logProbs);
    const grad = new Float32Array(V);
    const scale = 0.7;
    const loss = distillRow(student, T, ids, logProbs, logRest, scale, grad);
    const reference = (z: Float64Array): number => coarsenedKl(Float64Array.from(teacher), z, T, Array.from(ids));
    expectClose([loss], [reference(Float64Array.from(student))], 1e-5, "T²·KL");
    const fd = finiteDifferences((z) => scale * reference(z), Float64Array.from(student), 1e-4);
    expectClose(grad, fd, GRAD_RTOL, "∂(scale·T²·KL)/∂z vs finite differences");
  });

  test("identical logits give exactly zero loss and gradient", () => {
    const V = 50;
    const z = randomF32(V, 4, -4, 4);
    for (const k of [3, V]) {
      const ids = new Int32Array(k);
      const logProbs = new Float32Array(k);
      const logRest = teacherRow(z, 2, k, ids, logProbs);
      const grad = randomF32(V, 5);
      const before = Float32Array.from(grad);
      expect(distillRow(z, 2, ids, logProbs, logRest, 1, grad)).toBe(0);
      expectBitwiseEqual(grad, before, `gradient untouched (k = ${k})`);
    }
  });

  describe("targets file", () => {
    let dir: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-lwf-"));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    test("round-trips, is ignored when made for another key, and refuses a corrupt file", () => {
      const key = { teacher: "/m", temperature: 2, topK: 3, vocabSize: 10, dataHash: 42 };
      const targets: TeacherTargets = {
        ...key,
        offsets: Int32Array.from([0, 2, 3]),
        ids: Int32Array.from(randomInts(9, 6, 10)),
        logProbs: randomF32(9, 7, -5, 0),
        logRest: Float32Array.from([-1, -Infinity, -2]),
      };
      const file = path.join(dir, "lwf_targets.bin");
      writeTeacherTargets(file, targets);
      expect(readTeacherTargets(file, key)).toEqual(targets);
      expect(readTeacherTargets(file, { ...key, temperature: 1 })).toBeNull();
      expect(readTeacherTargets(file, { ...key, dataHash: 43 })).toBeNull();
      expect(readTeacherTargets(path.join(dir, "none.bin"), key)).toBeNull();
      fs.truncateSync(file, fs.statSync(file).size - 4);
      expect(() => readTeacherTargets(file, key)).toThrow(/lwf_targets\.bin has \d+ bytes of data but its header \(2 examples, 3 positions, k = 3\) implies \d+/);
      fs.writeFileSync(file, "nope");
      expect(() => readTeacherTargets(file, key)).toThrow(/is not a growlm LwF targets file/);
    });
  });

  describe("first step of a stage", () => {
    let dir: string;
    beforeEach(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-lwf-stage-"));
      await writeTinyModel(path.join(dir, "base"), 3);
      writeArithmetic(path.join(dir, "add.json"), "add", 13);
      writeArithmetic(path.join(dir, "mul.json"), "mul", 11);
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    test("the model is the teacher: the distillation loss and gradient are exactly 0, so the step is naive's bitwise", async () => {
      const run = async (from: string, dataset: string, out: string, extra: Partial<FinetuneOptions>) => {
        const logs: LogRecord[] = [];
        await finetune(tinyOptions(from, path.join(dir, dataset), path.join(dir, out), { loggingSteps: 1, gradientAccumulationSteps: 2, ...extra }), { log: (r) => logs.push(r) });
        return logs.filter((r) => "loss" in r);
      };
      const base = path.join(dir, "base");
      // Stage 1, from the base model: one step of LwF against one naive step.
      const lwf = await run(base, "add.json", "lwf-1", { clStrategy: "lwf", maxSteps: 1, lwfTopK: 8 });
      await run(base, "add.json", "naive-1", { maxSteps: 1 });
      expect(lwf[0]!.distill_loss).toBe(0);
      const a = loadPretrained(path.join(dir, "lwf-1"));
      const b = loadPretrained(path.join(dir, "naive-1"));
      expectBitwiseEqual(a.params.data, b.params.data, "parameters after the first step");
      // Stage 2 with replayed rows in the batch (not distilled): still exactly replay's step.
      await run(base, "add.json", "s1", { clStrategy: "replay", replayBufferSize: 4 });
      const both = await run(path.join(dir, "s1"), "mul.json", "lwf-2", { clStrategy: "replay+lwf", replayBufferSize: 4, maxSteps: 1 });
      await run(path.join(dir, "s1"), "mul.json", "replay-2", { clStrategy: "replay", replayBufferSize: 4, maxSteps: 1 });
      expect(both[0]!.distill_loss).toBe(0);
      const c = loadPretrained(path.join(dir, "lwf-2"));
      const d = loadPretrained(path.join(dir, "replay-2"));
      expectBitwiseEqual(c.params.data, d.params.data, "parameters after the first step of stage 2");
      // Later steps distil: the student has moved away from the teacher.
      const longer = await run(base, "add.json", "lwf-3", { clStrategy: "lwf", maxSteps: 3, lwfTopK: 8 });
      expect(longer[1]!.distill_loss).toBeGreaterThan(0);
      expect(fs.existsSync(path.join(dir, "lwf-3", "lwf_targets.bin"))).toBe(false);
      const record = JSON.parse(fs.readFileSync(path.join(dir, "lwf-3", "cl_strategy.json"), "utf8"));
      expect(record.lwf).toMatchObject({ top_k: 8, temperature: 2 });
      expect(record.lwf.targets_bytes).toBe(4 * 14 + record.lwf.positions * (8 * 8 + 4));
      for (const m of [a, b, c, d]) m.dispose();
    });
  });
});
