/**
 * Growth in the middle of training: the optimizer-state policies (reset; carry with the moments
 * mapped, checked against the grown model's own gradients), the schedule policies, MSG masks
 * during training, and resuming a grown run from a checkpoint.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { describe, expect, test } from "vitest";

import { growMoment, planGrowth, type GrowthOptions } from "../../src/growth/plan.js";
import { BranchMask, growModel, growTrainer } from "../../src/growth/schedule.js";
import type { LlamaModel } from "../../src/model/llama.js";
import { Tensor } from "../../src/tensor.js";
import { loadTrainingCheckpoint, saveTrainingCheckpoint } from "../../src/train/checkpoint.js";
import type { LrScheduleConfig } from "../../src/train/lr.js";
import { Trainer } from "../../src/train/trainer.js";
import { BASE_SEED, expectBitwiseEqual, expectClose, randomInts } from "../helpers/reference.js";
import { smallConfig, sourceModel } from "./source.js";

/** Gradients through a grown model against the mapped source gradients: float32 rounding of scaled copies, through a backward. */
const GRAD_RTOL = 1e-4;
/** A loss computed by two function-preserving models: float32 rounding. */
const LOSS_RTOL = 1e-5;

const SCHEDULE: LrScheduleConfig = { type: "cosine", learningRate: 1e-2, totalSteps: 20, warmupSteps: 2 };
const GROWTH_STEP = 5;

function batch(seed: number, V: number): { ids: Tensor; labels: Tensor } {
  const ids = Tensor.from(randomInts(2 * 12, seed, V), [2, 12], "int32");
  return { ids, labels: ids };
}

/** A trainer that has taken GROWTH_STEP steps (and drawn from its random stream). */
function trainedTrainer(fields: Record<string, unknown> = {}): Trainer {
  const config = smallConfig({ initializer_range: 0.06, ...fields });
  const trainer = new Trainer(sourceModel(config), { schedule: SCHEDULE, optimizer: { weightDecay: 0.1 }, seed: 5 });
  for (let s = 0; s < GROWTH_STEP; s++) {
    trainer.rng.uniform(3);
    trainer.trainStep([batch(BASE_SEED + s, config.vocab_size)]);
  }
  return trainer;
}

function view(model: LlamaModel, flat: Tensor<"float32">, name: string): Float32Array {
  const e = model.layout.entry(name);
  return flat.data.subarray(e.offset, e.offset + e.numel);
}

