/**
 * BLEU as Hugging Face `evaluate.load("bleu")` computes it: tensorflow/nmt's `compute_bleu`
 * over 13a tokens. Scale 0–1.
 *
 * Differences from sacreBLEU that change the number (see sacrebleu.ts for that one): the
 * reference length of a segment is its *shortest* reference, not the closest; no smoothing by
 * default, so one order without a match makes the score 0; `smooth` is Lin & Och's add-one on
 * every order, unigrams included.
 */
import { GrowlmError } from "../../errors.js";
import { countNgrams, intersectCounts, maxCountsInto, type NgramCounts } from "./ngrams.js";
import { pythonSplit, tokenize13a } from "./text.js";

/** Options of {@link bleu}; the defaults are `evaluate`'s. */
export interface BleuOptions {
  /** Largest n-gram order (default 4). */
  maxOrder?: number;
  /** Lin & Och 2004 add-one smoothing of every order's precision (default false). */
  smooth?: boolean;
  /** Splits a sentence into tokens (default: 13a tokenization, then whitespace split). */
  tokenizer?: (text: string) => string[];
}

/** What `evaluate`'s "bleu" returns, under its key names. */
export interface BleuResult {
  /** Corpus BLEU in [0, 1]. */
  bleu: number;
  /** Modified n-gram precision of each order 1..maxOrder, in [0, 1]. */
  precisions: number[];
  brevity_penalty: number;
  /** translation_length / reference_length. */
  length_ratio: number;
  /** Total prediction tokens. */
  translation_length: number;
  /** Sum over segments of the shortest reference's token count. */
  reference_length: number;
}

/** The default tokenizer of `evaluate`'s "bleu": 13a, then split on whitespace. */
export function tokenizeBleu13a(text: string): string[] {
  return pythonSplit(tokenize13a(text));
}

/** All n-grams of orders 1..maxOrder of a token list, keyed with their order. */
function ngramsUpTo(tokens: readonly string[], maxOrder: number): NgramCounts[] {
  const byOrder: NgramCounts[] = [];
  for (let n = 1; n <= maxOrder; n++) byOrder.push(countNgrams(tokens, n));
  return byOrder;
}

/**
 * Corpus BLEU of `predictions[i]` against the references `references[i]` (one or more per
 * prediction), as `evaluate`'s "bleu" computes it.
 *
 * An empty corpus, or one whose predictions or shortest references have no tokens at all,
 * scores bleu = 0 with brevity_penalty = length_ratio = 0: recent `evaluate` returns that,
 * while tensorflow/nmt's original (and `evaluate` up to 0.4.6) raises ZeroDivisionError.
 */
export function bleu(predictions: readonly string[], references: readonly (readonly string[])[], options: BleuOptions = {}): BleuResult {
  const maxOrder = options.maxOrder ?? 4;
  const tokenizer = options.tokenizer ?? tokenizeBleu13a;
  if (!Number.isInteger(maxOrder) || maxOrder < 1) throw new GrowlmError("bleu", `maxOrder must be a positive integer but is ${maxOrder}`);
  if (predictions.length !== references.length) {
    throw new GrowlmError("bleu", `${predictions.length} predictions but ${references.length} reference lists`);
  }
  const matches = new Array<number>(maxOrder).fill(0);
  const possible = new Array<number>(maxOrder).fill(0);
  let referenceLength = 0;
  let translationLength = 0;
  predictions.forEach((prediction, i) => {
    const refs = references[i]!;
    if (refs.length === 0) throw new GrowlmError("bleu", `prediction ${i} has no reference`);
    const refTokens = refs.map(tokenizer);
    const predTokens = tokenizer(prediction);
    referenceLength += Math.min(...refTokens.map((r) => r.length));
    translationLength += predTokens.length;
    const merged = Array.from({ length: maxOrder }, (): NgramCounts => new Map());
    for (const r of refTokens) ngramsUpTo(r, maxOrder).forEach((counts, n) => maxCountsInto(merged[n]!, counts));
    ngramsUpTo(predTokens, maxOrder).forEach((counts, n) => {
      for (const m of intersectCounts(counts, merged[n]!).values()) matches[n]! += m;
      possible[n]! += Math.max(predTokens.length - n, 0);
    });
  });
  const precisions = matches.map((m, n) =>
    options.smooth ? (m + 1) / (possible[n]! + 1) : possible[n]! > 0 ? m / possible[n]! : 0,
  );
  let geoMean = 0;
  if (Math.min(...precisions) > 0) {
    let logSum = 0;
    for (const p of precisions) logSum += (1 / maxOrder) * Math.log(p);
    geoMean = Math.exp(logSum);
  }
  let ratio = 0;
  let bp = 0;
  if (referenceLength > 0 && translationLength > 0) {
    ratio = translationLength / referenceLength;
    bp = ratio > 1 ? 1 : Math.exp(1 - 1 / ratio);
  }
  return {
    bleu: geoMean * bp,
    precisions,
    brevity_penalty: bp,
    length_ratio: ratio,
    translation_length: translationLength,
    reference_length: referenceLength,
  };
}
