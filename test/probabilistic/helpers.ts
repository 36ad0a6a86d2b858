/** A tiny decoder and batches for the probabilistic tests. */
import { parseLlamaConfig, type LlamaConfig } from "../../src/model/config.js";
import { LlamaModel, type LlamaModelOptions } from "../../src/model/llama.js";
import { Tensor } from "../../src/tensor.js";
import { BASE_SEED, randomInts, rng } from "../helpers/reference.js";

export const TINY: LlamaConfig = parseLlamaConfig({
  vocab_size: 53,
  hidden_size: 32,
  intermediate_size: 56,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 48,
  pad_token_id: 0,
  eos_token_id: 2,
  bos_token_id: 1,
});

/** A seeded model with norm weights away from 1 (so their products with γ are exercised). */
export function tinyModel(options: LlamaModelOptions = {}, seed = BASE_SEED, config: LlamaConfig = TINY): LlamaModel {
  const model = new LlamaModel(config, options);
  model.initialize(seed);
  const r = rng(seed + 1);
  for (const e of model.layout.entries) {
    if (e.kind.endsWith("norm")) for (let i = 0; i < e.numel; i++) model.params.data[e.offset + i] = 0.5 + r();
  }
  model.markParamsChanged();
  return model;
}

/** A copy of `model`'s parameters in a new plain model. */
export function copyModel(model: LlamaModel, options: LlamaModelOptions = {}): LlamaModel {
  const copy = new LlamaModel(model.config, options);
  copy.params.data.set(model.params.data);
  copy.markParamsChanged();
  return copy;
}

/** ids and labels [B, T] (about 20% of the labels -100). */
export function batch(B: number, T: number, seed: number, V = TINY.vocab_size): { ids: Tensor; labels: Tensor } {
  const ids = Tensor.from(randomInts(B * T, seed, V), [B, T], "int32");
  const labels = ids.clone();
  const r = rng(seed + 7);
  const data = labels.data as Int32Array;
  for (let i = 0; i < data.length; i++) if (r() < 0.2) data[i] = -100;
  return { ids, labels };
}
