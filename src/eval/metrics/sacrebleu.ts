/**
 * sacreBLEU 2.6's BLEU: corpus BLEU (`sacrebleu.corpus_bleu`, `BLEU().corpus_score`) and
 * sentence BLEU (`sacrebleu.sentence_bleu`). Scale 0–100.
 *
 * Per segment: 13a tokens of the right-stripped (optionally lowercased) text; n-gram matches
 * clipped by the max count over the references; the reference length is the *closest*
 * reference length (the shorter one on a tie). Statistics are summed over the corpus, then
 * smoothed: `exp` (the default, NIST's: the k-th order without a match gets 100 / (2^k total)),
 * `floor`, `add-k` or `none`. `effectiveOrder` (on for sentence BLEU, off for corpus BLEU)
 * averages only over the orders that have any n-gram.
 */
import { GrowlmError } from "../../errors.js";
import { countNgrams, maxCountsInto, type NgramCounts } from "./ngrams.js";
import { applySacreTokenizer, pythonLower, pythonRstrip, pythonSplit, type SacreTokenizerName } from "./text.js";

/** sacreBLEU's smoothing methods. */
export type SmoothMethod = "none" | "floor" | "add-k" | "exp";

/** sacreBLEU's defaults for the methods that take a value. */
const SMOOTH_DEFAULTS: Record<SmoothMethod, number | null> = { none: null, floor: 0.1, "add-k": 1, exp: null };

/** Options of the sacreBLEU functions; defaults are sacreBLEU's. */
export interface SacreBleuOptions {
  /** Lowercase before tokenizing (default false). */
  lowercase?: boolean;
  /** `13a` (default) or `none` (split on whitespace only). */
  tokenize?: SacreTokenizerName;
  /** Default `exp`. */
  smoothMethod?: SmoothMethod;
  /** The value of `floor` (default 0.1) or `add-k` (default 1). */
  smoothValue?: number;
  /** Largest n-gram order (default 4). */
  maxNgramOrder?: number;
  /** Average only the orders with any n-gram (default false for corpus, true for sentence). */
  effectiveOrder?: boolean;
}

/**
 * A sacreBLEU score under the keys `evaluate.load("sacrebleu")` returns, plus sacreBLEU's
 * reproducibility signature.
 */
export interface SacreBleuResult {
  /** BLEU in [0, 100]. */
  score: number;
  /** Matched n-grams per order (after `add-k`'s additions, as sacreBLEU reports them). */
  counts: number[];
  /** Hypothesis n-grams per order. */
  totals: number[];
  /** Precision per order in [0, 100]. */
  precisions: number[];
  bp: number;
  sys_len: number;
  ref_len: number;
  /** e.g. `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0` (the version emulated). */
  signature: string;
}

/** The segment statistics sacreBLEU sums over a corpus. */
interface SegmentStatistics {
  sysLen: number;
  refLen: number;
  correct: number[];
  total: number[];
}

/** sacreBLEU's `my_log`: log, with log(0) = -9999999999. */
function myLog(x: number): number {
  return x === 0 ? -9999999999 : Math.log(x);
}

/**
 * sacreBLEU's `BLEU.compute_bleu`: the score from summed statistics. `correct` and `total`
 * are copied, not modified.
 */
export function bleuFromStatistics(
  correct: readonly number[],
  total: readonly number[],
  sysLen: number,
  refLen: number,
  options: Pick<SacreBleuOptions, "smoothMethod" | "smoothValue" | "effectiveOrder" | "maxNgramOrder"> = {},
): Omit<SacreBleuResult, "signature"> {
  const method = options.smoothMethod ?? "exp";
  const maxOrder = options.maxNgramOrder ?? 4;
  const value = options.smoothValue ?? SMOOTH_DEFAULTS[method] ?? 0;
  const counts = correct.slice(0, maxOrder);
  const totals = total.slice(0, maxOrder);
  if (counts.length !== maxOrder || totals.length !== maxOrder) {
    throw new GrowlmError("sacrebleu", `expected ${maxOrder} counts and totals but got ${correct.length} and ${total.length}`);
  }
  const bp = sysLen < refLen ? (sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0) : 1;
  const precisions = new Array<number>(maxOrder).fill(0);
  const base = { counts, totals, precisions, bp, sys_len: sysLen, ref_len: refLen };
  // sacreBLEU returns 0 early when no order has a match (its issue #141).
  if (!counts.some((c) => c !== 0)) return { score: 0, ...base };
  let smoothMteval = 1;
  let effOrder = maxOrder;
  for (let n = 1; n <= maxOrder; n++) {
    if (method === "add-k" && n > 1) {
      counts[n - 1]! += value;
      totals[n - 1]! += value;
    }
    if (totals[n - 1] === 0) break;
    if (options.effectiveOrder) effOrder = n;
    if (counts[n - 1] === 0) {
      if (method === "exp") {
        smoothMteval *= 2;
        precisions[n - 1] = 100 / (smoothMteval * totals[n - 1]!);
      } else if (method === "floor") {
        precisions[n - 1] = (100 * value) / totals[n - 1]!;
      }
    } else {
      precisions[n - 1] = (100 * counts[n - 1]!) / totals[n - 1]!;
    }
  }
  let logSum = 0;
  for (const p of precisions.slice(0, effOrder)) logSum += myLog(p);
  return { score: bp * Math.exp(logSum / effOrder), ...base };
}

