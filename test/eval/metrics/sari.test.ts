/**
 * SARI: evaluate's "sari" against its docstring example and tensor2tensor's sari_hook_test.py
 * (the SARI paper's three outputs, given to 7 digits), EASSE's corpus_sari and both against
 * hand-derived vectors that show how they differ (0/0 conventions, pooling, deletion F1).
 */
import { describe, expect, test } from "vitest";

import { EASSE_SARI_VARIANT, HF_SARI_VARIANT, easseCorpusSari, sari, sariSentenceNormalized } from "../../../src/eval/metrics/sari.js";

/** tensor2tensor's test uses assertAlmostEqual (7 places) on the 0–1 scale. */
const T2T_TOL = 1e-7 * 100;
/** Hand-derived values are exact up to float64 rounding. */
const TOL = 1e-12;

// The SARI paper's example (Xu et al. 2016, table 1), as evaluate and tensor2tensor test it.
const SOURCE = "About 95 species are currently accepted .";
const REFS = ["About 95 species are currently known .", "About 95 species are now accepted .", "95 species are now accepted ."];

describe("sari (evaluate)", () => {
  test("evaluate's docstring example", () => {
    expect(sari([SOURCE], ["About 95 you now get in ."], [REFS])).toEqual({ sari: 26.953601953601954, variant: HF_SARI_VARIANT });
  });

  test("tensor2tensor's SARI-paper cases", () => {
    expect(Math.abs(sari([SOURCE], ["About 95 species are now agreed ."], [REFS]).sari - 61.70966)).toBeLessThan(T2T_TOL);
    expect(Math.abs(sari([SOURCE], ["About 95 species are currently agreed ."], [REFS]).sari - 50.88682)).toBeLessThan(T2T_TOL);
    // input = output = reference, and output = reference, both score 100
    expect(sari(["3 1 4 1 5 9 2 6 5"], ["3 1 4 1 5 9 2 6 5"], [["3 1 4 1 5 9 2 6 5"]]).sari).toBe(100);
    expect(sari(["3 1 4 1 5 9 2 6 5"], ["3 1 4 1 80 70"], [["3 1 4 1 80 70"]]).sari).toBe(100);
  });

  test("hand-derived: a deletion the reference also makes scores 100 (every 0/0 is 1)", () => {
    // s = "a b", c = "a", r = ["a"]. Order 1: keep {a}: P = R = 1; delete {b}, not in r: P = 1;
    // add: nothing added, nothing to add: 1. Order 2: keep nothing/nothing: 1; delete "a b": 1;
    // add 1. Orders 3, 4: everything empty: 1.
    expect(sari(["a b"], ["a"], [["a"]]).sari).toBe(100);
  });

  test("hand-derived: copying the source", () => {
    // s = c = "a b", r = ["a c"].
    // n=1: keep {a, b}, good {a}: P = (1/1)/2 = 1/2, R = 1/1 -> F 2/3; nothing deleted: 1;
    //      nothing added but c to add: P 1, R 0 -> F 0.
    // n=2: keep {"a b"} not in r: P 0, R 1 (nothing to keep) -> F 0; delete 1; add: R 0 -> F 0.
    // n=3, 4: 1, 1, 1.  keep = (2/3 + 0 + 2)/4 = 2/3, del = 1, add = 1/2 -> (2/3 + 1 + 1/2)/3 = 13/18
    expect(Math.abs(sari(["a b"], ["a b"], [["a c"]]).sari - (100 * 13) / 18)).toBeLessThan(TOL);
  });

  test("hand-derived: an empty prediction is one empty token", () => {
    // "" splits into [""]. s = "a", c = "", r = ["a"]. n=1: keep nothing: P 1, but a should be kept:
    // R 0 -> F 0; deleted a, which r keeps: P 0; added "": not in r -> P 0 -> F 0.
    // n=2..4 all empty: 1. Each operation averages 3/4 -> SARI 75.
    expect(sari(["a"], [""], [["a"]]).sari).toBe(75);
    expect(sariSentenceNormalized("a", "", ["a"])).toBe(0.75);
  });

  test("hand-derived: the corpus score is the mean of sentence scores", () => {
    // sentence 1: s "a", c "b", r ["b"] -> 1 (a correct replacement).
    // sentence 2: s "c", c "c", r ["d"]: n=1 keep P 0 R 1 -> 0; del 1; add R 0 -> 0;
    //   n=2..4: 1 -> keep 3/4, del 1, add 3/4 -> 5/6.   corpus = (1 + 5/6) / 2 = 11/12
    expect(Math.abs(sari(["a", "c"], ["b", "c"], [["b"], ["d"]]).sari - (100 * 11) / 12)).toBeLessThan(TOL);
  });

  test("casing and punctuation are normalized (lowercase, 13a); refusals", () => {
    expect(sari(["About 95 species, currently."], ["about 95 species , currently ."], [["ABOUT 95 SPECIES, CURRENTLY."]]).sari).toBe(100);
    expect(() => sari(["a"], ["a", "b"], [["a"]])).toThrow(/sari: 1 sources, 2 predictions and 1 reference lists/);
    expect(() => sari(["a"], ["a"], [[]])).toThrow(/prediction 0 has no reference/);
  });
});