describe("growTrainer: schedule and optimizer policies", () => {
  test.each([
    ["reset", "restart", 0, 0],
    ["reset", "continue", 0, GROWTH_STEP],
    ["carry", "restart", GROWTH_STEP, 0],
    ["carry", "continue", GROWTH_STEP, GROWTH_STEP],
  ] as const)("%s optimizer, %s schedule", (optimizerState, schedule, step, position) => {
    const trainer = trainedTrainer();
    const plan = planGrowth(trainer.model.config, { depth: { operator: "stack", factor: 2 } });
    const grown = growTrainer(trainer, plan, { optimizerState, schedule });
    expect(grown.trainer.step).toBe(step);
    expect(grown.trainer.rng.state()).toEqual(trainer.rng.state());
    expect(grown.mask).toBeNull();
    for (const key of ["beta1", "beta2", "eps", "weightDecay", "maxGradNorm"] as const) expect(grown.trainer.optimizer[key]).toBe(trainer.optimizer[key]);
    const { lr } = grown.trainer.trainStep([batch(BASE_SEED + 50, plan.target.vocab_size)]);
    expect(lr).toBe(grown.trainer.schedule.lr(position));
    expect(grown.trainer.step).toBe(step + 1);
    if (optimizerState === "reset") expect(trainer.optimizer.m.data.some((x) => x !== 0)).toBe(true);
    grown.trainer.dispose();
    grown.model.dispose();
    trainer.dispose();
    trainer.model.dispose();
  });

  test("restart with the grown run's own schedule (the paper: new warmup and length)", () => {
    const trainer = trainedTrainer();
    const plan = planGrowth(trainer.model.config, { depth: { operator: "stack", factor: 2 } });
    const own: LrScheduleConfig = { type: "cosine", learningRate: 3e-3, totalSteps: 100, warmupSteps: 10 };
    const { trainer: grown } = growTrainer(trainer, plan, { schedule: own, optimizerState: "carry" });
    expect(grown.schedule.config).toEqual(own);
    grown.trainStep([batch(BASE_SEED + 51, plan.target.vocab_size)]);
    expect(grown.trainStep([batch(BASE_SEED + 52, plan.target.vocab_size)]).lr).toBe(3e-3 * (1 / 10));
  });

  test("reset starts AdamW afresh; carry keeps its step and maps the moments: depth copies take their source layer's", () => {
    const trainer = trainedTrainer();
    const src = trainer.model;
    const plan = planGrowth(src.config, { depth: { operator: "stack", layers: 5 } });
    const reset = growTrainer(trainer, plan);
    expect(reset.trainer.optimizer.step).toBe(0);
    expect(reset.trainer.optimizer.m.data.every((x) => x === 0) && reset.trainer.optimizer.v.data.every((x) => x === 0)).toBe(true);
    const carry = growTrainer(trainer, plan, { optimizerState: "carry" });
    expect(carry.trainer.optimizer.step).toBe(GROWTH_STEP);
    const grown = carry.model;
    for (const e of grown.layout.entries) {
      const from = e.layer === null ? e.name : e.name.replace(`layers.${e.layer}.`, `layers.${e.layer % 2}.`);
      expectBitwiseEqual(view(grown, carry.trainer.optimizer.m, e.name), view(src, trainer.optimizer.m, from), `exp_avg ${e.name}`);
      expectBitwiseEqual(view(grown, carry.trainer.optimizer.v, e.name), view(src, trainer.optimizer.v, from), `exp_avg_sq ${e.name}`);
    }
  });

  test("carry: zero-output duplicates and random layers start with zero moments", () => {
    const trainer = trainedTrainer();
    for (const depth of [{ operator: "zero", factor: 2 }, { operator: "random", factor: 2 }] as const) {
      const plan = planGrowth(trainer.model.config, { depth });
      const { model, trainer: grown } = growTrainer(trainer, plan, { optimizerState: "carry" });
      for (const e of model.layout.entries.filter((x) => x.layer !== null && plan.layers[x.layer]!.init !== "copy")) {
        expect(view(model, grown.optimizer.m, e.name).every((x) => x === 0), e.name).toBe(true);
        expect(view(model, grown.optimizer.v, e.name).every((x) => x === 0), e.name).toBe(true);
      }
    }
  });

  test("carry, uniform width ×2: copies that see half the gradient take exp_avg/2 and exp_avg_sq/4, split weights the source's, new zero-op units 0", () => {
    const trainer = trainedTrainer();
    const src = trainer.model;
    const plan = planGrowth(src.config, { width: { operator: "direct", hidden_size: 64, intermediate_size: 80 } });
    const { model, trainer: grown } = growTrainer(trainer, plan, { optimizerState: "carry" });
    const m = (t: Trainer, mdl: LlamaModel, name: string) => view(mdl, t.optimizer.m, name);
    const v = (t: Trainer, mdl: LlamaModel, name: string) => view(mdl, t.optimizer.v, name);
    const o = "model.layers.0.self_attn.o_proj.weight"; // rows: residual units (written, copied); columns: head dims (split)
    const q = "model.layers.1.self_attn.q_proj.weight"; // rows: head dims (copied); columns: residual units (read, split)
    const gate = "model.layers.0.mlp.gate_proj.weight"; // rows: FFN units (copied); columns: residual units (read, split)
    // o_proj [64, 64] from [32, 32]: row 40 copies row 8 (½ the gradient), column 36 copies column 4 (head 4 ← head 0; split, full gradient).
    expect(m(grown, model, o)[40 * 64 + 36]).toBe(Math.fround(0.5 * m(trainer, src, o)[8 * 32 + 4]!));
    expect(v(grown, model, o)[40 * 64 + 36]).toBe(Math.fround(0.25 * v(trainer, src, o)[8 * 32 + 4]!));
    // q_proj [64, 64]: row 5 (head 0, duplicated: ½ the gradient), column 33 (reader of unit 1, split: full gradient).
    expect(m(grown, model, q)[5 * 64 + 33]).toBe(Math.fround(0.5 * m(trainer, src, q)[5 * 32 + 1]!));
    expect(m(grown, model, q)[5 * 64 + 1]).toBe(Math.fround(0.5 * m(trainer, src, q)[5 * 32 + 1]!));
    // gate_proj [80, 64]: row 45 copies FFN unit 5 (½ the gradient).
    expect(m(grown, model, gate)[45 * 64 + 3]).toBe(Math.fround(0.5 * m(trainer, src, gate)[5 * 32 + 3]!));
    expect(v(grown, model, gate)[45 * 64 + 3]).toBe(Math.fround(0.25 * v(trainer, src, gate)[5 * 32 + 3]!));

    const zero = planGrowth(src.config, { width: { operator: "zero", hidden_size: 64 } });
    const z = growTrainer(trainer, zero, { optimizerState: "carry" });
    const embed = view(z.model, z.trainer.optimizer.m, "model.embed_tokens.weight");
    for (let row = 0; row < 3; row++) expect(Array.from(embed.subarray(row * 64 + 32, row * 64 + 64)).every((x) => x === 0)).toBe(true);
  });

  const CARRY_CASES: [string, GrowthOptions][] = [
    ["uniform hidden ×2 and FFN", { width: { operator: "direct", hidden_size: 64, intermediate_size: 80 } }],
    ["non-uniform, random selection", { width: { operator: "direct", hidden_size: 48, intermediate_size: 53, selection: "random" } }],
    ["head size ×2", { width: { operator: "direct", hidden_size: 64, num_attention_heads: 4 } }],
    ["larger groups", { width: { operator: "direct", hidden_size: 64, num_attention_heads: 8, num_key_value_heads: 2 } }],
    ["zero", { width: { operator: "zero", hidden_size: 64, intermediate_size: 77 } }],
  ];
  test.each(CARRY_CASES.flatMap(([name, g]) => [false, true].map((tied) => [`${name}${tied ? ", tied" : ""}`, g, tied] as const)))(
    "the carry mapping is the gradient mapping: at growth the grown model's gradient on every copied entry is the mapped source gradient (%s)",
    (_, growth, tied) => {
      const config = smallConfig({ initializer_range: 0.06, tie_word_embeddings: tied });
      const src = sourceModel(config);
      const plan = planGrowth(config, growth);
      const grown = growModel(src, plan);
      const { ids, labels } = batch(BASE_SEED + 60, config.vocab_size);
      src.zeroGrad();
      src.forwardBackward(ids, labels);
      grown.zeroGrad();
      grown.forwardBackward(ids, labels);
      for (const e of grown.layout.entries) {
        const mapped = growMoment(plan, e.name, "exp_avg", (name) => view(src, src.grads, name));
        const copied = growMoment(plan, e.name, "exp_avg", (name) => new Float32Array(src.layout.entry(name).numel).fill(1));
        const actual = view(grown, grown.grads, e.name).filter((_, i) => copied[i] !== 0);
        expectClose(actual, mapped.filter((_, i) => copied[i] !== 0), GRAD_RTOL, e.name);
      }
      src.dispose();
      grown.dispose();
    },
  );
});

