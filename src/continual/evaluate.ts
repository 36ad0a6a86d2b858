/**
 * What a continual scenario measures after each stage, for one model directory:
 * - every generation task (the study's Simp/EmDg/InqQG kind): the teacher-forced NLL of the
 *   test targets (eval_loss, always), and the task's text metrics on generated predictions
 *   (sari, easse_sari, bleu, rouge1/2/L/Lsum) on predictions generated with its settings;
 * - every probe task (multiple choice by log-likelihood, lm-evaluation-harness's scoring):
 *   acc and acc_norm.
 * SARI takes its source and reference from src_info.normal_sentence / simple_sentence where
 * the examples have them (as the study scored Simp), else the input and the output.
 *
 * Calibration (on by default; src/probabilistic/calibration.ts has the formulas), the same for
 * deterministic and probabilistic models (an ensemble's predictions average its members'
 * probabilities):
 * - probes: nll, ece, brier, entropy, mi of the choice distributions (softmax over the
 *   choices' log-likelihoods);
 * - generation tasks, teacher-forced on the test targets: token_nll, token_ece, token_brier,
 *   token_entropy, token_mi over target tokens; seq_nll and seq_rmi per target (nats per
 *   token); and temperature scaling fitted on the task's eval split (temperature,
 *   token_nll_ts, token_ece_ts).
 */
import { collate, tokenizeExample } from "../data/collator.js";
import { readDataset } from "../data/dataset.js";
import type { PromptFormat } from "../data/prompts.js";
import type { Example } from "../data/seed.js";
import { GrowlmError } from "../errors.js";
import { runHarness } from "../eval/harness.js";
import type { GenerateOptions } from "../eval/generate.js";
import { type MetricName, computeMetrics } from "../eval/metrics/suite.js";
import { ModelScorer } from "../eval/model-scorer.js";
import type { ContinuationScore } from "../model/score.js";
import type { UncertaintySummary } from "../probabilistic/calibration.js";
import { type ChoiceDocument, fitTokenTemperature, multipleChoiceUncertainty, teacherForcedUncertainty } from "../probabilistic/evaluate.js";
import { predictExamples } from "../eval/predict.js";
import { jsonlChoiceTask } from "../eval/tasks/jsonl-choice.js";
import { type Tokenizer, loadTokenizer } from "../io/tokenizer.js";
import type { LlamaModel } from "../model/llama.js";
import { loadPretrained } from "../model/pretrained.js";
import type { MetricInfo } from "./report.js";
import type { ScenarioEvaluator, StageScores } from "./scenario.js";

export interface GenerationTask {
  name: string;
  /** The preprocessed dataset file (its test split is evaluated). */
  dataset: string;
  datasetFormat: PromptFormat;
  /** Text metrics on generated predictions (needs a predictor). */
  metrics: MetricName[];
  /** Evaluate the first this many test examples (generation is the expensive part). */
  maxTestExamples: number;
  sourceMaxLen: number;
  targetMaxLen: number;
  /** How predictions are generated (eos and pad come from the model's tokenizer). */
  generation: Omit<GenerateOptions, "streamIds">;
}

export interface ProbeTask {
  name: string;
  /** The folder holding <name>/test.jsonl ({context, choices, gold} lines). */
  dataDir: string;
}

/** Generates one prediction (the text after the prompt) per example. */
export type Predictor = (model: LlamaModel, tokenizer: Tokenizer, task: GenerationTask, examples: readonly Example[]) => Promise<string[]>;

export interface StudyEvaluatorOptions {
  tasks: GenerationTask[];
  probes: ProbeTask[];
  bf16?: boolean;
  /** How predictions are made (default: predictExamples with each task's generation settings). */
  predictor?: Predictor;
  /** Log-likelihood batch size of the probes (default 32). */
  batchSize?: number;
  /** Calibration and uncertainty measures beside the task metrics (default true). */
  calibration?: boolean;
}

