/**
 * Fine-tuning a causal LM on prompt/response examples the way the study's finetune.py (qlora
 * on Hugging Face's Trainer) does it, with TrainingArguments' names and defaults: epochs or
 * max_steps, gradient accumulation, the learning-rate schedules, clipping, logging / eval /
 * save strategies with checkpoint-N folders and save_total_limit, and resumption from a
 * checkpoint (exactly: the data order of every epoch is a function of the seed and the epoch,
 * so a resumed run sees the batches the uninterrupted one would have seen).
 *
 * Log records are Hugging Face's log_history entries ({loss, grad_norm, learning_rate, epoch,
 * step}, {eval_loss, ...}), plus growlm's tokens_per_second; they go to the reporter, to
 * OUTPUT_DIR/log.jsonl and into every checkpoint's trainer_state.json.
 */
import fs from "node:fs";
import path from "node:path";

import { ContinualStrategy, STRATEGY_DEFAULTS, type StrategyOptions, checkStrategyOptions } from "../continual/strategy.js";
import { collate, epochOrder, tokenizeExample, type TokenizedExample } from "../data/collator.js";
import { readDataset } from "../data/dataset.js";
import type { PromptFormat } from "../data/prompts.js";
import type { Example } from "../data/seed.js";
import { GrowlmError } from "../errors.js";
import { loadTokenizer, type Tokenizer } from "../io/tokenizer.js";
import { trainFlopsPerToken } from "../model/flops.js";
import type { LlamaModel } from "../model/llama.js";
import { loadPretrained, savePretrained } from "../model/pretrained.js";
import { type ProbabilisticFinetuneOptions, DEFAULT_FILM_INIT_GAIN, prepareProbabilisticModel } from "../probabilistic/finetune-mode.js";
import { TRAINER_STATE_NAME, loadTrainingCheckpoint, saveTrainingCheckpoint } from "./checkpoint.js";
import { type Communicator, sumAcrossRanks } from "./comm.js";
import { type DistributedTraining, shardIndices } from "./data-parallel.js";
import type { LrSchedulerType } from "./lr.js";
import { RandomStream } from "./random.js";
import { type Batch, Trainer } from "./trainer.js";

export type IntervalStrategy = "no" | "steps" | "epoch";

/**
 * TrainingArguments (and the study's data arguments) in camelCase, with their defaults below;
 * the probabilistic mode's options come from src/probabilistic/finetune-mode.ts, the
 * continual-learning strategy's from src/continual/strategy.ts.
 */
export interface FinetuneOptions extends ProbabilisticFinetuneOptions, StrategyOptions {
  modelNameOrPath: string;
  dataset: string;
  datasetFormat: PromptFormat;
  outputDir: string;
  numTrainEpochs: number;
  /** > 0 overrides numTrainEpochs (-1: unset). */
  maxSteps: number;
  perDeviceTrainBatchSize: number;
  perDeviceEvalBatchSize: number;
  gradientAccumulationSteps: number;
  learningRate: number;
  lrSchedulerType: LrSchedulerType;
  warmupRatio: number;
  warmupSteps: number;
  weightDecay: number;
  maxGradNorm: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  loggingSteps: number;
  loggingFirstStep: boolean;
  evalStrategy: IntervalStrategy;
  /** Defaults to loggingSteps, as TrainingArguments. */
  evalSteps: number | null;
  saveStrategy: IntervalStrategy;
  saveSteps: number;
  saveTotalLimit: number | null;
  seed: number;
  trainOnSource: boolean;
  sourceMaxLen: number;
  targetMaxLen: number;
  groupByLength: boolean;
  /** A checkpoint folder, or true for the newest checkpoint-N in outputDir. */
  resumeFromCheckpoint: string | boolean;
  doTrain: boolean;
  doEval: boolean;
  bf16: boolean;
  gradientCheckpointing: boolean;
  /** "cpu", "cuda" or "cuda:N": where the model trains. */
  device: string;
  maxTrainSamples: number | null;
  maxEvalSamples: number | null;
}

