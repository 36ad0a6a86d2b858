/**
 * The continual-learning strategies that touch the model's buffers, on "cuda" (the CUDA
 * kernels: the emulator here, a GPU under bench/gpu/check.sh) against the same runs on the
 * CPU: EWC's penalty and gradient, the Fisher estimate, LwF's teacher pass and distillation
 * term, each inside training steps. The tiny model of model-cases.ts.
 */
import { expect, it } from "vitest";

import { EwcRegularizer, estimateFisher } from "../../src/continual/ewc.js";
import { type TeacherTargets, type TrackedBatch, computeTeacherTargets, distillationTerm } from "../../src/continual/lwf.js";
import type { TokenizedExample } from "../../src/data/collator.js";
import type { LlamaModel } from "../../src/model/llama.js";
import { Tensor } from "../../src/tensor.js";
import { Trainer } from "../../src/train/trainer.js";
import { BASE_SEED, expectClose, randomF32, randomInts, rng } from "../helpers/reference.js";
import { describeCuda } from "../helpers/cuda.js";
import { CONFIG, makeModel } from "./model-cases.js";

// Normwise relative bounds, as test/cuda/model.test.ts states them for the same model: one
// backward compounds the kernels' reordered fp32 sums; three AdamW steps divide by sqrt(v).
const GRADIENT_RTOL = 1e-4;
const TRAINED_RTOL = 1e-3;
// Squared gradients (the Fisher) double the gradients' relative differences.
const FISHER_RTOL = 2 * GRADIENT_RTOL;
// Log-probabilities of the teacher: the forward's differences (2e-5 normwise in logits) over T.
const TEACHER_RTOL = 2e-5;
// A KL between nearby distributions is second order in their difference, so its relative
// difference is about twice the logits' after training steps.
const KL_RTOL = 2 * TRAINED_RTOL;

const T = 7;
const SCHEDULE = { type: "constant" as const, learningRate: 1e-2, totalSteps: 3 };

/** Examples of T tokens whose first 2 labels (the prompt) are ignored. */
function examples(count: number, seed: number): TokenizedExample[] {
  return Array.from({ length: count }, (_, e) => {
    const ids = Array.from(randomInts(T, seed + e, CONFIG.vocab_size));
    return { ids, labels: ids.map((id, t) => (t < 2 ? -100 : id)) };
  });
}

/** Micro-batches of two examples each, in order. */
function tracked(data: readonly TokenizedExample[]): TrackedBatch[] {
  const out: TrackedBatch[] = [];
  for (let e = 0; e + 1 < data.length; e += 2) {
    const rows = [e, e + 1];
    const ids = Tensor.from(rows.flatMap((r) => data[r]!.ids), [2, T], "int32");
    const labels = Tensor.from(rows.flatMap((r) => data[r]!.labels), [2, T], "int32");
    out.push({ batch: { ids, labels }, rows });
  }
  return out;
}

