/**
 * SARI (Xu et al. 2016) in the two implementations people cite. They disagree a lot on the
 * same data (a copy of the source scores ~40 in one and ~6 in the other), so every result
 * says which it is.
 *
 * - {@link sari}: Hugging Face `evaluate.load("sari")`, the tensor2tensor port. Text is
 *   lowercased and 13a-tokenized, then split on single spaces (so "" is one empty token).
 *   Per sentence and order n = 1..4: keep F1 (precision averaged over kept n-grams, recall
 *   count-weighted — the "bug fix" of cocoxu/simplification#6), deletion *precision* only,
 *   addition F1 over sets; 0/0 counts as 1. SARI = mean over sentences, scale 0–100.
 * - {@link easseCorpusSari}: EASSE 0.2.4's `corpus_sari`. Same normalization but whitespace
 *   split; add/keep/delete counts are pooled over the corpus, 0/0 counts as 0, deletion uses
 *   F1, and (by default) F1 is taken per order and averaged. Scale 0–100.
 */
import { GrowlmError } from "../../errors.js";
import {
  addCountsInto,
  countNgrams,
  intersectCounts,
  scaleCounts,
  subtractCounts,
  totalCount,
  type NgramCounts,
} from "./ngrams.js";
import { applySacreTokenizer, pythonLower, pythonSplit, tokenize13a, type SacreTokenizerName } from "./text.js";

const NGRAM_ORDER = 4;

/** Names the implementation in every SARI result. */
export const HF_SARI_VARIANT = "evaluate sari (tensor2tensor): mean of sentence SARI, deletion precision, 0/0 = 1";
export const EASSE_SARI_VARIANT = "easse corpus_sari: counts pooled over the corpus, deletion F1, 0/0 = 0";

/** What `evaluate`'s "sari" returns, plus which SARI it is. */
export interface SariResult {
  /** Mean sentence SARI in [0, 100]. */
  sari: number;
  variant: typeof HF_SARI_VARIANT;
}

/** The three operation scores of one sentence (each in [0, 1]). */
interface SariOperations {
  keep: number;
  del: number;
  add: number;
}

function setOf(counts: NgramCounts): Set<string> {
  return new Set(counts.keys());
}

/** tensor2tensor's `SARIngram` as evaluate ports it: keep F1, deletion precision, add F1. */
function sariNgram(sgrams: readonly string[], cgrams: readonly string[], rgramsList: readonly (readonly string[])[], numref: number): SariOperations {
  const rgramCounter: NgramCounts = new Map();
  for (const rgrams of rgramsList) addCountsInto(rgramCounter, countNgrams(rgrams, 1));
  const sgramCounter = countNgrams(sgrams, 1);
  const cgramCounter = countNgrams(cgrams, 1);
  const sRep = scaleCounts(sgramCounter, numref);
  const cRep = scaleCounts(cgramCounter, numref);

  const keepRep = intersectCounts(sRep, cRep);
  const keepGood = intersectCounts(keepRep, rgramCounter);
  const keepAll = intersectCounts(sRep, rgramCounter);
  let keepTmp1 = 0;
  let keepTmp2 = 0;
  for (const [gram, good] of keepGood) {
    keepTmp1 += good / keepRep.get(gram)!;
    keepTmp2 += good;
  }
  const keepPrecision = keepRep.size > 0 ? keepTmp1 / keepRep.size : 1;
  const keepRecall = keepAll.size > 0 ? keepTmp2 / totalCount(keepAll) : 1;
  const keep = keepPrecision > 0 || keepRecall > 0 ? (2 * keepPrecision * keepRecall) / (keepPrecision + keepRecall) : 0;

  const delRep = subtractCounts(sRep, cRep);
  const delGood = subtractCounts(delRep, rgramCounter);
  let delTmp1 = 0;
  for (const [gram, good] of delGood) delTmp1 += good / delRep.get(gram)!;
  const del = delRep.size > 0 ? delTmp1 / delRep.size : 1;

  const sSet = setOf(sgramCounter);
  const rSet = setOf(rgramCounter);
  const added = [...setOf(cgramCounter)].filter((g) => !sSet.has(g));
  const addGood = added.filter((g) => rSet.has(g)).length;
  const addAll = [...rSet].filter((g) => !sSet.has(g)).length;
  const addPrecision = added.length > 0 ? addGood / added.length : 1;
  const addRecall = addAll > 0 ? addGood / addAll : 1;
  const add = addPrecision > 0 || addRecall > 0 ? (2 * addPrecision * addRecall) / (addPrecision + addRecall) : 0;
  return { keep, del, add };
}

