/**
 * Training checkpoints: stopping at step k and resuming gives bitwise the parameters of an
 * uninterrupted run at step n; learning-rate schedules match transformers' formulas.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test } from "vitest";

import { parseLlamaConfig } from "../../src/model/config.js";
import { LlamaModel } from "../../src/model/llama.js";
import { Tensor } from "../../src/tensor.js";
import { loadTrainingCheckpoint, saveTrainingCheckpoint, TRAINER_STATE_NAME } from "../../src/train/checkpoint.js";
import { LrSchedule } from "../../src/train/lr.js";
import { type Batch, Trainer } from "../../src/train/trainer.js";
import { BASE_SEED, expectBitwiseEqual, randomInts } from "../helpers/reference.js";

const CONFIG = parseLlamaConfig({
  vocab_size: 41,
  hidden_size: 24,
  intermediate_size: 40,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 16,
  tie_word_embeddings: true,
});

/** The micro-batches of step s: a pure function of s, drawn through the trainer's stream. */
function batchesOf(trainer: Trainer, s: number): Batch[] {
  const order = trainer.rng.permutation(3);
  return order.slice(0, 2).map((k) => {
    const ids = Tensor.from(randomInts(2 * 9, BASE_SEED + 31 * s + k, CONFIG.vocab_size), [2, 9], "int32");
    return { ids, labels: ids };
  });
}

function newTrainer(matmul: "float32" | "bfloat16"): Trainer {
  const model = new LlamaModel(CONFIG, { matmul });
  model.initialize(BASE_SEED);
  return new Trainer(model, {
    schedule: { type: "cosine", learningRate: 5e-3, totalSteps: 12, warmupSteps: 3 },
    optimizer: { weightDecay: 0.1, maxGradNorm: 0.5 },
    seed: 7,
  });
}

describe("training checkpoints", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-ckpt-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test.each(["float32", "bfloat16"] as const)("resume at step 5 of 12 is bitwise the uninterrupted run (%s products)", (matmul) => {
    const straight = newTrainer(matmul);
    for (let s = 0; s < 12; s++) straight.trainStep(batchesOf(straight, s));

    const first = newTrainer(matmul);
    for (let s = 0; s < 5; s++) first.trainStep(batchesOf(first, s));
    const ckpt = path.join(dir, "checkpoint-5");
    saveTrainingCheckpoint(ckpt, first, { logHistory: [{ step: 5, loss: 1 }], state: { epoch: 1.5 } });
    // Saving again replaces the directory whole.
    saveTrainingCheckpoint(ckpt, first, { logHistory: [{ step: 5, loss: 1 }], state: { epoch: 1.5 } });
    expect(fs.readdirSync(dir)).toEqual(["checkpoint-5"]);

    const { trainer: resumed, state } = loadTrainingCheckpoint(ckpt, { matmul });
    expect(state.global_step).toBe(5);
    expect(state.epoch).toBe(1.5);
    expect(state.log_history).toEqual([{ step: 5, loss: 1 }]);
    expect(resumed.step).toBe(5);
    for (let s = 5; s < 12; s++) resumed.trainStep(batchesOf(resumed, s));
    expectBitwiseEqual(resumed.model.params.data, straight.model.params.data, "parameters at step 12");
    expectBitwiseEqual(resumed.optimizer.v.data, straight.optimizer.v.data, "second moments at step 12");
    expect(resumed.rng.state()).toEqual(straight.rng.state());
  });

  test("a directory that is not a training checkpoint is refused by name", () => {
    fs.writeFileSync(path.join(dir, TRAINER_STATE_NAME), "{}");
    expect(() => loadTrainingCheckpoint(dir)).toThrow(/trainer_state\.json lacks growlm's optimizer step/);
    fs.rmSync(path.join(dir, TRAINER_STATE_NAME));
    expect(() => loadTrainingCheckpoint(dir)).toThrow(/cannot read .*trainer_state\.json/);
  });

  test("a missing optimizer tensor is named", () => {
    const trainer = newTrainer("float32");
    trainer.trainStep(batchesOf(trainer, 0));
    const ckpt = path.join(dir, "c");
    saveTrainingCheckpoint(ckpt, trainer);
    // An optimizer file lacking every moment: the model's weights in its place.
    fs.copyFileSync(path.join(ckpt, "model.safetensors"), path.join(ckpt, "optimizer.safetensors"));
    expect(() => loadTrainingCheckpoint(ckpt)).toThrow(/optimizer\.safetensors: missing tensor "exp_avg\.model\.embed_tokens\.weight"/);
  });
});

describe("learning-rate schedules (transformers.get_scheduler)", () => {
  const at = (s: LrSchedule, steps: number[]) => steps.map((i) => s.lr(i));
  test("constant_with_warmup, linear and cosine with warmup_steps", () => {
    const base = { learningRate: 1, totalSteps: 10, warmupSteps: 4 };
    expect(at(new LrSchedule({ type: "constant_with_warmup", ...base }), [0, 1, 4, 9])).toEqual([0, 0.25, 1, 1]);
    expect(at(new LrSchedule({ type: "linear", ...base }), [0, 2, 4, 7, 10, 11])).toEqual([0, 0.5, 1, 0.5, 0, 0]);
    const cosine = at(new LrSchedule({ type: "cosine", ...base }), [4, 7, 10]);
    expect(cosine[0]).toBe(1);
    expect(cosine[1]).toBeCloseTo(0.5, 12);
    expect(cosine[2]).toBeCloseTo(0, 12);
  });
  test("warmup_ratio rounds up as TrainingArguments.get_warmup_steps", () => {
    expect(new LrSchedule({ type: "linear", learningRate: 1, totalSteps: 101, warmupRatio: 0.03 }).warmupSteps).toBe(4);
    expect(new LrSchedule({ type: "linear", learningRate: 1, totalSteps: 100, warmupSteps: 7, warmupRatio: 0.5 }).warmupSteps).toBe(7);
  });
  test("bad settings are refused", () => {
    expect(() => new LrSchedule({ type: "polynomial" as "linear", learningRate: 1, totalSteps: 1 })).toThrow(/unknown lr_scheduler_type "polynomial"/);
    expect(() => new LrSchedule({ type: "constant", learningRate: 1, totalSteps: 1, warmupSteps: 2 })).toThrow(/constant_with_warmup/);
    expect(() => new LrSchedule({ type: "linear", learningRate: -1, totalSteps: 1 })).toThrow(/learning_rate/);
  });
});
