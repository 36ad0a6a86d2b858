/** growlm predict end to end on a tiny model with the byte-level tokenizer (growlm init --tokenizer byte). */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeAll, beforeEach, describe, expect, test, vi } from "vitest";

import { init } from "../../src/cli/init.js";
import { predict } from "../../src/cli/predict.js";
import { generate } from "../../src/eval/generate.js";
import { loadTokenizer } from "../../src/io/tokenizer.js";
import { loadPretrained } from "../../src/model/pretrained.js";

const CONFIG = { vocab_size: 259, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 512, initializer_range: 0.3 };

interface Line {
  input: string;
  output: string;
  src_info: Record<string, string>;
  index: number;
  prediction_with_input: string;
  prediction: string;
}

const readLines = (file: string): Line[] => fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Line);

describe("growlm predict", () => {
  let root: string;
  let model: string;
  let data: string;
  let dir: string;
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-predict-model-"));
    fs.writeFileSync(path.join(root, "cfg.json"), JSON.stringify(CONFIG));
    model = path.join(root, "model");
    vi.spyOn(console, "log").mockImplementation(() => {});
    await init.run(["--config", path.join(root, "cfg.json"), "--seed", "3", "--out", model, "--tokenizer", "byte"]);
    vi.restoreAllMocks();
    const example = (i: number, prompt: string) => ({
      input: `Sentence number ${i} is ${"rather ".repeat(i % 4)}long.`,
      output: `Sentence ${i} is long.`,
      src_info: { normal_sentence: `Sentence number ${i}.`, prompt_name: prompt },
      index: i,
    });
    data = path.join(root, "data.json");
    const test = Array.from({ length: 7 }, (_, i) => example(i, i % 3 === 2 ? "simplification_2" : "simplification_1"));
    fs.writeFileSync(data, JSON.stringify({ train: [example(100, "simplification_1")], eval: [], test }));
  });
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-predict-"));
    vi.spyOn(console, "log").mockImplementation(() => {});
    vi.spyOn(console, "error").mockImplementation(() => {});
  });
  afterEach(() => {
    vi.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("writes the study's lines; the prediction is the greedy continuation of BOS + input", async () => {
    const out = path.join(dir, "predictions.jsonl");
    await predict.run(["--model", model, "--dataset", data, "--split", "test", "--out", out, "--max_new_tokens", "6", "--json"]);
    const lines = readLines(out);
    const examples = (JSON.parse(fs.readFileSync(data, "utf8")) as { test: Line[] }).test;
    expect(lines).toHaveLength(7);
    const tokenizer = await loadTokenizer(model);
    const m = loadPretrained(model);
    lines.forEach((line, i) => {
      expect(Object.keys(line)).toEqual(["input", "output", "src_info", "index", "prediction_with_input", "prediction"]);
      expect(line).toMatchObject({ input: examples[i]!.input, output: examples[i]!.output, src_info: examples[i]!.src_info, index: i });
      const prompt = [tokenizer.bosId!, ...tokenizer.encode(examples[i]!.input, { addBos: false, addEos: false })];
      const [generated] = generate(m, [prompt], { maxNewTokens: 6, eosTokenId: tokenizer.eosId, topK: 50 });
      const text = tokenizer.decode(generated!.tokens, { skipSpecialTokens: true, cleanUpTokenizationSpaces: true });
      expect(line.prediction).toBe(text.trim());
      expect(line.prediction_with_input).toBe(tokenizer.decode([...prompt, ...generated!.tokens], { skipSpecialTokens: true, cleanUpTokenizationSpaces: true }).trim());
      expect(line.prediction_with_input.startsWith(examples[i]!.input.trim())).toBe(true);
    });
    m.dispose();
    const summary = JSON.parse(vi.mocked(console.log).mock.calls.at(-1)![0] as string) as { examples: number; generated_tokens: number };
    expect(summary.examples).toBe(7);
    expect(summary.generated_tokens).toBeGreaterThan(0);
  });

  test("the file does not depend on the batch size, for beam search and for sampling", async () => {
    for (const flags of [
      ["--num_beams", "3", "--length_penalty", "0.8", "--no_repeat_ngram_size", "2", "--early_stopping", "never"],
      ["--do_sample", "true", "--temperature", "0.8", "--top_p", "0.9", "--top_k", "50", "--seed", "5", "--repetition_penalty", "1.2"],
    ]) {
      const files = [1, 3].map((batch) => path.join(dir, `b${batch}.jsonl`));
      for (const [i, batch] of [1, 3].entries()) {
        await predict.run(["--model", model, "--dataset", data, "--out", files[i]!, "--max_new_tokens", "5", "--per_device_eval_batch_size", String(batch), ...flags]);
      }
      expect(fs.readFileSync(files[0]!, "utf8")).toBe(fs.readFileSync(files[1]!, "utf8"));
    }
  });

  test("--task simp keeps the study's test template; --max_test_samples, --dataset_format, JSONL input", async () => {
    const out = path.join(dir, "p.jsonl");
    await predict.run(["--model", model, "--dataset", data, "--out", out, "--max_new_tokens", "2", "--task", "simp", "--max_test_samples", "3", "--dataset_format", "prompt", "--bf16"]);
    const lines = readLines(out);
    expect(lines.map((l) => l.index)).toEqual([0, 1, 3]);
    expect(lines[0]!.input).toMatch(/^Below is an instruction .*\n\nSentence number 0 is long\.\n\n### Response:$/s);
    const jsonl = path.join(dir, "data.jsonl");
    fs.writeFileSync(jsonl, `${JSON.stringify({ input: "Hello", output: "Hi" })}\n${JSON.stringify({ input: "Bye", output: "Ciao" })}\n`);
    await predict.run(["--model", model, "--dataset", jsonl, "--out", out, "--max_new_tokens", "2", "--source_max_len", "3"]);
    const short = readLines(out);
    expect(short.map((l) => l.output)).toEqual(["Hi", "Ciao"]);
    // BOS and the first two bytes of the input survive --source_max_len 3.
    expect(short[0]!.prediction_with_input.startsWith("He")).toBe(true);
    expect(short[0]!.prediction_with_input.startsWith("Hel")).toBe(short[0]!.prediction.startsWith("l"));
  });

  test("bad flags and files are refused by name", async () => {
    const out = path.join(dir, "x.jsonl");
    await expect(predict.run(["--model", model, "--dataset", data])).rejects.toThrow(/growlm predict: --out is required/);
    await expect(predict.run(["--model", model, "--dataset", data, "--out", out, "--split", "dev"])).rejects.toThrow(/--split must be one of train, eval, test but is "dev"/);
    await expect(predict.run(["--model", model, "--dataset", data, "--out", out, "--split", "eval"])).rejects.toThrow(/data\.json has no "eval" examples/);
    await expect(predict.run(["--model", model, "--dataset", data, "--out", out, "--early_stopping", "maybe"])).rejects.toThrow(/--early_stopping must be one of true, false, never/);
    await expect(predict.run(["--model", model, "--dataset", data, "--out", out, "--num_beams", "2", "--do_sample"])).rejects.toThrow(/beam-search multinomial sampling/);
    await expect(predict.run(["--model", model, "--dataset", data, "--out", out, "--top_p", "2"])).rejects.toThrow(/generate: "topP" must be in \[0, 1\] but is 2/);
    await expect(predict.run(["--model", model, "--dataset", path.join(dir, "none.json"), "--out", out])).rejects.toThrow(/cannot read .*none\.json/);
    await expect(predict.run(["--model", model, "--dataset", data, "--out", out, "--max_new_tokens", "500"])).rejects.toThrow(/max_position_embeddings = 512/);
    await predict.run(["--model", model, "--dataset", data, "--out", out, "--max_new_tokens", "1", "--report_to", "none"]);
    expect(vi.mocked(console.error).mock.calls[0]![0]).toMatch(/ignoring --report_to/);
    expect(fs.readdirSync(dir)).toEqual(["x.jsonl"]);
  });
});
