/**
 * scenario.json, the description of a continual study (`growlm continual --config FILE`):
 *
 * ```json
 * {
 *   "title": "Grown vs scratch through Simp, EmDg, InqQG and back",
 *   "output_dir": "runs/scenario",
 *   "models": [{"name": "grown", "path": "models/grown"}, {"name": "scratch", "path": "models/scratch"},
 *              {"name": "grown-film", "path": "models/grown", "training": {"probabilistic": "film", "ensemble_size": 4}}],
 *              {"name": "grown-ewc", "path": "models/grown", "training": {"cl_strategy": "ewc", "ewc_lambda": 1000}}],
 *   "tasks": {
 *     "simp": {"dataset": "data/simp.json", "dataset_format": "prompt", "metrics": ["sari", "bleu", "rouge"],
 *              "max_test_examples": 100, "source_max_len": 256, "target_max_len": 64,
 *              "generation": {"num_beams": 3, "length_penalty": 0.8, "max_new_tokens": 64}}
 *   },
 *   "probes": {"world": {"data_dir": "data"}},
 *   "training": {"num_train_epochs": 1, "learning_rate": 2e-5, "per_device_train_batch_size": 8},
 *   "stages": [{"task": "simp"}, {"task": "empd"}, {"task": "simp", "training": {"learning_rate": 1e-5}}],
 *   "bf16": false
 * }
 * ```
 * Relative paths are relative to the scenario file. "training" holds TrainingArguments (Hugging
 * Face names) for every stage; a model's own "training" overrides them for that model (its
 * fine-tuning mode: deterministic, or probabilistic with --probabilistic film / mc_dropout; its
 * continual-learning strategy: cl_strategy, replay_*, ewc_*, lwf_* as src/continual/strategy.ts
 * defines them), and a stage's own "training" overrides both. Every task and probe is evaluated
 * after every stage, with calibration measures unless "calibration" is false.
 */
import fs from "node:fs";
import path from "node:path";

import { PROMPT_FORMATS, type PromptFormat } from "../data/prompts.js";
import { GrowlmError } from "../errors.js";
import { generationOptions } from "../eval/generation-args.js";
import { METRIC_NAMES, type MetricName } from "../eval/metrics/suite.js";
import { finetuneOptions } from "../train/finetune-args.js";
import { checkStrategyOptions, describeStrategy } from "./strategy.js";
import { type LogRecord, finetune, listCheckpoints } from "../train/finetune.js";
import type { GenerationTask, ProbeTask } from "./evaluate.js";
import type { ScenarioConfig, ScenarioModel, ScenarioStage, StageTrainer } from "./scenario.js";

export interface ScenarioFile {
  scenario: ScenarioConfig;
  tasks: GenerationTask[];
  probes: ProbeTask[];
  /** TrainingArguments shared by every stage. */
  training: Record<string, unknown>;
  bf16: boolean;
  /** Calibration and uncertainty measures in every evaluation (default true). */
  calibration: boolean;
}

