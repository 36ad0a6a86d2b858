/** LwF in a stage: the targets file, and the first step of a stage (the kernels' arithmetic is tested in test/kernels/distill.test.ts). */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test } from "vitest";

import { type TeacherTargets, readTeacherTargets, writeTeacherTargets } from "../../src/continual/lwf.js";
import { loadPretrained } from "../../src/model/pretrained.js";
import { type FinetuneOptions, type LogRecord, finetune } from "../../src/train/finetune.js";
import { expectBitwiseEqual, randomF32, randomInts } from "../helpers/reference.js";
import { tinyOptions, writeArithmetic, writeTinyModel } from "../helpers/tiny-finetune.js";

describe("LwF distillation", () => {
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
