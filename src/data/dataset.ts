/**
 * Reading fine-tuning data: the study's preprocessed JSON ({"train", "eval", "test"} lists of
 * {input, output, src_info, index}, as `growlm preprocess` writes it) or JSONL of
 * {input, output} objects (all of it one split). Every example is checked at the boundary.
 */
import fs from "node:fs";

import { GrowlmError } from "../errors.js";
import type { Example, PreprocessedDataset } from "./seed.js";

export type Split = "train" | "eval" | "test";
export const SPLITS: readonly Split[] = ["train", "eval", "test"];

function checkExample(file: string, where: string, value: unknown): Example {
  const op = "readDataset";
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new GrowlmError(op, `${file}: ${where} is not an object`);
  const e = value as Record<string, unknown>;
  const outputOk = typeof e.output === "string" || (Array.isArray(e.output) && e.output.length > 0 && e.output.every((r) => typeof r === "string"));
  if (typeof e.input !== "string" || !outputOk) {
    throw new GrowlmError(op, `${file}: ${where} needs a string "input" and a string (or list of strings) "output"`);
  }
  if (e.src_info !== undefined && (typeof e.src_info !== "object" || e.src_info === null || Array.isArray(e.src_info))) {
    throw new GrowlmError(op, `${file}: ${where} has a "src_info" that is not an object`);
  }
  return e as unknown as Example;
}

/**
 * Reads `file`: a preprocessed JSON object with train/eval/test lists (missing lists are
 * empty), or JSONL (extension .jsonl) whose examples all go to `jsonlSplit` (default train).
 */
export function readDataset(file: string, jsonlSplit: Split = "train"): PreprocessedDataset {
  const op = "readDataset";
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new GrowlmError(op, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const dataset: PreprocessedDataset = { train: [], eval: [], test: [] };
  if (file.endsWith(".jsonl")) {
    text.split("\n").forEach((line, i) => {
      if (line.trim() === "") return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (err) {
        throw new GrowlmError(op, `${file}: line ${i + 1} is not valid JSON (${(err as Error).message})`, { cause: err });
      }
      dataset[jsonlSplit].push(checkExample(file, `line ${i + 1}`, value));
    });
    return dataset;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new GrowlmError(op, `${file} is not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value) || !SPLITS.some((s) => s in value)) {
    throw new GrowlmError(op, `${file}: expected an object with "train", "eval" and/or "test" lists (growlm preprocess writes one)`);
  }
  for (const split of SPLITS) {
    const list = (value as Record<string, unknown>)[split];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw new GrowlmError(op, `${file}: "${split}" must be a list`);
    dataset[split] = list.map((e, i) => checkExample(file, `"${split}"[${i}]`, e));
  }
  return dataset;
}