const OP = "growlm continual";

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function field<T>(where: string, obj: Record<string, unknown>, key: string, check: (v: unknown) => v is T, what: string, fallback?: T): T {
  const v = obj[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (!check(v)) throw new GrowlmError(OP, `${where}: "${key}" must be ${what} but is ${JSON.stringify(v)}`);
  return v;
}

const isString = (v: unknown): v is string => typeof v === "string" && v !== "";
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 1;
const isBool = (v: unknown): v is boolean => typeof v === "boolean";

/** Reads and checks a scenario file. */
export function readScenarioFile(file: string): ScenarioFile {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new GrowlmError(OP, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (!isObject(raw)) throw new GrowlmError(OP, `${file}: expected a JSON object`);
  const base = path.dirname(path.resolve(file));
  const resolve = (p: string): string => path.resolve(base, p);
  const known = new Set(["title", "output_dir", "models", "tasks", "probes", "training", "stages", "bf16", "calibration"]);
  const unknown = Object.keys(raw).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new GrowlmError(OP, `${file}: unknown field(s) ${unknown.map((k) => `"${k}"`).join(", ")}`);

  const models = raw.models;
  if (!Array.isArray(models) || models.length === 0) throw new GrowlmError(OP, `${file}: "models" must be a non-empty list of {name, path}`);
  const tasksRaw = raw.tasks ?? {};
  const probesRaw = raw.probes ?? {};
  if (!isObject(tasksRaw) || !isObject(probesRaw)) throw new GrowlmError(OP, `${file}: "tasks" and "probes" must be objects keyed by name`);
  const tasks = Object.entries(tasksRaw).map(([name, t]) => {
    const where = `${file}: task "${name}"`;
    if (!isObject(t)) throw new GrowlmError(OP, `${where} must be an object`);
    const metrics = field(where, t, "metrics", (v): v is MetricName[] => Array.isArray(v) && v.every((m) => (METRIC_NAMES as readonly string[]).includes(m as string)), `a list of ${METRIC_NAMES.join("/")}`, []);
    return {
      name,
      dataset: resolve(field(where, t, "dataset", isString, "a file path")),
      datasetFormat: field(where, t, "dataset_format", (v): v is PromptFormat => PROMPT_FORMATS.includes(v as PromptFormat), PROMPT_FORMATS.join(" or "), "none"),
      metrics,
      maxTestExamples: field(where, t, "max_test_examples", isCount, "a positive integer", 100),
      sourceMaxLen: field(where, t, "source_max_len", isCount, "a positive integer", 1024),
      targetMaxLen: field(where, t, "target_max_len", isCount, "a positive integer", 256),
      generation: generationOptions(`${OP}: ${where}`, field(where, t, "generation", isObject, "an object of generation settings", {}), 64),
    };
  });
  const probes = Object.entries(probesRaw).map(([name, p]) => {
    const where = `${file}: probe "${name}"`;
    if (!isObject(p)) throw new GrowlmError(OP, `${where} must be an object`);
    return { name, dataDir: resolve(field(where, p, "data_dir", isString, "a folder path")) };
  });
  const stagesRaw = raw.stages;
  if (!Array.isArray(stagesRaw) || stagesRaw.length === 0) throw new GrowlmError(OP, `${file}: "stages" must be a non-empty list of {task, training?}`);
  const stages: ScenarioStage[] = stagesRaw.map((s, i) => {
    const where = `${file}: stage ${i + 1}`;
    if (!isObject(s)) throw new GrowlmError(OP, `${where} must be an object`);
    const task = field(where, s, "task", isString, "a task name");
    if (!tasks.some((t) => t.name === task)) throw new GrowlmError(OP, `${where}: task "${task}" is not in "tasks"`);
    return { task, training: field(where, s, "training", isObject, "an object", {}) };
  });
  const scenarioTraining = field(file, raw, "training", isObject, "an object", {});
  const scenario: ScenarioConfig = {
    title: field(file, raw, "title", isString, "a string", "Continual scenario"),
    outputDir: resolve(field(file, raw, "output_dir", isString, "a folder path")),
    models: models.map((m, i) => {
      const where = `${file}: models[${i}]`;
      if (!isObject(m)) throw new GrowlmError(OP, `${where} must be {name, path, training?}`);
      const extra = Object.keys(m).filter((k) => !["name", "path", "training"].includes(k));
      if (extra.length > 0) throw new GrowlmError(OP, `${where}: unknown field(s) ${extra.map((k) => `"${k}"`).join(", ")}`);
      const training = field(where, m, "training", isObject, "an object of TrainingArguments", {});
      // Checked now, over the scenario's arguments, so a bad argument fails before any stage runs.
      const options = finetuneOptions(`${OP}: ${where}`, { ...scenarioTraining, ...training }, { modelNameOrPath: "-", dataset: "-", outputDir: "-" });
      checkStrategyOptions(`${OP}: ${where}`, options);
      const model: ScenarioModel = { name: field(where, m, "name", isString, "a name"), path: resolve(field(where, m, "path", isString, "a model folder")), training };
      if (options.clStrategy !== "naive") model.strategy = describeStrategy(options);
      return model;
    }),
    stages,
    evaluate: [...tasks.map((t) => t.name), ...probes.map((p) => p.name)],
  };
  return {
    scenario,
    tasks,
    probes,
    training: scenarioTraining,
    bf16: field(file, raw, "bf16", isBool, "a boolean", false),
    calibration: field(file, raw, "calibration", isBool, "a boolean", true),
  };
}

/**
 * The stage trainer of a scenario file: `growlm finetune` of the stage's task from the previous
 * stage's model, with the scenario's training arguments under the model's, under the stage's
 * own. A stage that crashed after writing checkpoints resumes from its newest one.
 */
export function finetuneStageTrainer(study: ScenarioFile, onLog: (stageDir: string, record: LogRecord) => void = () => {}): StageTrainer {
  return {
    async train(from, stage, outputDir, model) {
      const task = study.tasks.find((t) => t.name === stage.task)!;
      const options = finetuneOptions(OP, { replay_task: stage.task, ...study.training, ...model.training, ...stage.training }, {
        modelNameOrPath: from,
        dataset: task.dataset,
        datasetFormat: task.datasetFormat,
        outputDir,
        sourceMaxLen: task.sourceMaxLen,
        targetMaxLen: task.targetMaxLen,
        bf16: study.bf16,
        resumeFromCheckpoint: listCheckpoints(outputDir).length > 0,
      });
      const result = await finetune(options, { log: (r) => onLog(outputDir, r) });
      return { tokens: result.trainTokens, flops: result.trainFlops, strategyFlops: result.strategyFlops };
    },
  };
}
