/**
 * ROUGE against rouge_score 0.1.2's own tests (rouge_scorer_test.py: its hand cases and its
 * ROUGE-1.5.5 "ground truth" on its testdata lines, 5 decimals), evaluate's docstring example,
 * and hand-derived edge cases.
 */
import { describe, expect, test } from "vitest";

import { rouge, rougePerExample, rougeScore, rougeScoreMulti, rougeTokenize } from "../../../src/eval/metrics/rouge.js";

/** rouge_scorer_test.py compares ROUGE-1.5.5's output with assertAlmostEqual(places=5). */
const ROUGE155_PLACES = 5;

// The first two lines of rouge_score's testdata/target.txt and prediction.txt (random tokens).
const TARGETS = [
  "ZfbCUIUuePaiLVUlCaUXxkpu XPeWing tUHfPMuZ',-Xd Y BrUgVJing M-HV.-DgdDaY.rFDJCRing Ht-LM EKBDXkME,yz'RBr q'wtion wIojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxer tKM L\n",
  "KsJdPByEtAor fE-Qg Dpdbring cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMtion psing sbKao Q m qiing LMmer HqqLFXe,XPY,J XsurkMer ,ed nB'wH'bWVHjWFEing tQ.saefZwJtKrTlixYpMMsJing UCAPwNHeYVjDing c T BUySKtion gMPfJpwGw p'NvxAoping eu pBwMBKV'I DNxqelhu,PHPxDEq,mtion SN\n",
];
const PREDICTIONS = [
  "rFDJCRtion Ht-LM EKtDXkME,yz'RBr q'wer wrojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxi\n",
  "n cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMer pstion sbKao Q m qier LMmed HqqLFXe,XPY,J XsurkMeo ,ed nB'wH'bWVHjWFEer tQ.saefZwJtKrTlixYpMMNJtion UCAPwNHeYVjD\n",
];
// testdata/pyrouge_files/target_multi.0.txt and prediction_multi.0.txt
const TARGET_MULTI = `${TARGETS[0]}${TARGETS[1]}NhETebUbBk'er WOvoHMTjSRizKgH'vHiing Xu,hWxfs VkNE QhgKiLHE -HidivzoM.dO anhtion jbLQiSGDTCsuhREebUaKM dv J dVN tmbOT
vMR HDm,xOAetion D,tion HJtodT.mHl UIv-p VjWH'BdyWjnfGU-OjT aEMdFICyLWfQMtion wEMfdOKing AwkeKbO 'DxqNOHBH qKtVvm OYJl mM
`;
const PREDICTION_MULTI = `${PREDICTIONS[0]}${PREDICTIONS[1]}xfs VkJE QhgKiLHE -HidivzoM.dO anhing jbLQiSGDTCsuhREebUaKM dv J
VjWH'BdyWjnfGU-OjTNaEMdFICyLWfQMing wEMfdOKijg AwkeKbO 'DxqNO
`;

function expectScore(actual: { precision: number; recall: number; fmeasure: number }, p: number, r: number, f: number, places = 12): void {
  expect(actual.precision).toBeCloseTo(p, places);
  expect(actual.recall).toBeCloseTo(r, places);
  expect(actual.fmeasure).toBeCloseTo(f, places);
}

