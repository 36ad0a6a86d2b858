/**
 * Hugging Face model directories as transformers' save_pretrained writes them and
 * from_pretrained reads them: config.json, generation_config.json, and the weights in
 * model.safetensors or in shards model-00001-of-0000N.safetensors listed by
 * model.safetensors.index.json ({"metadata": {"total_size"}, "weight_map": {name: shard}}).
 *
 * Weights move tensor by tensor between the files and one flat float32 buffer laid out by
 * ParamLayout, with one shard open at a time, so loading needs no memory beyond the buffer
 * and one CHUNK_BYTES scratch chunk, and saving none beyond one chunk.
 *
 * A save writes every file under a temporary name first; only when all of them are complete
 * does it commit: the old entry points (model.safetensors, the index) are removed, the new
 * files renamed into place with the entry point last, and stale shards deleted. The directory
 * therefore holds either the old complete set, no loadable weights (for the microseconds of
 * the renames), or the new complete set, never a mix transformers would load.
 */
import fs from "node:fs";
import path from "node:path";

import { GrowlmError } from "../errors.js";
import { type LlamaConfig, llamaConfigToJson, parseLlamaConfig } from "../model/config.js";
import { ParamLayout, parameterSpecs } from "../model/params.js";
import { Tensor, formatShape } from "../tensor.js";
import {
  FLOAT_DTYPES,
  SAFETENSORS_ITEM_BYTES,
  type SafetensorsDtype,
  type SafetensorsReader,
  type TensorToWrite,
  openSafetensors,
  stageSafetensors,
} from "./safetensors.js";
import { stageFile } from "./atomic.js";

/** File names of a Hugging Face model directory, as transformers spells them. */
export const CONFIG_NAME = "config.json";
export const GENERATION_CONFIG_NAME = "generation_config.json";
export const SAFE_WEIGHTS_NAME = "model.safetensors";
export const SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json";

/** transformers' default max_shard_size, "5GB" (decimal, as huggingface_hub parses it). */
export const DEFAULT_MAX_SHARD_SIZE = 5_000_000_000;

/**
 * The transformers_version written when the source config carries none: the release whose
 * file layout growlm reproduces. transformers only reads the field to warn about old files.
 */
export const WRITTEN_TRANSFORMERS_VERSION = "4.46.0";

/** Shard file names save_pretrained writes (and deletes when they are stale). */
const SHARD_NAME = /^model-\d{5}-of-\d{5}\.safetensors$/;

/** Buffers older transformers saved with the weights; they hold no parameters. */
const IGNORED_TENSOR = /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/;

/** Tensors listed in an error message before "and N more". */
const LISTED_NAMES = 8;

/** "a", "b" and 3 more: the first LISTED_NAMES items (already formatted), then a count. */
function listItems(items: readonly string[]): string {
  const shown = items.slice(0, LISTED_NAMES).join(", ");
  return items.length > LISTED_NAMES ? `${shown} and ${items.length - LISTED_NAMES} more` : shown;
}

