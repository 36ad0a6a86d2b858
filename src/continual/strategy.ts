/**
 * Continual-learning strategies of a fine-tuning stage (`growlm finetune --cl_strategy`, or a
 * scenario model's "strategy"): naive fine-tuning (the default), experience replay
 * (replay.ts), EWC (ewc.ts) and LwF (lwf.ts), alone or combined ("replay+ewc"). What spans
 * stages lives in the stage folders, next to the model the next stage starts from:
 *   replay_buffer.json        the buffer after this stage (earlier tasks plus this one)
 *   ewc_fisher.safetensors    the Fisher accumulated over the stages so far
 *   cl_strategy.json          what the stage applied and measured (written last)
 * A stage reads them from --model_name_or_path; the first stage finds none, so replay has
 * nothing to replay and EWC no penalty yet (LwF distils towards the base model). The LwF
 * teacher targets of a stage in progress sit in OUTPUT_DIR/lwf_targets.bin until it ends.
 */
import fs from "node:fs";
import path from "node:path";

import { type TokenizedExample, collate } from "../data/collator.js";
import { GrowlmError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import type { FlagSpec } from "../cli/hf-args.js";
import type { LlamaModel, LlamaModelOptions } from "../model/llama.js";
import { loadPretrained } from "../model/pretrained.js";
import type { Batch, ObjectiveTerms } from "../train/trainer.js";
import { type FisherLabels, FISHER_LABELS, EwcRegularizer, accumulateFisher, estimateFisher, writeFisher } from "./ewc.js";
import {
  LWF_TARGETS_NAME,
  type TeacherTargets,
  type TeacherTargetsKey,
  type TrackedBatch,
  computeTeacherTargets,
  distillationTerm,
  hashExamples,
  readTeacherTargets,
  removeTeacherTargets,
  teacherTargetsBytes,
  writeTeacherTargets,
} from "./lwf.js";
import { REPLAY_BUFFER_NAME, REPLAY_POLICIES, ReplayBuffer, type ReplayPolicy, ReplaySchedule, streamKey } from "./replay.js";

export type StrategyName = "replay" | "ewc" | "lwf";
export const STRATEGY_NAMES: readonly StrategyName[] = ["replay", "ewc", "lwf"];

/** The strategy settings (FinetuneOptions has them all, under these names). */
export interface StrategyOptions {
  /** "naive", or strategies joined by "+" (e.g. "replay+ewc"). */
  clStrategy: string;
  /** Buffer capacity in examples. */
  replayBufferSize: number;
  replayPolicy: ReplayPolicy;
  /** Replayed rows per new-task row of each micro-batch (added to the batch). */
  replayRatio: number;
  /** The stage's task name in the buffer (default: the dataset file's name without extension). */
  replayTask: string | null;
  /** λ of the EWC penalty (required with ewc). */
  ewcLambda: number | null;
  ewcFisherLabels: FisherLabels;
  /** At most this many training examples estimate the Fisher. */
  ewcFisherSamples: number;
  /** γ of online EWC: F ← γ·F_before + F_stage. */
  ewcDecay: number;
  /** α, the distillation loss's weight. */
  lwfAlpha: number;
  lwfTemperature: number;
  /** Teacher tokens kept per position (>= the vocabulary: the full distribution). */
  lwfTopK: number;
}

export const STRATEGY_DEFAULTS: StrategyOptions = {
  clStrategy: "naive",
  replayBufferSize: 1000,
  replayPolicy: "balanced",
  replayRatio: 0.25,
  replayTask: null,
  ewcLambda: null,
  ewcFisherLabels: "sampled",
  ewcFisherSamples: 256,
  ewcDecay: 1,
  lwfAlpha: 1,
  lwfTemperature: 2,
  lwfTopK: 32,
};

/** The strategies' flags (Hugging Face style names), mapped to StrategyOptions fields. */
export const STRATEGY_FLAGS: Record<string, FlagSpec & { field: keyof StrategyOptions }> = {
  cl_strategy: { kind: "string", field: "clStrategy" },
  replay_buffer_size: { kind: "int", field: "replayBufferSize" },
  replay_policy: { kind: "string", choices: REPLAY_POLICIES, field: "replayPolicy" },
  replay_ratio: { kind: "float", field: "replayRatio" },
  replay_task: { kind: "string", field: "replayTask" },
  ewc_lambda: { kind: "float", field: "ewcLambda" },
  ewc_fisher_labels: { kind: "string", choices: FISHER_LABELS, field: "ewcFisherLabels" },
  ewc_fisher_samples: { kind: "int", field: "ewcFisherSamples" },
  ewc_decay: { kind: "float", field: "ewcDecay" },
  lwf_alpha: { kind: "float", field: "lwfAlpha" },
  lwf_temperature: { kind: "float", field: "lwfTemperature" },
  lwf_top_k: { kind: "int", field: "lwfTopK" },
};

/** The strategies named by --cl_strategy ("naive": none), checked. */
export function parseStrategyNames(op: string, value: string): StrategyName[] {
  if (value === "naive") return [];
  const names = value.split("+").map((s) => s.trim());
  const bad = names.find((n) => !(STRATEGY_NAMES as readonly string[]).includes(n));
  if (bad !== undefined || new Set(names).size !== names.length) {
    throw new GrowlmError(op, `--cl_strategy must be naive or a "+"-joined combination of ${STRATEGY_NAMES.join(", ")} (each once) but is ${JSON.stringify(value)}`);
  }
  return names as StrategyName[];
}

/** Checks the settings of the strategies in use (errors name the flag); returns their names. */
export function checkStrategyOptions(op: string, options: StrategyOptions): StrategyName[] {
  const names = parseStrategyNames(op, options.clStrategy);
  const fail = (flag: string, what: string, value: unknown): never => {
    throw new GrowlmError(op, `--${flag} must be ${what} but is ${JSON.stringify(value)}`);
  };
  if (names.includes("replay")) {
    if (!Number.isSafeInteger(options.replayBufferSize) || options.replayBufferSize < 1) fail("replay_buffer_size", "a positive integer", options.replayBufferSize);
    if (!REPLAY_POLICIES.includes(options.replayPolicy)) fail("replay_policy", REPLAY_POLICIES.join(" or "), options.replayPolicy);
    if (!(options.replayRatio > 0 && options.replayRatio <= 16)) fail("replay_ratio", "in (0, 16] (replayed rows per new row)", options.replayRatio);
    if (options.replayTask === "") fail("replay_task", "a task name", options.replayTask);
  }
  if (names.includes("ewc")) {
    if (options.ewcLambda === null) throw new GrowlmError(op, "--cl_strategy ewc needs --ewc_lambda (the penalty's weight; its scale depends on the model and data)");
    if (!(options.ewcLambda >= 0 && Number.isFinite(options.ewcLambda))) fail("ewc_lambda", "a finite number >= 0", options.ewcLambda);
    if (!FISHER_LABELS.includes(options.ewcFisherLabels)) fail("ewc_fisher_labels", FISHER_LABELS.join(" or "), options.ewcFisherLabels);
    if (!Number.isSafeInteger(options.ewcFisherSamples) || options.ewcFisherSamples < 1) fail("ewc_fisher_samples", "a positive integer", options.ewcFisherSamples);
    if (!(options.ewcDecay >= 0 && options.ewcDecay <= 1)) fail("ewc_decay", "in [0, 1]", options.ewcDecay);
  }
  if (names.includes("lwf")) {
    if (!(options.lwfAlpha >= 0 && Number.isFinite(options.lwfAlpha))) fail("lwf_alpha", "a finite number >= 0", options.lwfAlpha);
    if (!(options.lwfTemperature > 0 && Number.isFinite(options.lwfTemperature))) fail("lwf_temperature", "a finite number > 0", options.lwfTemperature);
    if (!Number.isSafeInteger(options.lwfTopK) || options.lwfTopK < 1) fail("lwf_top_k", "a positive integer", options.lwfTopK);
  }
  return names;
}

/** A short label of the strategies and their main settings, for reports ("ewc (λ=100, sampled)"). */
export function describeStrategy(options: StrategyOptions): string {
  const names = parseStrategyNames("describeStrategy", options.clStrategy);
  if (names.length === 0) return "naive";
  return names
    .map((n) =>
      n === "replay"
        ? `replay (${options.replayPolicy} ${options.replayBufferSize}, ratio ${options.replayRatio})`
        : n === "ewc"
          ? `ewc (λ=${options.ewcLambda}, ${options.ewcFisherLabels} Fisher${options.ewcDecay < 1 ? `, γ=${options.ewcDecay}` : ""})`
          : `lwf (α=${options.lwfAlpha}, T=${options.lwfTemperature}, top-${options.lwfTopK})`,
    )
    .join(" + ");
}

/** What a stage's strategy works with (finetune provides it). */
export interface StrategyContext {
  model: LlamaModel;
  /** The stage's training examples, tokenized. */
  train: readonly TokenizedExample[];
  padId: number;
  /** --model_name_or_path: the model the stage started from (teacher, θ*, earlier state). */
  fromDir: string;
  outputDir: string;
  /** The dataset file (its name is the default task name). */
  dataset: string;
  seed: number;
  batchSize: number;
  /** The training-example rows of every micro-batch of the first epoch, in order. */
  firstEpoch: readonly (readonly number[])[];
  /** How models compute (a teacher reloaded on resumption computes the same way). */
  modelOptions: LlamaModelOptions;
  /** The model was resumed from a checkpoint: it is no longer the stage's starting model. */
  resumed: boolean;
}

/** cl_strategy.json: what a stage applied and measured. */
export interface StrategyRecord {
  strategies: StrategyName[];
  label: string;
  task: string;
  replay?: { buffer_before: Record<string, number>; buffer_after: Record<string, number>; replayed_rows: number };
  ewc?: { penalty_applied: boolean; stages_before: number; fisher_examples: number; fisher_tokens: number; labels: FisherLabels };
  lwf?: { positions: number; top_k: number; targets_bytes: number; temperature: number };
  /** FLOPs outside training steps: the Fisher's passes and the teacher pass. */
  overhead_flops: number;
}

export const STRATEGY_RECORD_NAME = "cl_strategy.json";

/** One stage's strategies: built by open(), used by finetune at every step, finished at the end. */
export class ContinualStrategy {
  /** FLOPs spent outside the training steps (the teacher pass so far; the Fisher once finished). */
  overheadFlops = 0;
  readonly #tracked = new WeakMap<Batch, TrackedBatch>();
  #replayedRows = 0;
  #window = { penalty: 0, steps: 0, kl: 0, positions: 0 };
  #bufferBefore: Record<string, number> = {};

  private constructor(
    readonly options: StrategyOptions,
    readonly names: readonly StrategyName[],
    readonly ctx: StrategyContext,
    readonly task: string,
    readonly buffer: ReplayBuffer | null,
    readonly schedule: ReplaySchedule | null,
    readonly ewc: { regularizer: EwcRegularizer; stagesBefore: number } | null,
    public targets: TeacherTargets | null,
  ) {}

  /**
   * Prepares the strategies of `options` for a stage: reads the replay buffer and the EWC
   * state from ctx.fromDir, and computes (or, when resuming, reads back) the LwF targets.
   */
  static open(options: StrategyOptions, ctx: StrategyContext): ContinualStrategy {
    const op = "finetune";
    const names = checkStrategyOptions(op, options);
    streamKey(op, ctx.seed, 0);
    // A probabilistic model predicts with several members (FiLM rows, MC-dropout samples): the
    // teacher's targets and the sampled Fisher are defined per row of a plain model.
    const members = ctx.model.inferenceMembers;
    if (members > 1 && names.includes("lwf")) {
      throw new GrowlmError(op, `--cl_strategy lwf needs a deterministic model, but this one predicts with ${members} ${ctx.model.film ? "FiLM-Ensemble members" : "MC-dropout samples"}`);
    }
    if (ctx.model.film && names.includes("ewc") && options.ewcFisherLabels === "sampled") {
      throw new GrowlmError(op, "--ewc_fisher_labels sampled needs a plain model, but this one trains a FiLM-Ensemble: use --ewc_fisher_labels true (the penalty covers the shared weights, not the members' FiLM parameters)");
    }
    const task = options.replayTask ?? path.basename(ctx.dataset).replace(/\.[^.]*$/, "");
    let buffer: ReplayBuffer | null = null;
    let schedule: ReplaySchedule | null = null;
    if (names.includes("replay")) {
      const found = ReplayBuffer.read(path.join(ctx.fromDir, REPLAY_BUFFER_NAME));
      if (found && (found.policy !== options.replayPolicy || found.capacity !== options.replayBufferSize)) {
        throw new GrowlmError(
          op,
          `${path.join(ctx.fromDir, REPLAY_BUFFER_NAME)} is a ${found.policy} buffer of ${found.capacity} examples but --replay_policy ${options.replayPolicy} --replay_buffer_size ${options.replayBufferSize} were given`,
        );
      }
      buffer = found ?? ReplayBuffer.empty(options.replayPolicy, options.replayBufferSize, ctx.seed);
      schedule = new ReplaySchedule(buffer.examples.length, options.replayRatio * ctx.batchSize, ctx.seed);
    }
    const ewc = names.includes("ewc") ? EwcRegularizer.open(ctx.model, ctx.fromDir, options.ewcLambda!) : null;
    const strategy = new ContinualStrategy(options, names, ctx, task, buffer, schedule, ewc ? { regularizer: ewc.regularizer, stagesBefore: ewc.record.stages } : null, null);
    if (buffer) strategy.#bufferBefore = Object.fromEntries(buffer.counts());
    if (names.includes("lwf")) strategy.#openTeacherTargets();
    return strategy;
  }

  #openTeacherTargets(): void {
    const { ctx, options } = this;
    const key: TeacherTargetsKey = {
      teacher: path.resolve(ctx.fromDir),
      temperature: options.lwfTemperature,
      topK: options.lwfTopK,
      vocabSize: ctx.model.config.vocab_size,
      dataHash: hashExamples(ctx.train),
    };
    const file = path.join(ctx.outputDir, LWF_TARGETS_NAME);
    const stored = readTeacherTargets(file, key);
    if (stored) {
      this.targets = stored;
      return;
    }
    // Before the first step the model is the teacher; a resumed model is not: reload the start.
    const teacher = ctx.resumed ? loadPretrained(ctx.fromDir, ctx.modelOptions) : ctx.model;
    const build = (rows: readonly number[], micro: number): TrackedBatch => this.#build(rows, micro);
    // The first epoch's micro-batches exactly as training builds them, one at a time.
    function* firstEpoch(): Generator<TrackedBatch> {
      for (const [micro, rows] of ctx.firstEpoch.entries()) {
        const tracked = build(rows, micro);
        try {
          yield tracked;
        } finally {
          tracked.batch.ids.dispose();
          tracked.batch.labels.dispose();
        }
      }
    }
    try {
      const pass = computeTeacherTargets(teacher, ctx.train, firstEpoch(), key);
      this.targets = pass.targets;
      this.overheadFlops += pass.flops;
    } finally {
      if (teacher !== ctx.model) teacher.dispose();
    }
    fs.mkdirSync(ctx.outputDir, { recursive: true });
    writeTeacherTargets(file, this.targets);
  }

  /** Micro-batch `micro` (counted from the stage's first) of the training rows `rows`, with its replayed rows appended. */
  #build(rows: readonly number[], micro: number): TrackedBatch {
    const replay = this.schedule ? this.schedule.rows(micro) : [];
    const examples: TokenizedExample[] = [...rows.map((i) => this.ctx.train[i]!), ...replay.map((i) => this.buffer!.examples[i]!)];
    return { batch: collate(examples, this.ctx.padId), rows: [...rows, ...replay.map(() => null)] };
  }

  /** The batch of micro-batch `micro` over training rows `rows` (replayed rows appended). */
  collate(rows: readonly number[], micro: number): Batch {
    const tracked = this.#build(rows, micro);
    this.#replayedRows += tracked.rows.length - rows.length;
    this.#tracked.set(tracked.batch, tracked);
    return tracked.batch;
  }

  /** The extra objective terms of one step over `batches` (made by collate()). */
  objective(batches: readonly Batch[]): ObjectiveTerms {
    const terms: ObjectiveTerms = {};
    const targets = this.targets;
    if (targets) {
      terms.logitsTerm = (index, tokenWeight) => {
        const tracked = this.#tracked.get(batches[index]!);
        if (!tracked) throw new GrowlmError("ContinualStrategy", `micro-batch ${index} was not built by collate()`);
        return distillationTerm(targets, tracked, this.options.lwfAlpha, tokenWeight, (kl, positions) => {
          this.#window.kl += kl;
          this.#window.positions += positions;
        });
      };
    }
    const ewc = this.ewc;
    if (ewc) {
      terms.addParameterTerm = () => {
        this.#window.penalty += ewc.regularizer.addGradient();
      };
    }
    this.#window.steps++;
    return terms;
  }

  /**
   * Log fields since the last call: ewc_penalty (mean over steps, before each update) and
   * distill_loss (T²·KL per distilled position).
   */
  takeLogFields(): Record<string, number> {
    const w = this.#window;
    const out: Record<string, number> = {};
    if (this.ewc && w.steps > 0) out.ewc_penalty = w.penalty / w.steps;
    if (this.targets && w.positions > 0) out.distill_loss = w.kl / w.positions;
    this.#window = { penalty: 0, steps: 0, kl: 0, positions: 0 };
    return out;
  }

  /**
   * The state the next stage needs, into ctx.outputDir (call after the final model is saved):
   * the buffer with this stage's examples, the accumulated Fisher of the final model, and
   * cl_strategy.json; the teacher targets are removed.
   */
  finish(): StrategyRecord {
    const { ctx, options } = this;
    const record: StrategyRecord = { strategies: [...this.names], label: describeStrategy(options), task: this.task, overhead_flops: 0 };
    if (this.buffer) {
      this.buffer.addTask(this.task, ctx.train);
      this.buffer.write(path.join(ctx.outputDir, REPLAY_BUFFER_NAME));
      record.replay = { buffer_before: this.#bufferBefore, buffer_after: Object.fromEntries(this.buffer.counts()), replayed_rows: this.#replayedRows };
    }
    if (this.names.includes("ewc")) {
      const estimate = estimateFisher(ctx.model, ctx.train, { labels: options.ewcFisherLabels, samples: options.ewcFisherSamples, seed: ctx.seed });
      accumulateFisher(estimate.fisher, this.ewc?.regularizer.fisher ?? null, options.ewcDecay);
      const stagesBefore = this.ewc?.stagesBefore ?? 0;
      writeFisher(ctx.outputDir, ctx.model.layout, estimate.fisher, { stages: stagesBefore + 1, labels: options.ewcFisherLabels, decay: options.ewcDecay });
      estimate.fisher.dispose();
      this.overheadFlops += estimate.flops;
      record.ewc = { penalty_applied: this.ewc !== null, stages_before: stagesBefore, fisher_examples: estimate.examples, fisher_tokens: estimate.tokens, labels: options.ewcFisherLabels };
    }
    if (this.targets) {
      record.lwf = { positions: this.targets.logRest.length, top_k: this.targets.topK, targets_bytes: teacherTargetsBytes(this.targets), temperature: options.lwfTemperature };
      removeTeacherTargets(ctx.outputDir);
    }
    record.overhead_flops = this.overheadFlops;
    writeFileAtomic("ContinualStrategy.finish", path.join(ctx.outputDir, STRATEGY_RECORD_NAME), `${JSON.stringify(record, null, 2)}\n`);
    return record;
  }

  dispose(): void {
    this.ewc?.regularizer.dispose();
    this.targets = null;
  }
}
