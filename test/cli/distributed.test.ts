/**
 * `growlm finetune --nproc_per_node 2` and `growlm pretrain --nproc_per_node 2` as a user runs
 * them: the command launches two copies of itself, each trains on its half of every global
 * batch, rank 0 alone writes, and the model written is the one a single process writes with
 * the whole batch.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";

import { withoutFlags } from "../../src/cli/distributed.js";
import { finetune } from "../../src/cli/finetune.js";
import { pretrain } from "../../src/cli/pretrain.js";
import { byteLevelTokenizer, saveTokenizer } from "../../src/io/tokenizer.js";
import { parseLlamaConfig } from "../../src/model/config.js";
import { LlamaModel } from "../../src/model/llama.js";
import { loadPretrained, savePretrained } from "../../src/model/pretrained.js";
import { relError } from "../helpers/reference.js";

/** Parameters after a few AdamW steps, two ranks against one process (see test/train/data-parallel.test.ts). */
const DP_PARAMS_RTOL = 1e-6;
/** Logged losses: float64 sums of the same float32 terms in another order. */
const DP_LOSS_RTOL = 1e-6;

test("withoutFlags drops the launcher's flags and their values, in every spelling", () => {
  const argv = ["--nproc_per_node", "2", "--seed=3", "--master-port=1234", "--bf16", "--nnodes", "1", "--do_train"];
  expect(withoutFlags(argv, new Set(["nproc_per_node", "master_port", "nnodes"]))).toEqual(["--seed=3", "--bf16", "--do_train"]);
});

function modelParams(dir: string): Float32Array {
  const model = loadPretrained(dir);
  const params = Float32Array.from(model.params.data);
  model.dispose();
  return params;
}

function logOf(dir: string): Record<string, number>[] {
  return fs.readFileSync(path.join(dir, "log.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, number>);
}

describe("training commands with --nproc_per_node 2", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-cli-ddp-"));
    vi.spyOn(console, "log").mockImplementation(() => {});
    vi.spyOn(console, "error").mockImplementation(() => {});
  });
  afterEach(() => {
    vi.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("growlm finetune: two ranks with per-device batch 2 write the model one process writes with batch 4", async () => {
    const base = path.join(dir, "base");
    const model = new LlamaModel(
      parseLlamaConfig({ vocab_size: 259, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, bos_token_id: 256, eos_token_id: 257, pad_token_id: 258 }),
    );
    model.initialize(5);
    savePretrained(model, base);
    model.dispose();
    await saveTokenizer(base, byteLevelTokenizer());
    const example = (i: number) => ({ input: `add ${i} and ${(i * 7) % 13}`, output: `${i + ((i * 7) % 13)}`, src_info: { i }, index: i });
    const data = path.join(dir, "data.json");
    // 16 examples: the global batch of 4 divides them, so no rank repeats an example (DistributedSampler's padding).
    fs.writeFileSync(data, JSON.stringify({ train: Array.from({ length: 16 }, (_, i) => example(i)), eval: [50, 51, 52].map(example), test: [] }));
    const flags = (out: string, batch: number): string[] =>
      `--model_name_or_path ${base} --dataset ${data} --dataset_format prompt --output_dir ${out} --num_train_epochs 2 --gradient_accumulation_steps 2
       --per_device_train_batch_size ${batch} --learning_rate 3e-3 --lr_scheduler_type cosine --warmup_steps 1 --logging_steps 1 --save_strategy epoch
       --evaluation_strategy epoch --do_eval true --group_by_length true --source_max_len 48 --target_max_len 8`.split(/\s+/);
    const one = path.join(dir, "one");
    const two = path.join(dir, "two");
    await finetune.run(flags(one, 4));
    await finetune.run([...flags(two, 2), "--nproc_per_node", "2", "--ddp_bucket_cap_mb", "0.01"]);

    expect(relError(modelParams(two), modelParams(one))).toBeLessThanOrEqual(DP_PARAMS_RTOL);
    // One writer: the same records, once each, with the global batch's losses and token counts.
    const [logOne, logTwo] = [logOf(one), logOf(two)];
    expect(logTwo.map((r) => Object.keys(r))).toEqual(logOne.map((r) => Object.keys(r)));
    for (const [i, r] of logTwo.entries()) {
      for (const key of ["loss", "grad_norm", "eval_loss"]) {
        if (key in r) expect(relError([r[key]!], [logOne[i]![key]!]), `${key} of record ${i}`).toBeLessThanOrEqual(DP_LOSS_RTOL);
      }
      if ("learning_rate" in r) expect(r.learning_rate).toBe(logOne[i]!.learning_rate);
    }
    expect(fs.readdirSync(two).filter((n) => n.startsWith("checkpoint-")).sort()).toEqual(["checkpoint-2", "checkpoint-4"]);
  });

  test("growlm pretrain: the growth study data-parallel grows and trains the same model", async () => {
    const corpus = path.join(dir, "corpus.txt");
    fs.writeFileSync(corpus, Array.from({ length: 40 }, (_, i) => `document ${i}: ${"the quick brown fox ".repeat(1 + (i % 3))}jumps ${i * 7} times.`).join("\n"));
    const config = path.join(dir, "small.json");
    fs.writeFileSync(config, JSON.stringify({ vocab_size: 259, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 4, max_position_embeddings: 64 }));
    const flags = (out: string, batch: number): string[] =>
      `--config ${config} --corpus ${corpus} --output_dir ${out} --block_size 32 --per_device_train_batch_size ${batch} --max_tokens 1536
       --grow_at_tokens 512 --growth_operator stack --growth_factor 2 --baseline false --eval_steps 2 --learning_rate 3e-3 --seed 7`.split(/\s+/);
    const one = path.join(dir, "one");
    const two = path.join(dir, "two");
    await pretrain.run(flags(one, 4));
    await pretrain.run([...flags(two, 2), "--nproc_per_node", "2"]);
    expect(relError(modelParams(path.join(two, "grown")), modelParams(path.join(one, "grown")))).toBeLessThanOrEqual(DP_PARAMS_RTOL);
    const curve = (d: string): string[][] => fs.readFileSync(path.join(d, "curves.csv"), "utf8").trim().split("\n").map((l) => l.split(","));
    const [a, b] = [curve(one), curve(two)];
    expect(b.map((row) => row.slice(0, 3))).toEqual(a.map((row) => row.slice(0, 3))); // run, step, tokens
    for (const [i, row] of b.entries()) if (i > 0 && row[5] !== "") expect(relError([Number(row[5])], [Number(a[i]![5])])).toBeLessThanOrEqual(DP_LOSS_RTOL);
  });
});
