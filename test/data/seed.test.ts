/** The study's raw data: preprocessing, prompt formats and the fine-tuning collator. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test } from "vitest";

import { collate, epochOrder, promptIds, tokenizeExample } from "../../src/data/collator.js";
import { extractPrediction, formatPrompt } from "../../src/data/prompts.js";
import { preprocessFolder, readRawFile, replaceBrackets } from "../../src/data/seed.js";
import { byteLevelTokenizer } from "../../src/io/tokenizer.js";
import { RandomStream } from "../../src/train/random.js";
import { BASE_SEED } from "../helpers/reference.js";

describe("preprocess", () => {
  let dir: string;
  const write = (name: string, value: unknown) => fs.writeFileSync(path.join(dir, name), typeof value === "string" ? value : JSON.stringify(value));
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-seed-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const raw = (n: number, tag: string) => ({
    src: Array.from({ length: n }, (_, i) => `${tag} source ${i} -LRB-x-RRB-`),
    tgt: Array.from({ length: n }, (_, i) => (i === 0 ? [`${tag} ref a`, `${tag} ref b -LSB-1-RSB-`] : `${tag} target ${i}`)),
    src_info: Array.from({ length: n }, (_, i) => ({ normal_sentence: `-LRB-${i}-RRB-\n`, prompt_name: "simplification_1", nested: ["-LSB-"] })),
  });

  test("merges train and test files by name, replaces brackets everywhere, splits ceil(r·n) to eval by seed", () => {
    write("simplification_1.train.json", raw(150, "a"));
    write("simplification_1.test.json", raw(4, "b"));
    write("simplification_2.test.json", raw(3, "c"));
    const ds = preprocessFolder(dir, { evalDatasetSize: 0.01, seed: 42 });
    expect(ds.eval).toHaveLength(2);
    expect(ds.train).toHaveLength(148);
    expect(ds.test.map((e) => e.input.split(" ")[0])).toEqual(["b", "b", "b", "b", "c", "c", "c"]);
    expect(ds.test[0]).toEqual({
      input: "b source 0 (x)",
      output: ["b ref a", "b ref b [1]"],
      src_info: { normal_sentence: "(0)\n", prompt_name: "simplification_1", nested: ["["] },
      index: 0,
    });
    const all = [...ds.train, ...ds.eval].map((e) => e.index).sort((a, b) => a! - b!);
    expect(all).toEqual(Array.from({ length: 150 }, (_, i) => i));
    expect(preprocessFolder(dir, { evalDatasetSize: 0.01, seed: 42 })).toEqual(ds);
    expect(preprocessFolder(dir, { evalDatasetSize: 0.01, seed: 7 }).eval).not.toEqual(ds.eval);
  });

  test("refuses bad files by name", () => {
    write("x.train.json", "{not json");
    expect(() => preprocessFolder(dir, { evalDatasetSize: 0.1 })).toThrow(/cannot read .*x\.train\.json/);
    write("x.train.json", { src: ["a", "b"], tgt: ["a"] });
    expect(() => readRawFile(path.join(dir, "x.train.json"))).toThrow(/x\.train\.json: "src" \(2\), "tgt" \(1\)/);
    write("x.train.json", { src: ["a"], tgt: [3] });
    expect(() => readRawFile(path.join(dir, "x.train.json"))).toThrow(/example 0 needs a string "src"/);
    write("x.train.json", raw(2, "a"));
    write("notes.json", raw(2, "a"));
    expect(() => preprocessFolder(dir, { evalDatasetSize: 0.1 })).toThrow(/notes\.json: the name must contain exactly one of "train" and "test"/);
    expect(() => preprocessFolder(path.join(dir, "missing"), { evalDatasetSize: 0.1 })).toThrow(/cannot read the folder/);
    expect(() => preprocessFolder(dir, { evalDatasetSize: 1 })).toThrow(/--eval_dataset_size must be in \[0, 1\)/);
  });

  test("replaceBrackets leaves other values alone", () => {
    expect(replaceBrackets({ a: 1, b: null, c: [true, "-RSB-"] })).toEqual({ a: 1, b: null, c: [true, "]"] });
  });
});

describe("prompts and collator", () => {
  const tokenizer = byteLevelTokenizer();
  const bytes = (s: string) => Array.from(new TextEncoder().encode(s));

  test("the three prompt formats and the prediction after the response marker", () => {
    expect(formatPrompt("x", "none")).toBe("x");
    expect(formatPrompt("x", "prompt")).toBe(
      "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\nx\n\n### Response:",
    );
    expect(formatPrompt("x", "alpaca")).toBe(
      "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nx\n\n### Response: ",
    );
    expect(extractPrediction("blah ### Response: a ### Response:  the answer \n")).toBe("the answer");
    expect(extractPrediction(" plain ")).toBe("plain");
  });

  test("source is BOS + prompt with labels -100, target + EOS, each truncated as qlora does", () => {
    const e = tokenizeExample(tokenizer, { input: "abc", output: "xy" }, { format: "none", sourceMaxLen: 10, targetMaxLen: 10 });
    expect(e.ids).toEqual([256, ...bytes("abc"), ...bytes("xy"), 257]);
    expect(e.labels).toEqual([-100, -100, -100, -100, ...bytes("xy"), 257]);
    const cut = tokenizeExample(tokenizer, { input: "abcdef", output: ["xyz", "other"] }, { format: "none", sourceMaxLen: 3, targetMaxLen: 2 });
    expect(cut.ids).toEqual([256, ...bytes("ab"), ...bytes("xy")]); // EOS cut off with the target
    const onSource = tokenizeExample(tokenizer, { input: "a", output: "b" }, { format: "none", sourceMaxLen: 8, targetMaxLen: 8, trainOnSource: true });
    expect(onSource.labels).toEqual(onSource.ids);
    expect(promptIds(tokenizer, "abcdef", "none", 4)).toEqual([256, ...bytes("abc")]);
  });

  test("collate pads on the right with labels -100", () => {
    const batch = collate([{ ids: [1, 2, 3], labels: [-100, 2, 3] }, { ids: [4], labels: [4] }], 258);
    expect(batch.ids.shape).toEqual([2, 3]);
    expect(Array.from(batch.ids.data)).toEqual([1, 2, 3, 4, 258, 258]);
    expect(Array.from(batch.labels.data)).toEqual([-100, 2, 3, 4, -100, -100]);
    expect(() => collate([], 0)).toThrow(/no example/);
  });

  test("epoch order: a seeded permutation; grouped by length, sorted mega-batches with the longest first", () => {
    const lengths = Array.from({ length: 103 }, (_, i) => (i * 37 + BASE_SEED) % 61);
    const plain = epochOrder(lengths, 4, new RandomStream(3), false);
    expect([...plain].sort((a, b) => a - b)).toEqual(lengths.map((_, i) => i));
    expect(epochOrder(lengths, 4, new RandomStream(3), false)).toEqual(plain);
    const grouped = epochOrder(lengths, 4, new RandomStream(3), true);
    expect([...grouped].sort((a, b) => a - b)).toEqual(lengths.map((_, i) => i));
    expect(lengths[grouped[0]!]).toBe(Math.max(...lengths));
    // 103 // 16 = 6 batches per mega-batch: each of 24 sorted by length after its first element
    // (the first elements of the first and the longest mega-batch were swapped).
    for (let m = 0; m < grouped.length; m += 24) {
      const chunk = grouped.slice(m + 1, m + 24).map((i) => lengths[i]!);
      expect(chunk).toEqual([...chunk].sort((a, b) => b - a));
    }
  });
});
