/**
 * Uncertainty of a model's predictions on data (calibration.ts has the measures and their
 * formulas), for the two kinds of evaluation a study runs:
 *
 * - Multiple choice (lm-evaluation-harness style): member m's choice distribution is the
 *   softmax over the choices of its log-likelihoods ℓ_{m,c} (ContinuationScore.memberLogprobs;
 *   a plain model has one member, ℓ = logprob), and the measures are taken on their average.
 * - Teacher-forced sequences (generation tasks, on the reference targets): token level, every
 *   target token is a prediction over the vocabulary from the members' logits; sequence level,
 *   each target's members' log-likelihoods give NLL_seq and the RMI estimate, both divided by
 *   the target's length (nats per token), averaged over targets.
 *
 * Temperature scaling: fitTokenTemperature fits T on held-out targets (an eval split), and
 * teacherForcedUncertainty reports the measures at T beside the raw ones.
 */
import { collate, type TokenizedExample } from "../data/collator.js";
import { GrowlmError } from "../errors.js";
import type { LlamaModel } from "../model/llama.js";
import type { ContinuationScore } from "../model/score.js";
import { type TemperatureFit, TemperatureData, UncertaintyAccumulator, type UncertaintySummary, ECE_BINS, sequenceUncertainty, softmax } from "./calibration.js";

/** One multiple-choice document: the scores of its choices (in order) and the gold choice. */
export interface ChoiceDocument {
  scores: readonly ContinuationScore[];
  gold: number;
}

/** Each member's log-likelihood of each choice: [members][choices]. */
function memberChoiceLogprobs(doc: ChoiceDocument, where: number): number[][] {
  const K = doc.scores[0]?.memberLogprobs?.length ?? 1;
  return Array.from({ length: K }, (_, m) =>
    doc.scores.map((s, c) => {
      const ll = s.memberLogprobs ? s.memberLogprobs[m] : m === 0 ? s.logprob : undefined;
      if (ll === undefined) throw new GrowlmError("multipleChoiceUncertainty", `document ${where}: choice ${c} has no log-likelihood for member ${m}`);
      return ll;
    }),
  );
}

/**
 * The measures of multiple-choice documents, each member's choice distribution
 * softmax_c(ℓ_{m,c} / T).
 */
export function multipleChoiceUncertainty(docs: readonly ChoiceDocument[], temperature = 1, nBins = ECE_BINS): UncertaintySummary {
  const acc = new UncertaintyAccumulator(nBins);
  docs.forEach((doc, d) => {
    const members = memberChoiceLogprobs(doc, d);
    if (!Number.isSafeInteger(doc.gold) || doc.gold < 0 || doc.gold >= doc.scores.length) {
      throw new GrowlmError("multipleChoiceUncertainty", `document ${d}: gold ${doc.gold} is not one of its ${doc.scores.length} choices`);
    }
    const probs = new Float64Array(members.length * doc.scores.length);
    members.forEach((ll, m) => probs.set(softmax(ll, temperature), m * doc.scores.length));
    acc.addProbabilities(probs, members.length, doc.gold);
  });
  return acc.summary();
}

/** Multiple-choice documents as temperature-scaling data (member choice log-likelihoods as logits). */
export function choiceTemperatureData(docs: readonly ChoiceDocument[]): TemperatureData {
  const data = new TemperatureData();
  docs.forEach((doc, d) => {
    const members = memberChoiceLogprobs(doc, d);
    data.add(members.flat(), members.length, doc.gold);
  });
  return data;
}

export interface TeacherForcedOptions {
  /** The pad id of the batches (ignored positions). */
  padId: number;
  /** Examples per forward (default 8). */
  batchSize?: number;
  /** Also summarise at this temperature (temperature scaling). */
  temperature?: number;
}

export interface SequenceSummary {
  /** Targets summarised. */
  count: number;
  /** Mean over targets of −log p̄(y) / |y| (p̄: the members' averaged sequence probability). */
  nll: number;
  /** Mean over targets of RMI / |y| (knowledge uncertainty, 0 for one member). */
  rmi: number;
}

export interface TeacherForcedUncertainty {
  token: UncertaintySummary;
  /** The token-level measures at options.temperature (absent without one). */
  scaled?: UncertaintySummary;
  sequence: SequenceSummary;
}

/**
 * Runs `examples` teacher-forced through `model` and calls `visit` with each counted target
 * token's member logits (K × V, a view valid during the call), the token, and its example.
 */
