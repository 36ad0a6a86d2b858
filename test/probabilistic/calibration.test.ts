/** The uncertainty and calibration measures against values computed by hand. */
import { describe, expect, test } from "vitest";

import {
  TemperatureData,
  UncertaintyAccumulator,
  averageProbabilities,
  brierScore,
  classificationUncertainty,
  entropy,
  entropyDecomposition,
  expectedCalibrationError,
  fitTemperature,
  logMeanProbability,
  sequenceUncertainty,
  softmax,
} from "../../src/probabilistic/calibration.js";
import { rng } from "../helpers/reference.js";

/** Hand-computed values carry 9 digits. */
const DIGITS = 8;

describe("measures of one prediction", () => {
  test("softmax, entropy, Brier and the averaged distribution", () => {
    const p = softmax([Math.log(0.8), Math.log(0.2)]);
    expect(p[0]).toBeCloseTo(0.8, 12);
    // softmax(z / T): T = 2 takes square roots of the odds.
    const q = softmax([Math.log(0.8), Math.log(0.2)], 2);
    expect(q[0]! / q[1]!).toBeCloseTo(2, 12);
    expect(entropy([0.8, 0.2])).toBeCloseTo(0.500402424, DIGITS);
    expect(entropy([1, 0])).toBe(0);
    expect(brierScore([0.4, 0.6], 0)).toBeCloseTo(0.72, 12);
    expect(Array.from(averageProbabilities([[0.9, 0.1], [0.1, 0.9]]))).toEqual([0.5, 0.5]);
    expect(() => averageProbabilities([[0.5, 0.5], [1]])).toThrow(/members disagree on the number of classes/);
  });

  test("entropy decomposition of two disagreeing members: MI = ln 2 − H(0.9, 0.1)", () => {
    const d = entropyDecomposition([[0.9, 0.1], [0.1, 0.9]]);
    expect(d.total).toBeCloseTo(0.693147181, DIGITS);
    expect(d.expected).toBeCloseTo(0.325082973, DIGITS);
    expect(d.mutualInformation).toBeCloseTo(0.368064208, DIGITS);
    // Agreeing members: no epistemic part.
    expect(entropyDecomposition([[0.3, 0.7], [0.3, 0.7]]).mutualInformation).toBe(0);
  });

  test("sequence level: the averaged sequence probability and the reverse mutual information", () => {
    const s = sequenceUncertainty([-2, -4], 2);
    expect(s.nll).toBeCloseTo(2.566219, 6);
    expect(s.nllPerToken).toBeCloseTo(1.2831095, 6);
    expect(s.memberNll).toBe(3);
    expect(s.rmi).toBeCloseTo(0.433781, 6);
    expect(sequenceUncertainty([-3, -3], 4).rmi).toBe(0);
    expect(() => sequenceUncertainty([], 1)).toThrow(/no member log-likelihood/);
  });

  test("logMeanProbability is log p̄_y at a temperature", () => {
    const z = [1, 2, 0.5, -1, 0, 3];
    const expected = Math.log((softmax([1, 2, 0.5], 1.7)[1]! + softmax([-1, 0, 3], 1.7)[1]!) / 2);
    expect(logMeanProbability(z, 2, 1, 1.7)).toBeCloseTo(expected, 12);
  });
});

describe("ECE", () => {
  test("two predictions by hand: ECE = ½·|1 − 0.8| + ½·|0 − 0.6| = 0.4, MCE 0.6", () => {
    const e = expectedCalibrationError([0.8, 0.6], [true, false]);
    expect(e.ece).toBeCloseTo(0.4, 12);
    expect(e.mce).toBeCloseTo(0.6, 12);
    expect(e.bins).toHaveLength(15);
    expect(e.bins[11]).toMatchObject({ count: 1, accuracy: 1, confidence: 0.8 });
    expect(e.bins[8]).toMatchObject({ count: 1, accuracy: 0, confidence: 0.6 });
  });

  test("bins are right-closed: 0.2 = 3/15 falls in bin 3 (0-based 2), 1 in the last, 0 in the first", () => {
    const e = expectedCalibrationError([0.2, 1, 0, 0.2000001], [true, true, false, false]);
    expect(e.bins[2]!.count).toBe(1);
    expect(e.bins[3]!.count).toBe(1);
    expect(e.bins[14]!.count).toBe(1);
    expect(e.bins[0]!.count).toBe(1);
    expect(expectedCalibrationError([0.55], [true], 10).bins[5]!.count).toBe(1);
    expect(() => expectedCalibrationError([1.5], [true])).toThrow(/confidence 0 is 1.5, outside \[0, 1\]/);
    expect(() => expectedCalibrationError([0.5], [true, false])).toThrow(/1 confidences but 2 correctness flags/);
  });
});