describeCuda("continual-learning strategies (cuda)", () => {
  it("EWC: the penalty's gradient reaches the device gradients, and 3 steps follow the CPU", () => {
    const n = makeModel("cpu").layout.numel;
    const r = rng(BASE_SEED + 70);
    const reference = makeModel("cpu");
    const anchor = Float32Array.from(reference.params.data, (p) => p + 0.05 * (r() - 0.5));
    reference.dispose();
    const fisher = randomF32(n, BASE_SEED + 71, 0, 2);
    const data = tracked(examples(6, BASE_SEED + 72));
    const run = (device: string) => {
      const model = makeModel(device);
      const ewc = new EwcRegularizer(model, Tensor.from(anchor), Tensor.from(fisher), 5);
      // One backward, the mirror read, then the penalty: the mirror must show the penalty's gradient.
      model.zeroGrad();
      model.forwardBackward(data[0]!.batch.ids, data[0]!.batch.labels);
      const before = Float32Array.from(model.grads.data);
      const first = ewc.addGradient();
      const grads = Float32Array.from(model.grads.data);
      const trainer = new Trainer(model, { schedule: SCHEDULE });
      const penalties: number[] = [];
      const losses = data.map(({ batch }) => trainer.trainStep([batch], { addParameterTerm: () => void penalties.push(ewc.addGradient()) }).loss);
      const params = Float32Array.from(model.params.data);
      trainer.dispose();
      ewc.dispose();
      model.dispose();
      return { before, first, grads, penalties, losses, params };
    };
    const cpu = run("cpu");
    const gpu = run("cuda");
    // The same parameters, anchor and Fisher: the device penalty is bitwise the CPU's.
    expect(gpu.first).toBe(cpu.first);
    expect(gpu.first).toBeGreaterThan(0);
    expect(gpu.grads.some((g, i) => g !== gpu.before[i])).toBe(true);
    expectClose(gpu.grads, cpu.grads, GRADIENT_RTOL, "gradient with the penalty");
    expectClose(gpu.penalties, cpu.penalties, TRAINED_RTOL, "penalties over the steps");
    expectClose(gpu.losses, cpu.losses, TRAINED_RTOL, "losses over the steps");
    expectClose(gpu.params, cpu.params, TRAINED_RTOL, "parameters after 3 steps");
    for (const d of data) for (const t of [d.batch.ids, d.batch.labels]) t.dispose();
  });

  it.each(["true", "sampled"] as const)("the Fisher estimate (%s labels) on cuda follows the CPU", (labels) => {
    const data = examples(4, BASE_SEED + 80);
    const run = (device: string) => {
      const model = makeModel(device);
      const estimate = estimateFisher(model, data, { labels, samples: 3, seed: BASE_SEED + 81 });
      model.dispose();
      return estimate;
    };
    const cpu = run("cpu");
    const gpu = run("cuda");
    expect(gpu.examples).toBe(cpu.examples);
    expect(gpu.tokens).toBe(cpu.tokens);
    expectClose(gpu.fisher.data, cpu.fisher.data, FISHER_RTOL, `Fisher (${labels})`);
    cpu.fisher.dispose();
    gpu.fisher.dispose();
  });

  it("LwF: teacher targets, an exact 0 at the first step, and 3 distillation steps follow the CPU", () => {
    const data = examples(6, BASE_SEED + 90);
    const batches = tracked(data);
    const key = { teacher: "start", temperature: 2, topK: 5, vocabSize: CONFIG.vocab_size, dataHash: 0 };
    const teacher = (model: LlamaModel): TeacherTargets => computeTeacherTargets(model, data, batches, key).targets;
    const run = (device: string, given: TeacherTargets | null) => {
      const model = makeModel(device);
      const own = teacher(model);
      // The model is still the teacher: its own targets give exactly 0 and no gradient.
      let firstKl = Number.NaN;
      model.zeroGrad();
      const plain = makeModel(device);
      plain.zeroGrad();
      const { batch } = batches[0]!;
      model.forwardBackward(batch.ids, batch.labels, { logitsTerm: distillationTerm(own, batches[0]!, 1, 0.1, (kl) => (firstKl = kl)) });
      plain.forwardBackward(batch.ids, batch.labels);
      const unchanged = model.grads.data.every((g, i) => Object.is(g, plain.grads.data[i]));
      plain.dispose();
      // Training against one set of targets (the CPU's), so only the student's kernels differ.
      const targets = given ?? own;
      const trainer = new Trainer(model, { schedule: SCHEDULE });
      const kls: number[] = [];
      const losses = batches.map((b) =>
        trainer.trainStep([b.batch], { logitsTerm: (_, w) => distillationTerm(targets, b, 0.5, w, (kl) => void kls.push(kl)) }).loss,
      );
      const params = Float32Array.from(model.params.data);
      trainer.dispose();
      model.dispose();
      return { own, firstKl, unchanged, kls, losses, params };
    };
    const cpu = run("cpu", null);
    const gpu = run("cuda", cpu.own);
    for (const r of [cpu, gpu]) {
      expect(r.firstKl).toBe(0);
      expect(r.unchanged).toBe(true);
    }
    // The teacher passes agree: the k largest log-probabilities (in order, whichever ids hold
    // them, so a near tie that swaps two ids does not matter) and the rest mass.
    expectClose(gpu.own.logProbs, cpu.own.logProbs, TEACHER_RTOL, "teacher log-probabilities");
    expectClose(gpu.own.logRest, cpu.own.logRest, TEACHER_RTOL, "teacher rest mass");
    expect(gpu.own.offsets).toEqual(cpu.own.offsets);
    expect(gpu.kls.length).toBe(cpu.kls.length);
    expect(Math.min(...cpu.kls.slice(1))).toBeGreaterThan(0);
    expectClose(gpu.kls.slice(1), cpu.kls.slice(1), KL_RTOL, "distillation KL after the first step");
    expectClose(gpu.losses, cpu.losses, TRAINED_RTOL, "losses over the steps");
    expectClose(gpu.params, cpu.params, TRAINED_RTOL, "parameters after 3 steps");
    for (const b of batches) for (const t of [b.batch.ids, b.batch.labels]) t.dispose();
  });
});
