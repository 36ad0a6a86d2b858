/**
 * Source models of the growth tests: small LLaMAs whose function is far from uniform (weights
 * drawn with std 0.2, norm gains in [0.5, 1.5)), so that a changed function shows in the scores.
 */
import { type LlamaConfig, parseLlamaConfig } from "../../src/model/config.js";
import { LlamaModel } from "../../src/model/llama.js";
import { BASE_SEED, randomInts, relError, rng } from "../helpers/reference.js";

/** Scores of function-preserving growth against the source's: the bound (float32 rounding of scaled copies and split sums). */
export const PRESERVED_RTOL = 1e-5;

export const SMALL_FIELDS = {
  vocab_size: 61,
  hidden_size: 32,
  intermediate_size: 40,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 32,
  initializer_range: 0.2,
  pad_token_id: 0,
};

export function smallConfig(fields: Record<string, unknown> = {}): LlamaConfig {
  return parseLlamaConfig({ ...SMALL_FIELDS, ...fields });
}

/** A model of `config` with seeded weights and norm gains away from 1. */
export function sourceModel(config: LlamaConfig, seed = BASE_SEED): LlamaModel {
  const model = new LlamaModel(config);
  model.initialize(seed);
  const r = rng(seed + 1);
  for (const e of model.layout.entries) {
    if (e.kind.endsWith("norm")) for (let i = 0; i < e.numel; i++) model.params.data[e.offset + i] = 0.5 + r();
  }
  model.markParamsChanged();
  return model;
}

/** Token sequences of mixed lengths for scoring. */
export function sequences(vocab: number, seed = BASE_SEED + 100): number[][] {
  return [13, 7, 20].map((n, i) => Array.from(randomInts(n, seed + i, vocab)));
}

/** Normwise relative error of two score tables (token log-probabilities, flattened). */
export function scoreError(a: number[][], b: number[][]): number {
  return relError(a.flat(), b.flat());
}
