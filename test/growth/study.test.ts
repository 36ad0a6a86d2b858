/** The grow-versus-scratch study end to end on a tiny corpus, through growlm pretrain. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";

import { pretrain } from "../../src/cli/pretrain.js";
import { syntheticCorpus } from "../../src/data/synthetic.js";
import { readModelConfig } from "../../src/io/hf.js";

describe("growlm pretrain", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-study-"));
    fs.writeFileSync(path.join(dir, "corpus.txt"), syntheticCorpus(300).join("\n"));
    fs.writeFileSync(path.join(dir, "small.json"), JSON.stringify({ vocab_size: 259, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, max_position_embeddings: 64 }));
    vi.spyOn(console, "log").mockImplementation(() => {});
  });
  afterEach(() => {
    vi.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("G_stack at d tokens against a scratch twin: curves, plots, speedup, both models", async () => {
    const out = path.join(dir, "study");
    await pretrain.run(
      `--config ${path.join(dir, "small.json")} --corpus ${path.join(dir, "corpus.txt")} --output_dir ${out} --block_size 32
       --per_device_train_batch_size 4 --max_tokens 2560 --grow_at_tokens 1024 --growth_operator stack --growth_factor 2 --eval_steps 5`.split(/\s+/),
    );
    const study = JSON.parse(fs.readFileSync(path.join(out, "study.json"), "utf8"));
    expect(study.plan.target.num_hidden_layers).toBe(2);
    expect(study.speedup.targetLoss).toBeGreaterThan(0);
    expect(readModelConfig(path.join(out, "grown")).num_hidden_layers).toBe(2);
    expect(readModelConfig(path.join(out, "scratch")).num_hidden_layers).toBe(2);
    const csv = fs.readFileSync(path.join(out, "curves.csv"), "utf8").trim().split("\n");
    expect(csv[0]).toBe("run,step,tokens,flops,loss,eval_loss,parameters");
    const grown = csv.filter((r) => r.startsWith("grown,"));
    const scratch = csv.filter((r) => r.startsWith("scratch,"));
    // Grown: the small model's FLOPs per token are lower until growth, so at equal tokens it spent less.
    const flopsAt = (rows: string[], tokens: number) => Number(rows.find((r) => r.split(",")[2] === String(tokens))!.split(",")[3]);
    expect(flopsAt(grown, 2560)).toBeLessThan(flopsAt(scratch, 2560));
    expect(new Set(grown.map((r) => r.split(",")[6])).size).toBe(2); // two model sizes
    for (const f of ["loss-vs-tokens.svg", "loss-vs-flops.svg"]) expect(fs.readFileSync(path.join(out, f), "utf8")).toContain("<svg");
  });

  test("plain pretraining writes the model with its tokenizer; bad flags are refused", async () => {
    const out = path.join(dir, "base");
    await pretrain.run(`--config ${path.join(dir, "small.json")} --corpus ${path.join(dir, "corpus.txt")} --output_dir ${out} --block_size 32 --per_device_train_batch_size 4 --max_tokens 640`.split(/\s+/));
    expect(fs.existsSync(path.join(out, "tokenizer.json"))).toBe(true);
    expect(fs.existsSync(path.join(out, "model.safetensors"))).toBe(true);
    await expect(pretrain.run(["--corpus", "x", "--output_dir", out])).rejects.toThrow(/exactly one of --config and --model_name_or_path/);
    await expect(
      pretrain.run(`--config ${path.join(dir, "small.json")} --corpus ${path.join(dir, "corpus.txt")} --output_dir ${out} --block_size 32 --max_tokens 640 --grow_at_tokens 9999 --growth_operator stack --growth_factor 2`.split(/\s+/)),
    ).rejects.toThrow(/growth point .* inside the token budget/);
  });
});
