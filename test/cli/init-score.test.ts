/** growlm init and growlm score, run in process as the CLI runs them. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";

import { init } from "../../src/cli/init.js";
import { score } from "../../src/cli/score.js";
import { readModelConfig } from "../../src/io/hf.js";
import { loadTokenizer } from "../../src/io/tokenizer.js";
import { loadPretrained } from "../../src/model/pretrained.js";
import { scoreSequences } from "../../src/model/score.js";
import { expectBitwiseEqual } from "../helpers/reference.js";

const CONFIG = { vocab_size: 300, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64 };

describe("growlm init / score", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-cli-"));
    fs.writeFileSync(path.join(dir, "cfg.json"), JSON.stringify(CONFIG));
    vi.spyOn(console, "log").mockImplementation(() => {});
  });
  afterEach(() => {
    vi.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("init writes a seeded Hugging Face directory with the byte-level tokenizer; score writes log-probabilities", async () => {
    const out = path.join(dir, "model");
    await init.run(["--config", path.join(dir, "cfg.json"), "--seed", "5", "--out", out, "--tokenizer", "byte"]);
    const again = path.join(dir, "again");
    await init.run(["--config", path.join(dir, "cfg.json"), "--seed", "5", "--out", again, "--tokenizer", "byte"]);
    const a = loadPretrained(out);
    const b = loadPretrained(again);
    expectBitwiseEqual(a.params.data, b.params.data, "same seed, same weights");
    const config = readModelConfig(out);
    const tokenizer = await loadTokenizer(out);
    expect([config.bos_token_id, config.eos_token_id, config.pad_token_id]).toEqual([tokenizer.bosId, tokenizer.eosId, tokenizer.padId]);

    const sequences = [tokenizer.encode("growth beats scratch?"), [7], tokenizer.encode("hi")];
    fs.writeFileSync(path.join(dir, "ids.json"), JSON.stringify(sequences));
    await score.run(["--model", out, "--ids", path.join(dir, "ids.json"), "--out", path.join(dir, "out.json")]);
    const written = JSON.parse(fs.readFileSync(path.join(dir, "out.json"), "utf8")) as { loss: (number | null)[]; token_logprobs: number[][] };
    const expected = scoreSequences(a, sequences);
    expect(written.loss[1]).toBeNull();
    expect(written.token_logprobs).toEqual(expected.tokenLogprobs);
    expect(written.loss[0]).toBe(expected.loss[0]);
    a.dispose();
    b.dispose();
  });

  test("bad flags and files are refused by name", async () => {
    const cfg = path.join(dir, "cfg.json");
    await expect(init.run(["--config", cfg])).rejects.toThrow(/growlm init: --out is required/);
    await expect(init.run(["--config", cfg, "--out", dir, "--dtype", "float16"])).rejects.toThrow(/--dtype must be one of float32, bfloat16/);
    fs.writeFileSync(path.join(dir, "bad.json"), JSON.stringify({ ...CONFIG, rope_scaling: { type: "linear", factor: 2 } }));
    await expect(init.run(["--config", path.join(dir, "bad.json"), "--out", dir])).rejects.toThrow(/bad\.json.*"rope_scaling".*not supported/);
    fs.writeFileSync(path.join(dir, "small.json"), JSON.stringify({ ...CONFIG, vocab_size: 100 }));
    await expect(init.run(["--config", path.join(dir, "small.json"), "--out", dir, "--tokenizer", "byte"])).rejects.toThrow(/259 ids but vocab_size is 100/);
    const out = path.join(dir, "m");
    await init.run(["--config", cfg, "--out", out]);
    fs.writeFileSync(path.join(dir, "ids.json"), "[[1, 2, 300]]");
    expect(() => score.run(["--model", out, "--ids", path.join(dir, "ids.json"), "--out", path.join(dir, "o.json")])).toThrow(/sequence 0 holds 300 at position 2/);
    fs.writeFileSync(path.join(dir, "ids.json"), '{"a": 1}');
    expect(() => score.run(["--model", out, "--ids", path.join(dir, "ids.json"), "--out", path.join(dir, "o.json")])).toThrow(/list of token-id lists/);
    expect(fs.existsSync(path.join(dir, "o.json"))).toBe(false);
  });
});
