/**
 * Width growth: target configs, the unit maps (residual stream, heads and GQA groups, head
 * dimensions with their RoPE pairs, SwiGLU units), exact function preservation of `direct` and
 * `zero` wherever the docs promise it, the reason plain copies are not enough (RMSNorm), and
 * what `random` keeps.
 */
import { describe, expect, test } from "vitest";

import { planGrowth } from "../../src/growth/plan.js";
import { growModel } from "../../src/growth/schedule.js";
import { type WidthGrowthOptions, widthTargetConfig } from "../../src/growth/width.js";
import { headDim } from "../../src/model/config.js";
import { LlamaModel } from "../../src/model/llama.js";
import { scoreSequences } from "../../src/model/score.js";
import { expectBitwiseEqual } from "../helpers/reference.js";
import { PRESERVED_RTOL, scoreError, sequences, smallConfig, sourceModel } from "./source.js";

/** Σα² and Σαβ over a unit's copies: a few float64 products, exact to about 1e-15. */
const SUM_TOL = 1e-12;

const EXACT_CASES: [string, WidthGrowthOptions][] = [
  ["direct: hidden ×2 by added heads, every unit twice (Net2WiderNet)", { operator: "direct", hidden_size: 64 }],
  ["direct: hidden 32 → 48, non-uniform copies", { operator: "direct", hidden_size: 48 }],
  ["direct: random unit selection, hidden and intermediate", { operator: "direct", hidden_size: 48, intermediate_size: 57, selection: "random" }],
  ["direct: head size ×2 (RoPE pairs moved, q ×√2)", { operator: "direct", hidden_size: 64, num_attention_heads: 4 }],
  ["direct: head size ×3 and more kv heads", { operator: "direct", hidden_size: 96, num_attention_heads: 4, num_key_value_heads: 4 }],
  ["direct: GQA groups of 2 → MHA", { operator: "direct", hidden_size: 64, num_attention_heads: 8, num_key_value_heads: 8 }],
  ["direct: groups of 2 → 4", { operator: "direct", hidden_size: 64, num_attention_heads: 8, num_key_value_heads: 2 }],
  ["direct: intermediate 40 → 77", { operator: "direct", intermediate_size: 77 }],
  ["zero: hidden and intermediate (new kv groups)", { operator: "zero", hidden_size: 64, intermediate_size: 77 }],
  ["zero: head size ×2", { operator: "zero", hidden_size: 64, num_attention_heads: 4 }],
  ["zero: groups of 2 → 4", { operator: "zero", hidden_size: 64, num_attention_heads: 8, num_key_value_heads: 2 }],
];

describe("width growth preserves the function exactly where promised", () => {
  test.each(EXACT_CASES.flatMap(([name, options]) => [false, true].map((tied) => [`${name}${tied ? ", tied embeddings" : ""}`, options, tied] as const)))(
    "%s",
    (_, options, tied) => {
      const config = smallConfig({ tie_word_embeddings: tied });
      const source = sourceModel(config);
      const plan = planGrowth(config, { width: options });
      expect(plan.functionPreserving).toBe(true);
      const grown = growModel(source, plan);
      const seqs = sequences(config.vocab_size);
      const err = scoreError(scoreSequences(grown, seqs).tokenLogprobs, scoreSequences(source, seqs).tokenLogprobs);
      expect(err, `relative score error ${err}`).toBeLessThanOrEqual(PRESERVED_RTOL);
      grown.dispose();
      source.dispose();
    },
  );

  test("a multi-query source (one kv head) grows exactly too", () => {
    const config = smallConfig({ num_key_value_heads: 1 });
    const source = sourceModel(config);
    const grown = growModel(source, planGrowth(config, { width: { operator: "direct", hidden_size: 64, num_attention_heads: 8, num_key_value_heads: 2 } }));
    const seqs = sequences(config.vocab_size);
    expect(scoreError(scoreSequences(grown, seqs).tokenLogprobs, scoreSequences(source, seqs).tokenLogprobs)).toBeLessThanOrEqual(PRESERVED_RTOL);
  });

  test("plain copies (α = 1, readers split 1/n) are exact for uniform duplication only: that is why growlm scales copies", () => {
    const config = smallConfig();
    const source = sourceModel(config);
    const seqs = sequences(config.vocab_size);
    const base = scoreSequences(source, seqs).tokenLogprobs;
    const errors = [64, 48].map((hidden) => {
      const plan = planGrowth(config, { width: { operator: "direct", hidden_size: hidden } });
      const { residualWrite, residualRead } = plan.maps;
      const copies = new Map<number, number>();
      for (const s of residualWrite.source) copies.set(s, (copies.get(s) ?? 0) + 1);
      for (let j = 0; j < hidden; j++) {
        residualWrite.scale[j] = 1;
        residualRead.scale[j] = 1 / copies.get(residualWrite.source[j]!)!;
      }
      const grown = growModel(source, plan);
      const err = scoreError(scoreSequences(grown, seqs).tokenLogprobs, base);
      grown.dispose();
      return err;
    });
    expect(errors[0]).toBeLessThanOrEqual(PRESERVED_RTOL); // 32 → 64: every unit twice, the RMS is kept
    expect(errors[1]).toBeGreaterThan(1e-3); // 32 → 48: half the units twice, the RMS over 48 units differs
  });
});