export const FINETUNE_DEFAULTS: Omit<FinetuneOptions, "modelNameOrPath" | "dataset" | "outputDir"> = {
  ...STRATEGY_DEFAULTS,
  datasetFormat: "none",
  numTrainEpochs: 3,
  maxSteps: -1,
  perDeviceTrainBatchSize: 8,
  perDeviceEvalBatchSize: 8,
  gradientAccumulationSteps: 1,
  learningRate: 5e-5,
  lrSchedulerType: "linear",
  warmupRatio: 0,
  warmupSteps: 0,
  weightDecay: 0,
  maxGradNorm: 1,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEpsilon: 1e-8,
  loggingSteps: 500,
  loggingFirstStep: false,
  evalStrategy: "no",
  evalSteps: null,
  saveStrategy: "steps",
  saveSteps: 500,
  saveTotalLimit: null,
  seed: 42,
  trainOnSource: false,
  sourceMaxLen: 1024,
  targetMaxLen: 256,
  groupByLength: false,
  resumeFromCheckpoint: false,
  doTrain: true,
  doEval: false,
  bf16: false,
  gradientCheckpointing: false,
  device: "cpu",
  maxTrainSamples: null,
  maxEvalSamples: null,
  probabilistic: null,
  ensembleSize: null,
  filmInitGain: DEFAULT_FILM_INIT_GAIN,
  dropout: null,
  mcSamples: null,
};

export type LogRecord = Record<string, number>;

/** Where progress goes: log records as they are made, and a heartbeat after every step. */
export interface FinetuneReporter {
  log(record: LogRecord): void;
  progress?(state: { step: number; maxSteps: number; loss: number; lr: number; tokensPerSecond: number; elapsed: number }): void;
}

export interface FinetuneResult {
  globalStep: number;
  /** Mean training loss over the steps run in this call (NaN without training). */
  trainLoss: number;
  /** Token-weighted mean NLL on the eval split after training (NaN without --do_eval). */
  evalLoss: number;
  logHistory: LogRecord[];
  /** Tokens the steps of this call processed (padding excluded) and their training FLOPs (flops.ts). */
  trainTokens: number;
  trainFlops: number;
  /** FLOPs of the continual-learning strategy outside the steps (EWC's Fisher passes, LwF's teacher pass). */
  strategyFlops: number;
  /** The checkpoint folders present at the end. */
  checkpoints: string[];
}

const CHECKPOINT_PREFIX = "checkpoint-";

/** checkpoint-N folders of `dir`, oldest (smallest N) first. */
export function listCheckpoints(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((n) => new RegExp(`^${CHECKPOINT_PREFIX}\\d+$`).test(n) && fs.existsSync(path.join(dir, n, TRAINER_STATE_NAME)))
    .sort((a, b) => Number(a.slice(CHECKPOINT_PREFIX.length)) - Number(b.slice(CHECKPOINT_PREFIX.length)))
    .map((n) => path.join(dir, n));
}

function check(options: FinetuneOptions): void {
  const op = "finetune";
  const positive = ["perDeviceTrainBatchSize", "perDeviceEvalBatchSize", "gradientAccumulationSteps", "loggingSteps", "saveSteps", "sourceMaxLen", "targetMaxLen"] as const;
  for (const key of positive) {
    if (!Number.isSafeInteger(options[key]) || options[key] < 1) throw new GrowlmError(op, `${key} must be a positive integer but is ${options[key]}`);
  }
  if (!(options.numTrainEpochs > 0) && options.maxSteps <= 0) throw new GrowlmError(op, "num_train_epochs must be > 0 when max_steps is not set");
  if (options.evalSteps !== null && (!Number.isSafeInteger(options.evalSteps) || options.evalSteps < 1)) {
    throw new GrowlmError(op, `eval_steps must be a positive integer but is ${options.evalSteps}`);
  }
  if (options.saveTotalLimit !== null && (!Number.isSafeInteger(options.saveTotalLimit) || options.saveTotalLimit < 1)) {
    throw new GrowlmError(op, `save_total_limit must be a positive integer but is ${options.saveTotalLimit}`);
  }
  checkStrategyOptions(op, options);
}

/**
 * Token-weighted mean NLL of `examples` under `model` (no gradients). With a communicator,
 * each rank evaluates every worldSize-th example and the sums are added across ranks.
 */
export function evaluateLoss(model: LlamaModel, examples: readonly TokenizedExample[], batchSize: number, padId: number, communicator: Communicator | null = null): number {
  let sum = 0;
  let count = 0;
  const mine = communicator ? examples.filter((_, i) => i % communicator.worldSize === communicator.rank) : examples;
  for (let i = 0; i < mine.length; i += batchSize) {
    const batch = collate(mine.slice(i, i + batchSize), padId);
    const r = model.forward(batch.ids, { labels: batch.labels });
    sum += r.lossSum;
    count += r.count;
    batch.ids.dispose();
    batch.labels.dispose();
  }
  if (communicator) [sum, count] = sumAcrossRanks(communicator, [sum, count]) as [number, number];
  return count === 0 ? Number.NaN : sum / count;
}

