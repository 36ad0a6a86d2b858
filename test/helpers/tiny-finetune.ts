/**
 * A tiny fine-tuning world for strategy tests: a 2-layer LLaMA with the byte-level tokenizer
 * saved as a Hugging Face folder, and arithmetic datasets (one task per operator) in the
 * study's preprocessed format.
 */
import fs from "node:fs";

import { byteLevelTokenizer, saveTokenizer } from "../../src/io/tokenizer.js";
import { type LlamaConfig, parseLlamaConfig } from "../../src/model/config.js";
import { LlamaModel } from "../../src/model/llama.js";
import { savePretrained } from "../../src/model/pretrained.js";
import { FINETUNE_DEFAULTS, type FinetuneOptions } from "../../src/train/finetune.js";

export const TINY_CONFIG: Record<string, number> = {
  vocab_size: 259,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
  bos_token_id: 256,
  eos_token_id: 257,
  pad_token_id: 258,
};

/** Writes an initialised tiny model (seeded) with the byte tokenizer to `dir`. */
export async function writeTinyModel(dir: string, seed: number, config: Partial<Record<string, number>> = {}): Promise<LlamaConfig> {
  const parsed = parseLlamaConfig({ ...TINY_CONFIG, ...config });
  const model = new LlamaModel(parsed);
  model.initialize(seed);
  savePretrained(model, dir);
  model.dispose();
  await saveTokenizer(dir, byteLevelTokenizer());
  return parsed;
}

/** A dataset of `n` training examples "op i i+1" → the result, and 3 eval/test examples. */
export function writeArithmetic(file: string, op: "add" | "mul" | "sub", n: number): void {
  const value = (i: number): number => (op === "add" ? 2 * i + 1 : op === "mul" ? i * (i + 1) : -1);
  const example = (i: number) => ({ input: `${op} ${i} ${i + 1}`, output: `${value(i)}`, src_info: { i }, index: i });
  const held = [example(50), example(51), example(52)];
  fs.writeFileSync(file, JSON.stringify({ train: Array.from({ length: n }, (_, i) => example(i)), eval: held, test: held }));
}

/** Fine-tuning options for the tiny world (2 epochs of batches of 3, no checkpoints). */
export function tinyOptions(from: string, dataset: string, out: string, extra: Partial<FinetuneOptions> = {}): FinetuneOptions {
  return {
    ...FINETUNE_DEFAULTS,
    modelNameOrPath: from,
    dataset,
    outputDir: out,
    datasetFormat: "prompt",
    numTrainEpochs: 2,
    perDeviceTrainBatchSize: 3,
    learningRate: 3e-3,
    loggingSteps: 2,
    saveStrategy: "no",
    sourceMaxLen: 48,
    targetMaxLen: 8,
    ...extra,
  };
}