function forEachTargetToken(
  model: LlamaModel,
  examples: readonly TokenizedExample[],
  padId: number,
  batchSize: number,
  visit: (memberLogits: Float32Array, members: number, target: number, example: number) => void,
): void {
  const V = model.config.vocab_size;
  for (let start = 0; start < examples.length; start += batchSize) {
    const chunk = examples.slice(start, start + batchSize);
    const batch = collate(chunk, padId);
    const [B, T] = batch.ids.shape as [number, number];
    const { logits, members: K } = model.forward(batch.ids, { returnLogits: true, sampleKeys: chunk.map((_, i) => start + i) });
    const data = logits!.data as Float32Array;
    const labels = batch.labels.data as Int32Array;
    const row = new Float32Array(K * V);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t + 1 < T; t++) {
        const target = labels[b * T + t + 1]!;
        if (target === -100) continue;
        for (let k = 0; k < K; k++) row.set(data.subarray(((b * K + k) * T + t) * V, ((b * K + k) * T + t + 1) * V), k * V);
        visit(row, K, target, start + b);
      }
    }
    logits!.dispose();
    batch.ids.dispose();
    batch.labels.dispose();
  }
}

/** log softmax(z_m / 1)_y of each member. */
function memberTargetLogprobs(memberLogits: Float32Array, K: number, target: number): number[] {
  const V = memberLogits.length / K;
  return Array.from({ length: K }, (_, k) => {
    const z = memberLogits.subarray(k * V, (k + 1) * V);
    let max = -Infinity;
    for (const v of z) max = Math.max(max, v);
    let sum = 0;
    for (const v of z) sum += Math.exp(v - max);
    return z[target]! - max - Math.log(sum);
  });
}

/** Token- and sequence-level uncertainty of the model on the examples' targets (see the module comment). */
export function teacherForcedUncertainty(model: LlamaModel, examples: readonly TokenizedExample[], options: TeacherForcedOptions): TeacherForcedUncertainty {
  const token = new UncertaintyAccumulator();
  const temperature = options.temperature;
  const scaled = temperature !== undefined ? new UncertaintyAccumulator() : null;
  const sequenceLogprobs: (number[] | null)[] = examples.map(() => null);
  const lengths = examples.map(() => 0);
  forEachTargetToken(model, examples, options.padId, options.batchSize ?? 8, (logits, K, target, example) => {
    token.addLogits(logits, K, target);
    scaled?.addLogits(logits, K, target, temperature);
    const lp = memberTargetLogprobs(logits, K, target);
    const acc = (sequenceLogprobs[example] ??= new Array<number>(K).fill(0));
    lp.forEach((v, k) => (acc[k] = acc[k]! + v));
    lengths[example] = lengths[example]! + 1;
  });
  let nll = 0;
  let rmi = 0;
  let count = 0;
  sequenceLogprobs.forEach((lp, i) => {
    if (!lp) return;
    const s = sequenceUncertainty(lp, lengths[i]!);
    nll += s.nllPerToken;
    rmi += s.rmi / lengths[i]!;
    count++;
  });
  const result: TeacherForcedUncertainty = {
    token: token.summary(),
    sequence: { count, nll: count === 0 ? Number.NaN : nll / count, rmi: count === 0 ? Number.NaN : rmi / count },
  };
  if (scaled) result.scaled = scaled.summary();
  return result;
}

/** Held-out logits kept for temperature scaling at most (floats; 2^25 = 128 MiB). */
export const MAX_TEMPERATURE_VALUES = 2 ** 25;

/**
 * Temperature scaling on held-out targets: keeps the member logits of their target tokens (up
 * to `maxValues` floats: the first tokens, in example order) and fits T (calibration.ts).
 */
export function fitTokenTemperature(model: LlamaModel, examples: readonly TokenizedExample[], options: { padId: number; batchSize?: number; maxValues?: number }): TemperatureFit & { tokens: number } {
  const data = new TemperatureData();
  const budget = options.maxValues ?? MAX_TEMPERATURE_VALUES;
  let used = 0;
  forEachTargetToken(model, examples, options.padId, options.batchSize ?? 8, (logits, K, target) => {
    if (used + logits.length > budget) return;
    used += logits.length;
    data.add(logits, K, target);
  });
  return { ...data.fit(), tokens: data.count };
}
