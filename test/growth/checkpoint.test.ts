/**
 * Growth of checkpoints on disk: the output is a valid Hugging Face LLaMA directory (config.json
 * and tensor names and shapes agree with the target's parameterSpecs, which is exactly what
 * tools/torch_llama.py's load_state requires), bitwise the in-memory growth, sharded like the
 * source, with tokenizer, generation config and growth record; bad sources are refused before
 * anything is written.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test } from "vitest";

import { GROWTH_RECORD_NAME, growCheckpoint, readGrowthRecord } from "../../src/growth/checkpoint.js";
import { planGrowth } from "../../src/growth/plan.js";
import { growModel } from "../../src/growth/schedule.js";
import { listCheckpointTensors, readGenerationConfig, readModelConfig, SAFE_WEIGHTS_INDEX_NAME } from "../../src/io/hf.js";
import { openSafetensors, writeSafetensors } from "../../src/io/safetensors.js";
import { byteLevelTokenizer, loadTokenizer, saveTokenizer } from "../../src/io/tokenizer.js";
import { parameterSpecs } from "../../src/model/params.js";
import { loadPretrained, savePretrained } from "../../src/model/pretrained.js";
import { scoreSequences } from "../../src/model/score.js";
import { expectBitwiseEqual } from "../helpers/reference.js";
import { PRESERVED_RTOL, scoreError, sequences, smallConfig, sourceModel } from "./source.js";

describe("growCheckpoint", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-grow-"));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The grown directory holds exactly the target's parameters with their shapes, as config.json describes them. */
  function expectValidDirectory(out: string, expectedLayers: number): void {
    const config = readModelConfig(out);
    expect(config.num_hidden_layers).toBe(expectedLayers);
    const specs = parameterSpecs(config);
    const tensors = listCheckpointTensors(out);
    expect(tensors.map((t) => t.name).sort()).toEqual(specs.map((s) => s.name).sort());
    const shapes = new Map(tensors.map((t) => [t.name, t.shape]));
    for (const s of specs) expect(shapes.get(s.name), s.name).toEqual(s.shape);
  }

  test("stack ×2 of a sharded bf16 checkpoint: a sharded bf16 HF directory, bitwise the in-memory growth, tokenizer and generation config along", async () => {
    const config = smallConfig({ num_hidden_layers: 3, vocab_size: 300, bos_token_id: 256, eos_token_id: 257, pad_token_id: 258 });
    const source = sourceModel(config);
    const src = path.join(dir, "src");
    const saved = savePretrained(source, src, { dtype: "bfloat16", maxShardSize: 20_000 });
    expect(saved.weightFiles.length).toBeGreaterThan(2);
    await saveTokenizer(src, byteLevelTokenizer());
    const srcShardBytes = Math.max(...saved.weightFiles.map((f) => fs.statSync(path.join(src, f)).size));

    const out = path.join(dir, "out");
    const result = growCheckpoint(src, out, { depth: { operator: "stack", factor: 2 } });
    expect(result.dtype).toBe("bfloat16");
    expect(result.copiedFiles).toEqual(["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]);
    expectValidDirectory(out, 6);
    expect(fs.existsSync(path.join(out, SAFE_WEIGHTS_INDEX_NAME))).toBe(true);
    expect(result.saved.weightFiles.length).toBeGreaterThan(saved.weightFiles.length);
    // Shards no larger than the source's largest (in tensor bytes), unless a tensor alone is larger.
    const biggestTensor = Math.max(...parameterSpecs(result.plan.target).map((s) => s.shape.reduce((a, b) => a * b, 1) * 2));
    for (const f of result.saved.weightFiles) {
      const tensorBytes = listCheckpointTensors(out).filter((t) => t.file === f).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1) * 2, 0);
      expect(tensorBytes).toBeLessThanOrEqual(Math.max(result.maxShardSize, biggestTensor));
    }
    expect(result.maxShardSize).toBeLessThanOrEqual(srcShardBytes);
    for (const t of listCheckpointTensors(out)) expect(t.dtype).toBe("BF16");

    const reloaded = loadPretrained(src);
    const inMemory = growModel(reloaded, result.plan);
    const fromDisk = loadPretrained(out);
    expectBitwiseEqual(fromDisk.params.data, inMemory.params.data, "disk and memory growth");
    expect((await loadTokenizer(out)).encode("grow")).toEqual((await loadTokenizer(src)).encode("grow"));
    expect(readGenerationConfig(out)).toEqual(readGenerationConfig(src));
    const record = readGrowthRecord(out)!;
    expect(record.layers).toEqual([[0, "copy"], [1, "copy"], [2, "copy"], [0, "copy"], [1, "copy"], [2, "copy"]]);
    expect(record.function_preserving).toBe(false);
    for (const m of [source, reloaded, inMemory, fromDisk]) m.dispose();
  });

  test("zero depth + direct width on a single-file fp32 checkpoint: one file, the source's scores", () => {
    const config = smallConfig({ tie_word_embeddings: true });
    const source = sourceModel(config);
    const src = path.join(dir, "src");
    savePretrained(source, src);
    const out = path.join(dir, "out");
    const growth = { depth: { operator: "zero" as const, layers: 3 }, width: { operator: "direct" as const, hidden_size: 48, intermediate_size: 50, selection: "random" as const }, seed: 11 };
    const result = growCheckpoint(src, out, growth);
    expect(result.saved.weightFiles).toEqual(["model.safetensors"]);
    expect(result.dtype).toBe("float32");
    expectValidDirectory(out, 3);
    expect(readModelConfig(out).hidden_size).toBe(48);
    const grown = loadPretrained(out);
    const seqs = sequences(config.vocab_size);
    expect(scoreError(scoreSequences(grown, seqs).tokenLogprobs, scoreSequences(source, seqs).tokenLogprobs)).toBeLessThanOrEqual(PRESERVED_RTOL);
    const inMemory = growModel(source, planGrowth(config, growth));
    expectBitwiseEqual(grown.params.data, inMemory.params.data, "disk and memory growth");
    expect(readGrowthRecord(out)!.options).toEqual(growth);
    for (const m of [source, grown, inMemory]) m.dispose();
  });

  test("an MSG-masked random growth is recorded in growth.json; dtype and shard size can be chosen", () => {
    const config = smallConfig();
    const source = sourceModel(config);
    const src = path.join(dir, "src");
    savePretrained(source, src);
    const out = path.join(dir, "out");
    const result = growCheckpoint(src, out, { depth: { operator: "random", factor: 2, maskWarmupSteps: 50 } }, { dtype: "bfloat16", maxShardSize: "30KB" });
    expect(result.saved.weightFiles.length).toBeGreaterThan(1);
    expect(result.maxShardSize).toBe(30_000);
    const record = readGrowthRecord(out)!;
    expect(record.mask).toEqual({ layers: [2, 3], warmup_steps: 50 });
    expect(record.function_preserving).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(out, GROWTH_RECORD_NAME), "utf8")).source).toBe(src);
    source.dispose();
  });

  test("refuses bad sources and outputs before writing anything", () => {
    const config = smallConfig();
    const source = sourceModel(config);
    const src = path.join(dir, "src");
    savePretrained(source, src);
    const out = path.join(dir, "out");
    expect(() => growCheckpoint(src, src, { depth: { operator: "stack", factor: 2 } })).toThrow(/the output directory .* is the source directory/);
    expect(() => growCheckpoint(src, out, { depth: { operator: "stack", layers: 1 } })).toThrow(/growth cannot shrink/);

    // A checkpoint missing a tensor, and one with a tensor of the wrong shape.
    const weights = path.join(src, "model.safetensors");
    const reader = openSafetensors(weights);
    const all = reader.entries.map((e) => ({ name: e.name, shape: e.shape, data: reader.readInto(e.name, new Float32Array(e.numel)) }));
    reader.close();
    writeSafetensors(weights, all.filter((t) => t.name !== "model.layers.1.mlp.up_proj.weight"), { dtype: "F32" });
    expect(() => growCheckpoint(src, out, { depth: { operator: "stack", factor: 2 } })).toThrow(/lacks parameter "model\.layers\.1\.mlp\.up_proj\.weight"/);
    writeSafetensors(weights, all.map((t) => (t.name === "model.norm.weight" ? { ...t, shape: [2, 16] } : t)), { dtype: "F32" });
    expect(() => growCheckpoint(src, out, { depth: { operator: "stack", factor: 2 } })).toThrow(/tensor "model\.norm\.weight" has shape \[2, 16\] but config\.json implies \[32\]/);
    writeSafetensors(weights, [...all, { name: "model.extra.weight", shape: [2], data: new Float32Array(2) }], { dtype: "F32" });
    expect(() => growCheckpoint(src, out, { depth: { operator: "stack", factor: 2 } })).toThrow(/tensors a LLaMA model with its config\.json does not have: "model\.extra\.weight"/);
    expect(fs.existsSync(out)).toBe(false);
    source.dispose();
  });
});