/** sacreBLEU's closest reference length: smallest |hyp - ref|, the shorter ref on a tie. */
function closestRefLen(hypLen: number, refLens: readonly number[]): number {
  let closestDiff = -1;
  let closestLen = -1;
  for (const refLen of refLens) {
    const diff = Math.abs(hypLen - refLen);
    if (closestDiff === -1 || diff < closestDiff) {
      closestDiff = diff;
      closestLen = refLen;
    } else if (diff === closestDiff && refLen < closestLen) {
      closestLen = refLen;
    }
  }
  return closestLen;
}

function preprocess(sentence: string, options: SacreBleuOptions): string[] {
  const s = options.lowercase ? pythonLower(sentence) : sentence;
  return pythonSplit(applySacreTokenizer(options.tokenize ?? "13a", pythonRstrip(s)));
}

function segmentStatistics(hypothesis: string, references: readonly string[], maxOrder: number, options: SacreBleuOptions): SegmentStatistics {
  const refNgrams = Array.from({ length: maxOrder }, (): NgramCounts => new Map());
  const refLens: number[] = [];
  for (const ref of references) {
    const tokens = preprocess(ref, options);
    refLens.push(tokens.length);
    for (let n = 1; n <= maxOrder; n++) maxCountsInto(refNgrams[n - 1]!, countNgrams(tokens, n));
  }
  const hypTokens = preprocess(hypothesis, options);
  const correct = new Array<number>(maxOrder).fill(0);
  const total = new Array<number>(maxOrder).fill(0);
  for (let n = 1; n <= maxOrder; n++) {
    for (const [ngram, count] of countNgrams(hypTokens, n)) {
      total[n - 1]! += count;
      const refCount = refNgrams[n - 1]!.get(ngram);
      if (refCount !== undefined) correct[n - 1]! += Math.min(count, refCount);
    }
  }
  return { sysLen: hypTokens.length, refLen: closestRefLen(hypTokens.length, refLens), correct, total };
}

function signature(numRefs: number | "var", options: SacreBleuOptions, effectiveOrder: boolean): string {
  const method = options.smoothMethod ?? "exp";
  const value = options.smoothValue ?? SMOOTH_DEFAULTS[method];
  const smooth = value === null ? method : `${method}[${value.toFixed(2)}]`;
  const parts = [`nrefs:${numRefs}`, `case:${options.lowercase ? "lc" : "mixed"}`, `eff:${effectiveOrder ? "yes" : "no"}`, `tok:${options.tokenize ?? "13a"}`, `smooth:${smooth}`];
  return [...parts, "version:2.6.0"].join("|");
}

/**
 * Corpus BLEU of `hypotheses[i]` against its references `references[i]` (any number per
 * segment, at least one; an empty string is a reference of length 0, as in sacreBLEU 2.6,
 * where only `None` entries are skipped).
 */
export function corpusBleu(hypotheses: readonly string[], references: readonly (readonly string[])[], options: SacreBleuOptions = {}): SacreBleuResult {
  const maxOrder = options.maxNgramOrder ?? 4;
  if (!Number.isInteger(maxOrder) || maxOrder < 1) throw new GrowlmError("sacrebleu", `maxNgramOrder must be a positive integer but is ${maxOrder}`);
  if (hypotheses.length !== references.length) {
    throw new GrowlmError("sacrebleu", `${hypotheses.length} hypotheses but ${references.length} reference lists`);
  }
  const sysLenRef = { sys: 0, ref: 0 };
  const correct = new Array<number>(maxOrder).fill(0);
  const total = new Array<number>(maxOrder).fill(0);
  const refCounts = new Set<number>();
  hypotheses.forEach((hypothesis, i) => {
    const refs = references[i]!;
    if (refs.length === 0) throw new GrowlmError("sacrebleu", `hypothesis ${i} has no reference`);
    refCounts.add(refs.length);
    const stats = segmentStatistics(hypothesis, refs, maxOrder, options);
    sysLenRef.sys += stats.sysLen;
    sysLenRef.ref += stats.refLen;
    for (let n = 0; n < maxOrder; n++) {
      correct[n]! += stats.correct[n]!;
      total[n]! += stats.total[n]!;
    }
  });
  const effectiveOrder = options.effectiveOrder ?? false;
  const score = bleuFromStatistics(correct, total, sysLenRef.sys, sysLenRef.ref, { ...options, effectiveOrder });
  const numRefs = refCounts.size === 1 ? [...refCounts][0]! : "var";
  return { ...score, signature: signature(numRefs, options, effectiveOrder) };
}

/**
 * sacreBLEU's `sentence_bleu`: one hypothesis against its references, with effective order
 * on by default (so a short hypothesis is not zeroed by its missing higher orders).
 */
export function sentenceBleu(hypothesis: string, references: readonly string[], options: SacreBleuOptions = {}): SacreBleuResult {
  return corpusBleu([hypothesis], [references], { ...options, effectiveOrder: options.effectiveOrder ?? true });
}
