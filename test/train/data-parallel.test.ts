/**
 * Data parallel: gradient buckets, DistributedSampler shards, the model's "gradients final"
 * reports, and the key property: N ranks with 1/N of every batch each end with the parameters
 * of one process with the whole batch (separate processes under the launcher), with or without
 * a FiLM-Ensemble.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test } from "vitest";

import { parseLlamaConfig } from "../../src/model/config.js";
import { LlamaModel } from "../../src/model/llama.js";
import { Tensor } from "../../src/tensor.js";
import type { Communicator } from "../../src/train/comm.js";
import { gradientBuckets, shardIndices } from "../../src/train/data-parallel.js";
import { FINETUNE_DEFAULTS, finetune } from "../../src/train/finetune.js";
import { freePort, launchWorkers } from "../../src/train/launch.js";
import { DP_STEPS, type DpRun, runDpTraining } from "../fixtures/data-parallel/dp-train.js";
import { BASE_SEED, expectBitwiseEqual, randomInts, relError } from "../helpers/reference.js";

const FIXTURE = "test/fixtures/data-parallel/dp-train.ts";
/**
 * Parameters after 3 AdamW steps, N ranks against one process: the gradients differ only in
 * the order of float32 additions (the ranks' partial sums over rows). AdamW divides by
 * sqrt(v) + eps, so where a gradient is tiny its rounding moves the early updates by a visible
 * fraction of lr: normwise differences of 1.2e-7 typically, up to 1.3e-6 over 30 seeds.
 * Weighting each rank's tokens by its own count instead of the global one misses by 1.5e-2.
 */
const DP_PARAMS_RTOL = 1e-5;
/** Losses and gradient norms: float64 sums of the same float32 terms in another order. */
const DP_LOSS_RTOL = 1e-6;

function tinyModel(tied: boolean): LlamaModel {
  return new LlamaModel(
    parseLlamaConfig({ vocab_size: 50, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 16, tie_word_embeddings: tied, pad_token_id: 0 }),
  );
}

describe("gradient buckets", () => {
  test.each([1e-4, 0.01, 25])("cover the flat buffer once, contiguous, in reverse storage order (cap %f MiB)", (cap) => {
    const model = tinyModel(false);
    const buckets = gradientBuckets(model, cap);
    expect(buckets[0]!.end).toBe(model.layout.numel);
    expect(buckets.at(-1)!.begin).toBe(0);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.end).toBe(buckets[i - 1]!.begin);
    const names = buckets.flatMap((b) => b.names);
    expect(names).toEqual(model.layout.entries.map((e) => e.name).reverse());
    for (const b of buckets) {
      // Over the cap only as a single tensor.
      if ((b.end - b.begin) * 4 > cap * 2 ** 20) expect(b.names).toHaveLength(1);
    }
    if (cap === 25) expect(buckets).toHaveLength(1);
    if (cap === 1e-4) expect(buckets).toHaveLength(model.layout.entries.length);
    model.dispose();
  });

  test("refuses a cap that is not a positive number", () => {
    const model = tinyModel(true);
    expect(() => gradientBuckets(model, 0)).toThrow(/ddp_bucket_cap_mb must be a positive number but is 0/);
    model.dispose();
  });
});

test("shardIndices: DistributedSampler's padding and striding; the shards of W × b consecutive indices are the ranks' batches of b", () => {
  expect([0, 1, 2].map((r) => shardIndices([5, 6, 7, 8, 9, 10, 11], r, 3))).toEqual([[5, 8, 11], [6, 9, 5], [7, 10, 6]]);
  const order = Array.from(randomInts(24, 1, 1000));
  const shards = [0, 1, 2].map((r) => shardIndices(order, r, 3));
  const b = 2;
  for (let step = 0; step < 4; step++) {
    const union = shards.flatMap((s) => s.slice(step * b, (step + 1) * b)).sort((x, y) => x - y);
    expect(union).toEqual(order.slice(step * 3 * b, (step + 1) * 3 * b).sort((x, y) => x - y));
  }
  expect(() => shardIndices(order, 3, 3)).toThrow(/rank 3 is not a rank of a world of 3/);
});