describe("growth during training", () => {
  test("function-preserving growth keeps the loss: the first step after zero-depth + direct-width growth sees the source's loss", () => {
    const trainer = trainedTrainer();
    const b = batch(BASE_SEED + 70, trainer.model.config.vocab_size);
    const before = trainer.model.forward(b.ids, { labels: b.labels }).loss;
    const plan = planGrowth(trainer.model.config, { depth: { operator: "zero", factor: 2 }, width: { operator: "direct", hidden_size: 48 } });
    const { trainer: grown } = growTrainer(trainer, plan, { optimizerState: "carry", schedule: "continue" });
    const first = grown.trainStep([b]);
    expect(Math.abs(first.loss - before) / before).toBeLessThan(LOSS_RTOL);
    for (let s = 0; s < 3; s++) expect(Number.isFinite(grown.trainStep([batch(BASE_SEED + 71 + s, plan.target.vocab_size)]).loss)).toBe(true);
  });

  test("MSG masks ramp the new layers in: scale 0 at the first step (the source's loss), s/K after s steps, 1 from K on", () => {
    const trainer = trainedTrainer();
    const b = batch(BASE_SEED + 80, trainer.model.config.vocab_size);
    const before = trainer.model.forward(b.ids, { labels: b.labels }).loss;
    const plan = planGrowth(trainer.model.config, { depth: { operator: "random", layers: 4, maskWarmupSteps: 4 } });
    const grown = growTrainer(trainer, plan, { optimizerState: "carry" });
    const mask = grown.mask!;
    expect(mask.layers).toEqual([2, 3]);
    expect(mask.startStep).toBe(GROWTH_STEP);
    const scales: number[] = [];
    for (let s = 0; s < 6; s++) {
      scales.push(mask.beforeStep(grown.trainer.step));
      expect(grown.model.branchScale(3)).toBe(scales[s]);
      const { loss } = grown.trainer.trainStep([s === 0 ? b : batch(BASE_SEED + 81 + s, plan.target.vocab_size)]);
      if (s === 0) expect(loss).toBe(before);
    }
    expect(scales).toEqual([0, 0.25, 0.5, 0.75, 1, 1]);
    expect(mask.done(grown.trainer.step)).toBe(true);
    expect(grown.model.branchScale(0)).toBe(1);
  });

  test("a grown run resumes from its checkpoint at the same schedule position", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-grow-ckpt-"));
    try {
      const trainer = trainedTrainer();
      const plan = planGrowth(trainer.model.config, { depth: { operator: "stack", factor: 2 } });
      const { trainer: grown } = growTrainer(trainer, plan, { optimizerState: "carry", schedule: "restart" });
      grown.trainStep([batch(BASE_SEED + 90, plan.target.vocab_size)]);
      saveTrainingCheckpoint(dir, grown);
      const { trainer: resumed } = loadTrainingCheckpoint(dir);
      expect(resumed.scheduleOffset).toBe(GROWTH_STEP);
      const next = batch(BASE_SEED + 91, plan.target.vocab_size);
      const a = grown.trainStep([next]);
      const r = resumed.trainStep([next]);
      expect(r.lr).toBe(a.lr);
      expect(r.loss).toBe(a.loss);
      expectBitwiseEqual(resumed.model.params.data, grown.model.params.data, "parameters after the resumed step");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("refuses a model that is not the plan's source, unknown policies and bad masks", () => {
    const trainer = trainedTrainer();
    const other = sourceModel(smallConfig({ hidden_size: 48, num_attention_heads: 6, num_key_value_heads: 3 }));
    const plan = planGrowth(trainer.model.config, { depth: { operator: "stack", factor: 2 } });
    expect(() => growModel(other, plan)).toThrow(/growModel: the model is not the plan's source: hidden_size 48 vs 32/);
    expect(() => growTrainer(trainer, plan, { optimizerState: "keep" as "reset" })).toThrow(/optimizerState must be "reset" or "carry" but is "keep"/);
    expect(() => growTrainer(trainer, plan, { schedule: "rewind" as "restart" })).toThrow(/schedule must be "restart", "continue" or a schedule config/);
    expect(() => new BranchMask(trainer.model, [2], 5, 0)).toThrow(/layer 2 is not a layer of the model \(0\.\.1\)/);
    expect(() => new BranchMask(trainer.model, [1], 0, 0)).toThrow(/warmupSteps must be a positive integer but is 0/);
    expect(() => new Trainer(trainer.model, { schedule: SCHEDULE, scheduleOffset: 3 }).trainStep([batch(1, 61)])).toThrow(/schedule position optimizer\.step − scheduleOffset = 0 − 3 is negative/);
  });
});
