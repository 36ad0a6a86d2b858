/**
 * Continual-learning scenarios: several models (say a grown and a from-scratch base) each
 * fine-tuned through the same ordered stages (a task may come back), every evaluated task
 * scored after every stage (stage 0 is the untouched base), and the report written. Progress
 * is saved after each stage (OUTPUT_DIR/<model>/progress.json); a crashed scenario resumes at
 * the first unfinished stage of each model and never redoes a finished one.
 *
 * What "evaluate" means is injected (ScenarioEvaluator), so the runner is independent of
 * generation, metrics and the harness, and testable with a fake one. So is the drift meter:
 * with one, every stage's model is also compared with the model's base (src/continual/
 * drift.ts) and the summary recorded with the scores.
 */
import fs from "node:fs";
import path from "node:path";

import { GrowlmError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import type { DriftSummary } from "./drift.js";
import { type ScenarioResults, type MetricInfo, writeScenarioReport } from "./report.js";

export interface ScenarioModel {
  name: string;
  /** The base model's Hugging Face directory. */
  path: string;
  /**
   * TrainingArguments of this model's every stage, over the scenario's and under the stage's:
   * its fine-tuning mode, e.g. {"probabilistic": "film", "ensemble_size": 4}, so one scenario
   * compares the same bases fine-tuned deterministically and probabilistically.
   */
  training?: Record<string, unknown>;
  /** The continual-learning strategy its training selects, as a label for the report (describeStrategy); absent: naive. */
  strategy?: string;
}

export interface ScenarioStage {
  task: string;
  /** TrainingArguments of this stage in Hugging Face's snake_case names (over the scenario's defaults). */
  training: Record<string, unknown>;
}

export interface ScenarioConfig {
  title: string;
  outputDir: string;
  models: ScenarioModel[];
  stages: ScenarioStage[];
  /** The tasks evaluated after every stage (trained ones and probes alike). */
  evaluate: string[];
}

/** Scores of one model directory: task → metric → value. */
export type StageScores = Record<string, Record<string, number>>;

export interface ScenarioEvaluator {
  /** Metric names with their direction (every metric evaluate() may return). */
  metrics: Record<string, MetricInfo>;
  evaluate(modelDir: string, tasks: readonly string[]): Promise<StageScores>;
}

/** What a stage cost: training tokens and FLOPs, and the strategy's FLOPs outside the steps. */
export interface StageCompute {
  tokens: number;
  flops: number;
  strategyFlops?: number;
}

export interface StageTrainer {
  /**
   * Fine-tunes `from` on `stage` into `outputDir` (a Hugging Face directory when it returns),
   * with `model`'s strategy.
   * @returns the training tokens and FLOPs spent
   */
  train(from: string, stage: ScenarioStage, outputDir: string, model: ScenarioModel): Promise<StageCompute>;
}

/** Measures how far a stage's model moved from its base. */
export interface DriftMeter {
  measure(baseDir: string, modelDir: string): DriftSummary;
}

interface Progress {
  /** Scores after stage 0..k (k finished stages). */
  scores: StageScores[];
  compute: StageCompute[];
  /** Drift from the base after stages 1..k (absent in progress written without a drift meter). */
  drift?: (DriftSummary | null)[];
}

export interface ScenarioHooks {
  onStage?(model: string, stage: number, scores: StageScores): void;
}

function progressFile(config: ScenarioConfig, model: string): string {
  return path.join(config.outputDir, model, "progress.json");
}

function readProgress(config: ScenarioConfig, model: string): Progress {
  const file = progressFile(config, model);
  if (!fs.existsSync(file)) return { scores: [], compute: [] };
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"), (_, v) => (v === null ? Number.NaN : v)) as Progress;
  } catch (err) {
    throw new GrowlmError("runScenario", `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** The folder of a model after stage s (s >= 1). */
export function stageDir(config: ScenarioConfig, model: string, stage: number): string {
  return path.join(config.outputDir, model, `stage-${stage}-${config.stages[stage - 1]!.task}`);
}

/** Checks a scenario's shape before anything runs. */
export function checkScenario(config: ScenarioConfig): void {
  const op = "runScenario";
  if (config.models.length === 0) throw new GrowlmError(op, "the scenario has no model");
  if (config.stages.length === 0) throw new GrowlmError(op, "the scenario has no stage");
  const names = new Set<string>();
  for (const m of config.models) {
    if (!/^[\w.-]+$/.test(m.name) || names.has(m.name)) throw new GrowlmError(op, `model names must be unique words (letters, digits, _ . -): ${JSON.stringify(m.name)}`);
    names.add(m.name);
  }
  for (const s of config.stages) {
    if (!config.evaluate.includes(s.task)) throw new GrowlmError(op, `stage task "${s.task}" is not among the evaluated tasks (${config.evaluate.join(", ")})`);
  }
}

/** Runs (or resumes) the scenario and writes its report; returns the results. */
export async function runScenario(
  config: ScenarioConfig,
  trainer: StageTrainer,
  evaluator: ScenarioEvaluator,
  hooks: ScenarioHooks = {},
  drift: DriftMeter | null = null,
): Promise<ScenarioResults> {
  checkScenario(config);
  const S = config.stages.length;
  const results: ScenarioResults = {
    stages: config.stages.map((s) => s.task),
    tasks: [...config.evaluate],
    metrics: evaluator.metrics,
    scores: {},
    compute: {},
    strategies: Object.fromEntries(config.models.map((m) => [m.name, m.strategy ?? "naive"])),
    ...(drift ? { drift: {} } : {}),
  };
  for (const model of config.models) {
    const progress = readProgress(config, model.name);
    const save = (): void => {
      fs.mkdirSync(path.dirname(progressFile(config, model.name)), { recursive: true });
      writeFileAtomic("runScenario", progressFile(config, model.name), `${JSON.stringify(progress, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 1)}\n`);
    };
    // Drift of stages 1..upTo, measuring those not measured yet (also those of progress written without a meter).
    const measureDrift = (upTo: number): void => {
      if (!drift) return;
      progress.drift ??= [];
      for (let k = progress.drift.length + 1; k <= upTo; k++) progress.drift.push(drift.measure(model.path, stageDir(config, model.name, k)));
    };
    if (progress.scores.length === 0) {
      progress.scores.push(await evaluator.evaluate(model.path, config.evaluate));
      save();
      hooks.onStage?.(model.name, 0, progress.scores[0]!);
    }
    for (let s = progress.scores.length; s <= S; s++) {
      const from = s === 1 ? model.path : stageDir(config, model.name, s - 1);
      const to = stageDir(config, model.name, s);
      progress.compute.push(await trainer.train(from, config.stages[s - 1]!, to, model));
      progress.scores.push(await evaluator.evaluate(to, config.evaluate));
      measureDrift(s);
      save();
      hooks.onStage?.(model.name, s, progress.scores[s]!);
    }
    const byTask: Record<string, Record<string, number[]>> = {};
    for (const task of config.evaluate) {
      const metrics = new Set(progress.scores.flatMap((row) => Object.keys(row[task] ?? {})));
      byTask[task] = Object.fromEntries([...metrics].map((m) => [m, progress.scores.map((row) => row[task]?.[m] ?? Number.NaN)]));
    }
    results.scores[model.name] = byTask;
    results.compute![model.name] = {
      tokens: progress.compute.map((c) => c.tokens),
      flops: progress.compute.map((c) => c.flops),
      strategyFlops: progress.compute.map((c) => c.strategyFlops ?? 0),
    };
    if (drift) {
      if ((progress.drift?.length ?? 0) < S) {
        measureDrift(S);
        save();
      }
      results.drift![model.name] = progress.drift!;
    }
  }
  writeScenarioReport(config.outputDir, results, config.title);
  return results;
}
