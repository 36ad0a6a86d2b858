/**
 * The grow-versus-scratch pretraining study (Du et al. 2024's comparison on the user's data):
 * the small model trains for d tokens, grows by the chosen operator (G_stack by default) and
 * trains on; a from-scratch model of the grown size trains from initialisation; both see the
 * same token budget on the same packed corpus and are evaluated on the same held-out blocks.
 * Training FLOPs are counted for both (the small model's included), and the speedup is the
 * paper's: the tokens (and FLOPs) the grown run needs to reach the scratch run's final loss.
 *
 * Schedules follow the paper: the small model runs its own warmup + schedule over its d tokens,
 * and growth restarts it over the remaining tokens with fresh AdamW state ("reset"), unless
 * optimizerState "carry" is asked for. Outputs: curves.csv, loss-vs-tokens.svg,
 * loss-vs-flops.svg, study.json and the final models (grown/, scratch/) as Hugging Face dirs.
 */
import fs from "node:fs";
import path from "node:path";

import type { PackedCorpus } from "../data/corpus.js";
import { GrowlmError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import type { LlamaConfig } from "../model/config.js";
import { trainFlopsPerToken } from "../model/flops.js";
import { LlamaModel, type LlamaModelOptions } from "../model/llama.js";
import { savePretrained } from "../model/pretrained.js";
import { lineChart } from "../plot/svg.js";
import type { LrSchedulerType } from "../train/lr.js";
import type { AdamwOptions } from "../train/optimizer.js";
import type { DistributedTraining } from "../train/data-parallel.js";
import { type CurvePoint, type Speedup, growthSpeedup, pretrainRun } from "../train/pretrain.js";
import { Trainer } from "../train/trainer.js";
import { type GrowthOptions, type GrowthPlan, planGrowth } from "./plan.js";
import { type OptimizerStatePolicy, growTrainer } from "./schedule.js";

export interface StudySchedule {
  type: LrSchedulerType;
  learningRate: number;
  warmupRatio: number;
}

export interface GrowthStudyOptions {
  /** The small model's config (the grown and scratch models have the plan's target config). */
  smallConfig: LlamaConfig;
  growth: GrowthOptions;
  /** Tokens the small model trains on before growing (the paper's d). */
  growAtTokens: number;
  /** The token budget of each run. */
  maxTokens: number;
  corpus: PackedCorpus;
  batchSize: number;
  evalSteps: number;
  schedule: StudySchedule;
  optimizer: AdamwOptions;
  optimizerState?: OptimizerStatePolicy;
  /** Also train the target size from scratch (default true). */
  baseline?: boolean;
  /**
   * The scratch run's budget: the same training tokens as the grown run (default, the paper's
   * comparison at equal data) or the same training FLOPs (then it sees fewer tokens).
   */
  baselineBudget?: "tokens" | "flops";
  seed: number;
  modelOptions?: LlamaModelOptions;
  outputDir: string;
  /** Called with each run's points as they come (run "grown" or "scratch"). */
  onPoint?: (run: string, point: CurvePoint) => void;
  /** Data-parallel: every rank runs the study, batchSize is per rank, and only rank 0 writes (see PretrainRunOptions.distributed). */
  distributed?: DistributedTraining;
}

export interface GrowthStudyResult {
  plan: { source: LlamaConfig; target: LlamaConfig; depthOperator: string | null; widthOperator: string | null };
  curves: Record<string, CurvePoint[]>;
  speedup: Speedup | null;
  files: string[];
}

function trainerFor(model: LlamaModel, schedule: StudySchedule, steps: number, optimizer: AdamwOptions, seed: number): Trainer {
  return new Trainer(model, {
    schedule: { type: schedule.type, learningRate: schedule.learningRate, totalSteps: steps, warmupRatio: schedule.warmupRatio },
    optimizer,
    seed,
  });
}

/** curves.csv: run, step, tokens, flops, loss, eval_loss, parameters. */
export function curvesCsv(curves: Record<string, readonly CurvePoint[]>): string {
  const rows = ["run,step,tokens,flops,loss,eval_loss,parameters"];
  for (const [run, curve] of Object.entries(curves)) {
    for (const p of curve) {
      rows.push([run, p.step, p.tokens, p.flops, p.loss, p.evalLoss, p.parameters].map((v) => (typeof v === "number" && !Number.isFinite(v) ? "" : v)).join(","));
    }
  }
  return `${rows.join("\n")}\n`;
}

/** Runs the study and writes its files into options.outputDir. */
export function runGrowthStudy(options: GrowthStudyOptions): GrowthStudyResult {
  const op = "runGrowthStudy";
  const { corpus, batchSize, maxTokens, growAtTokens, seed, distributed } = options;
  const writer = (distributed?.communicator.rank ?? 0) === 0;
  const tokensPerStep = batchSize * (distributed?.communicator.worldSize ?? 1) * corpus.blockSize;
  if (!(growAtTokens > 0 && growAtTokens < maxTokens)) {
    throw new GrowlmError(op, `the growth point (${growAtTokens} tokens) must lie inside the token budget (0, ${maxTokens})`);
  }
  const plan: GrowthPlan = planGrowth(options.smallConfig, options.growth);
  const totalSteps = Math.ceil(maxTokens / tokensPerStep);
  const smallSteps = Math.ceil(growAtTokens / tokensPerStep);
  fs.mkdirSync(options.outputDir, { recursive: true });
  const curves: Record<string, CurvePoint[]> = {};

  const small = new LlamaModel(options.smallConfig, options.modelOptions);
  small.initialize(seed);
  const grownRun = pretrainRun(trainerFor(small, options.schedule, smallSteps, options.optimizer, seed), {
    corpus,
    batchSize,
    maxTokens,
    evalSteps: options.evalSteps,
    seed,
    onPoint: (p) => options.onPoint?.("grown", p),
    ...(distributed ? { distributed } : {}),
    growth: {
      atTokens: growAtTokens,
      apply: (trainer) => {
        const grown = growTrainer(trainer, plan, {
          optimizerState: options.optimizerState ?? "reset",
          schedule: { type: options.schedule.type, learningRate: options.schedule.learningRate, totalSteps: totalSteps - smallSteps, warmupRatio: options.schedule.warmupRatio },
        });
        trainer.dispose();
        trainer.model.dispose();
        return { trainer: grown.trainer, ...(grown.mask ? { beforeStep: (step: number) => void grown.mask!.beforeStep(step) } : {}) };
      },
    },
  });
  curves.grown = grownRun.curve;
  const files: string[] = [];
  if (writer) savePretrained(grownRun.trainer.model, path.join(options.outputDir, "grown"));
  files.push(path.join(options.outputDir, "grown"));
  grownRun.trainer.dispose();
  grownRun.trainer.model.dispose();

  let speedup: Speedup | null = null;
  if (options.baseline ?? true) {
    const scratch = new LlamaModel(plan.target, options.modelOptions);
    scratch.initialize(seed);
    const grownFlops = curves.grown.at(-1)!.flops;
    const scratchTokens =
      options.baselineBudget === "flops" ? Math.max(tokensPerStep, Math.floor(grownFlops / trainFlopsPerToken(plan.target, corpus.blockSize) / tokensPerStep) * tokensPerStep) : maxTokens;
    const scratchRun = pretrainRun(trainerFor(scratch, options.schedule, Math.ceil(scratchTokens / tokensPerStep), options.optimizer, seed), {
      corpus,
      batchSize,
      maxTokens: scratchTokens,
      evalSteps: options.evalSteps,
      seed,
      onPoint: (p) => options.onPoint?.("scratch", p),
      ...(distributed ? { distributed } : {}),
    });
    curves.scratch = scratchRun.curve;
    if (writer) savePretrained(scratchRun.trainer.model, path.join(options.outputDir, "scratch"));
    files.push(path.join(options.outputDir, "scratch"));
    scratchRun.trainer.dispose();
    scratchRun.trainer.model.dispose();
    speedup = growthSpeedup(curves.scratch, curves.grown);
  }

  const write = (name: string, content: string): void => {
    if (writer) writeFileAtomic(op, path.join(options.outputDir, name), content);
    files.push(path.join(options.outputDir, name));
  };
  write("curves.csv", curvesCsv(curves));
  const series = (x: "tokens" | "flops") =>
    Object.entries(curves).map(([run, curve], k) => {
      const evaluated = curve.filter((p) => Number.isFinite(p.evalLoss));
      return { name: run, x: evaluated.map((p) => p[x]), y: evaluated.map((p) => p.evalLoss), dashed: k === 1, color: k };
    });
  const label = `${options.growth.depth?.operator ?? ""}${options.growth.width ? ` width ${options.growth.width.operator}` : ""}`.trim();
  write("loss-vs-tokens.svg", lineChart({ title: `validation loss: grown (${label} at ${growAtTokens} tokens) vs scratch`, xLabel: "training tokens", yLabel: "validation NLL", series: series("tokens") }));
  write("loss-vs-flops.svg", lineChart({ title: "validation loss against training FLOPs", xLabel: "training FLOPs", yLabel: "validation NLL", series: series("flops") }));
  const result: GrowthStudyResult = {
    plan: { source: plan.source, target: plan.target, depthOperator: plan.depthOperator, widthOperator: plan.widthOperator },
    curves,
    speedup,
    files,
  };
  write("study.json", `${JSON.stringify({ ...result, settings: { growAtTokens, maxTokens, baselineBudget: options.baselineBudget ?? "tokens", batchSize, blockSize: corpus.blockSize, schedule: options.schedule, optimizerState: options.optimizerState ?? "reset", seed } }, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 1)}\n`);
  return result;
}