/** Every metric a study evaluator reports, with its direction. */
export const STUDY_METRICS: Record<string, MetricInfo> = {
  eval_loss: { higherIsBetter: false },
  sari: { higherIsBetter: true },
  easse_sari: { higherIsBetter: true },
  bleu: { higherIsBetter: true },
  sacrebleu: { higherIsBetter: true },
  rouge1: { higherIsBetter: true },
  rouge2: { higherIsBetter: true },
  rougeL: { higherIsBetter: true },
  rougeLsum: { higherIsBetter: true },
  acc: { higherIsBetter: true },
  acc_norm: { higherIsBetter: true },
  // Calibration. Entropies and mutual information are not better or worse in themselves;
  // lower-is-better only orients the CL summary (a "forgetting" of them is a rise).
  nll: { higherIsBetter: false, calibration: true },
  ece: { higherIsBetter: false, calibration: true },
  brier: { higherIsBetter: false, calibration: true },
  entropy: { higherIsBetter: false, calibration: true },
  mi: { higherIsBetter: false, calibration: true },
  token_nll: { higherIsBetter: false, calibration: true },
  token_ece: { higherIsBetter: false, calibration: true },
  token_brier: { higherIsBetter: false, calibration: true },
  token_entropy: { higherIsBetter: false, calibration: true },
  token_mi: { higherIsBetter: false, calibration: true },
  token_nll_ts: { higherIsBetter: false, calibration: true },
  token_ece_ts: { higherIsBetter: false, calibration: true },
  seq_nll: { higherIsBetter: false, calibration: true },
  seq_rmi: { higherIsBetter: false, calibration: true },
};

/** Scores of an uncertainty summary under the report's names, with a prefix ("", "token_"). */
function uncertaintyScores(s: UncertaintySummary, prefix: string): Record<string, number> {
  return { [`${prefix}nll`]: s.nll, [`${prefix}ece`]: s.ece, [`${prefix}brier`]: s.brier, [`${prefix}entropy`]: s.entropy, [`${prefix}mi`]: s.mutualInformation };
}

function testExamples(task: GenerationTask): Example[] {
  const examples = readDataset(task.dataset).test.slice(0, task.maxTestExamples);
  if (examples.length === 0) throw new GrowlmError("studyEvaluator", `${task.dataset} has no test example for task "${task.name}"`);
  return examples;
}

function tokenizeTask(tokenizer: Tokenizer, task: GenerationTask, examples: readonly Example[]) {
  return examples.map((e) => tokenizeExample(tokenizer, e, { format: task.datasetFormat, sourceMaxLen: task.sourceMaxLen, targetMaxLen: task.targetMaxLen }));
}

/**
 * Token- and sequence-level calibration on the test targets, and temperature scaling fitted
 * on the first maxTestExamples of the eval split (when it has any).
 */
function generationCalibration(model: LlamaModel, tokenizer: Tokenizer, task: GenerationTask, examples: readonly Example[]): Record<string, number> {
  const padId = tokenizer.padId ?? tokenizer.eosId ?? 0;
  const held = readDataset(task.dataset).eval.slice(0, task.maxTestExamples);
  const fit = held.length > 0 ? fitTokenTemperature(model, tokenizeTask(tokenizer, task, held), { padId }) : null;
  const u = teacherForcedUncertainty(model, tokenizeTask(tokenizer, task, examples), { padId, ...(fit ? { temperature: fit.temperature } : {}) });
  const out: Record<string, number> = { ...uncertaintyScores(u.token, "token_"), seq_nll: u.sequence.nll, seq_rmi: u.sequence.rmi };
  if (fit && u.scaled) Object.assign(out, { temperature: fit.temperature, token_nll_ts: u.scaled.nll, token_ece_ts: u.scaled.ece });
  return out;
}

function evalLoss(model: LlamaModel, tokenizer: Tokenizer, task: GenerationTask, examples: readonly Example[]): number {
  const tokenized = tokenizeTask(tokenizer, task, examples);
  const padId = tokenizer.padId ?? tokenizer.eosId ?? 0;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < tokenized.length; i += 8) {
    const batch = collate(tokenized.slice(i, i + 8), padId);
    const r = model.forward(batch.ids, { labels: batch.labels });
    sum += r.lossSum;
    count += r.count;
    batch.ids.dispose();
    batch.labels.dispose();
  }
  return sum / count;
}

