/**
 * The original study's data: a folder of raw JSON files in the CT0 layout,
 * `{"src": [...], "tgt": [...], "src_info": [...]}`, whose names contain `train` or `test`,
 * merged by `preprocess` into `{"train", "eval", "test"}` lists of
 * `{input, output, src_info, index}` as the study's `data_formatting.py` writes them:
 * Penn-Treebank brackets (-LRB- -RRB- -LSB- -RSB-) replaced everywhere (src_info included)
 * and an eval split drawn from train with a seed.
 *
 * One difference from the original: its eval split is `datasets.train_test_split(test_size=r,
 * seed=42)`, drawn from numpy's PCG64 stream; growlm draws it from its own Philox stream, so
 * the same seed selects other examples (the size, ceil(r · n), is the same).
 */
import fs from "node:fs";
import path from "node:path";

import { GrowlmError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { RandomStream } from "../train/random.js";

/** One example: a source, its target (one reference or several), the raw fields it came from. */
export interface Example {
  input: string;
  /** The target; the CT0 files allow several references for test examples. */
  output: string | string[];
  src_info?: Record<string, unknown>;
  /** Position in the raw list it came from. */
  index?: number;
}

export interface PreprocessedDataset {
  train: Example[];
  eval: Example[];
  test: Example[];
}

const BRACKETS: readonly [RegExp, string][] = [
  [/-LRB-/g, "("],
  [/-RRB-/g, ")"],
  [/-LSB-/g, "["],
  [/-RSB-/g, "]"],
];

/** Replaces the Penn-Treebank bracket tokens in every string inside `value` (recursively). */
export function replaceBrackets<T>(value: T): T {
  if (typeof value === "string") return BRACKETS.reduce((s, [re, to]) => s.replace(re, to), value as string) as T;
  if (Array.isArray(value)) return value.map((v) => replaceBrackets(v)) as T;
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceBrackets(v)])) as T;
  }
  return value;
}

/** Reads one raw CT0 file into examples, refusing anything malformed by name. */
export function readRawFile(file: string): Example[] {
  const op = "preprocess";
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new GrowlmError(op, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new GrowlmError(op, `${file}: expected an object {"src", "tgt", "src_info"}`);
  const { src, tgt, src_info: info } = raw as Record<string, unknown>;
  if (!Array.isArray(src) || !Array.isArray(tgt)) throw new GrowlmError(op, `${file}: "src" and "tgt" must be lists`);
  if (src.length !== tgt.length || (info !== undefined && (!Array.isArray(info) || info.length !== src.length))) {
    throw new GrowlmError(op, `${file}: "src" (${src.length}), "tgt" (${tgt.length}) and "src_info" (${Array.isArray(info) ? info.length : typeof info}) must have the same length`);
  }
  return src.map((s, i) => {
    const t = tgt[i];
    const isTarget = typeof t === "string" || (Array.isArray(t) && t.length > 0 && t.every((r) => typeof r === "string"));
    if (typeof s !== "string" || !isTarget) {
      throw new GrowlmError(op, `${file}: example ${i} needs a string "src" and a string (or list of strings) "tgt"`);
    }
    const si = Array.isArray(info) ? info[i] : undefined;
    if (si !== undefined && (typeof si !== "object" || si === null || Array.isArray(si))) {
      throw new GrowlmError(op, `${file}: "src_info"[${i}] must be an object`);
    }
    const example: Example = { input: s, output: t as string | string[], index: i };
    if (si !== undefined) example.src_info = si as Record<string, unknown>;
    return replaceBrackets(example);
  });
}

export interface PreprocessOptions {
  /** Fraction of train moved to eval (the study used 0.01); its count is ceil(fraction · n). */
  evalDatasetSize: number;
  /** Seed of the eval draw (default 42, as the study). */
  seed?: number;
}

/**
 * Merges every *.json file of `folder` (sorted by name) into train and test by name, then
 * moves a seeded ceil(evalDatasetSize · n) of train to eval, keeping the remaining order.
 */
export function preprocessFolder(folder: string, options: PreprocessOptions): PreprocessedDataset {
  const op = "preprocess";
  const { evalDatasetSize, seed = 42 } = options;
  if (!(evalDatasetSize >= 0 && evalDatasetSize < 1)) throw new GrowlmError(op, `--eval_dataset_size must be in [0, 1) but is ${evalDatasetSize}`);
  let names: string[];
  try {
    names = fs.readdirSync(folder).filter((n) => n.endsWith(".json")).sort();
  } catch (err) {
    throw new GrowlmError(op, `cannot read the folder ${folder}: ${(err as Error).message}`, { cause: err });
  }
  if (names.length === 0) throw new GrowlmError(op, `${folder} holds no .json file`);
  const train: Example[] = [];
  const test: Example[] = [];
  for (const name of names) {
    const isTrain = name.includes("train");
    const isTest = name.includes("test");
    if (isTrain === isTest) {
      throw new GrowlmError(op, `${path.join(folder, name)}: the name must contain exactly one of "train" and "test"`);
    }
    (isTrain ? train : test).push(...readRawFile(path.join(folder, name)));
  }
  const nEval = Math.ceil(evalDatasetSize * train.length);
  const chosen = new Set(new RandomStream(seed).permutation(train.length).slice(0, nEval));
  return {
    train: train.filter((_, i) => !chosen.has(i)),
    eval: train.filter((_, i) => chosen.has(i)),
    test,
  };
}

/** Writes a preprocessed dataset as the study's JSON file (atomically). */
export function writePreprocessed(file: string, dataset: PreprocessedDataset): void {
  writeFileAtomic("preprocess", file, `${JSON.stringify(dataset)}\n`);
}
