/**
 * ROUGE as Google's rouge_score 0.1.2 computes it, aggregated as Hugging Face
 * `evaluate.load("rouge")` does. Scale 0–1.
 *
 * Tokens: lowercase, every run of characters outside [a-z0-9] becomes a separator (so
 * accented letters, apostrophes and CJK split words or vanish: "café" -> "caf"), then, with
 * the stemmer, NLTK's Porter stem of each token longer than 3 characters.
 * rougeN: clipped n-gram overlap. rougeL: token LCS. rougeLsum: summary-level union LCS over
 * sentences separated by "\n" only (evaluate never asks rouge_score to split sentences).
 * Several references: per ROUGE type, the reference with the highest F (first on a tie).
 * Aggregation: the mean of the per-example F-measures — evaluate reports the median of 1000
 * unseeded bootstrap means, which only approximates this mean and differs run to run.
 */
import { GrowlmError } from "../../errors.js";
import { countNgrams, type NgramCounts } from "./ngrams.js";
import { porterStem } from "./porter.js";
import { pythonLower } from "./text.js";

/** Precision, recall and F1 in [0, 1], as rouge_score's `Score`. */
export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

/** The ROUGE types evaluate computes by default. */
export const DEFAULT_ROUGE_TYPES: readonly string[] = ["rouge1", "rouge2", "rougeL", "rougeLsum"];

const ROUGE_N = /^rouge([0-9])$/;

/** Options of {@link rouge}. */
export interface RougeOptions {
  /** Default rouge1, rouge2, rougeL, rougeLsum; rougeN for N in 1..9 also works. */
  rougeTypes?: readonly string[];
  /** Porter-stem tokens longer than 3 characters (default false). */
  useStemmer?: boolean;
}

/** rouge_score's tokenizer (`tokenize.tokenize`). */
export function rougeTokenize(text: string, useStemmer = false): string[] {
  const words = pythonLower(text).replace(/[^a-z0-9]+/g, " ").split(" ");
  const out: string[] = [];
  for (const word of words) {
    const token = useStemmer && word.length > 3 ? porterStem(word) : word;
    if (/^[a-z0-9]+$/.test(token)) out.push(token);
  }
  return out;
}

