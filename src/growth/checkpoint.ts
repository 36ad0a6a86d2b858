/**
 * Growth of a checkpoint on disk: a Hugging Face directory in, a grown Hugging Face directory
 * out, tensor by tensor. Each target tensor is computed when the streaming writer reaches it,
 * from the one source tensor it comes from (read from its shard then), so the memory in use is
 * one source and one target tensor (plus the writer's chunk), never the model: growing a 7B
 * checkpoint needs about the size of its largest tensor twice (the embedding, 0.5 GB in fp32
 * for LLaMA-7B).
 *
 * The output is written the way saveModelDir writes (temporary files, then one commit), with
 * the source's generation_config.json and tokenizer files and a growth.json that records how
 * it was grown (operators, layer map, seed, MSG mask). Sharding follows the source unless told
 * otherwise: a sharded source gives shards up to its largest shard's size, a single-file source
 * transformers' default limit (5GB).
 */
import fs from "node:fs";
import path from "node:path";

import { GrowlmError } from "../errors.js";
import {
  DEFAULT_MAX_SHARD_SIZE,
  type SavedModelDir,
  listCheckpointTensors,
  parseShardSize,
  readGenerationConfig,
  readModelConfig,
  writeModelDir,
} from "../io/hf.js";
import { FLOAT_DTYPES, SAFETENSORS_ITEM_BYTES, type SafetensorsReader, openSafetensors } from "../io/safetensors.js";
import { llamaConfigToJson } from "../model/config.js";
import { formatShape } from "../tensor.js";
import { type GrowthOptions, type GrowthPlan, growTensor, planGrowth } from "./plan.js";

/** The file that records how a directory was grown. */
export const GROWTH_RECORD_NAME = "growth.json";

/** Tokenizer files of a Hugging Face directory, copied along when present. */
export const TOKENIZER_FILE_NAMES: readonly string[] = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "tokenizer.model",
  "added_tokens.json",
  "vocab.json",
  "merges.txt",
  "chat_template.jinja",
];

/** Buffers older transformers saved with the weights (no parameters); ignored. */
const IGNORED_TENSOR = /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/;

export interface GrowCheckpointOptions {
  /** Element type of the written weights; default the source's (bfloat16 when every parameter is BF16, else float32). */
  dtype?: "float32" | "bfloat16";
  /** Largest shard in bytes or as "2GB"; default like the source (see the module note). */
  maxShardSize?: number | string;
}

/** growth.json: how a directory was grown. */
export interface GrowthRecord {
  /** The source directory as given. */
  source: string;
  /** The source's config.json. */
  source_config: Record<string, unknown>;
  /** The growth options; planGrowth(source config, options) rebuilds the whole plan. */
  options: GrowthOptions;
  /** Per target layer: [source layer or null, how it starts]. */
  layers: [number | null, string][];
  function_preserving: boolean;
  /** MSG mask: the weights written are the unmasked (m = 1) model; a trainer ramps these layers' branch scales from 0. */
  mask: { layers: number[]; warmup_steps: number } | null;
}

export interface GrownCheckpoint {
  plan: GrowthPlan;
  saved: SavedModelDir;
  dtype: "float32" | "bfloat16";
  /** The shard limit used, in bytes. */
  maxShardSize: number;
  /** Files copied from the source directory (tokenizer files). */
  copiedFiles: string[];
}

/** The record growth.json holds for `plan`. */
export function growthRecord(plan: GrowthPlan, sourceDir: string, options: GrowthOptions): GrowthRecord {
  return {
    source: sourceDir,
    source_config: llamaConfigToJson(plan.source),
    options,
    layers: plan.layers.map((l) => [l.source, l.init]),
    function_preserving: plan.functionPreserving,
    mask: plan.mask ? { layers: [...plan.mask.layers], warmup_steps: plan.mask.warmupSteps } : null,
  };
}