describe("width growth: maps", () => {
  test("uniform ×2 is Net2WiderNet: written copies ×1, read copies ×1/2, down_proj columns ×1/2", () => {
    const plan = planGrowth(smallConfig(), { width: { operator: "direct", hidden_size: 64, intermediate_size: 80 } });
    const m = plan.maps;
    expect(Array.from(m.residualWrite.source)).toEqual(Array.from({ length: 64 }, (_, j) => j % 32));
    expect(new Set(m.residualWrite.scale)).toEqual(new Set([1]));
    expect(new Set(m.residualRead.scale)).toEqual(new Set([0.5]));
    expect(new Set(m.layerNorm.scale)).toEqual(new Set([1]));
    expect(new Set(m.ffnIn.scale)).toEqual(new Set([1]));
    expect(new Set(m.ffnOut.scale)).toEqual(new Set([0.5]));
    // Gradients at growth: the written rows see half the source's gradient, the split readers all of it.
    expect(new Set(m.residualWrite.gradScale)).toEqual(new Set([0.5]));
    expect(new Set(m.residualRead.gradScale)).toEqual(new Set([1]));
  });

  test.each([48, 40, 34])("non-uniform 32 → %i: Σα² = C'/C and Σα·β = 1 over each unit's copies", (hidden) => {
    for (const selection of ["cyclic", "random"] as const) {
      // Head size 2, so that any even hidden size is a whole number of heads.
      const { residualWrite: w, residualRead: r } = planGrowth(smallConfig({ num_attention_heads: 16, num_key_value_heads: 16 }), {
        width: { operator: "direct", hidden_size: hidden, selection },
      }).maps;
      const sumSq = new Float64Array(32);
      const sumAB = new Float64Array(32);
      for (let j = 0; j < hidden; j++) {
        const c = w.source[j]!;
        sumSq[c] = sumSq[c]! + w.scale[j]! ** 2;
        sumAB[c] = sumAB[c]! + w.scale[j]! * r.scale[j]!;
      }
      for (let c = 0; c < 32; c++) {
        expect(Math.abs(sumSq[c]! - hidden / 32), `${selection} unit ${c}`).toBeLessThan(SUM_TOL);
        expect(Math.abs(sumAB[c]! - 1), `${selection} unit ${c}`).toBeLessThan(SUM_TOL);
      }
    }
  });

  test("kv groups grow as groups: a query head's copy reads a copy of its source's kv head", () => {
    const config = smallConfig(); // 4 heads, 2 kv heads: groups {0, 1} and {2, 3}
    const direct = planGrowth(config, { width: { operator: "direct", hidden_size: 64 } }).maps;
    expect(Array.from(direct.kvHeads)).toEqual([0, 1, 0, 1]);
    expect(Array.from(direct.heads)).toEqual([0, 1, 2, 3, 0, 1, 2, 3]);
    const zero = planGrowth(config, { width: { operator: "zero", hidden_size: 64 } }).maps;
    expect(Array.from(zero.kvHeads)).toEqual([0, 1, -1, -1]);
    expect(Array.from(zero.heads)).toEqual([0, 1, 2, 3, -1, -1, -1, -1]);
    const wider = planGrowth(config, { width: { operator: "direct", hidden_size: 64, num_attention_heads: 8, num_key_value_heads: 2 } }).maps;
    expect(Array.from(wider.heads)).toEqual([0, 1, 0, 1, 2, 3, 2, 3]);
    const mha = planGrowth(config, { width: { operator: "direct", hidden_size: 64, num_attention_heads: 8, num_key_value_heads: 8 } }).maps;
    expect(Array.from(mha.kvHeads)).toEqual([0, 1, 0, 1, 0, 1, 0, 1]);
    expect(Array.from(mha.heads)).toEqual([0, 2, 1, 3, 0, 2, 1, 3]);
    for (const maps of [direct, wider, mha]) {
      const group = 2;
      const group2 = maps.heads.length / maps.kvHeads.length;
      maps.heads.forEach((h, t) => expect(Math.floor(h / group), `head ${t}`).toBe(maps.kvHeads[Math.floor(t / group2)]));
    }
  });

  test("a larger head keeps every RoPE pair: old pair i (dims i, i + D/2) sits at pair m·i", () => {
    const config = smallConfig(); // D = 8
    const plan = planGrowth(config, { width: { operator: "direct", hidden_size: 64, num_attention_heads: 4 } }); // D' = 16
    expect(Array.from(plan.maps.headDims)).toEqual([0, -1, 1, -1, 2, -1, 3, -1, 4, -1, 5, -1, 6, -1, 7, -1]);
    const q = plan.maps.query;
    expect(q.scale[0]).toBeCloseTo(Math.SQRT2, 15);
    expect(q.newZero[1]).toBe(1); // a new dimension's query row is zero: the scores do not change
    expect(plan.maps.attentionOutput.newZero[1]).toBe(1); // and o_proj ignores its output
    expect(plan.maps.keyValue.newZero[1]).toBe(0); // keys and values there start from the initialisation
  });

  test("a tied head moves the readers' correction into model.norm (×C/C')", () => {
    const tied = planGrowth(smallConfig({ tie_word_embeddings: true }), { width: { operator: "direct", hidden_size: 48 } }).maps;
    expect(new Set(tied.finalNorm.scale)).toEqual(new Set([32 / 48]));
    const untied = planGrowth(smallConfig(), { width: { operator: "direct", hidden_size: 48 } }).maps;
    expect(new Set(untied.finalNorm.scale)).toEqual(new Set([1]));
  });

  test("random keeps every old weight unchanged in place and draws everything else from the target's initialisation", () => {
    const config = smallConfig();
    const source = sourceModel(config);
    const plan = planGrowth(config, { width: { operator: "random", hidden_size: 64, num_attention_heads: 4, intermediate_size: 50 }, seed: 3 });
    expect(plan.functionPreserving).toBe(false);
    const grown = growModel(source, plan);
    const init = new LlamaModel(plan.target);
    init.initialize(3);
    const D = headDim(config);
    const D2 = headDim(plan.target);
    for (const e of grown.layout.entries) {
      const g = grown.param(e.name).data;
      const fresh = init.param(e.name).data;
      const s = source.param(e.name).data;
      const [rows, cols = 1] = e.shape as [number, number?];
      const [srcRows, srcCols = 1] = source.layout.entry(e.name).shape as [number, number?];
      // Rows that are head-major (q/k/v) hold old dims at even positions; the rest keep their index.
      const oldRow = (r: number): number => {
        if (!["q_proj", "k_proj", "v_proj"].includes(e.kind)) return r < srcRows ? r : -1;
        const [h, d] = [Math.floor(r / D2), r % D2];
        const sd = d % 2 === 0 ? (d < D2 / 2 ? d / 2 : (d - D2 / 2) / 2 + D / 2) : -1;
        return sd >= 0 && h * D + sd < srcRows ? h * D + sd : -1;
      };
      const oldCol = (c: number): number => {
        if (e.kind !== "o_proj") return c < srcCols ? c : -1;
        const [h, d] = [Math.floor(c / D2), c % D2];
        const sd = d % 2 === 0 ? (d < D2 / 2 ? d / 2 : (d - D2 / 2) / 2 + D / 2) : -1;
        return sd >= 0 && h * D + sd < srcCols ? h * D + sd : -1;
      };
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const [sr, sc] = [oldRow(r), oldCol(c)];
          const expected = sr >= 0 && sc >= 0 ? s[sr * srcCols + sc]! : fresh[r * cols + c]!;
          if (g[r * cols + c] !== expected) expect(g[r * cols + c], `${e.name}[${r}, ${c}]`).toBe(expected);
        }
      }
    }
    expectBitwiseEqual(grown.param("model.norm.weight").data.subarray(0, 32), source.param("model.norm.weight").data, "old final gains");
    for (const m of [grown, init, source]) m.dispose();
  });
});