function quoted(names: readonly string[]): string[] {
  return names.map((n) => `"${n}"`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses a JSON file; a missing file or bad JSON is a GrowlmError naming the file. */
function readJsonFile(op: string, file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new GrowlmError(op, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new GrowlmError(op, `${file} is not valid JSON (${(err as Error).message})`, { cause: err });
  }
}

/** JSON as transformers writes it (json.dumps with sort_keys=True, indent=2, then a newline): object keys sorted at every depth. */
function jsonText(obj: Record<string, unknown>): string {
  const sortKeys = (_key: string, value: unknown): unknown =>
    isObject(value) ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : value;
  return `${JSON.stringify(obj, sortKeys, 2)}\n`;
}


/** Reads `dir`/config.json as a LlamaConfig (transformers' defaults for missing fields). */
export function readModelConfig(dir: string): LlamaConfig {
  const file = path.join(dir, CONFIG_NAME);
  return parseLlamaConfig(readJsonFile("readModelConfig", file), file);
}

/** generation_config.json: the token ids growlm uses, and every other field kept verbatim. */
export interface GenerationConfig {
  bos_token_id: number | null;
  /** A single id or several; generation stops at any of them. */
  eos_token_id: number | number[] | null;
  pad_token_id: number | null;
  /** Every other field as read (_from_model_config, max_length, temperature, ...), written back unchanged. */
  extra: Record<string, unknown>;
}

/** What transformers' GenerationConfig.from_model_config derives from a model config. */
export function generationConfigFromModel(config: LlamaConfig): GenerationConfig {
  return {
    bos_token_id: config.bos_token_id,
    eos_token_id: Array.isArray(config.eos_token_id) ? [...config.eos_token_id] : config.eos_token_id,
    pad_token_id: config.pad_token_id,
    extra: { _from_model_config: true },
  };
}

/**
 * Reads `dir`/generation_config.json, or returns null when the directory has none (transformers
 * then derives one from config.json: generationConfigFromModel). Missing token ids are null.
 */
export function readGenerationConfig(dir: string): GenerationConfig | null {
  const op = "readGenerationConfig";
  const file = path.join(dir, GENERATION_CONFIG_NAME);
  if (!fs.existsSync(file)) return null;
  const raw = readJsonFile(op, file);
  if (!isObject(raw)) throw new GrowlmError(op, `${file}: expected a JSON object`);
  const isId = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  const single = (key: "bos_token_id" | "pad_token_id"): number | null => {
    const v = raw[key] ?? null;
    if (v !== null && !isId(v)) throw new GrowlmError(op, `${file}: "${key}" must be null or a token id but is ${JSON.stringify(v)}`);
    return v;
  };
  const eos = raw.eos_token_id ?? null;
  if (eos !== null && !isId(eos) && !(Array.isArray(eos) && eos.length > 0 && eos.every(isId))) {
    throw new GrowlmError(op, `${file}: "eos_token_id" must be null, a token id or a list of them but is ${JSON.stringify(eos)}`);
  }
  const extra = Object.fromEntries(Object.entries(raw).filter(([k]) => !["bos_token_id", "eos_token_id", "pad_token_id"].includes(k)));
  return { bos_token_id: single("bos_token_id"), eos_token_id: Array.isArray(eos) ? [...(eos as number[])] : eos, pad_token_id: single("pad_token_id"), extra };
}

/** The generation_config.json object: null token ids left out, as transformers' to_diff_dict does. */
export function generationConfigToJson(gen: GenerationConfig, transformersVersion: string): Record<string, unknown> {
  const out: Record<string, unknown> = { ...gen.extra };
  if (gen.bos_token_id !== null) out.bos_token_id = gen.bos_token_id;
  if (gen.eos_token_id !== null) out.eos_token_id = gen.eos_token_id;
  if (gen.pad_token_id !== null) out.pad_token_id = gen.pad_token_id;
  out.transformers_version ??= transformersVersion;
  return out;
}

/** One tensor of a checkpoint directory. */
export interface CheckpointTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: readonly number[];
  /** The safetensors file holding it, relative to the directory. */
  file: string;
}

interface WeightIndex {
  /** The index file's path. */
  file: string;
  /** Tensor name -> shard file name. */
  weightMap: Map<string, string>;
}

/** Where the weights of `dir` are: model.safetensors (preferred, as transformers does) or the index. */
function locateWeights(op: string, dir: string): { single: string } | { index: WeightIndex } {
  const single = path.join(dir, SAFE_WEIGHTS_NAME);
  if (fs.existsSync(single)) return { single: SAFE_WEIGHTS_NAME };
  const indexFile = path.join(dir, SAFE_WEIGHTS_INDEX_NAME);
  if (!fs.existsSync(indexFile)) {
    const bin = fs.existsSync(path.join(dir, "pytorch_model.bin")) ? " (pytorch_model.bin is not read: convert it to safetensors)" : "";
    throw new GrowlmError(op, `${dir} has neither ${SAFE_WEIGHTS_NAME} nor ${SAFE_WEIGHTS_INDEX_NAME}${bin}`);
  }
  const raw = readJsonFile(op, indexFile);
  if (!isObject(raw) || !isObject(raw.weight_map)) {
    throw new GrowlmError(op, `${indexFile}: expected {"metadata": {...}, "weight_map": {tensor: file}}`);
  }
  const weightMap = new Map<string, string>();
  for (const [name, shard] of Object.entries(raw.weight_map)) {
    if (typeof shard !== "string" || shard === "" || path.basename(shard) !== shard || shard === "." || shard === "..") {
      throw new GrowlmError(op, `${indexFile}: tensor "${name}" maps to ${JSON.stringify(shard)}, which is not a file name in the directory`);
    }
    weightMap.set(name, shard);
  }
  return { index: { file: indexFile, weightMap } };
}

function openShard(op: string, dir: string, shard: string, index: WeightIndex | null): SafetensorsReader {
  const file = path.join(dir, shard);
  if (index && !fs.existsSync(file)) {
    const names = [...index.weightMap].filter(([, s]) => s === shard).map(([n]) => n);
    throw new GrowlmError(op, `${index.file} maps ${names.length} tensor${names.length > 1 ? "s" : ""} (${listItems(quoted(names))}) to ${shard}, which is missing from ${dir}`);
  }
  return openSafetensors(file);
}

/**
 * Every tensor of the checkpoint in `dir`: name, dtype, shape and file, read from the
 * safetensors headers only (no tensor data). For a sharded checkpoint every shard of the
 * index is opened and checked against it: a missing shard, a tensor the index places in
 * another shard or does not list, a tensor stored in two shards, and an index entry no shard
 * holds are errors. Tensors come shard by shard (sorted by file name), in each file's data order.
 */
export function listCheckpointTensors(dir: string): CheckpointTensor[] {
  const op = "listCheckpointTensors";
  const where = locateWeights(op, dir);
  if ("single" in where) {
    const reader = openShard(op, dir, where.single, null);
    try {
      return reader.entries.map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, file: where.single }));
    } finally {
      reader.close();
    }
  }
  const { index } = where;
  // Headers of every shard first (a few KB each), so a misplaced tensor can be reported with where it really is.
  const shards = new Map<string, CheckpointTensor[]>();
  for (const shard of [...new Set(index.weightMap.values())].sort()) {
    const reader = openShard(op, dir, shard, index);
    shards.set(shard, reader.entries.map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, file: shard })));
    reader.close();
  }
  const holders = new Map<string, string[]>();
  for (const [shard, tensors] of shards) {
    for (const t of tensors) holders.set(t.name, [...(holders.get(t.name) ?? []), shard]);
  }
  for (const [name, shard] of index.weightMap) {
    const found = holders.get(name) ?? [];
    if (!found.includes(shard)) {
      const actual = found.length > 0 ? `but it is in ${found.join(", ")}` : "which has no such tensor";
      throw new GrowlmError(op, `${index.file} maps tensor "${name}" to ${shard}, ${actual}`);
    }
  }
  for (const [name, found] of holders) {
    if (!index.weightMap.has(name)) {
      throw new GrowlmError(op, `${path.join(dir, found[0]!)} holds tensor "${name}", which ${index.file} does not list`);
    }
    if (found.length > 1) {
      throw new GrowlmError(op, `tensor "${name}" is stored in ${found.length} shards (${found.join(", ")}); ${index.file} maps it to ${index.weightMap.get(name)}`);
    }
  }
  const tensors = [...shards.values()].flat();
  return tensors;
}

