/** G_stack's growth-timing guideline: the README's table, and refusals. */
import { describe, expect, test } from "vitest";

import { G_STACK_FACTOR, suggestGrowthTiming } from "../../src/growth/timing.js";

/** The README prints d to two decimals in billions. */
const README_DIGITS = 0.005e9;

describe("suggestGrowthTiming", () => {
  test.each([
    ["Llama3-8B", 8e9, 15e12, 6.58e9],
    ["Llama2-7B", 7e9, 2e12, 11.11e9],
    ["Llama2-13B", 13e9, 2e12, 15.84e9],
    ["Llama2-70B", 70e9, 2e12, 42.48e9],
  ])("reproduces the README's %s row with C = 6ND", (_, N, D, d) => {
    const s = suggestGrowthTiming({ params: N, tokens: D });
    expect(Math.abs(s.growthTokens - d)).toBeLessThan(README_DIGITS);
    expect(s.compute).toBe(6 * N * D);
    expect(s.factor).toBe(G_STACK_FACTOR);
    expect(s.fraction).toBeCloseTo(d / D, 4);
    expect(suggestGrowthTiming({ params: N, compute: 6 * N * D }).growthTokens).toBeCloseTo(s.growthTokens, 0);
  });

  test("for a fixed model size, more compute means growing earlier", () => {
    const small = suggestGrowthTiming({ params: 1e9, compute: 1e21 }).growthTokens;
    const large = suggestGrowthTiming({ params: 1e9, compute: 1e23 }).growthTokens;
    expect(large).toBeLessThan(small);
  });

  test.each([
    [{ params: 0, compute: 1e21 }, /params must be a positive number but is 0/],
    [{ params: 1e9 }, /exactly one of compute \(FLOPs\) and tokens/],
    [{ params: 1e9, compute: 1e21, tokens: 1e10 }, /exactly one of compute/],
    [{ params: 1e9, compute: 5 }, /compute must be a number of FLOPs above 10/],
    [{ params: 1e9, tokens: -1 }, /tokens must be a positive number but is -1/],
  ])("refuses %j", (input, message) => {
    expect(() => suggestGrowthTiming(input)).toThrow(message);
  });
});