describe("rougeScore (rouge_score)", () => {
  test("rouge_scorer_test.py hand cases", () => {
    expectScore(rougeScore("testing one two", "testing", { rougeTypes: ["rouge1"] }).rouge1!, 1, 1 / 3, 1 / 2);
    expectScore(rougeScore("testing one two", "testing one", { rougeTypes: ["rouge2"] }).rouge2!, 1, 1 / 2, 2 / 3);
    expectScore(rougeScore("testing one two", "testing one", { rougeTypes: ["rougeL"] }).rougeL!, 1, 2 / 3, 4 / 5);
    expectScore(rougeScore("testing one two", "testing two", { rougeTypes: ["rougeL"] }).rougeL!, 1, 2 / 3, 4 / 5);
    for (const type of ["rouge1", "rouge2", "rougeL", "rougeLsum"]) expectScore(rougeScore("testing one two", "", { rougeTypes: [type] })[type]!, 0, 0, 0);
    const multi = rougeScoreMulti(["first text", "first something"], "text first", { rougeTypes: ["rouge1", "rouge2", "rougeL"] });
    expect([multi.rouge1!.fmeasure, multi.rouge2!.fmeasure, multi.rougeL!.fmeasure]).toEqual([1, 0, 0.5]);
  });

  test("agrees with ROUGE-1.5.5 on rouge_score's testdata, with and without the stemmer", () => {
    const at = (i: number, stem: boolean) => rougeScore(TARGETS[i]!, PREDICTIONS[i]!, { rougeTypes: ["rouge1", "rouge2", "rougeL"], useStemmer: stem });
    for (const stem of [false, true]) {
      expectScore(at(0, stem).rouge1!, 0.6875, 0.40741, 0.51163, ROUGE155_PLACES);
      expectScore(at(0, stem).rouge2!, 0.53333, 0.30769, 0.39024, ROUGE155_PLACES);
      expectScore(at(1, stem).rouge2!, 0.48, 0.29268, 0.36364, ROUGE155_PLACES);
    }
    expectScore(at(0, false).rougeL!, 0.6875, 0.40741, 0.51163, ROUGE155_PLACES);
    expectScore(at(1, false).rouge1!, 0.65385, 0.40476, 0.5, ROUGE155_PLACES);
    expectScore(at(1, false).rougeL!, 0.65385, 0.40476, 0.5, ROUGE155_PLACES);
    // the stemmer turns "...ing"/"...er"/"...tion" pieces into matches
    expectScore(at(1, true).rouge1!, 0.69231, 0.42857, 0.52941, ROUGE155_PLACES);
    const lsum = rougeScore(TARGET_MULTI, PREDICTION_MULTI, { rougeTypes: ["rougeLsum"], useStemmer: true }).rougeLsum!;
    expectScore(lsum, 0.66667, 0.36538, 0.47205, ROUGE155_PLACES);
  });

  test("rougeLsum: sentences split on newlines only, union LCS", () => {
    expectScore(rougeScore("First sentence.\nSecond Sentence.", "Second sentence.\nFirst Sentence.", { rougeTypes: ["rougeLsum"], useStemmer: true }).rougeLsum!, 1, 1, 1);
    expectScore(rougeScore("First sentence. Second Sentence.", "Second sentence. First Sentence.", { rougeTypes: ["rougeLsum"], useStemmer: true }).rougeLsum!, 0.5, 0.5, 0.5);
    // Section 3.2 of the ROUGE paper: union LCS of r = w1..w5 with c1 = w1 w2 w6 w7 w8 and
    // c2 = w1 w3 w8 w9 w5 is w1 w2 w3 w5: R = 4/5, P = 4/10.
    expectScore(rougeScore("w1 w2 w3 w4 w5", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5", { rougeTypes: ["rougeLsum"] }).rougeLsum!, 0.4, 0.8, 0.32 / 0.6);
    for (const [target, prediction] of [["w1 w2 w3 w4 w5", ""], ["", "w1"], ["w1 w2 w3 w4 w5", "/"]] as const) {
      expectScore(rougeScore(target, prediction, { rougeTypes: ["rougeLsum"] }).rougeLsum!, 0, 0, 0);
    }
    // the union is over reference *indices*, and the backtrack takes the last matching index:
    // r = [a, a] against "a" / "a" / "a" gives index 1 three times -> union {1} -> 1 hit.
    // P = 1/3, R = 1/2, F = 2 (1/6) / (5/6) = 0.4
    expectScore(rougeScore("a a", "a\na\na", { rougeTypes: ["rougeLsum"] }).rougeLsum!, 1 / 3, 1 / 2, 0.4);
    // hits are capped by token counts: r = "a b a", candidates "a b" / "b a" -> indices {0, 1} and
    // {1, 2} -> union {0, 1, 2} = a b a, but the prediction holds a twice, b twice: 3 hits of 4 / 3
    expectScore(rougeScore("a b a", "a b\nb a", { rougeTypes: ["rougeLsum"] }).rougeLsum!, 3 / 4, 1, 6 / 7);
  });

  test("the tokenizer: lowercase, ASCII letters and digits only, stems of tokens over 3 characters", () => {
    // "é" and the apostrophe separate; CJK vanishes
    expect(rougeTokenize("Café don't 3.5% ÉTÉ 北京")).toEqual(["caf", "don", "t", "3", "5", "t"]);
    // "the" (3 letters) is never stemmed; "were" stays ("wer" is m=1 and cvc)
    expect(rougeTokenize("The running dogs were jumping", true)).toEqual(["the", "run", "dog", "were", "jump"]);
    expect(rougeTokenize("")).toEqual([]);
  });
});

describe("rouge (evaluate aggregation)", () => {
  test("evaluate's docstring example", () => {
    expect(rouge(["hello there", "general kenobi"], [["hello there"], ["general kenobi"]])).toEqual({ rouge1: 1, rouge2: 1, rougeL: 1, rougeLsum: 1 });
  });

  test("evaluate's README example, whose printed output is not what rouge_score computes", () => {
    // The README prints rouge1 [0.5, 0.0] (mean 0.25), but "hello goodbye" against "goodbye" has
    // P = 1/2 and R = 1, so rouge_score's F is 2/3 (the README's own format example shows 0.667).
    const predictions = ["hello goodbye", "ankh morpork"];
    const references = [["goodbye"], ["general kenobi"]];
    expect(rougePerExample(predictions, references).rouge1).toEqual([2 / 3, 0]);
    expect(rouge(predictions, references).rouge1).toBeCloseTo(1 / 3, 15);
  });

  test("the mean of per-example F-measures; each type picks its own best reference", () => {
    // ex 0: "the cat" vs "the cat sat": rouge1 P 1, R 2/3 -> F 0.8; rouge2 P 1, R 1/2 -> 2/3
    // ex 1: "b a" vs refs ["a b", "b c"]: rouge1 F 1 against "a b" (0.5 against "b c");
    //       rouge2 0 against both; rougeL LCS 1 against both -> 0.5
    const per = rougePerExample(["the cat", "b a"], [["the cat sat"], ["a b", "b c"]], { rougeTypes: ["rouge1", "rouge2", "rougeL"] });
    expect(per.rouge1![0]).toBeCloseTo(0.8, 12);
    expect(per.rouge2![0]).toBeCloseTo(2 / 3, 12);
    expect(per.rouge1![1]).toBe(1);
    expect(per.rouge2![1]).toBe(0);
    expect(per.rougeL![1]).toBe(0.5);
    const mean = rouge(["the cat", "b a"], [["the cat sat"], ["a b", "b c"]], { rougeTypes: ["rouge1", "rouge2", "rougeL"] });
    expect(mean.rouge1).toBeCloseTo(0.9, 12);
    expect(mean.rouge2).toBeCloseTo(1 / 3, 12);
  });

  test("casing and punctuation do not matter; numbers are tokens; unicode-only text scores 0", () => {
    expect(rouge(["THE CAT, SAT!"], [["the cat sat"]])).toEqual({ rouge1: 1, rouge2: 1, rougeL: 1, rougeLsum: 1 });
    expect(rouge(["北京欢迎你"], [["北京欢迎你"]])).toEqual({ rouge1: 0, rouge2: 0, rougeL: 0, rougeLsum: 0 });
    // "2021" vs "2022": rouge1 2/3 overlap each way
    expect(rouge(["in 2021 ok"], [["in 2022 ok"]]).rouge1).toBeCloseTo(2 / 3, 12);
  });

  test("invalid ROUGE types and empty input are refused", () => {
    for (const type of ["rougen", "rouge0", "rouge10"]) expect(() => rougeScore("a", "a", { rougeTypes: [type] })).toThrow(/invalid ROUGE type/);
    expect(() => rouge([], [])).toThrow(/no predictions/);
    expect(() => rouge(["a"], [[]])).toThrow(/at least one reference/);
  });
});