/**
 * Reads one tensor of the checkpoint in `dir` into `out` as float32 (F32, F16 or BF16 in the
 * file), opening only the file that holds it.
 * @param out a Float32Array of the tensor's numel elements (its shape flattened)
 * @returns out
 */
export function readTensor(dir: string, name: string, out: Float32Array): Float32Array {
  const op = "readTensor";
  const where = locateWeights(op, dir);
  let shard: string;
  if ("single" in where) {
    shard = where.single;
  } else {
    const mapped = where.index.weightMap.get(name);
    if (mapped === undefined) throw new GrowlmError(op, `${where.index.file} lists no tensor "${name}"`);
    shard = mapped;
  }
  const reader = openShard(op, dir, shard, "index" in where ? where.index : null);
  try {
    if (!reader.has(name)) throw new GrowlmError(op, `${reader.path} has no tensor "${name}"`);
    return reader.readInto(name, out);
  } finally {
    reader.close();
  }
}

/**
 * Fills the flat parameter buffer from the checkpoint in `dir`, one shard open at a time.
 *
 * Every parameter of `layout` must be present, F32, F16 or BF16, with exactly the shape the
 * config implies; everything is checked from the headers before any data is read, so on
 * such an error `flat` is untouched. Tolerated extras: model.layers.*.self_attn.rotary_emb.inv_freq
 * (a buffer older transformers saved) and lm_head.weight when tie_word_embeddings is true
 * (the model uses embed_tokens; the checkpoint's copy is ignored unread). Any other tensor
 * the layout lacks is an error listing them. The padding between tensors is set to zero.
 * Extra memory: one CHUNK_BYTES scratch chunk (F16/BF16 files only) and the headers.
 * @param flat float32 [layout.numel]
 */
