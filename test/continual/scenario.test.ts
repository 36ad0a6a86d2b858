/** The scenario runner: order of work, resumption after a crash, and the report it writes. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test } from "vitest";

import { type ScenarioConfig, type ScenarioEvaluator, type StageTrainer, runScenario } from "../../src/continual/scenario.js";

describe("runScenario", () => {
  let dir: string;
  let config: ScenarioConfig;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-scenario-"));
    config = {
      title: "t",
      outputDir: dir,
      models: [
        { name: "grown", path: "/base/grown" },
        { name: "scratch", path: "/base/scratch" },
      ],
      stages: [
        { task: "a", training: {} },
        { task: "b", training: {} },
        { task: "a", training: { learning_rate: 1e-5 } },
      ],
      evaluate: ["a", "b", "probe"],
    };
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A fake world: a model dir's score on a task is how many of the stages so far trained it. */
  function fakes(log: string[], crashAt?: string) {
    const trainer: StageTrainer = {
      async train(from, stage, out) {
        if (out.endsWith(crashAt ?? "\0")) throw new Error("crash");
        log.push(`train ${path.basename(from)} -> ${path.basename(out)}`);
        fs.mkdirSync(out, { recursive: true });
        return { tokens: 100, flops: 1e9 };
      },
    };
    const evaluator: ScenarioEvaluator = {
      metrics: { score: { higherIsBetter: true }, loss: { higherIsBetter: false } },
      async evaluate(modelDir, tasks) {
        log.push(`eval ${path.basename(modelDir)}`);
        const trained = (t: string) => (path.basename(modelDir).match(new RegExp(`-${t}$`)) ? 1 : 0);
        return Object.fromEntries(tasks.map((t): [string, Record<string, number>] => [t, t === "probe" ? { score: 0.5 } : { score: trained(t), loss: 2 - trained(t) }]));
      },
    };
    return { trainer, evaluator };
  }

  test("evaluates the base and every stage, chains the stages, and writes the report", async () => {
    const log: string[] = [];
    const { trainer, evaluator } = fakes(log);
    const results = await runScenario(config, trainer, evaluator);
    expect(log.filter((l) => l.startsWith("train")).slice(0, 3)).toEqual(["train grown -> stage-1-a", "train stage-1-a -> stage-2-b", "train stage-2-b -> stage-3-a"]);
    expect(results.scores.grown!.a!.score).toEqual([0, 1, 0, 1]);
    expect(results.scores.grown!.probe).toEqual({ score: [0.5, 0.5, 0.5, 0.5] });
    expect(results.compute!.scratch!.tokens).toEqual([100, 100, 100]);
    for (const f of ["report.md", "results.json", "results.csv"]) expect(fs.existsSync(path.join(dir, f))).toBe(true);
  });

  test("a crash mid-scenario resumes at the first unfinished stage without redoing finished ones", async () => {
    const first: string[] = [];
    const crashing = fakes(first, "scratch/stage-2-b");
    await expect(runScenario(config, crashing.trainer, crashing.evaluator)).rejects.toThrow("crash");
    const again: string[] = [];
    const { trainer, evaluator } = fakes(again);
    await runScenario(config, trainer, evaluator);
    expect(again).toEqual(["train stage-1-a -> stage-2-b", "eval stage-2-b", "train stage-2-b -> stage-3-a", "eval stage-3-a"]);
  });

  test("bad scenarios are refused before anything runs", async () => {
    const log: string[] = [];
    const { trainer, evaluator } = fakes(log);
    await expect(runScenario({ ...config, stages: [{ task: "zzz", training: {} }] }, trainer, evaluator)).rejects.toThrow(/stage task "zzz" is not among the evaluated tasks/);
    await expect(runScenario({ ...config, models: [config.models[0]!, config.models[0]!] }, trainer, evaluator)).rejects.toThrow(/unique/);
    expect(log).toEqual([]);
  });
});