/** The scalar scores of computeMetrics' results, under STUDY_METRICS' names. */
function flattenMetrics(results: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(results)) {
    const r = value as Record<string, unknown>;
    if (name === "rouge") {
      for (const k of ["rouge1", "rouge2", "rougeL", "rougeLsum"]) if (typeof r[k] === "number") out[k] = r[k] as number;
    } else if (name === "sacrebleu") {
      out.sacrebleu = r.score as number;
    } else if (typeof r[name] === "number") {
      out[name] = r[name] as number;
    } else if (typeof r.sari === "number") {
      out[name] = r.sari as number;
    }
  }
  return out;
}

function textMetrics(task: GenerationTask, examples: readonly Example[], predictions: readonly string[]): Record<string, number> {
  const references = examples.map((e) => (Array.isArray(e.output) ? e.output : [e.output]));
  const normal = examples.map((e) => e.src_info?.normal_sentence);
  const simple = examples.map((e) => e.src_info?.simple_sentence);
  const studySari = normal.every((s) => typeof s === "string") && simple.every((s) => typeof s === "string");
  const results = computeMetrics(task.metrics, {
    predictions: [...predictions],
    references,
    sources: studySari ? (normal as string[]).map((s) => s.trim()) : examples.map((e) => e.input),
    sariReferences: studySari ? (simple as string[]).map((s) => [s.trim()]) : null,
  });
  return flattenMetrics(results);
}

/** Predictions by generate() with the task's settings, the prompts as fine-tuning builds them. */
export const generatePredictions: Predictor = async (model, tokenizer, task, examples) =>
  predictExamples(model, tokenizer, examples, {
    format: task.datasetFormat,
    sourceMaxLen: task.sourceMaxLen,
    generation: { ...task.generation, eosTokenId: tokenizer.eosId, padTokenId: tokenizer.padId ?? tokenizer.eosId },
  }).map((p) => p.prediction);

/** The evaluator of a study's tasks and probes (see the module comment). */
export function studyEvaluator(options: StudyEvaluatorOptions): ScenarioEvaluator {
  const byName = new Map<string, GenerationTask | ProbeTask>([...options.tasks, ...options.probes].map((t) => [t.name, t]));
  const probeNames = new Set(options.probes.map((p) => p.name));
  const predictor = options.predictor ?? generatePredictions;
  const calibration = options.calibration ?? true;
  return {
    metrics: STUDY_METRICS,
    async evaluate(modelDir, tasks) {
      const model = loadPretrained(modelDir, { matmul: options.bf16 ? "bfloat16" : "float32" });
      try {
        const tokenizer = await loadTokenizer(modelDir);
        const scores: StageScores = {};
        for (const name of tasks) {
          const task = byName.get(name);
          if (!task) throw new GrowlmError("studyEvaluator", `no task or probe named "${name}"`);
          if (probeNames.has(name)) {
            const probe = task as ProbeTask;
            // The scorer's answers, kept with their members' log-likelihoods for calibration.
            const scorer = new ModelScorer(model, tokenizer, { batchSize: options.batchSize ?? 32 });
            const answers: ContinuationScore[] = [];
            const run = await runHarness({
              tasks: [probe.name],
              registry: { tasks: new Map([[probe.name, jsonlChoiceTask(probe.name)]]), groups: new Map() },
              dataDir: probe.dataDir,
              scorer: { loglikelihood: (requests) => { const r = scorer.loglikelihood(requests); answers.push(...r); return r; } },
              logSamples: calibration,
            });
            const entry = run.results.results[probe.name]!;
            scores[name] = { acc: entry["acc,none"] as number, acc_norm: entry["acc_norm,none"] as number };
            if (calibration) {
              let next = 0;
              const docs: ChoiceDocument[] = run.samples![probe.name]!.map((sample) => {
                const n = Object.keys(sample.arguments).length;
                next += n;
                return { scores: answers.slice(next - n, next), gold: sample.target as number };
              });
              Object.assign(scores[name], uncertaintyScores(multipleChoiceUncertainty(docs), ""));
            }
            continue;
          }
          const generation = task as GenerationTask;
          const examples = testExamples(generation);
          const row: Record<string, number> = { eval_loss: evalLoss(model, tokenizer, generation, examples) };
          if (calibration) Object.assign(row, generationCalibration(model, tokenizer, generation, examples));
          if (generation.metrics.length > 0) Object.assign(row, textMetrics(generation, examples, await predictor(model, tokenizer, generation, examples)));
          scores[name] = row;
        }
        return scores;
      } finally {
        model.dispose();
      }
    },
  };
}