describe("easseCorpusSari", () => {
  test("hand-derived: 0/0 counts as 0, so a perfect deletion scores 25, not 100", () => {
    // s = "a b", c = "a", r = ["a"]. n=1: add 0/0 -> 0; keep a: P 1/1, R 1/1 -> 1; delete b: P 1, R 1 -> 1.
    // n=2: keep 0/0 -> 0, delete "a b": 1. n=3, 4: nothing -> 0.
    // add 0, keep 1/4, del 2/4 -> SARI (0 + 25 + 50)/3 = 25
    const r = easseCorpusSari(["a b"], ["a"], [["a"]]);
    expect(r).toEqual({ sari: 25, add: 0, keep: 25, del: 50, variant: EASSE_SARI_VARIANT });
  });

  test("hand-derived: copying the source scores far lower than in evaluate's SARI", () => {
    // s = c = "a b", r = ["a c"]. n=1: add 0; keep sys {a, b} = 2, ref {a} = 1, correct 1: P 1/2, R 1
    // -> 2/3; delete: nothing deleted, P 0 -> 0. n=2: keep sys 1, ref 0, correct 0 -> 0.
    // keep = (2/3)/4 -> SARI = 100 (1/6) / 3 = 5.5556 (evaluate's: 72.22)
    const r = easseCorpusSari(["a b"], ["a b"], [["a c"]]);
    expect(Math.abs(r.sari - 100 / 18)).toBeLessThan(TOL);
    expect(r.add).toBe(0);
    expect(r.del).toBe(0);
  });

  test("hand-derived: counts are pooled over the corpus before any ratio", () => {
    // sentence 1: s "a", c "b", r ["b"] -> add sys 1 ref 1 correct 1; keep 0, 0, 0; del sys 1 ref 1 correct 1.
    // sentence 2: s "c", c "c", r ["d"] -> add sys 0 ref 1 correct 0; keep sys 1 ref 0; del sys 0 ref 1.
    // pooled n=1: add P 1, R 1/2 -> 2/3; keep P 0 -> 0; del P 1, R 1/2 -> 2/3. n=2..4: 0.
    // add = del = (2/3)/4 -> SARI = 100 (1/6 + 0 + 1/6)/3 = 11.11 (evaluate's mean of sentences: 91.67)
    const r = easseCorpusSari(["a", "c"], ["b", "c"], [["b"], ["d"]]);
    expect(Math.abs(r.sari - 100 / 9)).toBeLessThan(TOL);
    expect(Math.abs(r.add - 100 / 6)).toBeLessThan(TOL);
    // the paper version (average P and R over orders, then F1) and deletion by precision:
    // add: P = 1/4, R = 1/8 -> F = 1/6; del P = 1/4 -> SARI = 100 (1/6 + 0 + 1/4)/3
    const paper = easseCorpusSari(["a", "c"], ["b", "c"], [["b"], ["d"]], { usePaperVersion: true, useF1ForDeletion: false });
    expect(Math.abs(paper.sari - (100 * (1 / 6 + 1 / 4)) / 3)).toBeLessThan(TOL);
  });

  test("the SARI paper example, several references", () => {
    // Counts by hand for order 1 only are long; check the invariants instead: lowercasing is on
    // by default (so "About" == "about"), and legacy mode, which neither lowercases nor tokenizes
    // the source, differs once the source needs 13a.
    const lower = easseCorpusSari([SOURCE], ["about 95 you now get in ."], [REFS]);
    expect(easseCorpusSari([SOURCE], ["About 95 you now get in ."], [REFS]).sari).toBe(lower.sari);
    expect(easseCorpusSari(["a b."], ["a b."], [["a b."]]).sari).not.toBe(easseCorpusSari(["a b."], ["a b."], [["a b."]], { legacy: true }).sari);
  });

  test("every prediction needs the same number of references; an empty prediction has no n-grams", () => {
    expect(() => easseCorpusSari(["a", "b"], ["a", "b"], [["a"], ["b", "c"]])).toThrow(/prediction 1 has 2 references but prediction 0 has 1/);
    // s "a", c "", r ["a"]: n=1 add 0; keep sys 0, ref 1 -> P 0 -> 0; del sys 1, ref 0 -> R 0 -> 0
    expect(easseCorpusSari(["a"], [""], [["a"]]).sari).toBe(0);
  });
});