function fmeasure(precision: number, recall: number): number {
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

function scoreNgrams(target: NgramCounts, prediction: NgramCounts): RougeScore {
  let overlap = 0;
  let targetCount = 0;
  let predictionCount = 0;
  for (const [ngram, count] of target) {
    overlap += Math.min(count, prediction.get(ngram) ?? 0);
    targetCount += count;
  }
  for (const count of prediction.values()) predictionCount += count;
  const precision = overlap / Math.max(predictionCount, 1);
  const recall = overlap / Math.max(targetCount, 1);
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** The LCS length table `t[i][j]` of `ref[0..i)` and `can[0..j)`, flattened row-major. */
function lcsTable(ref: readonly string[], can: readonly string[]): Int32Array {
  const cols = can.length + 1;
  const t = new Int32Array((ref.length + 1) * cols);
  for (let i = 1; i <= ref.length; i++) {
    for (let j = 1; j <= can.length; j++) {
      t[i * cols + j] = ref[i - 1] === can[j - 1] ? t[(i - 1) * cols + j - 1]! + 1 : Math.max(t[(i - 1) * cols + j]!, t[i * cols + j - 1]!);
    }
  }
  return t;
}

function scoreLcs(target: readonly string[], prediction: readonly string[]): RougeScore {
  if (target.length === 0 || prediction.length === 0) return { precision: 0, recall: 0, fmeasure: 0 };
  const lcs = lcsTable(target, prediction)[target.length * (prediction.length + 1) + prediction.length]!;
  const precision = lcs / prediction.length;
  const recall = lcs / target.length;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/**
 * Indices into `ref` of one LCS with `can`, read back the way rouge_score does: a match
 * moves diagonally; otherwise move left only if that cell is strictly larger than the one above.
 */
function lcsIndices(ref: readonly string[], can: readonly string[]): number[] {
  const t = lcsTable(ref, can);
  const cols = can.length + 1;
  const out: number[] = [];
  let i = ref.length;
  let j = can.length;
  while (i > 0 && j > 0) {
    if (ref[i - 1] === can[j - 1]) {
      out.push(i - 1);
      i--;
      j--;
    } else if (t[i * cols + j - 1]! > t[(i - 1) * cols + j]!) {
      j--;
    } else {
      i--;
    }
  }
  return out.reverse();
}

function countTokens(sentences: readonly (readonly string[])[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const s of sentences) for (const token of s) counts.set(token, (counts.get(token) ?? 0) + 1);
  return counts;
}

/** rouge_score's `_summary_level_lcs` (ROUGE paper §3.2, with ROUGE-1.5.5's no-double-count). */
function summaryLevelLcs(refSentences: readonly (readonly string[])[], canSentences: readonly (readonly string[])[]): RougeScore {
  const zero = { precision: 0, recall: 0, fmeasure: 0 };
  if (refSentences.length === 0 || canSentences.length === 0) return zero;
  const m = refSentences.reduce((sum, s) => sum + s.length, 0);
  const n = canSentences.reduce((sum, s) => sum + s.length, 0);
  if (m === 0 || n === 0) return zero;
  const refCounts = countTokens(refSentences);
  const canCounts = countTokens(canSentences);
  let hits = 0;
  for (const r of refSentences) {
    const union = new Set<number>();
    for (const c of canSentences) for (const index of lcsIndices(r, c)) union.add(index);
    for (const index of [...union].sort((a, b) => a - b)) {
      const token = r[index]!;
      if ((canCounts.get(token) ?? 0) > 0 && (refCounts.get(token) ?? 0) > 0) {
        hits++;
        canCounts.set(token, canCounts.get(token)! - 1);
        refCounts.set(token, refCounts.get(token)! - 1);
      }
    }
  }
  const recall = hits / m;
  const precision = hits / n;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

function checkRougeTypes(rougeTypes: readonly string[]): void {
  for (const type of rougeTypes) {
    const n = ROUGE_N.exec(type);
    if (type !== "rougeL" && type !== "rougeLsum" && (n === null || n[1] === "0")) {
      throw new GrowlmError("rouge", `invalid ROUGE type ${JSON.stringify(type)}: expected rouge1..rouge9, rougeL or rougeLsum`);
    }
  }
}

/** rouge_score's `RougeScorer.score(target, prediction)`: one Score per ROUGE type. */
export function rougeScore(target: string, prediction: string, options: RougeOptions = {}): Record<string, RougeScore> {
  const types = options.rougeTypes ?? DEFAULT_ROUGE_TYPES;
  checkRougeTypes(types);
  const stem = options.useStemmer ?? false;
  const targetTokens = rougeTokenize(target, stem);
  const predictionTokens = rougeTokenize(prediction, stem);
  const result: Record<string, RougeScore> = {};
  for (const type of types) {
    if (type === "rougeL") {
      result[type] = scoreLcs(targetTokens, predictionTokens);
    } else if (type === "rougeLsum") {
      const sentences = (text: string): string[][] =>
        text
          .split("\n")
          .filter((s) => s.length > 0)
          .map((s) => rougeTokenize(s, stem));
      result[type] = summaryLevelLcs(sentences(target), sentences(prediction));
    } else {
      const n = Number(type.slice(5));
      result[type] = scoreNgrams(countNgrams(targetTokens, n), countNgrams(predictionTokens, n));
    }
  }
  return result;
}

/** rouge_score's `score_multi`: per type, the Score of the reference with the highest F. */
export function rougeScoreMulti(targets: readonly string[], prediction: string, options: RougeOptions = {}): Record<string, RougeScore> {
  if (targets.length === 0) throw new GrowlmError("rouge", "a prediction needs at least one reference");
  const scores = targets.map((t) => rougeScore(t, prediction, options));
  const best: Record<string, RougeScore> = {};
  for (const type of options.rougeTypes ?? DEFAULT_ROUGE_TYPES) {
    let bestIndex = 0;
    scores.forEach((s, i) => {
      if (s[type]!.fmeasure > scores[bestIndex]![type]!.fmeasure) bestIndex = i;
    });
    best[type] = scores[bestIndex]![type]!;
  }
  return best;
}

/**
 * Per-example ROUGE F-measures: `perExample[type][i]` is prediction i's F against its best
 * reference (evaluate's `use_aggregator=False` output).
 */
export function rougePerExample(predictions: readonly string[], references: readonly (readonly string[])[], options: RougeOptions = {}): Record<string, number[]> {
  if (predictions.length !== references.length) {
    throw new GrowlmError("rouge", `${predictions.length} predictions but ${references.length} reference lists`);
  }
  const types = options.rougeTypes ?? DEFAULT_ROUGE_TYPES;
  checkRougeTypes(types);
  const out: Record<string, number[]> = Object.fromEntries(types.map((t) => [t, [] as number[]]));
  predictions.forEach((prediction, i) => {
    const scores = rougeScoreMulti(references[i]!, prediction, options);
    for (const type of types) out[type]!.push(scores[type]!.fmeasure);
  });
  return out;
}

/**
 * evaluate's "rouge" with `use_aggregator=True`: the mean F-measure of each type over the
 * examples (keys rouge1, rouge2, rougeL, rougeLsum by default).
 */
export function rouge(predictions: readonly string[], references: readonly (readonly string[])[], options: RougeOptions = {}): Record<string, number> {
  if (predictions.length === 0) throw new GrowlmError("rouge", "no predictions to score");
  const perExample = rougePerExample(predictions, references, options);
  const out: Record<string, number> = {};
  for (const [type, values] of Object.entries(perExample)) {
    let sum = 0;
    for (const v of values) sum += v;
    out[type] = sum / values.length;
  }
  return out;
}
