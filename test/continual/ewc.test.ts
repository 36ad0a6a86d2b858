/** EWC: the penalty and its gradient through the trainer, the Fisher estimates, the Fisher files. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test } from "vitest";

import type { TokenizedExample } from "../../src/data/collator.js";
import { collate } from "../../src/data/collator.js";
import { EWC_FISHER_NAME, EwcRegularizer, accumulateFisher, estimateFisher, readFisher, sampledLabelGradient, writeFisher } from "../../src/continual/ewc.js";
import { writeSafetensors } from "../../src/io/safetensors.js";
import { parseLlamaConfig } from "../../src/model/config.js";
import { LlamaModel } from "../../src/model/llama.js";
import { savePretrained } from "../../src/model/pretrained.js";
import { Tensor } from "../../src/tensor.js";
import { Trainer } from "../../src/train/trainer.js";
import { expectBitwiseEqual, expectClose, randomF32, randomInts, rng } from "../helpers/reference.js";
import { TINY_CONFIG } from "../helpers/tiny-finetune.js";

// The kernel rounds θ − θ* and each product to float32 (2^-24 relative each), and θ ± h lands
// on the nearest float32 (2^-24·|θ|/h = 2e-6 relative in the step at h = 0.01 and |θ| < 0.4).
const FD_RTOL = 1e-5;
// The Fisher accumulates fl(scale·fl(g²)) in float32 over 6 examples: a few ulps each.
const FISHER_RTOL = 1e-6;

const f = Math.fround;

function tinyModel(seed: number): LlamaModel {
  const model = new LlamaModel(parseLlamaConfig(TINY_CONFIG));
  model.initialize(seed);
  return model;
}

/** Examples of random tokens whose second half counts. */
function randomExamples(n: number, seed: number): TokenizedExample[] {
  const next = rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const T = 6 + Math.floor(next() * 6);
    const ids = Array.from(randomInts(T, seed * 100 + i, 256));
    return { ids, labels: ids.map((id, t) => (t < T / 2 ? -100 : id)) };
  });
}