/** Reads `dir`/growth.json, or null when the directory was not grown by growlm. */
export function readGrowthRecord(dir: string): GrowthRecord | null {
  const file = path.join(dir, GROWTH_RECORD_NAME);
  if (!fs.existsSync(file)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new GrowlmError("readGrowthRecord", `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const r = raw as Partial<GrowthRecord> | null;
  const maskOk = r?.mask === null || (typeof r?.mask === "object" && Array.isArray(r.mask.layers) && Number.isSafeInteger(r.mask.warmup_steps));
  if (typeof r !== "object" || r === null || !Array.isArray(r.layers) || typeof r.options !== "object" || !maskOk) {
    throw new GrowlmError("readGrowthRecord", `${file} is not a growlm growth record (expected layers, options and mask)`);
  }
  return r as GrowthRecord;
}

/**
 * Grows the checkpoint in `modelDir` into `outDir` (created if missing; a model already there
 * is replaced as saveModelDir replaces it). Every source parameter must be present with the
 * shape config.json implies, F32, F16 or BF16; this is checked from the headers before any
 * data is read or written.
 */
export function growCheckpoint(modelDir: string, outDir: string, growth: GrowthOptions, options: GrowCheckpointOptions = {}): GrownCheckpoint {
  const op = "growCheckpoint";
  if (path.resolve(modelDir) === path.resolve(outDir) || (fs.existsSync(outDir) && fs.realpathSync(outDir) === fs.realpathSync(modelDir))) {
    throw new GrowlmError(op, `the output directory ${outDir} is the source directory: write the grown model elsewhere`);
  }
  const plan = planGrowth(readModelConfig(modelDir), growth);
  const tensors = listCheckpointTensors(modelDir);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const tiedHead = plan.source.tie_word_embeddings ? "lm_head.weight" : null;
  const unexpected = tensors.filter((t) => !plan.sourceLayout.has(t.name) && !IGNORED_TENSOR.test(t.name) && t.name !== tiedHead);
  if (unexpected.length > 0) {
    throw new GrowlmError(op, `${modelDir} has tensors a LLaMA model with its config.json does not have: ${unexpected.slice(0, 8).map((t) => `"${t.name}" (${t.file})`).join(", ")}`);
  }
  for (const e of plan.sourceLayout.entries) {
    const t = byName.get(e.name);
    if (!t) throw new GrowlmError(op, `${modelDir} lacks parameter "${e.name}"`);
    if (formatShape(t.shape) !== formatShape(e.shape)) {
      throw new GrowlmError(op, `${path.join(modelDir, t.file)}: tensor "${e.name}" has shape ${formatShape(t.shape)} but config.json implies ${formatShape(e.shape)}`);
    }
    if (!FLOAT_DTYPES.includes(t.dtype)) throw new GrowlmError(op, `${path.join(modelDir, t.file)}: tensor "${e.name}" is ${t.dtype}; parameters must be ${FLOAT_DTYPES.join(", ")}`);
  }
  const params = plan.sourceLayout.entries.map((e) => byName.get(e.name)!);
  const dtype = options.dtype ?? (params.every((t) => t.dtype === "BF16") ? "bfloat16" : "float32");
  if (dtype !== "float32" && dtype !== "bfloat16") throw new GrowlmError(op, `dtype must be "float32" or "bfloat16" but is ${JSON.stringify(dtype)}`);
  let maxShardSize: number;
  if (options.maxShardSize !== undefined) {
    maxShardSize = parseShardSize(options.maxShardSize);
  } else {
    const shardBytes = new Map<string, number>();
    for (const t of tensors) shardBytes.set(t.file, (shardBytes.get(t.file) ?? 0) + t.shape.reduce((a, b) => a * b, 1) * SAFETENSORS_ITEM_BYTES[t.dtype]);
    maxShardSize = shardBytes.size > 1 ? Math.max(...shardBytes.values()) : DEFAULT_MAX_SHARD_SIZE;
  }

  const extraFiles: Record<string, Uint8Array | string> = {};
  const copiedFiles: string[] = [];
  for (const name of TOKENIZER_FILE_NAMES) {
    const file = path.join(modelDir, name);
    if (fs.existsSync(file)) {
      extraFiles[name] = fs.readFileSync(file);
      copiedFiles.push(name);
    }
  }
  extraFiles[GROWTH_RECORD_NAME] = `${JSON.stringify(growthRecord(plan, modelDir, growth), null, 2)}\n`;

  const readers = new Map<string, SafetensorsReader>();
  // The last tensor read: interpolation and zero duplicates read the same source tensor in a row.
  let last: { name: string; data: Float32Array } | null = null;
  const read = (name: string): Float32Array => {
    if (last?.name === name) return last.data;
    const t = byName.get(name)!;
    let reader = readers.get(t.file);
    if (!reader) readers.set(t.file, (reader = openSafetensors(path.join(modelDir, t.file))));
    const data = reader.readInto(name, new Float32Array(t.shape.reduce((a, b) => a * b, 1)));
    last = { name, data };
    return data;
  };
  try {
    const saved = writeModelDir(
      outDir,
      {
        config: plan.target,
        dtype,
        maxShardSize,
        generationConfig: readGenerationConfig(modelDir) ?? undefined,
        extraFiles,
        tensors: plan.targetLayout.entries.map((e) => ({ name: e.name, shape: e.shape, data: () => growTensor(plan, e.name, read) })),
      },
      op,
    );
    return { plan, saved, dtype, maxShardSize, copiedFiles };
  } finally {
    for (const reader of readers.values()) reader.close();
  }
}