function padIdOf(tokenizer: Tokenizer): number {
  return tokenizer.padId ?? tokenizer.eosId ?? 0;
}

function tokenizeAll(tokenizer: Tokenizer, examples: readonly Example[], options: FinetuneOptions, limit: number | null): TokenizedExample[] {
  const chosen = limit === null ? examples : examples.slice(0, limit);
  return chosen.map((e) =>
    tokenizeExample(tokenizer, e, { format: options.datasetFormat, sourceMaxLen: options.sourceMaxLen, targetMaxLen: options.targetMaxLen, trainOnSource: options.trainOnSource }),
  );
}

/** The files of the model folder's tokenizer, copied into every checkpoint. */
function tokenizerFiles(dir: string): string[] {
  return ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"].map((n) => path.join(dir, n)).filter((f) => fs.existsSync(f));
}

/**
 * Runs fine-tuning (and evaluation) as `options` say; see the module comment. With
 * `distributed`, every rank of the communicator calls it: each trains on its DistributedSampler
 * shard of every global batch (per_device_train_batch_size × world size × accumulation), eval
 * is sharded too, and only rank 0 reports, logs and writes checkpoints and the model.
 */
export async function finetune(options: FinetuneOptions, reporter: FinetuneReporter, distributed: DistributedTraining | null = null): Promise<FinetuneResult> {
  const op = "finetune";
  const communicator = distributed?.communicator ?? null;
  const rank = communicator?.rank ?? 0;
  const world = communicator?.worldSize ?? 1;
  check(options);
  if (communicator && options.clStrategy !== "naive") {
    throw new GrowlmError(op, `--cl_strategy ${options.clStrategy} does not run data-parallel (its replay buffer, Fisher and teacher passes belong to one process): train this stage with one process`);
  }
  const data = readDataset(options.dataset);
  const resumeDir =
    options.resumeFromCheckpoint === true
      ? (listCheckpoints(options.outputDir).at(-1) ?? null)
      : typeof options.resumeFromCheckpoint === "string" && options.resumeFromCheckpoint !== ""
        ? options.resumeFromCheckpoint
        : null;
  if (options.resumeFromCheckpoint === true && resumeDir === null) {
    throw new GrowlmError(op, `--resume_from_checkpoint: no checkpoint-N folder in ${options.outputDir}`);
  }
  const tokenizerDir = resumeDir && fs.existsSync(path.join(resumeDir, "tokenizer.json")) ? resumeDir : options.modelNameOrPath;
  const tokenizer = await loadTokenizer(tokenizerDir);
  const padId = padIdOf(tokenizer);
  const train = tokenizeAll(tokenizer, data.train, options, options.maxTrainSamples);
  const evalSet = tokenizeAll(tokenizer, data.eval, options, options.maxEvalSamples);
  if (options.doTrain && train.length === 0) throw new GrowlmError(op, `${options.dataset} has no training example`);
  if (options.doEval && evalSet.length === 0) throw new GrowlmError(op, `${options.dataset} has no eval example (--do_eval)`);

  const bs = options.perDeviceTrainBatchSize;
  const ga = options.gradientAccumulationSteps;
  const microPerEpoch = Math.ceil(Math.ceil(train.length / world) / bs);
  const stepsPerEpoch = Math.max(1, Math.ceil(microPerEpoch / ga));
  const maxSteps = options.maxSteps > 0 ? options.maxSteps : Math.ceil(options.numTrainEpochs * stepsPerEpoch);
  const modelOptions = { matmul: options.bf16 ? ("bfloat16" as const) : ("float32" as const), recompute: options.gradientCheckpointing, device: options.device };

  let trainer: Trainer;
  let logHistory: LogRecord[] = [];
  if (resumeDir) {
    const loaded = loadTrainingCheckpoint(resumeDir, modelOptions);
    trainer = loaded.trainer;
    logHistory = loaded.state.log_history.filter((r) => (r.step ?? 0) <= loaded.state.global_step);
  } else {
    const model = loadPretrained(options.modelNameOrPath, modelOptions);
    try {
      prepareProbabilisticModel(model, options, options.seed);
    } catch (err) {
      model.dispose();
      throw err;
    }
    trainer = new Trainer(model, {
      schedule: { type: options.lrSchedulerType, learningRate: options.learningRate, totalSteps: maxSteps, warmupSteps: options.warmupSteps, warmupRatio: options.warmupRatio },
      optimizer: { beta1: options.adamBeta1, beta2: options.adamBeta2, eps: options.adamEpsilon, weightDecay: options.weightDecay, maxGradNorm: options.maxGradNorm },
      seed: options.seed,
    });
  }
  const model = trainer.model;
  if (resumeDir) {
    try {
      prepareProbabilisticModel(model, options, options.seed);
      if (model.film && !trainer.optimizer.filmM) throw new GrowlmError(op, `${resumeDir} holds a deterministic run: it cannot resume as a FiLM-Ensemble`);
    } catch (err) {
      trainer.dispose();
      model.dispose();
      throw err;
    }
  }
  // Dropout masks come from the trainer's stream, saved in every checkpoint.
  if (model.dropout > 0) model.setDropout(model.dropout, trainer.rng);
  // Where this model comes from, as transformers records it: drift diagnostics follow it to a growth record.
  model.config.metadata._name_or_path = path.resolve(options.modelNameOrPath);
  if (communicator) trainer.distribute(communicator, distributed?.bucketCapMb);
  const longest = Math.max(0, ...train.map((e) => e.ids.length), ...evalSet.map((e) => e.ids.length));
  if (longest > model.config.max_position_embeddings) {
    trainer.dispose();
    model.dispose();
    throw new GrowlmError(
      op,
      `the longest example has ${longest} tokens but the model takes at most max_position_embeddings = ${model.config.max_position_embeddings}; lower --source_max_len (${options.sourceMaxLen}) or --target_max_len (${options.targetMaxLen})`,
    );
  }
  fs.mkdirSync(options.outputDir, { recursive: true });
  const logFile = path.join(options.outputDir, "log.jsonl");
  const emit = (record: LogRecord): void => {
    logHistory.push(record);
    if (rank !== 0) return;
    fs.appendFileSync(logFile, `${JSON.stringify(record)}\n`);
    reporter.log(record);
  };

  // The micro-batches of step s: the order of its epoch is a function of (seed, epoch) only.
  const lengths = train.map((e) => e.ids.length);
  let strategy: ContinualStrategy | null = null;
  if (options.doTrain && options.clStrategy !== "naive") {
    const firstOrder = epochOrder(lengths, bs, new RandomStream(options.seed, 0), options.groupByLength);
    strategy = ContinualStrategy.open(options, {
      model, train, padId, fromDir: options.modelNameOrPath, outputDir: options.outputDir, dataset: options.dataset, seed: options.seed, batchSize: bs,
      firstEpoch: Array.from({ length: microPerEpoch }, (_, m) => firstOrder.slice(m * bs, (m + 1) * bs)),
      modelOptions, resumed: resumeDir !== null,
    });
  }
  let orderEpoch = -1;
  let order: number[] = [];
  const microBatchesOf = (step: number): Batch[] => {
    const epoch = Math.floor(step / stepsPerEpoch);
    if (epoch !== orderEpoch) {
      order = shardIndices(epochOrder(lengths, bs * world, new RandomStream(options.seed, epoch * lengths.length), options.groupByLength), rank, world);
      orderEpoch = epoch;
    }
    const first = (step % stepsPerEpoch) * ga;
    const batches: Batch[] = [];
    for (let m = first; m < Math.min(first + ga, microPerEpoch); m++) {
      const rows = order.slice(m * bs, (m + 1) * bs);
      batches.push(strategy ? strategy.collate(rows, epoch * microPerEpoch + m) : collate(rows.map((i) => train[i]!), padId));
    }
    return batches;
  };

  const evalSteps = options.evalSteps ?? options.loggingSteps;
  const epochOf = (step: number): number => step / stepsPerEpoch;
  const stateFields = (): Record<string, unknown> => ({
    epoch: epochOf(trainer.step),
    logging_steps: options.loggingSteps,
    eval_steps: evalSteps,
    save_steps: options.saveSteps,
    train_batch_size: bs,
    num_train_epochs: options.maxSteps > 0 ? Math.ceil(maxSteps / stepsPerEpoch) : options.numTrainEpochs,
    is_world_process_zero: true,
    is_local_process_zero: true,
  });
  const saveCheckpoint = (): void => {
    if (rank !== 0) return;
    saveTrainingCheckpoint(path.join(options.outputDir, `${CHECKPOINT_PREFIX}${trainer.step}`), trainer, {
      logHistory,
      state: stateFields(),
      copyFiles: tokenizerFiles(tokenizerDir),
    });
    if (options.saveTotalLimit !== null) {
      const all = listCheckpoints(options.outputDir);
      for (const old of all.slice(0, Math.max(0, all.length - options.saveTotalLimit))) fs.rmSync(old, { recursive: true, force: true });
    }
  };
  const runEval = (): number => {
    const t0 = performance.now();
    const loss = evaluateLoss(model, evalSet, options.perDeviceEvalBatchSize, padId, communicator);
    const seconds = (performance.now() - t0) / 1000;
    emit({ eval_loss: loss, eval_runtime: seconds, eval_samples_per_second: evalSet.length / seconds, epoch: epochOf(trainer.step), step: trainer.step });
    return loss;
  };

  let trainLossSum = 0;
  let stepsRun = 0;
  let trainTokens = 0;
  let trainFlops = 0;
  if (options.doTrain) {
    const start = performance.now();
    let windowLoss = 0;
    let windowSteps = 0;
    let windowTokens = 0;
    let windowStart = start;
    while (trainer.step < maxSteps) {
      const batches = microBatchesOf(trainer.step);
      for (const b of batches) {
        const [B, T] = b.ids.shape as [number, number];
        const real = (b.ids.data as Int32Array).reduce((n, id, i) => n + (id !== padId || (b.labels.data as Int32Array)[i] !== -100 ? 1 : 0), 0);
        trainTokens += real;
        trainFlops += B * T * trainFlopsPerToken(model.config, T);
      }
      const r = trainer.trainStep(batches, strategy?.objective(batches));
      for (const b of batches) {
        b.ids.dispose();
        b.labels.dispose();
      }
      trainLossSum += r.loss;
      stepsRun++;
      windowLoss += r.loss;
      windowSteps++;
      windowTokens += r.tokens;
      const now = performance.now();
      if (rank === 0) reporter.progress?.({ step: r.step, maxSteps, loss: r.loss, lr: r.lr, tokensPerSecond: windowTokens / ((now - windowStart) / 1000), elapsed: (now - start) / 1000 });
      const atEpochEnd = r.step % stepsPerEpoch === 0 || r.step === maxSteps;
      if (r.step % options.loggingSteps === 0 || (options.loggingFirstStep && r.step === 1)) {
        emit({
          loss: windowLoss / windowSteps,
          grad_norm: r.gradNorm,
          learning_rate: r.lr,
          epoch: epochOf(r.step),
          step: r.step,
          tokens_per_second: windowTokens / ((now - windowStart) / 1000),
          ...strategy?.takeLogFields(),
        });
        windowLoss = 0;
        windowSteps = 0;
        windowTokens = 0;
        windowStart = performance.now();
      }
      if (evalSet.length > 0 && ((options.evalStrategy === "steps" && r.step % evalSteps === 0) || (options.evalStrategy === "epoch" && atEpochEnd))) runEval();
      if ((options.saveStrategy === "steps" && r.step % options.saveSteps === 0) || (options.saveStrategy === "epoch" && atEpochEnd)) saveCheckpoint();
    }
    const seconds = (performance.now() - start) / 1000;
    emit({
      train_runtime: seconds,
      train_samples_per_second: (stepsRun * bs * ga * world) / seconds,
      train_steps_per_second: stepsRun / seconds,
      train_loss: stepsRun > 0 ? trainLossSum / stepsRun : Number.NaN,
      epoch: epochOf(trainer.step),
      step: trainer.step,
    });
    // The final model, as Trainer.save_model writes it, next to the checkpoints.
    if (rank === 0) {
      savePretrained(model, options.outputDir, { dtype: "float32" });
      for (const file of tokenizerFiles(tokenizerDir)) fs.copyFileSync(file, path.join(options.outputDir, path.basename(file)));
    }
    if (communicator) [trainTokens, trainFlops] = sumAcrossRanks(communicator, [trainTokens, trainFlops]) as [number, number];
    strategy?.finish();
  }
  const evalLoss = options.doEval ? runEval() : Number.NaN;
  const result: FinetuneResult = {
    globalStep: trainer.step,
    trainLoss: stepsRun > 0 ? trainLossSum / stepsRun : Number.NaN,
    evalLoss,
    logHistory,
    trainTokens,
    trainFlops,
    strategyFlops: strategy?.overheadFlops ?? 0,
    checkpoints: listCheckpoints(options.outputDir),
  };
  strategy?.dispose();
  trainer.dispose();
  model.dispose();
  return result;
}