describe.each([false, true])("onGradientsFinal (tied embeddings: %s)", (tied) => {
  test("reports every parameter once, head first and embedding last, and only once its gradient is final", () => {
    const model = tinyModel(tied);
    model.initialize(BASE_SEED % 1000);
    const ids = Tensor.from(randomInts(2 * 9, 2, 50), [2, 9], "int32");
    const reported: string[] = [];
    const snapshots = new Map<string, Float32Array>();
    model.forwardBackward(ids, ids, {
      onGradientsFinal: (names) => {
        for (const name of names) {
          reported.push(name);
          snapshots.set(name, Float32Array.from(model.grad(name).data));
        }
      },
    });
    expect([...reported].sort()).toEqual(model.layout.entries.map((e) => e.name).sort());
    expect(reported[0]).toBe("model.norm.weight");
    expect(reported.at(-1)).toBe("model.embed_tokens.weight");
    expect(reported.indexOf("model.layers.2.self_attn.q_proj.weight")).toBeLessThan(reported.indexOf("model.layers.1.mlp.down_proj.weight"));
    for (const [name, snapshot] of snapshots) expectBitwiseEqual(snapshot, model.grad(name).data, name);
    ids.dispose();
    model.dispose();
  });
});

test("fine-tuning with a continual-learning strategy is refused data-parallel, before any work", async () => {
  const idle = (): never => {
    throw new Error("no collective expected");
  };
  const communicator: Communicator = { backend: "tcp", rank: 0, worldSize: 2, allReduce: idle, broadcast: idle, barrier: idle, close: async () => {} };
  const options = { ...FINETUNE_DEFAULTS, modelNameOrPath: "unused", dataset: "unused.json", outputDir: "unused", clStrategy: "replay" };
  await expect(finetune(options, { log: () => {} }, { communicator })).rejects.toThrow(/--cl_strategy replay does not run data-parallel \(its replay buffer, Fisher and teacher passes belong to one process\)/);
});

describe("data-parallel training across processes", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-dp-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test.each([2, 3])("%i ranks with a share of every batch end with the parameters of one process with the whole batch", async (W) => {
    const seed = BASE_SEED % 10_000;
    await launchWorkers({ nprocPerNode: W, masterAddr: "127.0.0.1", masterPort: await freePort(), command: process.execPath, args: ["--import", "tsx", FIXTURE, dir, String(seed)] });
    const ranks = Array.from({ length: W }, (_, r) => JSON.parse(fs.readFileSync(path.join(dir, `rank-${r}.json`), "utf8")) as { params: number[]; steps: DpRun["steps"] }[]);
    const whole = runDpTraining(seed, null);
    const [byDefault, perTensor, film] = ranks[0]!;
    const params = Float32Array.from(byDefault!.params);
    expect(relError(params, whole.params), `seed ${seed}`).toBeLessThanOrEqual(DP_PARAMS_RTOL);
    for (let s = 0; s < DP_STEPS; s++) {
      expect(byDefault!.steps[s]!.tokens).toBe(whole.steps[s]!.tokens);
      expect(relError([byDefault!.steps[s]!.loss, byDefault!.steps[s]!.gradNorm], [whole.steps[s]!.loss, whole.steps[s]!.gradNorm])).toBeLessThanOrEqual(DP_LOSS_RTOL);
    }
    // Every rank holds the same bits, and the bucket size does not change them.
    for (let r = 1; r < W; r++) expectBitwiseEqual(Float32Array.from(ranks[r]![0]!.params), params, `rank ${r} against rank 0`);
    expectBitwiseEqual(Float32Array.from(perTensor!.params), params, "one bucket per tensor against DDP's buckets");
    // A FiLM-Ensemble's γ and β are summed too.
    const wholeFilm = runDpTraining(seed, null, undefined, true);
    expect(relError(Float32Array.from(film!.params), wholeFilm.params), "FiLM-Ensemble").toBeLessThanOrEqual(DP_PARAMS_RTOL);
    for (let r = 1; r < W; r++) expectBitwiseEqual(Float32Array.from(ranks[r]![2]!.params), Float32Array.from(film!.params), `FiLM-Ensemble, rank ${r}`);
  });
});
