/**
 * Fine-tuning end to end on a tiny model with the byte-level tokenizer: logging, eval,
 * checkpoints with save_total_limit, and an interrupted run resumed from its checkpoint ending
 * bitwise where the uninterrupted run ends.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test } from "vitest";

import { byteLevelTokenizer, saveTokenizer } from "../../src/io/tokenizer.js";
import { parseLlamaConfig } from "../../src/model/config.js";
import { LlamaModel } from "../../src/model/llama.js";
import { loadPretrained, savePretrained } from "../../src/model/pretrained.js";
import { FINETUNE_DEFAULTS, type FinetuneOptions, type LogRecord, finetune, listCheckpoints } from "../../src/train/finetune.js";
import { expectBitwiseEqual } from "../helpers/reference.js";

describe("finetune", () => {
  let dir: string;
  let options: FinetuneOptions;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-ft-"));
    const base = path.join(dir, "base");
    const model = new LlamaModel(
      parseLlamaConfig({ vocab_size: 259, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, bos_token_id: 256, eos_token_id: 257, pad_token_id: 258 }),
    );
    model.initialize(3);
    savePretrained(model, base);
    model.dispose();
    await saveTokenizer(base, byteLevelTokenizer());
    const example = (i: number) => ({ input: `add ${i} ${i + 1}`, output: `${2 * i + 1}`, src_info: { i }, index: i });
    fs.writeFileSync(path.join(dir, "data.json"), JSON.stringify({ train: Array.from({ length: 13 }, (_, i) => example(i)), eval: [example(50), example(51), example(52)], test: [] }));
    options = {
      ...FINETUNE_DEFAULTS,
      modelNameOrPath: base,
      dataset: path.join(dir, "data.json"),
      outputDir: path.join(dir, "out"),
      datasetFormat: "prompt",
      numTrainEpochs: 2,
      perDeviceTrainBatchSize: 3,
      gradientAccumulationSteps: 2,
      learningRate: 3e-3,
      lrSchedulerType: "cosine",
      warmupSteps: 1,
      loggingSteps: 2,
      evalStrategy: "steps",
      evalSteps: 3,
      saveStrategy: "steps",
      saveSteps: 2,
      saveTotalLimit: 2,
      groupByLength: true,
      sourceMaxLen: 48,
      targetMaxLen: 8,
      doEval: true,
    };
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("trains, logs, evaluates and keeps the newest checkpoints", async () => {
    const logs: LogRecord[] = [];
    const result = await finetune(options, { log: (r) => logs.push(r) });
    // 13 examples / 3 per batch = 5 micro-batches = 3 steps per epoch (the last accumulates one).
    expect(result.globalStep).toBe(6);
    expect(logs.filter((r) => "loss" in r).map((r) => r.step)).toEqual([2, 4, 6]);
    expect(logs.filter((r) => "eval_loss" in r).map((r) => r.step)).toEqual([3, 6, 6]);
    expect(result.checkpoints.map((c) => path.basename(c))).toEqual(["checkpoint-4", "checkpoint-6"]);
    const state = JSON.parse(fs.readFileSync(path.join(options.outputDir, "checkpoint-6", "trainer_state.json"), "utf8"));
    expect(state).toMatchObject({ global_step: 6, epoch: 2, logging_steps: 2, save_steps: 2, train_batch_size: 3 });
    expect(fs.existsSync(path.join(options.outputDir, "checkpoint-6", "tokenizer.json"))).toBe(true);
    const lines = fs.readFileSync(path.join(options.outputDir, "log.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toEqual(logs.map((r) => JSON.parse(JSON.stringify(r))));
    expect(result.evalLoss).toBeLessThan(logs.find((r) => "eval_loss" in r)!.eval_loss! + 1);
    expect(Number.isFinite(result.trainLoss)).toBe(true);
  });

  test("an interrupted run resumed from its checkpoint ends bitwise like the uninterrupted one", async () => {
    await finetune({ ...options, saveTotalLimit: null }, { log: () => {} });
    const straight = loadPretrained(options.outputDir);

    const interrupted = { ...options, outputDir: path.join(dir, "out2"), saveTotalLimit: null };
    await expect(
      finetune(interrupted, {
        log: () => {},
        progress: (p) => {
          if (p.step === 5) throw new Error("killed");
        },
      }),
    ).rejects.toThrow("killed");
    expect(listCheckpoints(interrupted.outputDir).map((c) => path.basename(c))).toEqual(["checkpoint-2", "checkpoint-4"]);
    const resumed = await finetune({ ...interrupted, resumeFromCheckpoint: true }, { log: () => {} });
    expect(resumed.globalStep).toBe(6);
    const again = loadPretrained(interrupted.outputDir);
    expectBitwiseEqual(again.params.data, straight.params.data, "parameters after resuming");
    straight.dispose();
    again.dispose();
  });

  test("bad settings and data are refused by name", async () => {
    await expect(finetune({ ...options, perDeviceTrainBatchSize: 0 }, { log: () => {} })).rejects.toThrow(/perDeviceTrainBatchSize must be a positive integer/);
    await expect(finetune({ ...options, resumeFromCheckpoint: true }, { log: () => {} })).rejects.toThrow(/no checkpoint-N folder/);
    await expect(finetune({ ...options, sourceMaxLen: 200 }, { log: () => {} })).rejects.toThrow(/longest example has \d+ tokens .* max_position_embeddings = 64; lower --source_max_len \(200\)/);
    fs.writeFileSync(options.dataset, JSON.stringify({ train: [{ input: 1 }] }));
    await expect(finetune(options, { log: () => {} })).rejects.toThrow(/"train"\[0\] needs a string "input"/);
  });
});