export function loadWeights(dir: string, layout: ParamLayout, flat: Tensor<"float32">): void {
  const op = "loadWeights";
  if (flat.dtype !== "float32" || flat.numel !== layout.numel) {
    throw new GrowlmError(op, `expected a float32 buffer of ${layout.numel} elements (the layout's numel) but received ${flat.dtype} of ${flat.numel}`);
  }
  const tensors = listCheckpointTensors(dir);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const tiedHead = layout.config.tie_word_embeddings ? "lm_head.weight" : null;
  const unexpected = tensors.filter((t) => !layout.has(t.name) && !IGNORED_TENSOR.test(t.name) && t.name !== tiedHead);
  if (unexpected.length > 0) {
    throw new GrowlmError(op, `${dir} has ${unexpected.length} tensor${unexpected.length > 1 ? "s" : ""} a LLaMA model with this config.json does not have: ${listItems(unexpected.map((t) => `"${t.name}" (${t.file})`))}`);
  }
  const missing = layout.entries.filter((e) => !byName.has(e.name)).map((e) => e.name);
  if (missing.length > 0) {
    const files = [...new Set(tensors.map((t) => t.file))].join(", ") || SAFE_WEIGHTS_NAME;
    throw new GrowlmError(op, `${dir} lacks ${missing.length} parameter${missing.length > 1 ? "s" : ""} (looked in ${files}): ${listItems(quoted(missing))}`);
  }
  for (const e of layout.entries) {
    const t = byName.get(e.name)!;
    const file = path.join(dir, t.file);
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
      throw new GrowlmError(op, `${file}: tensor "${e.name}" has shape ${formatShape(t.shape)} but config.json implies ${formatShape(e.shape)}`);
    }
    if (!FLOAT_DTYPES.includes(t.dtype)) {
      throw new GrowlmError(op, `${file}: tensor "${e.name}" is ${t.dtype}; parameters must be ${FLOAT_DTYPES.join(", ")}`);
    }
  }

  const data = flat.data;
  const byFile = new Map<string, typeof layout.entries[number][]>();
  for (const e of layout.entries) {
    const file = byName.get(e.name)!.file;
    const group = byFile.get(file) ?? [];
    group.push(e);
    byFile.set(file, group);
  }
  for (const [file, entries] of byFile) {
    const reader = openSafetensors(path.join(dir, file));
    try {
      for (const e of entries) reader.readInto(e.name, data.subarray(e.offset, e.offset + e.numel));
    } finally {
      reader.close();
    }
  }
  layout.entries.forEach((e, i) => {
    const next = i + 1 < layout.entries.length ? layout.entries[i + 1]!.offset : layout.numel;
    data.fill(0, e.offset + e.numel, next);
  });
}