describe("EWC", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-ewc-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("the penalty and its gradient match central finite differences", () => {
    const model = tinyModel(1);
    const n = model.layout.numel;
    model.params.data.set(randomF32(n, 2, -0.4, 0.4));
    const shift = randomF32(n, 5, -0.05, 0.05);
    const anchor = Tensor.from(Float32Array.from(model.params.data, (p, i) => p + shift[i]!));
    const fisher = Tensor.from(randomF32(n, 3, 0, 2));
    const lambda = 7;
    const ewc = new EwcRegularizer(model, anchor, Tensor.from(fisher.data), lambda);
    model.zeroGrad();
    const value = ewc.addGradient();
    let exact = 0;
    for (let i = 0; i < n; i++) exact += fisher.data[i]! * (model.params.data[i]! - anchor.data[i]!) ** 2;
    expectClose([value], [(lambda / 2) * exact], 1e-6, "penalty");
    const grads = Float32Array.from(model.grads.data);
    const h = 0.01;
    const pick = randomInts(40, 4, n);
    const fd: number[] = [];
    const analytic: number[] = [];
    for (const i of pick) {
      const theta = model.params.data[i]!;
      model.params.data[i] = theta + h;
      const stepUp = model.params.data[i]! - theta;
      const up = ewc.addGradient();
      model.params.data[i] = theta - h;
      const stepDown = theta - model.params.data[i]!;
      const down = ewc.addGradient();
      model.params.data[i] = theta;
      fd.push((up - down) / (stepUp + stepDown));
      analytic.push(grads[i]!);
    }
    expectClose(analytic, fd, FD_RTOL, "∂penalty/∂θ vs finite differences");
    ewc.dispose();
    model.dispose();
    anchor.dispose();
    fisher.dispose();
  });

  test("inside a training step the gradient is the NLL's plus λ·F·(θ − θ*) before clipping and the update", () => {
    const examples = randomExamples(3, 5);
    const batch = collate(examples, 258);
    const naive = tinyModel(6);
    const regularised = tinyModel(6);
    const anchor = Tensor.from(randomF32(naive.layout.numel, 7, -0.02, 0.02));
    const fisher = Tensor.from(randomF32(naive.layout.numel, 8, 0, 1));
    const ewc = new EwcRegularizer(regularised, Tensor.from(anchor.data), Tensor.from(fisher.data), 3);
    const options = { schedule: { type: "constant" as const, learningRate: 1e-3, totalSteps: 1 }, optimizer: { maxGradNorm: 0 } };
    const a = new Trainer(naive, options);
    const b = new Trainer(regularised, options);
    const params = Float32Array.from(regularised.params.data);
    a.trainStep([batch]);
    b.trainStep([batch], { addParameterTerm: () => void ewc.addGradient() });
    const expected = Float32Array.from(naive.grads.data, (g, i) => f(g + f(f(f(3) * fisher.data[i]!) * f(params[i]! - anchor.data[i]!))));
    expectBitwiseEqual(regularised.grads.data, expected, "grads = NLL grads + λF(θ − θ*)");
    for (const t of [a, b]) t.dispose();
    for (const m of [naive, regularised]) m.dispose();
    ewc.dispose();
    anchor.dispose();
    fisher.dispose();
  });

  test("the empirical Fisher (true labels) is the mean squared per-example gradient", () => {
    const model = tinyModel(9);
    const examples = randomExamples(6, 10);
    const { fisher, examples: used, tokens } = estimateFisher(model, examples, { labels: "true", samples: 100, seed: 1 });
    expect(used).toBe(6);
    expect(tokens).toBe(examples.reduce((s, e) => s + e.labels.slice(1).filter((l) => l !== -100).length, 0));
    const expected = new Float64Array(model.layout.numel);
    for (const e of examples) {
      model.zeroGrad();
      model.forwardBackward(Tensor.from(e.ids, [1, e.ids.length], "int32"), Tensor.from(e.labels, [1, e.ids.length], "int32"));
      for (let i = 0; i < expected.length; i++) expected[i] = expected[i]! + model.grads.data[i]! ** 2 / examples.length;
    }
    expectClose(fisher.data, expected, FISHER_RTOL, "Fisher vs mean of squared gradients");
    fisher.dispose();
    model.dispose();
  });

  test("the true Fisher (sampled labels) is deterministic for a seed, differs between seeds, and samples from the model", () => {
    const model = tinyModel(11);
    const examples = randomExamples(8, 12);
    const a = estimateFisher(model, examples, { labels: "sampled", samples: 5, seed: 3 });
    const b = estimateFisher(model, examples, { labels: "sampled", samples: 5, seed: 3 });
    const c = estimateFisher(model, examples, { labels: "sampled", samples: 5, seed: 4 });
    const t = estimateFisher(model, examples, { labels: "true", samples: 5, seed: 3 });
    expect(a.examples).toBe(5);
    expectBitwiseEqual(a.fisher.data, b.fisher.data, "same seed");
    expect(a.fisher.data.some((v, i) => v !== c.fisher.data[i])).toBe(true);
    expect(a.fisher.data.some((v, i) => v !== t.fisher.data[i])).toBe(true);
    expect(a.fisher.data.every((v) => v >= 0 && Number.isFinite(v))).toBe(true);
    for (const x of [a, b, c, t]) x.fisher.dispose();
    model.dispose();

    // The sampler draws each target with its softmax probability: frequencies of 4000 draws
    // of one row (standard deviation below 0.008; 0.03 is about 4 of them).
    const z = Float32Array.from([1, 0, 2, -1, 0.5]);
    const p = Array.from(z, (v) => Math.exp(v));
    const total = p.reduce((s, v) => s + v, 0);
    const draws = randomF32(4000, 13, 0, 1);
    const freq = new Array<number>(5).fill(0);
    const grad = new Float32Array(5);
    for (let k = 0; k < draws.length; k++) {
      grad.fill(0);
      sampledLabelGradient(Uint8Array.from([1]), draws.subarray(k, k + 1), 1, 5)(0, 1, z, grad);
      // softmax − onehot: the sampled target is the one entry below 0.
      freq[grad.findIndex((g) => g < 0)]! += 1 / draws.length;
      expectClose(grad.map((g) => (g < 0 ? g + 1 : g)), p.map((v) => v / total), 1e-6, "softmax part");
    }
    for (let j = 0; j < 5; j++) expect(Math.abs(freq[j]! - p[j]! / total)).toBeLessThan(0.03);
  });

  test("Fisher files: round trip, online accumulation, and refusals by file and tensor", () => {
    const model = tinyModel(14);
    const F = Tensor.from(randomF32(model.layout.numel, 15, 0, 1));
    for (const e of model.layout.entries) F.data.fill(0, e.offset + e.numel, e.offset + Math.ceil(e.numel / 16) * 16);
    writeFisher(dir, model.layout, F, { stages: 2, labels: "sampled", decay: 0.5 });
    const back = readFisher(dir, model.layout)!;
    expect(back.record).toEqual({ stages: 2, labels: "sampled", decay: 0.5 });
    expectBitwiseEqual(back.fisher.data, F.data, "Fisher read back");
    expect(readFisher(path.join(dir, "nowhere"), model.layout)).toBeNull();

    const stage = Tensor.from(randomF32(model.layout.numel, 16, 0, 1));
    const expected = Float32Array.from(stage.data, (v, i) => f(v + f(F.data[i]! * 0.5)));
    accumulateFisher(stage, F, 0.5);
    expectBitwiseEqual(stage.data, expected, "F ← γ·F_before + F_stage");

    const other = new LlamaModel(parseLlamaConfig({ ...TINY_CONFIG, hidden_size: 16, num_attention_heads: 2, num_key_value_heads: 1 }));
    expect(() => readFisher(dir, other.layout)).toThrow(new RegExp(`${EWC_FISHER_NAME}: tensor "model.embed_tokens.weight" has shape \\[259, 32\\] but the model's is \\[259, 16\\]`));
    const deeper = new LlamaModel(parseLlamaConfig({ ...TINY_CONFIG, num_hidden_layers: 3 }));
    expect(() => readFisher(dir, deeper.layout)).toThrow(/has no tensor "model\.layers\.2\.self_attn\.q_proj\.weight": it was estimated for another model shape/);
    writeSafetensors(path.join(dir, EWC_FISHER_NAME), [{ name: "x", shape: [1], data: new Float32Array(1) }], { dtype: "F32" });
    expect(() => readFisher(dir, model.layout)).toThrow(/is not a growlm EWC Fisher/);
    expect(() => estimateFisher(model, [{ ids: [1, 2], labels: [-100, -100] }], { labels: "true", samples: 4, seed: 1 })).toThrow(/no example has a label that counts/);
    expect(() => estimateFisher(model, randomExamples(2, 17), { labels: "true", samples: 0, seed: 1 })).toThrow(/samples must be a positive integer but is 0/);

    // EwcRegularizer.open: θ* is the folder's weights, F its Fisher.
    savePretrained(model, dir);
    writeFisher(dir, model.layout, F, { stages: 1, labels: "true", decay: 1 });
    const opened = EwcRegularizer.open(model, dir, 2)!;
    expectBitwiseEqual(opened.regularizer.anchor.data, model.params.data, "θ* from the folder");
    expect(opened.record.stages).toBe(1);
    expect(opened.regularizer.addGradient()).toBe(0);
    opened.regularizer.dispose();
    for (const t of [F, stage, back.fisher]) t.dispose();
    for (const m of [model, other, deeper]) m.dispose();
  });
});