/** The space-joined n-grams of orders 1..4, as HF SARI builds them (order 1 = the tokens). */
function spaceJoinedNgrams(tokens: readonly string[]): string[][] {
  const out: string[][] = [tokens.slice()];
  for (let n = 2; n <= NGRAM_ORDER; n++) {
    const grams: string[] = [];
    for (let i = 0; i + n <= tokens.length; i++) grams.push(tokens.slice(i, i + n).join(" "));
    out.push(grams);
  }
  return out;
}

/**
 * tensor2tensor/evaluate `SARIsent` on already normalized sentences: the mean over orders
 * 1..4 of keep F1, deletion precision and add F1, averaged; in [0, 1].
 */
export function sariSentenceNormalized(source: string, prediction: string, references: readonly string[]): number {
  const s = spaceJoinedNgrams(source.split(" "));
  const c = spaceJoinedNgrams(prediction.split(" "));
  const r = references.map((ref) => spaceJoinedNgrams(ref.split(" ")));
  let keep = 0;
  let del = 0;
  let add = 0;
  for (let n = 0; n < NGRAM_ORDER; n++) {
    const ops = sariNgram(s[n]!, c[n]!, r.map((grams) => grams[n]!), references.length);
    keep += ops.keep;
    del += ops.del;
    add += ops.add;
  }
  return (keep / NGRAM_ORDER + del / NGRAM_ORDER + add / NGRAM_ORDER) / 3;
}

/** evaluate's SARI normalization: lowercase, then sacrebleu's 13a tokenizer (space-joined). */
export function normalizeForSari(sentence: string): string {
  return tokenize13a(pythonLower(sentence));
}

function checkLengths(op: string, sources: readonly string[], predictions: readonly string[], references: readonly (readonly string[])[]): void {
  if (!(sources.length === predictions.length && predictions.length === references.length)) {
    throw new GrowlmError(op, `${sources.length} sources, ${predictions.length} predictions and ${references.length} reference lists: the counts must match`);
  }
  if (predictions.length === 0) throw new GrowlmError(op, "no predictions to score");
  references.forEach((refs, i) => {
    if (refs.length === 0) throw new GrowlmError(op, `prediction ${i} has no reference`);
  });
}

/** evaluate's "sari": 100 × the mean sentence SARI of `predictions` given their sources. */
export function sari(sources: readonly string[], predictions: readonly string[], references: readonly (readonly string[])[]): SariResult {
  checkLengths("sari", sources, predictions, references);
  let total = 0;
  predictions.forEach((prediction, i) => {
    total += sariSentenceNormalized(normalizeForSari(sources[i]!), normalizeForSari(prediction), references[i]!.map(normalizeForSari));
  });
  return { sari: (100 * total) / predictions.length, variant: HF_SARI_VARIANT };
}

/** Options of {@link easseCorpusSari}; defaults are EASSE's. */
export interface EasseSariOptions {
  /** Lowercase before tokenizing (default true; forced off by `legacy`). */
  lowercase?: boolean;
  /** `13a` (default) or `none`. */
  tokenizer?: SacreTokenizerName;
  /**
   * Reproduce the original JAVA implementation's bug: sources are not normalized (nor
   * lowercased), only predictions and references (default false).
   */
  legacy?: boolean;
  /** Deletion scored by F1 (default true) rather than precision. */
  useF1ForDeletion?: boolean;
  /** Average P and R over orders first, then F1 (the paper's equations); default false. */
  usePaperVersion?: boolean;
}

/** EASSE's corpus SARI and its three operation scores, each in [0, 100]. */
export interface EasseSariResult {
  sari: number;
  add: number;
  keep: number;
  del: number;
  variant: typeof EASSE_SARI_VARIANT;
}

/** Pooled counts of one operation: [correct, system total, reference total] per order. */
interface OperationCounts {
  correct: number[];
  sys: number[];
  ref: number[];
}

function zeroCounts(): OperationCounts {
  return { correct: new Array<number>(NGRAM_ORDER).fill(0), sys: new Array<number>(NGRAM_ORDER).fill(0), ref: new Array<number>(NGRAM_ORDER).fill(0) };
}

function easseNgrams(line: string): NgramCounts[] {
  const tokens = pythonSplit(line);
  return Array.from({ length: NGRAM_ORDER }, (_, n) => countNgrams(tokens, n + 1));
}

function precisionRecall(correct: number, sys: number, ref: number): [number, number] {
  return [sys > 0 ? correct / sys : 0, ref > 0 ? correct / ref : 0];
}

