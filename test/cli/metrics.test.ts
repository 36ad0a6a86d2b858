/** growlm metrics, run in process as the CLI runs it. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test, vi, type MockInstance } from "vitest";

import { metrics } from "../../src/cli/metrics.js";
import { bleu } from "../../src/eval/metrics/bleu.js";
import { rouge } from "../../src/eval/metrics/rouge.js";
import { corpusBleu } from "../../src/eval/metrics/sacrebleu.js";
import { EASSE_SARI_VARIANT, HF_SARI_VARIANT, easseCorpusSari, sari } from "../../src/eval/metrics/sari.js";

const SOURCES = ["About 95 species are currently accepted .", "The cat sat on the mat ."];
const PREDICTIONS = ["About 95 you now get in .", "The cat sat ."];
const REFS1 = ["About 95 species are currently known .", "A cat sat on a mat ."];
const REFS2 = ["95 species are now accepted .", "The cat sat ."];

describe("growlm metrics", () => {
  let dir: string;
  let log: MockInstance<typeof console.log>;
  const write = (name: string, text: string): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };
  const printed = (): Record<string, Record<string, unknown>> => JSON.parse(String(log.mock.calls.at(-1)![0])) as Record<string, Record<string, unknown>>;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-metrics-cli-"));
    log = vi.spyOn(console, "log").mockImplementation(() => {});
  });
  afterEach(() => {
    vi.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("text files: every metric, keyed by name, equal to the library functions", async () => {
    const p = write("p.txt", `${PREDICTIONS.join("\n")}\n`);
    const r1 = write("r1.txt", `${REFS1.join("\n")}\n`);
    const r2 = write("r2.txt", `${REFS2.join("\n")}\n`);
    const s = write("s.txt", `${SOURCES.join("\n")}\n`);
    const out = path.join(dir, "metrics.json");
    await metrics.run(["--metric", "bleu,sacrebleu,sentence_bleu,rouge,sari,easse_sari", "--predictions", p, "--references", r1, "--references", r2, "--sources", s, "--out", out]);
    const refs = PREDICTIONS.map((_, i) => [REFS1[i]!, REFS2[i]!]);
    const result = printed();
    expect(Object.keys(result)).toEqual(["bleu", "sacrebleu", "sentence_bleu", "rouge", "sari", "easse_sari"]);
    expect(result.bleu).toEqual(bleu(PREDICTIONS, refs));
    expect(result.sacrebleu).toEqual(corpusBleu(PREDICTIONS, refs));
    expect(result.rouge).toEqual(rouge(PREDICTIONS, refs));
    expect(result.sari).toEqual(sari(SOURCES, PREDICTIONS, refs));
    expect(result.sari!.variant).toBe(HF_SARI_VARIANT);
    expect(result.easse_sari).toEqual(easseCorpusSari(SOURCES, PREDICTIONS, refs));
    expect(result.easse_sari!.variant).toBe(EASSE_SARI_VARIANT);
    expect((result.sentence_bleu!.scores as number[]).length).toBe(2);
    expect(JSON.parse(fs.readFileSync(out, "utf8"))).toEqual(result);
  });

  test("JSONL input with options; defaults depend on sources", async () => {
    const f = write("in.jsonl", PREDICTIONS.map((prediction, i) => JSON.stringify({ prediction, references: i === 0 ? [REFS1[i], REFS2[i]] : [REFS2[i]] })).join("\n"));
    await metrics.run(["--input", f, "--use_stemmer", "--use_aggregator", "false", "--smooth", "--max_order", "2"]);
    const result = printed();
    expect(Object.keys(result)).toEqual(["bleu", "sacrebleu", "rouge"]);
    expect(result.bleu).toEqual(bleu(PREDICTIONS, [[REFS1[0]!, REFS2[0]!], [REFS2[1]!]], { smooth: true, maxOrder: 2 }));
    expect((result.rouge!.rouge1 as number[]).length).toBe(2);
    expect(result.sacrebleu!.signature).toBe("nrefs:var|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
  });

  test("a study predictions.jsonl writes metrics.json beside it", async () => {
    const lines = PREDICTIONS.map((prediction, i) =>
      JSON.stringify({ input: `prompt ${i}`, output: REFS1[i], src_info: { normal_sentence: `${SOURCES[i]}\n`, simple_sentence: `${REFS1[i]}\n` }, index: i, prediction_with_input: `prompt ${i} ${prediction}`, prediction }),
    );
    const f = write("predictions.jsonl", `${lines.join("\n")}\n`);
    await metrics.run(["--predictions", f]);
    const written = JSON.parse(fs.readFileSync(path.join(dir, "metrics.json"), "utf8")) as Record<string, Record<string, unknown>>;
    expect(Object.keys(written)).toEqual(["bleu", "sacrebleu", "rouge", "sari", "easse_sari"]);
    expect(written.sari).toEqual(sari(SOURCES, PREDICTIONS, REFS1.map((r) => [r])));
    expect(written).toEqual(printed());
  });

  test("bad flags and inputs are refused by name", () => {
    const p = write("p.txt", "a\n");
    const r = write("r.txt", "a\n");
    expect(() => metrics.run([])).toThrow(/give --predictions .* or --input/);
    expect(() => metrics.run(["--predictions", p, "--references", r, "--metric", "bleu,meteor"])).toThrow(/unknown metric "meteor"/);
    expect(() => metrics.run(["--predictions", p, "--references", r, "--metric", "sari"])).toThrow(/sari needs the sources/);
    expect(() => metrics.run(["--predictions", p, "--references", r, "--tokenize", "intl"])).toThrow(/--tokenize must be one of 13a, none/);
    expect(() => metrics.run(["--predictions", p, "--references", r, "--max_order", "0"])).toThrow(/--max_order must be an integer in \[1, 16\]/);
    expect(() => metrics.run(["--input", p, "--predictions", p])).toThrow(/--input replaces --predictions/);
    expect(() => metrics.run(["--predictions", p, "--sources", r])).toThrow(/--sources needs --references/);
  });
});
