/** Continual-learning metrics against their textbook definitions, worked by hand. */
import { describe, expect, test } from "vitest";

import { continualMetrics } from "../../src/continual/cl-metrics.js";

describe("continualMetrics", () => {
  // Three tasks trained in order (GEM setting): rows after stages 0..3.
  const R = [
    [0.1, 0.2, 0.3],
    [0.8, 0.25, 0.3],
    [0.6, 0.9, 0.35],
    [0.5, 0.7, 0.95],
  ];

  test("one visit per task: the textbook ACC, LA, BWT, FWT, forgetting and the study's FG", () => {
    const m = continualMetrics(["a", "b", "c"], ["a", "b", "c"], R);
    expect(m.acc).toBeCloseTo((0.5 + 0.7 + 0.95) / 3, 12);
    expect(m.learningAccuracy).toBeCloseTo((0.8 + 0.9 + 0.95) / 3, 12);
    expect(m.bwt).toBeCloseTo((0.5 - 0.8 + (0.7 - 0.9)) / 2, 12);
    expect(m.fwt).toBeCloseTo((0.25 - 0.2 + (0.35 - 0.3)) / 2, 12);
    // f_a = max(0.8, 0.6) − 0.5, f_b = 0.9 − 0.7
    expect(m.taskForgetting.a).toBeCloseTo(0.3, 12);
    expect(m.taskForgetting.b).toBeCloseTo(0.2, 12);
    expect(m.taskForgetting.c).toBeNaN();
    expect(m.forgetting).toBeCloseTo(0.25, 12);
    // ACC = LA + (T − 1)/T · BWT for this setting.
    expect(m.acc).toBeCloseTo(m.learningAccuracy + (2 / 3) * m.bwt, 12);
    // FG_a = mean(0.1−0.8, 0.1−0.6, 0.1−0.5)/0.1·100
    expect(m.relativeDrop.a).toBeCloseTo(((-0.7 - 0.5 - 0.4) / 3 / 0.1) * 100, 9);
  });

  test("a revisited task counts from its last visit for BWT, and untrained probes only in ACC and FG", () => {
    const rows = [...R, [0.85, 0.6, 0.9]];
    const m = continualMetrics(["a", "b", "c", "a"], ["a", "b", "c"], rows);
    expect(m.bwt).toBeCloseTo((0.6 - 0.9 + (0.9 - 0.95)) / 2, 12);
    expect(m.taskForgetting.a).toBeNaN(); // trained last
    const probe = continualMetrics(["a"], ["a", "probe"], [[0.1, 0.5], [0.9, 0.4]]);
    expect(probe.acc).toBeCloseTo(0.65, 12);
    expect(probe.learningAccuracy).toBeCloseTo(0.9, 12);
    expect(probe.relativeDrop.probe).toBeCloseTo(20, 9);
    expect(probe.bwt).toBeNaN();
  });

  test("lower-is-better metrics flip the signs: forgetting stays positive", () => {
    const m = continualMetrics(["a", "b"], ["a", "b"], [[3, 3], [1, 3], [2, 1]], false);
    expect(m.taskForgetting.a).toBeCloseTo(1, 12); // NLL went 1 → 2
    expect(m.bwt).toBeCloseTo(-1, 12);
  });

  test("a matrix of the wrong shape is refused", () => {
    expect(() => continualMetrics(["a"], ["a"], [[1]])).toThrow(/R must be 2 × 1/);
  });
});