describe("summaries", () => {
  test("a deterministic classifier by hand (NLL, Brier, ECE, entropies, accuracy)", () => {
    const s = classificationUncertainty([[[0.8, 0.2]], [[0.4, 0.6]]], [0, 0]);
    expect(s.count).toBe(2);
    expect(s.accuracy).toBe(0.5);
    expect(s.nll).toBeCloseTo((-Math.log(0.8) - Math.log(0.4)) / 2, 12);
    expect(s.nll).toBeCloseTo(0.569717142, DIGITS);
    expect(s.brier).toBeCloseTo(0.4, 12);
    expect(s.ece).toBeCloseTo(0.4, 12);
    expect(s.entropy).toBeCloseTo((0.500402424 + 0.673011667) / 2, DIGITS);
    expect(s.expectedEntropy).toBeCloseTo(s.entropy, 12);
    expect(s.mutualInformation).toBe(0);
    expect(s.confidence).toBeCloseTo(0.7, 12);
    expect(s.members).toBe(1);
  });

  test("an ensemble averages probabilities before NLL, Brier and ECE", () => {
    const s = classificationUncertainty([[[0.9, 0.1], [0.1, 0.9]]], [0]);
    expect(s.nll).toBeCloseTo(Math.LN2, 12);
    expect(s.brier).toBeCloseTo(0.5, 12);
    expect(s.accuracy).toBe(1); // a tie goes to the first class
    expect(s.ece).toBeCloseTo(0.5, 12);
    expect(s.mutualInformation).toBeCloseTo(0.368064208, DIGITS);
    // Choices may differ in number between documents; logits give the same summary.
    const acc = new UncertaintyAccumulator();
    acc.addLogits([Math.log(0.9), Math.log(0.1), Math.log(0.1), Math.log(0.9)], 2, 0);
    expect(acc.summary().nll).toBeCloseTo(Math.LN2, 12);
    expect(() => acc.addProbabilities([0.5, 0.5], 1, 0)).toThrow(/predictions with 2 and 1 members/);
    const mixed = new UncertaintyAccumulator();
    mixed.addProbabilities([0.2, 0.3, 0.5], 1, 2);
    mixed.addProbabilities([0.5, 0.5], 1, 0);
    expect(mixed.summary().nll).toBeCloseTo((-Math.log(0.5) - Math.log(0.5)) / 2, 12);
    expect(() => mixed.addProbabilities([0.5, 0.5], 1, 2)).toThrow(/label 2 is not a class in \[0, 2\)/);
  });
});

describe("temperature scaling", () => {
  test("recovers the temperature the labels were drawn at, and minimises the held-out NLL", () => {
    // Labels drawn from softmax(z / 2) for random logits: the NLL's minimiser is near T = 2.
    const r = rng(17);
    const data = new TemperatureData();
    for (let n = 0; n < 3000; n++) {
      const z = Array.from({ length: 5 }, () => 6 * (r() - 0.5));
      const p = softmax(z, 2);
      let u = r();
      let y = 0;
      while (y < 4 && u >= p[y]!) u -= p[y++]!;
      data.add(z, 1, y);
    }
    const fit = data.fit();
    // 3000 draws: the estimate's standard error is a few percent.
    expect(Math.abs(fit.temperature - 2)).toBeLessThan(0.15);
    expect(fit.nll).toBeLessThan(fit.nllAtOne);
    for (let i = 0; i <= 200; i++) {
      const t = Math.exp(Math.log(0.05) + (Math.log(20) - Math.log(0.05)) * (i / 200));
      expect(data.nll(t)).toBeGreaterThanOrEqual(fit.nll - 1e-12);
    }
  });

  test("a one-dimensional minimiser: finds the minimum of a known function", () => {
    const fit = fitTemperature((t) => (Math.log(t) - Math.log(3.3)) ** 2 + 1);
    expect(fit.temperature).toBeCloseTo(3.3, 3);
    expect(fit.nll).toBeCloseTo(1, 9);
    expect(fit.nllAtOne).toBeCloseTo(Math.log(3.3) ** 2 + 1, 12);
    expect(() => new TemperatureData().fit()).toThrow(/no held-out prediction/);
  });
});
