/** Parameter drift between checkpoints: exact zeros against itself, hand-computed measures, grown models mapped to their sources. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterAll, beforeAll, describe, expect, test } from "vitest";

import { diffCheckpoints, driftHeatmap, measures, summarizeDrift, tensorSums } from "../../src/continual/drift.js";
import { growCheckpoint } from "../../src/growth/checkpoint.js";
import { layerParamName } from "../../src/model/params.js";
import { loadPretrained, savePretrained } from "../../src/model/pretrained.js";
import { expectClose } from "../helpers/reference.js";
import { writeTinyModel } from "../helpers/tiny-finetune.js";

// Group measures are float64 sums over float32 values: only float64 rounding differs from the hand values.
const SUM_RTOL = 1e-12;

describe("growlm diff (diffCheckpoints)", () => {
  let dir: string;
  const at = (...p: string[]): string => path.join(dir, ...p);
  /** Copies folder `from` to `to` with `edit` applied to the loaded model, recording `from` as its parent (as finetune does). */
  const edited = (from: string, to: string, edit: (params: (name: string) => Float32Array) => void): void => {
    const m = loadPretrained(at(from));
    edit((name) => m.param(name).data as Float32Array);
    m.markParamsChanged();
    m.config.metadata._name_or_path = at(from);
    savePretrained(m, at(to));
    m.dispose();
  };
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-drift-"));
    await writeTinyModel(at("a"), 1);
    growCheckpoint(at("a"), at("grown"), { depth: { operator: "stack", factor: 2 } });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("a checkpoint against itself is exactly zero change, cosine exactly 1", () => {
    const r = diffCheckpoints(at("a"), at("a"));
    expect(r.reference).toBe("a");
    expect(r.growthRecord).toBeNull();
    for (const m of [...r.tensors, ...r.layers, ...r.modules, r.overall]) {
      expect(m.relL2).toBe(0);
      expect(m.maxAbs).toBe(0);
      expect(m.normDiff).toBe(0);
      expect(m.cosine).toBe(1);
    }
    expect(r.grid.flat().every((v) => v === 0)).toBe(true);
    expect(r.tensors.map((t) => t.name)).toContain("model.layers.1.mlp.down_proj.weight");
  });

  test("measures of a known change: one tensor scaled by 1.5 and one entry of another shifted", () => {
    const q1 = layerParamName(1, "q_proj");
    const n0 = layerParamName(0, "input_layernorm");
    edited("a", "b", (p) => {
      p(q1).forEach((v, i, x) => (x[i] = v * 1.5));
      p(n0)[3] = p(n0)[3]! + 0.25;
    });
    const r = diffCheckpoints(at("a"), at("b"));
    const m = loadPretrained(at("a"));
    const q = m.param(q1).data as Float32Array;
    const byName = new Map(r.tensors.map((t) => [t.name, t]));
    const tq = byName.get(q1)!;
    expectClose([tq.relL2, tq.cosine], [0.5, 1], 1e-7, "q_proj ×1.5");
    expect(tq.maxAbs).toBe(Math.max(...Array.from(q, (v) => Math.abs(Math.fround(v * 1.5) - v))));
    const tn = byName.get(n0)!;
    expect(tn.maxAbs).toBeCloseTo(0.25, 6);
    expect(byName.get(layerParamName(0, "q_proj"))!.relL2).toBe(0);
    // Layer 1's aggregate is the concatenated layer's: ‖Δq‖ / ‖layer 1‖.
    let layerSq = 0;
    let dq = 0;
    for (const e of m.layout.entries.filter((x) => x.layer === 1)) for (const v of m.param(e.name).data) layerSq += v * v;
    for (const v of q) dq += (Math.fround(v * 1.5) - v) ** 2;
    expectClose([r.layers[1]!.relL2], [Math.sqrt(dq / layerSq)], SUM_RTOL, "layer 1");
    const qModule = r.modules.find((x) => x.module === "q_proj")!;
    let qSq = 0;
    for (const l of [0, 1]) for (const v of m.param(layerParamName(l, "q_proj")).data) qSq += v * v;
    expectClose([qModule.relL2], [Math.sqrt(dq / qSq)], SUM_RTOL, "q_proj module");
    expect(r.grid[1]![0]).toBe(tq.relL2);
    expect(r.grid[0]![0]).toBe(0);
    expect(driftHeatmap(r, "t")).toContain("<svg");
    expect(summarizeDrift(r).modules.q_proj).toBe(qModule.relL2);
    m.dispose();
  });

  test("a grown model maps every layer to its source: against the source it is exactly zero, and copies start equal", () => {
    const r = diffCheckpoints(at("a"), at("grown"));
    expect(r.reference).toBe("grown-a");
    expect(r.growthRecord).toBe(at("grown", "growth.json"));
    expect(r.layerSources).toEqual([0, 1, 0, 1]);
    expect(r.layers.map((l) => l.sourceLayer)).toEqual([0, 1, 0, 1]);
    expect(r.overall.relL2).toBe(0);
    expect(r.overall.cosine).toBe(1);
    expect(r.copies.map((c) => [c.sourceLayer, c.layers])).toEqual([[0, [0, 2]], [1, [1, 3]]]);
    for (const c of r.copies) {
      expect(c.b.relL2).toBe(0);
      expect(c.reference.relL2).toBe(0);
    }
    expect(summarizeDrift(r).copyDivergence).toBe(0);
  });

  test("a copy that moved shows up against its source, against the grown base, and against its twin", () => {
    const o2 = layerParamName(2, "o_proj");
    edited("grown", "trained", (p) => p(o2).forEach((v, i, x) => (x[i] = v + 0.01 * ((i % 7) - 3))));
    // The grown base against the trained model: growth.json is A's (B's lineage), shapes equal.
    const fromBase = diffCheckpoints(at("grown"), at("trained"));
    expect(fromBase.reference).toBe("a");
    expect(fromBase.growthRecord).toBe(at("grown", "growth.json"));
    expect(fromBase.layers.map((l) => l.relL2 > 0)).toEqual([false, false, true, false]);
    const [pair0, pair1] = fromBase.copies;
    expect(pair0!.b.relL2).toBeGreaterThan(0);
    expect(pair0!.reference.relL2).toBe(0);
    expect(pair0!.modules.o_proj).toBeGreaterThan(0);
    expect(pair0!.modules.q_proj).toBe(0);
    expect(pair1!.b.relL2).toBe(0);
    // The small source against the trained model (growth.json up B's lineage): the same numbers through the growth plan.
    const fromSource = diffCheckpoints(at("a"), at("trained"));
    expect(fromSource.reference).toBe("grown-a");
    expect(fromSource.overall).toEqual(fromBase.overall);
    expect(fromSource.copies).toEqual(fromBase.copies);
    // An explicit record (here the grown folder) is taken as given.
    expect(diffCheckpoints(at("a"), at("trained"), { growthRecord: at("grown") }).overall).toEqual(fromBase.overall);
  });

  test("tensorSums and measures: zero tensors and the cosine of opposite tensors", () => {
    const z = new Float32Array(4);
    expect(measures(tensorSums(z, z))).toMatchObject({ relL2: 0, maxAbs: 0 });
    expect(measures(tensorSums(z, Float32Array.from([1, 0, 0, 0]))).relL2).toBe(Infinity);
    expect(measures(tensorSums(z, z)).cosine).toBeNaN();
    const x = Float32Array.from([1, -2, 3, 0.5]);
    expectClose([measures(tensorSums(x, x.map((v) => -v))).cosine, measures(tensorSums(x, x.map((v) => -v))).relL2], [-1, 2], SUM_RTOL, "opposite");
  });

  test("refusals name the folders, shapes and the growth record", async () => {
    await writeTinyModel(at("wide"), 2, { hidden_size: 64, num_attention_heads: 8 });
    expect(() => diffCheckpoints(at("a"), at("wide"))).toThrow(/a \(2 layers, hidden 32, intermediate 48, 4\/2 heads\) and .*wide \(2 layers, hidden 64, .*\) differ in shape; give --growth_record for a grown model/);
    expect(() => diffCheckpoints(at("wide"), at("grown"))).toThrow(/wide \(2 layers, hidden 64.*\) is neither the source of .*growth\.json \(2 layers, hidden 32.*\) nor shaped like .*grown/);
    expect(() => diffCheckpoints(at("a"), at("a"), { growthRecord: at("grown") })).toThrow(/growth\.json grows to 4 layers, .* but .*a has 2 layers/);
    fs.writeFileSync(at("bad.json"), JSON.stringify({ layers: [] }));
    expect(() => diffCheckpoints(at("a"), at("grown"), { growthRecord: at("bad.json") })).toThrow(/bad\.json is not a growlm growth record \(expected source_config, options and layers\)/);
    expect(() => diffCheckpoints(at("a"), at("nowhere"))).toThrow(/nowhere\/config\.json/);
  });
});