/** A model loaded from a Hugging Face directory. */
export interface LoadedModelDir {
  config: LlamaConfig;
  layout: ParamLayout;
  /** float32 [layout.numel], the parameters. */
  params: Tensor<"float32">;
  /** generation_config.json, or the one transformers derives from config.json when absent. */
  generationConfig: GenerationConfig;
}

/** Reads config.json, generation_config.json and the weights of `dir` into a new flat buffer. */
export function loadModelDir(dir: string): LoadedModelDir {
  const config = readModelConfig(dir);
  const layout = new ParamLayout(config);
  const params = Tensor.empty([layout.numel], "float32");
  try {
    loadWeights(dir, layout, params);
  } catch (err) {
    params.dispose();
    throw err;
  }
  return { config, layout, params, generationConfig: readGenerationConfig(dir) ?? generationConfigFromModel(config) };
}

const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 2 ** 10,
  MIB: 2 ** 20,
  GIB: 2 ** 30,
  TIB: 2 ** 40,
};

/**
 * A shard size in bytes: a positive integer, or a string such as "5GB", "500MB", "1.5GB"
 * (decimal units, as huggingface_hub parses them) or "2GiB" (binary), case-insensitive.
 */
export function parseShardSize(size: number | string): number {
  const op = "parseShardSize";
  if (typeof size === "number") {
    if (!Number.isSafeInteger(size) || size < 1) throw new GrowlmError(op, `max_shard_size must be a positive integer number of bytes but is ${size}`);
    return size;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]I?B|B)\s*$/i.exec(size);
  const bytes = m ? Math.floor(Number(m[1]) * SIZE_UNITS[m[2]!.toUpperCase()]!) : NaN;
  if (!(bytes >= 1)) {
    throw new GrowlmError(op, `max_shard_size ${JSON.stringify(size)} is not a size like "5GB", "500MB" or "2GiB"`);
  }
  return bytes;
}

/**
 * transformers' (huggingface_hub's) greedy split, tensors in order: a tensor that would push
 * the current shard past maxBytes closes it; a tensor larger than maxBytes alone gets a shard
 * of its own, placed before the still-open one.
 */
