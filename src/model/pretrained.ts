/**
 * LlamaModel from and to Hugging Face directories (transformers' from_pretrained /
 * save_pretrained): config.json, generation_config.json and safetensors weights, single or
 * sharded. Weights stream tensor by tensor into the model's flat buffer. A probabilistic
 * model's extra files (probabilistic.json, film.safetensors: src/probabilistic/checkpoint.ts)
 * are read and written with them.
 */
import { type GenerationConfig, loadWeights, readModelConfig, saveModelDir, type SavedModelDir } from "../io/hf.js";
import { loadProbabilistic, saveProbabilistic } from "../probabilistic/checkpoint.js";
import { LlamaModel, type LlamaModelOptions } from "./llama.js";

/** Loads the model in `dir` (float32 master weights; F16/BF16 files are widened exactly). */
export function loadPretrained(dir: string, options: LlamaModelOptions = {}): LlamaModel {
  const model = new LlamaModel(readModelConfig(dir), options);
  try {
    loadWeights(dir, model.layout, model.params);
    loadProbabilistic(model, dir);
  } catch (err) {
    model.dispose();
    throw err;
  }
  model.markParamsChanged();
  return model;
}

export interface SavePretrainedOptions {
  /** Weights as float32 (default) or bfloat16 (rounded to nearest even; half the size). */
  dtype?: "float32" | "bfloat16";
  /** Largest shard in bytes, or "500MB" / "2GB" / "5GiB" (default "5GB", as transformers). */
  maxShardSize?: number | string;
  generationConfig?: GenerationConfig;
}

/** Writes `model` as a Hugging Face directory that transformers loads unchanged (atomic per file). */
export function savePretrained(model: LlamaModel, dir: string, options: SavePretrainedOptions = {}): SavedModelDir {
  const saved = saveModelDir(dir, {
    config: model.config,
    layout: model.layout,
    flat: model.params,
    dtype: options.dtype ?? "float32",
    ...(options.maxShardSize !== undefined ? { maxShardSize: options.maxShardSize } : {}),
    ...(options.generationConfig ? { generationConfig: options.generationConfig } : {}),
  });
  saveProbabilistic(model, dir);
  return saved;
}
