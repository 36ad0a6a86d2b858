/** The scenario runner: order of work, resumption after a crash, and the report it writes. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test } from "vitest";

import type { DriftSummary } from "../../src/continual/drift.js";
import { type DriftMeter, type ScenarioConfig, type ScenarioEvaluator, type StageTrainer, runScenario } from "../../src/continual/scenario.js";

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

  test("each model trains with its own strategy; compute and drift from the base are recorded after every stage", async () => {
    const seen: string[] = [];
    const { evaluator } = fakes([]);
    const trainer: StageTrainer = {
      async train(from, stage, out, model) {
        seen.push(`${model.name}:${model.training?.cl_strategy ?? "naive"}`);
        fs.mkdirSync(out, { recursive: true });
        return { tokens: 10, flops: 1e6, ...(model.strategy ? { strategyFlops: 5e5 } : {}) };
      },
    };
    /** A fake meter: the drift grows by 0.1 a stage. */
    const measured: string[] = [];
    const meter: DriftMeter = {
      measure(base, dir) {
        measured.push(`${path.basename(base)} -> ${path.basename(dir)}`);
        const stage = Number(/stage-(\d+)/.exec(dir)![1]);
        const summary: DriftSummary = { overall: { relL2: 0.1 * stage, cosine: 1, maxAbs: 0 }, modules: { q_proj: 0.1 * stage }, layers: [0.1 * stage], grid: [[0.1 * stage]], layerSources: null, copyDivergence: null };
        return summary;
      },
    };
    config.models[1] = { ...config.models[1]!, training: { cl_strategy: "ewc", ewc_lambda: 5 }, strategy: "ewc (λ=5, sampled Fisher)" };
    const results = await runScenario(config, trainer, evaluator, {}, meter);
    expect(seen).toEqual(["grown:naive", "grown:naive", "grown:naive", "scratch:ewc", "scratch:ewc", "scratch:ewc"]);
    expect(results.strategies).toEqual({ grown: "naive", scratch: "ewc (λ=5, sampled Fisher)" });
    expect(results.compute!.scratch!.strategyFlops).toEqual([5e5, 5e5, 5e5]);
    expect(results.compute!.grown!.strategyFlops).toEqual([0, 0, 0]);
    expect(measured).toEqual(["grown -> stage-1-a", "grown -> stage-2-b", "grown -> stage-3-a", "scratch -> stage-1-a", "scratch -> stage-2-b", "scratch -> stage-3-a"]);
    expect(results.drift!.scratch!.map((d) => d!.overall.relL2)).toEqual([0.1, 0.2, 0.30000000000000004]);
    const md = fs.readFileSync(path.join(dir, "report.md"), "utf8");
    expect(md).toContain("## Strategies side by side");
    expect(md).toContain("| scratch | ewc (λ=5, sampled Fisher) | 30 | 3.000e+6 | 1.500e+6 | 4.500e+6 | 0.3000 |");
    expect(md).toContain("## Drift from the base");
    for (const f of ["drift.svg", "drift-modules-grown.svg", "drift-layers-scratch.svg"]) expect(fs.existsSync(path.join(dir, "plots", f)), f).toBe(true);
    // Nothing is measured again on a rerun; progress from before the meter is measured once.
    measured.length = 0;
    await runScenario(config, trainer, evaluator, {}, meter);
    expect(measured).toEqual([]);
    const progress = path.join(dir, "grown", "progress.json");
    const p = JSON.parse(fs.readFileSync(progress, "utf8"));
    delete p.drift;
    fs.writeFileSync(progress, JSON.stringify(p));
    await runScenario(config, trainer, evaluator, {}, meter);
    expect(measured).toEqual(["grown -> stage-1-a", "grown -> stage-2-b", "grown -> stage-3-a"]);
  });

  test("bad scenarios are refused before anything runs", async () => {
    const log: string[] = [];
    const { trainer, evaluator } = fakes(log);
    await expect(runScenario({ ...config, stages: [{ task: "zzz", training: {} }] }, trainer, evaluator)).rejects.toThrow(/stage task "zzz" is not among the evaluated tasks/);
    await expect(runScenario({ ...config, models: [config.models[0]!, config.models[0]!] }, trainer, evaluator)).rejects.toThrow(/unique/);
    expect(log).toEqual([]);
  });
});
