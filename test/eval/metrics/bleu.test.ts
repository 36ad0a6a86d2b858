/**
 * evaluate's "bleu" (tensorflow/nmt compute_bleu over 13a tokens): its docstring example and
 * vectors derived by hand from the algorithm.
 */
import { describe, expect, test } from "vitest";

import { bleu } from "../../../src/eval/metrics/bleu.js";

/** The float64 operations run in a different order than Python's; the agreement bar is 1e-6. */
const TOL = 1e-12;

describe("bleu (evaluate)", () => {
  test("evaluate's docstring example scores 1.0", () => {
    const result = bleu(["hello there general kenobi", "foo bar foobar"], [["hello there general kenobi", "hello there!"], ["foo bar foobar"]]);
    // The reference length takes the shortest reference: "hello there !" (3) + 3 = 6 < 7 tokens.
    expect(result).toEqual({ bleu: 1, precisions: [1, 1, 1, 1], brevity_penalty: 1, length_ratio: 7 / 6, translation_length: 7, reference_length: 6 });
  });

  test("hand-derived: clipped counts, brevity penalty", () => {
    // pred "the the cat sat" (4), ref "the cat sat on the mat" (6).
    // 1-grams: the x2 (ref has 2) cat sat -> 4/4; 2-grams: "the the" no, "the cat", "cat sat" -> 2/3;
    // 3-grams: "the cat sat" -> 1/2; 4-grams: 0/1 -> one zero precision makes BLEU 0.
    const r = bleu(["the the cat sat"], [["the cat sat on the mat"]]);
    expect(r.precisions).toEqual([1, 2 / 3, 1 / 2, 0]);
    expect(r.bleu).toBe(0);
    // ratio 4/6 -> bp = exp(1 - 6/4) = exp(-0.5)
    expect(Math.abs(r.brevity_penalty - Math.exp(-0.5))).toBeLessThan(TOL);
    // Lin & Och smoothing adds one to every order, unigrams included:
    // p = 5/5, 3/4, 2/3, 1/2 -> bleu = bp * (1 * 3/4 * 2/3 * 1/2)^(1/4) = exp(-0.5) * 0.25^0.25
    const s = bleu(["the the cat sat"], [["the cat sat on the mat"]], { smooth: true });
    expect(s.precisions).toEqual([1, 3 / 4, 2 / 3, 1 / 2]);
    expect(Math.abs(s.bleu - Math.exp(-0.5) * Math.pow(0.25, 0.25))).toBeLessThan(TOL);
  });

  test("several references: n-gram counts are the max over references, the length the shortest", () => {
    // refs "the cat sat on the mat today" (7) and "the cat" (2): the reference length is 2, not
    // the closest (7, sacreBLEU's choice), so bp = 1 and every precision is 1.
    const r = bleu(["the cat sat on the mat"], [["the cat sat on the mat today", "the cat"]]);
    expect(r.bleu).toBe(1);
    expect(r.reference_length).toBe(2);
    expect(r.length_ratio).toBe(3);
  });

  test("a prediction shorter than 4 tokens, max_order, casing, numbers and punctuation", () => {
    // "a b c": no 4-grams, p4 = 0 -> 0 without smoothing; smoothing gives 1/1 -> BLEU 1.
    expect(bleu(["a b c"], [["a b c"]]).bleu).toBe(0);
    expect(bleu(["a b c"], [["a b c"]], { smooth: true }).bleu).toBe(1);
    expect(bleu(["a b c"], [["a b c"]], { maxOrder: 3 }).bleu).toBe(1);
    // 13a keeps case: "The" does not match "the"; "$3.50," -> "$ 3.50 ," keeps the price whole.
    const cased = bleu(["The price is $3.50, ok"], [["the price is $3.50, ok"]]);
    // tokens: The price is $ 3.50 , ok (7); 1-grams 6/7, 2-grams 5/6, 3-grams 4/5, 4-grams 3/4
    expect(cased.precisions).toEqual([6 / 7, 5 / 6, 4 / 5, 3 / 4]);
    expect(Math.abs(cased.bleu - Math.pow((6 / 7) * (5 / 6) * (4 / 5) * (3 / 4), 0.25))).toBeLessThan(TOL);
  });

  test("empty predictions: zero lengths give 0 instead of tensorflow/nmt's ZeroDivisionError", () => {
    expect(bleu([""], [["a b c d"]])).toEqual({ bleu: 0, precisions: [0, 0, 0, 0], brevity_penalty: 0, length_ratio: 0, translation_length: 0, reference_length: 4 });
    // one empty prediction in a corpus just adds nothing to the prediction length
    const r = bleu(["", "a b c d"], [["x y"], ["a b c d"]]);
    expect(r.translation_length).toBe(4);
    expect(r.reference_length).toBe(6);
    expect(Math.abs(r.bleu - Math.exp(1 - 6 / 4))).toBeLessThan(TOL);
  });

  test("unicode: 13a leaves CJK runs whole", () => {
    expect(bleu(["北京 欢迎 你 们"], [["北京 欢迎 你 们"]]).bleu).toBe(1);
    expect(bleu(["北京欢迎你们"], [["北京 欢迎 你 们"]]).bleu).toBe(0);
  });

  test("bad input is refused by name", () => {
    expect(() => bleu(["a"], [])).toThrow(/bleu: 1 predictions but 0 reference lists/);
    expect(() => bleu(["a"], [[]])).toThrow(/prediction 0 has no reference/);
    expect(() => bleu(["a"], [["a"]], { maxOrder: 0 })).toThrow(/maxOrder must be a positive integer/);
  });
});