function planShards<T>(items: readonly T[], bytes: (item: T) => number, maxBytes: number): T[][] {
  const shards: T[][] = [];
  let current: T[] = [];
  let currentBytes = 0;
  for (const item of items) {
    const size = bytes(item);
    if (size > maxBytes) {
      shards.push([item]);
      continue;
    }
    if (currentBytes + size > maxBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(item);
    currentBytes += size;
  }
  if (current.length > 0) shards.push(current);
  return shards;
}

export interface SaveModelOptions {
  config: LlamaConfig;
  /** The layout of `flat`; must be the layout of `config`. */
  layout: ParamLayout;
  /** float32 [layout.numel], the parameters. */
  flat: Tensor<"float32">;
  /** Element type of the saved weights (and config.json's torch_dtype). */
  dtype: "float32" | "bfloat16";
  /** Largest shard in bytes, or a size string ("5GB", "500MB"); default "5GB" as transformers. */
  maxShardSize?: number | string;
  /** Written as generation_config.json; default: derived from `config` as transformers does. */
  generationConfig?: GenerationConfig;
  /** Further files (tokenizer.json, README.md, ...) by file name, written atomically with the rest. */
  extraFiles?: Record<string, string | Uint8Array>;
}

/** What saveModelDir wrote. */
export interface SavedModelDir {
  /** Weight files in order: [model.safetensors] or the shards. */
  weightFiles: string[];
  /** model.safetensors.index.json when sharded, else null. */
  indexFile: string | null;
  /** Bytes of tensor data over all weight files (the index's total_size). */
  totalSize: number;
}

/**
 * Writes a model as a Hugging Face directory transformers loads unchanged: config.json,
 * generation_config.json, the weights (model.safetensors, or model-0000i-of-0000N.safetensors
 * plus model.safetensors.index.json when they exceed maxShardSize, split greedily in layout
 * order as transformers does) and any extra files. `dir` is created if missing.
 *
 * Every file is written under a temporary name first; a failure there removes them and leaves
 * the directory as it was. Then the old entry points are removed, the new files renamed into
 * place (entry point last) and stale weight files of an earlier save deleted, so the directory
 * ends with exactly one consistent set. Extra memory: one CHUNK_BYTES chunk (bf16 only).
 */
export function saveModelDir(dir: string, options: SaveModelOptions): SavedModelDir {
  const op = "saveModelDir";
  const { config, layout, flat } = options;
  const specs = parameterSpecs(config);
  if (specs.length !== layout.entries.length || specs.some((s, i) => s.name !== layout.entries[i]!.name || formatShape(s.shape) !== formatShape(layout.entries[i]!.shape))) {
    throw new GrowlmError(op, "the layout's parameters differ from those of the config (build the layout from this config)");
  }
  if (flat.dtype !== "float32" || flat.numel !== layout.numel) {
    throw new GrowlmError(op, `expected a float32 buffer of ${layout.numel} elements (the layout's numel) but received ${flat.dtype} of ${flat.numel}`);
  }
  const data = flat.data;
  const tensors = layout.entries.map((e) => ({ name: e.name, shape: e.shape, data: data.subarray(e.offset, e.offset + e.numel) }));
  const { dtype, maxShardSize, generationConfig, extraFiles } = options;
  return writeModelDir(dir, { config, dtype, tensors, maxShardSize, generationConfig, extraFiles }, op);
}

export interface WriteModelDirOptions extends Omit<SaveModelOptions, "layout" | "flat"> {
  /**
   * Every parameter of `config`, in parameterSpecs order with its name and shape. A tensor's
   * data may be a function, called when the writer reaches it, so a model can be produced and
   * written one tensor at a time (growth of a checkpoint) without ever being held whole.
   */
  tensors: readonly TensorToWrite[];
}

/**
 * saveModelDir from a list of tensors instead of a flat buffer: the same files, sharding and
 * atomic commit. Extra memory: the tensors the data functions return, one at a time (the
 * writer drops each after writing it), plus one CHUNK_BYTES chunk for bf16.
 */
export function writeModelDir(dir: string, options: WriteModelDirOptions, op = "writeModelDir"): SavedModelDir {
  const { config, dtype, tensors } = options;
  const specs = parameterSpecs(config);
  const wrong = specs.findIndex((s, i) => s.name !== tensors[i]?.name || formatShape(s.shape) !== formatShape(tensors[i]!.shape));
  if (wrong >= 0) {
    const got = tensors[wrong] ? `"${tensors[wrong].name}" ${formatShape(tensors[wrong].shape)}` : "nothing";
    throw new GrowlmError(op, `tensor ${wrong} must be "${specs[wrong]!.name}" ${formatShape(specs[wrong]!.shape)} (parameterSpecs order of the config) but is ${got}`);
  }
  if (tensors.length !== specs.length) {
    throw new GrowlmError(op, `the config has ${specs.length} parameters but ${tensors.length} tensors were given (the first extra: "${tensors[specs.length]!.name}")`);
  }
  if (dtype !== "float32" && dtype !== "bfloat16") throw new GrowlmError(op, `dtype must be "float32" or "bfloat16" but is ${JSON.stringify(dtype)}`);
  const maxBytes = parseShardSize(options.maxShardSize ?? DEFAULT_MAX_SHARD_SIZE);
  const fileDtype = dtype === "float32" ? "F32" : "BF16";
  const item = SAFETENSORS_ITEM_BYTES[fileDtype];

  const reserved = new Set([CONFIG_NAME, GENERATION_CONFIG_NAME, SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME]);
  const extraFiles = Object.entries(options.extraFiles ?? {});
  for (const [name] of extraFiles) {
    if (path.basename(name) !== name || name === "." || name === ".." || reserved.has(name) || SHARD_NAME.test(name)) {
      throw new GrowlmError(op, `extra file ${JSON.stringify(name)} must be a plain file name other than the model's own files`);
    }
  }

  const version = typeof config.metadata.transformers_version === "string" ? config.metadata.transformers_version : WRITTEN_TRANSFORMERS_VERSION;
  const configJson = llamaConfigToJson(config, dtype);
  configJson.transformers_version ??= version;
  const generation = generationConfigToJson(options.generationConfig ?? generationConfigFromModel(config), version);

  const numel = (t: TensorToWrite): number => t.shape.reduce((a, b) => a * b, 1);
  const shards = planShards(tensors, (t) => numel(t) * item, maxBytes);
  const weightFiles = shards.length === 1 ? [SAFE_WEIGHTS_NAME] : shards.map((_, i) => `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`);
  const totalSize = tensors.reduce((n, t) => n + numel(t) * item, 0);

  fs.mkdirSync(dir, { recursive: true });
  // [final path, staged path], in commit order: the entry point (model.safetensors or the index) last.
  const staged: [string, string][] = [];
  try {
    staged.push([path.join(dir, CONFIG_NAME), stageFile(op, path.join(dir, CONFIG_NAME), jsonText(configJson))]);
    staged.push([path.join(dir, GENERATION_CONFIG_NAME), stageFile(op, path.join(dir, GENERATION_CONFIG_NAME), jsonText(generation))]);
    for (const [name, content] of extraFiles) staged.push([path.join(dir, name), stageFile(op, path.join(dir, name), content)]);
    const weightMap: Record<string, string> = {};
    shards.forEach((shard, i) => {
      const file = path.join(dir, weightFiles[i]!);
      staged.push([file, stageSafetensors(file, shard, { dtype: fileDtype })]);
      for (const t of shard) weightMap[t.name] = weightFiles[i]!;
    });
    if (shards.length > 1) {
      const indexFile = path.join(dir, SAFE_WEIGHTS_INDEX_NAME);
      staged.push([indexFile, stageFile(op, indexFile, jsonText({ metadata: { total_size: totalSize }, weight_map: weightMap }))]);
    }
  } catch (err) {
    for (const [, tmp] of staged) fs.rmSync(tmp, { force: true });
    if (err instanceof GrowlmError) throw err;
    throw new GrowlmError(op, `cannot write ${dir}: ${(err as Error).message}`, { cause: err });
  }

  // Commit. Without an entry point transformers loads nothing, so the set is never mixed.
  for (const entryPoint of [SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME]) fs.rmSync(path.join(dir, entryPoint), { force: true });
  for (const [final, tmp] of staged) fs.renameSync(tmp, final);
  const kept = new Set(weightFiles);
  for (const name of fs.readdirSync(dir)) {
    if (SHARD_NAME.test(name) && !kept.has(name)) fs.rmSync(path.join(dir, name), { force: true });
  }
  syncDirectory(dir);
  return { weightFiles, indexFile: shards.length > 1 ? SAFE_WEIGHTS_INDEX_NAME : null, totalSize };
}

/** Makes the renames durable; platforms that cannot fsync a directory (Windows) skip it. */
function syncDirectory(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, "r");
  } catch {
    return;
  }
  try {
    fs.fsyncSync(fd);
  } catch {
    // EISDIR/EPERM where directories cannot be fsynced: the renames are done, only their durability is weaker.
  } finally {
    fs.closeSync(fd);
  }
}
