/** Reading metric inputs: text lines, JSONL objects and the original study's predictions.jsonl. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test } from "vitest";

import { readJsonlInputs, readLines, readStudyPredictions, readTextInputs } from "../../../src/eval/metrics/inputs.js";

describe("metric inputs", () => {
  let dir: string;
  const write = (name: string, text: string): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-metrics-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("text lines: CRLF, a final newline, empty lines kept, counts checked", () => {
    expect(readLines(write("a.txt", "one\r\n\ntwo\n"))).toEqual(["one", "", "two"]);
    expect(readLines(write("b.txt", "one\ntwo"))).toEqual(["one", "two"]);
    expect(readLines(write("c.txt", ""))).toEqual([]);
    const p = write("p.txt", "x y\nz\n");
    const r1 = write("r1.txt", "x y\nz\n");
    const r2 = write("r2.txt", "x\nw\n");
    const s = write("s.txt", "X Y\nZ\n");
    expect(readTextInputs(p, [r1, r2], s)).toEqual({ predictions: ["x y", "z"], references: [["x y", "x"], ["z", "w"]], sources: ["X Y", "Z"], sariReferences: null });
    expect(() => readTextInputs(p, [write("short.txt", "x\n")])).toThrow(/short\.txt has 1 lines but .*p\.txt has 2/);
    expect(() => readTextInputs(p, [])).toThrow(/--references is required/);
    expect(() => readTextInputs(path.join(dir, "missing.txt"), [r1])).toThrow(/cannot read .*missing\.txt/);
  });

  test("JSONL: multi-line texts, a varying number of references, sources on all lines or none", () => {
    const f = write("in.jsonl", '{"prediction": "a\\nb", "references": ["a", "b"], "source": "s1"}\n\n{"prediction": "c", "references": "c", "source": "s2"}\n');
    expect(readJsonlInputs(f)).toEqual({ predictions: ["a\nb", "c"], references: [["a", "b"], ["c"]], sources: ["s1", "s2"], sariReferences: null });
    expect(readJsonlInputs(write("n.jsonl", '{"prediction": "a", "references": ["a"]}\n')).sources).toBeNull();
    expect(() => readJsonlInputs(write("m.jsonl", '{"prediction": "a", "references": ["a"], "source": "s"}\n{"prediction": "a", "references": ["a"]}\n'))).toThrow(
      /1 of 2 lines have a "source"/,
    );
    expect(() => readJsonlInputs(write("bad.jsonl", '{"prediction": "a"}\n'))).toThrow(/bad\.jsonl line 1: "references" must be a string or a non-empty list/);
    expect(() => readJsonlInputs(write("nojson.jsonl", "{oops\n"))).toThrow(/nojson\.jsonl line 1 is not JSON/);
    expect(() => readJsonlInputs(write("empty.jsonl", "\n"))).toThrow(/holds no examples/);
  });

  test("the study's predictions.jsonl: output as reference; SARI from src_info where present", () => {
    const simp = (i: number) => ({
      input: `Below is an instruction...\n\nMake this text simpler: "Normal ${i}."\n\n### Response:`,
      output: `Simple ${i}.`,
      src_info: { normal_sentence: `Normal ${i}.\n`, simple_sentence: `Simple ${i}.\n`, prompt: "...", prompt_name: "simplification_1", prompt_mode: "custom" },
      index: i,
      prediction_with_input: `Below is ... ### Response: Pred ${i}.`,
      prediction: `Pred ${i}.`,
    });
    const f = write("predictions.jsonl", [simp(0), simp(1)].map((l) => JSON.stringify(l)).join("\n") + "\n");
    expect(readStudyPredictions(f)).toEqual({
      predictions: ["Pred 0.", "Pred 1."],
      references: [["Simple 0."], ["Simple 1."]],
      sources: ["Normal 0.\n", "Normal 1.\n"],
      sariReferences: [["Simple 0.\n"], ["Simple 1.\n"]],
    });
    const qg = { input: "q", output: ["Why?", "How?"], src_info: { question: "Why?", text: "t" }, index: 0, prediction: "Why?" };
    expect(readStudyPredictions(write("qg.jsonl", `${JSON.stringify(qg)}\n`))).toEqual({ predictions: ["Why?"], references: [["Why?", "How?"]], sources: null, sariReferences: null });
    expect(() => readStudyPredictions(write("noout.jsonl", '{"prediction": "a"}\n'))).toThrow(/noout\.jsonl line 1: "output" must be/);
  });
});
