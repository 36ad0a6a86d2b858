/**
 * Depth growth: the layer map of every operator, what the grown tensors hold, and the
 * function-preservation promises (zero duplicates and MSG masks at 0 are bitwise the source).
 */
import { describe, expect, test } from "vitest";

import { planDepth } from "../../src/growth/depth.js";
import { describeGrowth, planGrowth } from "../../src/growth/plan.js";
import { growModel } from "../../src/growth/schedule.js";
import { LlamaModel } from "../../src/model/llama.js";
import { scoreSequences } from "../../src/model/score.js";
import { Tensor } from "../../src/tensor.js";
import { expectBitwiseEqual } from "../helpers/reference.js";
import { scoreError, sequences, smallConfig, sourceModel } from "./source.js";

const sources = (layers: { source: number | null }[]): (number | null)[] => layers.map((l) => l.source);
const inits = (layers: { init: string }[]): string[] => layers.map((l) => l.init);

describe("depth operators: layer maps", () => {
  test("stack repeats the whole block (G_stack: 6 → 24 is [0..5] four times), a partial block on top for other counts", () => {
    const six = planDepth(6, { operator: "stack", factor: 4 });
    expect(sources(six)).toEqual([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]);
    expect(new Set(inits(six))).toEqual(new Set(["copy"]));
    expect(sources(planDepth(4, { operator: "stack", layers: 6 }))).toEqual([0, 1, 2, 3, 0, 1]);
  });

  test("interpolate duplicates each layer in place (⌊i·L/L'⌋)", () => {
    expect(sources(planDepth(3, { operator: "interpolate", factor: 2 }))).toEqual([0, 0, 1, 1, 2, 2]);
    expect(sources(planDepth(3, { operator: "interpolate", layers: 7 }))).toEqual([0, 0, 0, 1, 1, 2, 2]);
  });

  test("zero: interpolation order, the first copy kept and every further copy with zero output projections", () => {
    const layers = planDepth(2, { operator: "zero", factor: 3 });
    expect(sources(layers)).toEqual([0, 0, 0, 1, 1, 1]);
    expect(inits(layers)).toEqual(["copy", "zero_output", "zero_output", "copy", "zero_output", "zero_output"]);
    const stacked = planDepth(2, { operator: "zero", factor: 2, order: "stack" });
    expect(sources(stacked)).toEqual([0, 1, 0, 1]);
    expect(inits(stacked)).toEqual(["copy", "copy", "zero_output", "zero_output"]);
  });

  test("random: source layers in place, new layers on top (or interleaved with order interpolate)", () => {
    const top = planDepth(3, { operator: "random", layers: 5 });
    expect(sources(top)).toEqual([0, 1, 2, null, null]);
    expect(inits(top)).toEqual(["copy", "copy", "copy", "random", "random"]);
    expect(sources(planDepth(2, { operator: "random", factor: 2, order: "interpolate" }))).toEqual([0, null, 1, null]);
  });

  test("an explicit layer map (the official stacking_list); repeats start as the operator says", () => {
    const map = [0, 1, 2, 1, 2, 3, 3];
    expect(sources(planDepth(4, { operator: "stack", layerMap: map }))).toEqual(map);
    expect(inits(planDepth(4, { operator: "zero", layerMap: map }))).toEqual(["copy", "copy", "copy", "zero_output", "zero_output", "copy", "zero_output"]);
    expect(sources(planDepth(4, { operator: "random", layerMap: map }))).toEqual([0, 1, 2, null, null, 3, null]);
  });

  test.each([
    ["no size", { operator: "stack" }, /exactly one of factor, layers and layerMap/],
    ["two sizes", { operator: "stack", factor: 2, layers: 8 }, /exactly one of factor, layers and layerMap \(got factor, layers\)/],
    ["a shrinking target", { operator: "stack", layers: 3 }, /layers must be an integer >= the source's 4 layers \(growth cannot shrink\) but is 3/],
    ["factor 0", { operator: "stack", factor: 0 }, /factor must be a positive integer but is 0/],
    ["an unknown operator", { operator: "copy", factor: 2 }, /unknown depth operator "copy"; expected one of stack, interpolate, zero, random/],
    ["order with stack", { operator: "stack", factor: 2, order: "interpolate" }, /"stack" is its own order/],
    ["a mask on stack", { operator: "stack", factor: 2, maskWarmupSteps: 10 }, /maskWarmupSteps applies to operator "random" \(MSG\) only, not "stack"/],
    ["a zero-step mask", { operator: "random", factor: 2, maskWarmupSteps: 0 }, /maskWarmupSteps must be a positive integer but is 0/],
    ["a short layer map", { operator: "stack", layerMap: [0, 1] }, /at least 4 target layers but has 2 entries/],
    ["a layer map out of range", { operator: "stack", layerMap: [0, 1, 2, 3, 4] }, /layerMap\[4\] = 4 is not a source layer in \[0, 4\)/],
  ])("refuses %s", (_, options, message) => {
    expect(() => planDepth(4, options as Parameters<typeof planDepth>[1])).toThrow(message);
  });
});

describe("depth growth of a model", () => {
  const config = smallConfig({ num_hidden_layers: 3 });
  const seqs = sequences(config.vocab_size);

  test("stack and interpolate copy every tensor of the source layer bitwise; embedding, norm and head carry over", () => {
    const source = sourceModel(config);
    for (const operator of ["stack", "interpolate"] as const) {
      const plan = planGrowth(config, { depth: { operator, layers: 7 } });
      const grown = growModel(source, plan);
      expect(grown.config.num_hidden_layers).toBe(7);
      for (const e of grown.layout.entries) {
        const from = e.layer === null ? e.name : e.name.replace(`layers.${e.layer}.`, `layers.${plan.layers[e.layer]!.source}.`);
        expectBitwiseEqual(grown.param(e.name).data, source.param(from).data, `${operator} ${e.name}`);
      }
      expect(plan.functionPreserving).toBe(false);
      // Duplicated residual branches add their outputs again: the function changes.
      expect(scoreError(scoreSequences(grown, seqs).tokenLogprobs, scoreSequences(source, seqs).tokenLogprobs)).toBeGreaterThan(1e-3);
      grown.dispose();
    }
    source.dispose();
  });

  test("zero: the grown model scores bitwise as the source (each duplicate adds exactly 0), and its duplicates get gradients", () => {
    const source = sourceModel(config);
    const plan = planGrowth(config, { depth: { operator: "zero", factor: 2 } });
    expect(plan.functionPreserving).toBe(true);
    const grown = growModel(source, plan);
    const a = scoreSequences(grown, seqs);
    const b = scoreSequences(source, seqs);
    expect(a.tokenLogprobs).toEqual(b.tokenLogprobs);
    expect(Array.from(grown.param("model.layers.1.self_attn.o_proj.weight").data).every((x) => x === 0)).toBe(true);
    expect(Array.from(grown.param("model.layers.1.mlp.down_proj.weight").data).every((x) => x === 0)).toBe(true);
    expectBitwiseEqual(grown.param("model.layers.1.self_attn.q_proj.weight").data, source.param("model.layers.0.self_attn.q_proj.weight").data, "duplicate q_proj");
    const ids = Tensor.from(seqs[0]!.slice(0, 12), [1, 12], "int32");
    grown.zeroGrad();
    grown.forwardBackward(ids, ids);
    for (const kind of ["self_attn.o_proj", "mlp.down_proj"]) {
      expect(grown.grad(`model.layers.1.${kind}.weight`).data.some((g) => g !== 0), kind).toBe(true);
    }
    ids.dispose();
    grown.dispose();
    source.dispose();
  });

  test("random: new layers are the target's initialisation (LlamaModel.initialize(seed)); with a mask at 0 the scores are bitwise the source's", () => {
    const source = sourceModel(config);
    const masked = planGrowth(config, { depth: { operator: "random", layers: 5, maskWarmupSteps: 4 }, seed: 7 });
    expect(masked.mask).toEqual({ layers: [3, 4], warmupSteps: 4 });
    expect(masked.functionPreserving).toBe(true);
    const grown = growModel(source, masked);
    expect([0, 1, 2, 3, 4].map((l) => grown.branchScale(l))).toEqual([1, 1, 1, 0, 0]);
    expect(scoreSequences(grown, seqs).tokenLogprobs).toEqual(scoreSequences(source, seqs).tokenLogprobs);

    const reference = new LlamaModel(masked.target);
    reference.initialize(7);
    for (const e of grown.layout.entries.filter((x) => x.layer !== null && x.layer >= 3)) {
      expectBitwiseEqual(grown.param(e.name).data, reference.param(e.name).data, e.name);
    }
    grown.setBranchScale(3, 1);
    grown.setBranchScale(4, 1);
    expect(scoreError(scoreSequences(grown, seqs).tokenLogprobs, scoreSequences(source, seqs).tokenLogprobs)).toBeGreaterThan(1e-4);
    const unmasked = planGrowth(config, { depth: { operator: "random", layers: 5 } });
    expect(unmasked.mask).toBeNull();
    expect(unmasked.functionPreserving).toBe(false);
    for (const m of [grown, reference, source]) m.dispose();
  });

  test("the description names each target layer's source and start", () => {
    const plan = planGrowth(config, { depth: { operator: "zero", factor: 2, order: "stack" } });
    expect(describeGrowth(plan)).toEqual([
      "layers 3 → 6 (zero): 0-2 ← 0-2, 3-5 ← 0-2 (o_proj, down_proj = 0)",
      "function preserved: yes (up to float32 rounding)",
    ]);
    const random = planGrowth(config, { depth: { operator: "random", factor: 2, maskWarmupSteps: 100 } });
    expect(describeGrowth(random)[0]).toBe("layers 3 → 6 (random): 0-2 ← 0-2, 3-5 new (initialised)");
    expect(describeGrowth(random)[1]).toMatch(/MSG mask on layers 3, 4, 5: branches scaled by min\(1, step\/100\)/);
  });
});