describe("width growth: configs and refusals", () => {
  const config = smallConfig(); // C 32, H 4, Hkv 2, D 8, I 40

  test("heads are added at the same head size by default, keeping the group size", () => {
    const t = widthTargetConfig(config, { operator: "direct", hidden_size: 48 });
    expect([t.hidden_size, t.num_attention_heads, t.num_key_value_heads, headDim(t)]).toEqual([48, 6, 3, 8]);
    const d = widthTargetConfig(config, { operator: "zero", hidden_size: 64, num_attention_heads: 4 });
    expect([d.num_attention_heads, d.num_key_value_heads, headDim(d)]).toEqual([4, 2, 16]);
  });

  test.each([
    ["a smaller hidden size", { operator: "direct", hidden_size: 16 }, /hidden_size 16 is smaller than the source's 32: growth cannot shrink/],
    ["a smaller intermediate size", { operator: "direct", intermediate_size: 20 }, /intermediate_size 20 is smaller than the source's 40/],
    ["a hidden size off the head size", { operator: "direct", hidden_size: 36 }, /hidden_size 36 is not a multiple of the head size 8: give num_attention_heads/],
    ["a head size that is not a multiple", { operator: "direct", hidden_size: 48, num_attention_heads: 4 }, /head size would go from 8 to 12 .* integer factor/],
    ["fewer heads", { operator: "direct", hidden_size: 64, num_attention_heads: 2 }, /num_attention_heads 2 is smaller than the source's 4/],
    ["an odd head count for the group size", { operator: "direct", hidden_size: 40 }, /num_attention_heads 5 is not a multiple of the source's group size 2.*give num_key_value_heads/],
    ["kv heads that do not divide", { operator: "direct", hidden_size: 64, num_key_value_heads: 3 }, /num_key_value_heads 3 does not divide num_attention_heads 8/],
    ["fewer kv heads", { operator: "direct", hidden_size: 64, num_attention_heads: 8, num_key_value_heads: 1 }, /num_key_value_heads 1 is smaller than the source's 2/],
    ["zero with smaller groups", { operator: "zero", hidden_size: 64, num_attention_heads: 8, num_key_value_heads: 8 }, /operator "zero" keeps the source's kv groups in place, so the group size .* cannot shrink from 2 to 1/],
    ["an unknown operator", { operator: "split", hidden_size: 64 }, /unknown width operator "split"; expected one of direct, zero, random/],
    ["an unknown selection", { operator: "direct", hidden_size: 64, selection: "left" }, /unit selection must be one of cyclic, random/],
  ])("refuses %s", (_, options, message) => {
    expect(() => widthTargetConfig(config, options as WidthGrowthOptions)).toThrow(message);
  });

  test("groups too small to hold every source head are refused", () => {
    const gqa = smallConfig({ num_attention_heads: 8, num_key_value_heads: 2 }); // two groups of 4, head size 4
    // 4 kv heads of 3: each source group is copied twice, 6 places for its 4 heads.
    expect(() => widthTargetConfig(gqa, { operator: "direct", hidden_size: 48, num_attention_heads: 12, num_key_value_heads: 4 })).not.toThrow();
    // 3 kv heads of 3: source group 1 is copied once, 3 places for 4 heads.
    expect(() => widthTargetConfig(gqa, { operator: "direct", hidden_size: 36, num_attention_heads: 9, num_key_value_heads: 3 })).toThrow(
      /with 3 kv heads of 3 query heads each, some of the source's 4 query heads per kv head would get no copy/,
    );
  });

  test("a growth that changes nothing is refused; an operator on an unchanged dimension does nothing", () => {
    expect(() => planGrowth(config, { width: { operator: "direct" } })).toThrow(/the target equals the source: nothing grows/);
    expect(() => planGrowth(config, { depth: { operator: "stack", factor: 1 } })).toThrow(/the target equals the source: nothing grows/);
    expect(() => planGrowth(config, {})).toThrow(/nothing to grow/);
    const plan = planGrowth(config, { depth: { operator: "zero", factor: 2 }, width: { operator: "random" } });
    expect(plan.widthOperator).toBeNull();
    expect(plan.functionPreserving).toBe(true);
    expect(plan.maps.residualWrite.identity && plan.maps.query.identity && plan.maps.ffnOut.identity).toBe(true);
  });
});
