/**
 * sacreBLEU corpus and sentence BLEU: the expected scores of sacreBLEU's own test suite
 * (test_bleu.py, test_sentence_bleu.py; quoted with the precision they are published with)
 * and vectors derived by hand.
 */
import { describe, expect, test } from "vitest";

import { bleuFromStatistics, corpusBleu, sentenceBleu } from "../../../src/eval/metrics/sacrebleu.js";

/** sacreBLEU's test_bleu.py compares with EPSILON = 1e-8 (its values have 8-10 digits). */
const SACRE_CORPUS_EPS = 1e-6;
/** test_sentence_bleu.py quotes its values to 3-5 decimals and compares with 1e-3. */
const SACRE_SENTENCE_EPS = 1e-3;
/** Hand-derived values are exact up to float64 rounding. */
const TOL = 1e-12;

// sacreBLEU's README example: three segments, two reference streams.
const REFS_STREAMS = [
  ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
  ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
];
const HYPS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."];
const PER_SEGMENT = HYPS.map((_, i) => REFS_STREAMS.map((stream) => stream[i]!));

describe("corpusBleu", () => {
  test("sacreBLEU's README example and test_corpus_bleu cases", () => {
    const r = corpusBleu(HYPS, PER_SEGMENT);
    expect(Math.abs(r.score - 48.530827)).toBeLessThan(SACRE_CORPUS_EPS);
    expect(r.signature).toBe("nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
    expect(Math.abs(corpusBleu(HYPS, PER_SEGMENT, { tokenize: "none" }).score - 49.1919566)).toBeLessThan(SACRE_CORPUS_EPS);
    expect(Math.abs(corpusBleu(HYPS, PER_SEGMENT, { smoothMethod: "none" }).score - 48.530827)).toBeLessThan(SACRE_CORPUS_EPS);
    // empty hypotheses are scored, not removed
    expect(corpusBleu(["", "", ""], PER_SEGMENT).score).toBe(0);
  });

  test("raw_corpus_bleu cases (floor smoothing, no tokenization, effective order)", () => {
    const raw = (hyps: string[], refs: string[], smoothValue: number): number =>
      corpusBleu(hyps, hyps.map((_, i) => [refs[i]!]), { smoothMethod: "floor", smoothValue, tokenize: "none", effectiveOrder: true }).score / 100;
    expect(Math.abs(raw(["this is a test"], ["this is a test"], 0.01) - 1)).toBeLessThan(SACRE_CORPUS_EPS);
    expect(Math.abs(raw(["this is a fest"], ["this is a test"], 0.01) - 0.223606797749979)).toBeLessThan(SACRE_CORPUS_EPS);
    expect(Math.abs(raw(["test"], ["a test"], 0.01) - 0.3678794411714425)).toBeLessThan(SACRE_CORPUS_EPS);
    expect(Math.abs(raw(["a test"], ["a test"], 0.01) - 1)).toBeLessThan(SACRE_CORPUS_EPS);
    expect(Math.abs(raw(["a little test"], ["a test"], 0.01) - 0.03218297948685433)).toBeLessThan(SACRE_CORPUS_EPS);
    expect(Math.abs(raw(["am I am a character sequence"], ["I am a symbol string sequence a a"], 0.1) - 0.1555722182)).toBeLessThan(SACRE_CORPUS_EPS);
    // No match at any order: sacreBLEU >= 2.0 returns 0 early (its issue #141); the 0.0038 that
    // older versions' test_raw_bleu expects for this case predates that.
    expect(raw(["this is a test", "another test"], ["ref1", "ref2"], 0.01)).toBe(0);
  });

  test("statistics: counts and totals of sacreBLEU's test_statistics case", () => {
    const r = corpusBleu(["am I am a character sequence"], [["I am a symbol string sequence a a"]], { smoothMethod: "floor", smoothValue: 0.01, tokenize: "none", effectiveOrder: true });
    expect(r.counts).toEqual([4, 2, 1, 0]);
    expect(r.totals).toEqual([6, 5, 4, 3]);
  });

  test("hand-derived: the closest reference length, shorter on a tie", () => {
    // hyp 6 tokens; refs of 7 and 2 tokens -> closest is 7 (evaluate's "bleu" would take 2).
    // all precisions 100 -> score = 100 * exp(1 - 7/6)
    const r = corpusBleu(["the cat sat on the mat"], [["the cat sat on the mat today", "the cat"]]);
    expect(r.ref_len).toBe(7);
    expect(Math.abs(r.score - 100 * Math.exp(1 - 7 / 6))).toBeLessThan(TOL);
    // hyp 4 tokens, refs 3 and 5 tokens: a tie at distance 1 takes the shorter (3) -> bp = 1
    expect(corpusBleu(["a b c d"], [["a b c d e", "a b c"]]).ref_len).toBe(3);
  });

  test("hand-derived: exp smoothing, and a missing order without effective order", () => {
    // hyp "a b c" vs "a b c": totals [3, 2, 1, 0]. Corpus BLEU averages over all 4 orders and the
    // empty 4th order contributes log(0) -> 0; sentence BLEU (effective order) averages over 3 -> 100.
    expect(corpusBleu(["a b c"], [["a b c"]]).score).toBe(0);
    expect(sentenceBleu("a b c", ["a b c"]).score).toBeCloseTo(100, 10);
    // hyp "a b x y" vs "a b c d": correct [2, 1, 0, 0], totals [4, 3, 2, 1].
    // exp smoothing: p3 = 100 / (2 * 2), p4 = 100 / (4 * 1); score = exp(mean log [50, 33.3, 25, 25])
    const r = corpusBleu(["a b x y"], [["a b c d"]]);
    expect(r.precisions).toEqual([50, 100 / 3, 25, 25]);
    expect(Math.abs(r.score - Math.exp((Math.log(50) + Math.log(100 / 3) + 2 * Math.log(25)) / 4))).toBeLessThan(TOL);
  });

  test("lowercase, tokenize none, trailing whitespace and a variable number of references", () => {
    expect(corpusBleu(["The Cat sat on it"], [["the cat sat on it"]]).score).toBeLessThan(100);
    expect(corpusBleu(["The Cat sat on it"], [["the cat sat on it"]], { lowercase: true }).score).toBeCloseTo(100, 10);
    expect(corpusBleu(["the cat, the dog"], [["the cat , the dog"]]).score).toBeCloseTo(100, 10);
    expect(corpusBleu(["the cat, the dog"], [["the cat , the dog"]], { tokenize: "none" }).score).toBeLessThan(100);
    // sacreBLEU right-strips before 13a, so a final "-\n" is not a line join
    expect(corpusBleu(["well-\n"], [["well-"]], { effectiveOrder: true }).score).toBeCloseTo(100, 10);
    const v = corpusBleu(["a b c d", "e f g h"], [["a b c d"], ["x", "e f g h"]]);
    expect(v.score).toBeCloseTo(100, 10);
    expect(v.signature).toContain("nrefs:var");
    // an empty reference counts as a reference of length 0 (only None is skipped in 2.6)
    expect(corpusBleu(["a b c d"], [["a b c d", ""]]).ref_len).toBe(4);
  });
});

describe("sentenceBleu", () => {
  // sacreBLEU's test_sentence_bleu.py, example from its issue #98
  const REF = "producţia de zahăr brut se exprimă în zahăr alb;";
  const SYS = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;";
  const cases: [method: "exp" | "none" | "floor" | "add-k", value: number | undefined, tokenize: "13a" | "none", expected: number][] = [
    ["exp", undefined, "13a", 8.493],
    ["none", undefined, "13a", 0.0],
    ["floor", undefined, "13a", 4.51688],
    ["floor", 0.1, "13a", 4.51688],
    ["floor", 0.5, "13a", 10.1],
    ["add-k", undefined, "13a", 14.882],
    ["add-k", 1, "13a", 14.882],
    ["add-k", 2, "13a", 21.389],
    ["exp", undefined, "none", 7.347],
  ];
  test.each(cases)("smooth %s (%s), tokenize %s -> %f", (smoothMethod, smoothValue, tokenize, expected) => {
    const r = sentenceBleu(SYS, [REF], { smoothMethod, smoothValue, tokenize });
    expect(Math.abs(r.score - expected)).toBeLessThan(SACRE_SENTENCE_EPS);
    expect(r.signature).toContain("eff:yes");
  });

  test("no match at all scores 0 with every smoothing (issue #141)", () => {
    for (const smoothMethod of ["exp", "none", "floor", "add-k"] as const) {
      expect(sentenceBleu("this is a cat", ["okay thanks"], { smoothMethod }).score).toBe(0);
    }
  });
});

describe("bleuFromStatistics", () => {
  test("sacreBLEU's test_scoring and test_degenerate_statistics", () => {
    expect(Math.abs(bleuFromStatistics([9, 7, 5, 3], [10, 8, 6, 4], 11, 11, { smoothMethod: "none" }).score / 100 - 0.8375922397)).toBeLessThan(SACRE_CORPUS_EPS);
    const degenerate: [number[], number[], number, number, number][] = [
      [[0, 0, 0, 0], [4, 4, 2, 1], 0, 1, 0.0],
      [[0, 0, 0, 0], [10, 11, 12, 0], 14, 10, 0.0],
      [[0, 0, 0, 0], [0, 0, 0, 0], 0, 0, 0.0],
      [[6, 5, 4, 0], [6, 5, 4, 3], 6, 6, 0.0],
      [[0, 0, 0, 0], [0, 0, 0, 0], 0, 0, 0.1],
      [[0, 0, 0, 0], [0, 0, 0, 0], 1, 5, 0.01],
    ];
    for (const [correct, total, sys, ref, value] of degenerate) {
      expect(bleuFromStatistics(correct, total, sys, ref, { smoothMethod: "floor", smoothValue: value }).score).toBe(0);
    }
  });

  test("add-k reports its additions in counts, as sacreBLEU does", () => {
    const r = bleuFromStatistics([3, 1, 0, 0], [4, 3, 2, 1], 4, 4, { smoothMethod: "add-k" });
    expect(r.counts).toEqual([3, 2, 1, 1]);
    expect(r.totals).toEqual([4, 4, 3, 2]);
  });
});
