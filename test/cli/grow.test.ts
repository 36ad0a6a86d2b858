/** growlm grow, run in process as the CLI runs it. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";

import { grow } from "../../src/cli/grow.js";
import { init } from "../../src/cli/init.js";
import { readGrowthRecord } from "../../src/growth/checkpoint.js";
import { readModelConfig } from "../../src/io/hf.js";
import { loadPretrained } from "../../src/model/pretrained.js";

const CONFIG = { vocab_size: 300, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64 };

describe("growlm grow", () => {
  let dir: string;
  let printed: string[];
  let model: string;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-cli-grow-"));
    fs.writeFileSync(path.join(dir, "cfg.json"), JSON.stringify(CONFIG));
    printed = [];
    vi.spyOn(console, "log").mockImplementation((line: unknown) => {
      printed.push(String(line));
    });
    model = path.join(dir, "model");
    await init.run(["--config", path.join(dir, "cfg.json"), "--out", model, "--tokenizer", "byte"]);
    printed = [];
  });
  afterEach(() => {
    vi.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("--operator stack --factor 2 writes the grown directory and prints the layer map", () => {
    const out = path.join(dir, "grown");
    grow.run(["--model", model, "--operator", "stack", "--factor", "2", "--out", out]);
    expect(readModelConfig(out).num_hidden_layers).toBe(4);
    expect(fs.existsSync(path.join(out, "tokenizer.json"))).toBe(true);
    expect(printed[0]).toBe("layers 2 → 4 (stack): 0-1 ← 0-1, 2-3 ← 0-1");
    expect(printed[1]).toMatch(/function preserved: no/);
    expect(printed[2]).toMatch(/^wrote .*grown: [\d,]+ parameters \(from [\d,]+\), 1 weight file\(s\), float32, tokenizer files copied$/);
    loadPretrained(out).dispose();
  });

  test("depth and width together, --layer_map, --json", () => {
    const out = path.join(dir, "grown");
    grow.run(["--model", model, "--operator", "zero", "--layer_map", "0,1,1", "--width_operator", "direct", "--hidden_size", "64", "--intermediate_size", "60",
      "--unit_selection", "random", "--seed", "3", "--dtype", "bfloat16", "--json", "--out", out]);
    const json = JSON.parse(printed.join("\n")) as { dtype: string; growth: { layers: unknown[]; function_preserving: boolean } };
    expect(json.dtype).toBe("bfloat16");
    expect(json.growth.layers).toEqual([[0, "copy"], [1, "copy"], [1, "zero_output"]]);
    expect(json.growth.function_preserving).toBe(true);
    const config = readModelConfig(out);
    expect([config.num_hidden_layers, config.hidden_size, config.intermediate_size, config.num_attention_heads]).toEqual([3, 64, 60, 8]);
    expect(readGrowthRecord(out)!.options).toEqual({ seed: 3, depth: { operator: "zero", layerMap: [0, 1, 1] }, width: { operator: "direct", hidden_size: 64, intermediate_size: 60, selection: "random" } });
  });

  test("--mask_warmup_steps records the MSG mask and says the weights are unmasked", () => {
    const out = path.join(dir, "grown");
    grow.run(["--model", model, "--operator", "random", "--layers", "3", "--mask_warmup_steps", "20", "--out", out]);
    expect(readGrowthRecord(out)!.mask).toEqual({ layers: [2], warmup_steps: 20 });
    expect(printed.at(-1)).toMatch(/weights are the unmasked model; growth\.json lists the layers a trainer must ramp in over 20 steps/);
  });

  test("--suggest prints the guideline with its provenance", () => {
    grow.run(["--suggest", "--params", "7B", "--tokens", "2T"]);
    expect(printed[1]).toMatch(/^grow at d = 1\.111e\+10 tokens \(11\.11B, 0\.556% of D\) with g = 4:/);
    expect(printed.join("\n")).toMatch(/Fitted on the paper's IsoFLOP sweeps/);
    printed = [];
    grow.run(["--suggest", "--params", "8e9", "--compute", "7.2e23", "--json"]);
    const json = JSON.parse(printed.join("\n")) as { growth_tokens: number; growth_factor: number };
    expect(json.growth_tokens / 1e9).toBeCloseTo(6.58, 2);
    expect(json.growth_factor).toBe(4);
  });

  test.each([
    [["--operator", "stack"], /nothing to grow: give --factor, --layers or --layer_map/],
    [["--operator", "direct", "--factor", "2"], /--operator must be one of stack, interpolate, zero, random but is "direct"/],
    [["--operator", "stack", "--hidden_size", "64"], /--operator must be one of direct, zero, random but is "stack"/],
    [["--operator", "stack", "--factor", "2", "--hidden_size", "64"], /--operator stack is the depth operator; give --width_operator/],
    [["--operator", "direct", "--hidden_size", "64", "--mask_warmup_steps", "3"], /--mask_warmup_steps needs depth growth/],
    [["--operator", "stack", "--factor", "2", "--unit_selection", "random"], /--unit_selection needs width growth/],
    [["--operator", "stack", "--factor", "0"], /--factor must be an integer in \[1, /],
    [["--operator", "stack", "--layer_map", "0,x"], /--layer_map must be an integer in \[0, /],
    [["--operator", "stack", "--factor", "2", "--params", "7B"], /--params belongs to --suggest/],
    [["--operator", "direct", "--hidden_size", "36"], /hidden_size 36 is not a multiple of the head size 8/],
  ])("refuses %j", (args, message) => {
    expect(() => grow.run(["--model", model, "--out", path.join(dir, "o"), ...args])).toThrow(message);
    expect(fs.existsSync(path.join(dir, "o"))).toBe(false);
  });

  test("refuses --suggest without its numbers", () => {
    expect(() => grow.run(["--suggest", "--params", "7B"])).toThrow(/exactly one of --compute \(FLOPs\) and --tokens/);
    expect(() => grow.run(["--suggest", "--params", "seven", "--tokens", "1T"])).toThrow(/--params must be a positive number such as 7e9 or 7B but is "seven"/);
    expect(() => grow.run(["--suggest", "--tokens", "1T"])).toThrow(/--params is required/);
  });
});