function f1(precision: number, recall: number): number {
  return precision > 0 || recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

/**
 * EASSE's `corpus_sari`. Every prediction needs the same number of references (EASSE lays
 * them out as (n_references, n_samples)).
 */
export function easseCorpusSari(
  sources: readonly string[],
  predictions: readonly string[],
  references: readonly (readonly string[])[],
  options: EasseSariOptions = {},
): EasseSariResult {
  checkLengths("easse_sari", sources, predictions, references);
  const numRefs = references[0]!.length;
  references.forEach((refs, i) => {
    if (refs.length !== numRefs) {
      throw new GrowlmError(
        "easse_sari",
        `prediction ${i} has ${refs.length} references but prediction 0 has ${numRefs}: EASSE's corpus_sari needs the same number for every prediction`,
      );
    }
  });
  const legacy = options.legacy ?? false;
  const lowercase = legacy ? false : (options.lowercase ?? true);
  const tokenizer = options.tokenizer ?? "13a";
  const normalize = (s: string): string => applySacreTokenizer(tokenizer, lowercase ? pythonLower(s) : s);

  const add = zeroCounts();
  const keep = zeroCounts();
  const del = zeroCounts();
  predictions.forEach((prediction, i) => {
    const orig = easseNgrams(legacy ? sources[i]! : normalize(sources[i]!));
    const sys = easseNgrams(normalize(prediction));
    const refs = Array.from({ length: NGRAM_ORDER }, (): NgramCounts => new Map());
    for (const ref of references[i]!) easseNgrams(normalize(ref)).forEach((counts, n) => addCountsInto(refs[n]!, counts));
    for (let n = 0; n < NGRAM_ORDER; n++) {
      const origSet = setOf(orig[n]!);
      const refSet = setOf(refs[n]!);
      const sysNotOrig = [...sys[n]!.keys()].filter((g) => !origSet.has(g));
      add.sys[n]! += sysNotOrig.length;
      add.ref[n]! += [...refSet].filter((g) => !origSet.has(g)).length;
      add.correct[n]! += sysNotOrig.filter((g) => refSet.has(g)).length;

      const origRep = scaleCounts(orig[n]!, numRefs);
      const sysRep = scaleCounts(sys[n]!, numRefs);
      const origAndSys = intersectCounts(origRep, sysRep);
      const origAndRef = intersectCounts(origRep, refs[n]!);
      keep.sys[n]! += totalCount(origAndSys);
      keep.ref[n]! += totalCount(origAndRef);
      keep.correct[n]! += totalCount(intersectCounts(origAndSys, origAndRef));

      const origNotSys = subtractCounts(origRep, sysRep);
      const origNotRef = subtractCounts(origRep, refs[n]!);
      del.sys[n]! += totalCount(origNotSys);
      del.ref[n]! += totalCount(origNotRef);
      del.correct[n]! += totalCount(intersectCounts(origNotSys, origNotRef));
    }
  });

  const useF1ForDeletion = options.useF1ForDeletion ?? true;
  let addScore = 0;
  let keepScore = 0;
  let delScore = 0;
  if (options.usePaperVersion) {
    // compute_micro_sari: average precision and recall over the orders, then one F1.
    const averaged = (counts: OperationCounts): [number, number] => {
      let p = 0;
      let r = 0;
      for (let n = 0; n < NGRAM_ORDER; n++) {
        const [pn, rn] = precisionRecall(counts.correct[n]!, counts.sys[n]!, counts.ref[n]!);
        p += pn;
        r += rn;
      }
      return [p / NGRAM_ORDER, r / NGRAM_ORDER];
    };
    addScore = f1(...averaged(add));
    keepScore = f1(...averaged(keep));
    const [delP, delR] = averaged(del);
    delScore = useF1ForDeletion ? f1(delP, delR) : delP;
  } else {
    // compute_macro_sari: F1 per order, averaged.
    for (let n = 0; n < NGRAM_ORDER; n++) {
      const [addP, addR] = precisionRecall(add.correct[n]!, add.sys[n]!, add.ref[n]!);
      const [keepP, keepR] = precisionRecall(keep.correct[n]!, keep.sys[n]!, keep.ref[n]!);
      const [delP, delR] = precisionRecall(del.correct[n]!, del.sys[n]!, del.ref[n]!);
      addScore += f1(addP, addR) / NGRAM_ORDER;
      keepScore += f1(keepP, keepR) / NGRAM_ORDER;
      delScore += (useF1ForDeletion ? f1(delP, delR) : delP) / NGRAM_ORDER;
    }
  }
  const a = 100 * addScore;
  const k = 100 * keepScore;
  const d = 100 * delScore;
  return { sari: (a + k + d) / 3, add: a, keep: k, del: d, variant: EASSE_SARI_VARIANT };
}
