/**
 * Pretraining data: a plain-text corpus (one document per non-empty line) or JSONL
 * ({"text": "..."} per line), tokenized as BOS + text + EOS per document, concatenated and
 * cut into blocks of T tokens (the last partial block dropped), as causal-LM pretraining
 * scripts (run_clm's group_texts) do. A seeded share of the blocks is held out for validation.
 */
import fs from "node:fs";

import { GrowlmError } from "../errors.js";
import type { Tokenizer } from "../io/tokenizer.js";
import { RandomStream } from "../train/random.js";

/** The documents of a corpus file. */
export function readCorpus(file: string): string[] {
  const op = "readCorpus";
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new GrowlmError(op, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  if (!file.endsWith(".jsonl")) return lines;
  return lines.map((line, i) => {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new GrowlmError(op, `${file}: line ${i + 1} is not valid JSON (${(err as Error).message})`, { cause: err });
    }
    const doc = (value as { text?: unknown } | null)?.text;
    if (typeof doc !== "string") throw new GrowlmError(op, `${file}: line ${i + 1} has no string "text"`);
    return doc;
  });
}

export interface PackedCorpus {
  /** Training blocks, each `blockSize` token ids. */
  train: Int32Array[];
  validation: Int32Array[];
  blockSize: number;
}

/** Tokenizes and packs `documents`; `validationShare` of the blocks (at least one) go to validation. */
export function packCorpus(documents: readonly string[], tokenizer: Tokenizer, blockSize: number, validationShare: number, seed: number): PackedCorpus {
  const op = "packCorpus";
  if (!Number.isSafeInteger(blockSize) || blockSize < 2) throw new GrowlmError(op, `the block size must be an integer >= 2 but is ${blockSize}`);
  const ids: number[] = [];
  for (const doc of documents) {
    if (tokenizer.bosId !== null) ids.push(tokenizer.bosId);
    ids.push(...tokenizer.encode(doc, { addBos: false, addEos: false }));
    if (tokenizer.eosId !== null) ids.push(tokenizer.eosId);
  }
  const n = Math.floor(ids.length / blockSize);
  if (n < 2) throw new GrowlmError(op, `the corpus has ${ids.length} tokens: fewer than two blocks of ${blockSize}`);
  const blocks = Array.from({ length: n }, (_, b) => Int32Array.from(ids.slice(b * blockSize, (b + 1) * blockSize)));
  const nValidation = Math.min(n - 1, Math.max(1, Math.round(validationShare * n)));
  const held = new Set(new RandomStream(seed).permutation(n).slice(0, nValidation));
  return { train: blocks.filter((_, b) => !held.has(b)), validation: blocks.filter((_, b) => held.has(b)), blockSize };
}
