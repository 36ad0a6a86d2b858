import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import {
  DEFAULT_MAX_SHARD_SIZE,
  WRITTEN_TRANSFORMERS_VERSION,
  listCheckpointTensors,
  loadModelDir,
  loadWeights,
  parseShardSize,
  readGenerationConfig,
  readModelConfig,
  readTensor,
  saveModelDir,
  writeModelDir,
} from "../../src/io/hf.js";
import { writeSafetensors } from "../../src/io/safetensors.js";
import { toBf16, toFloat32 } from "../../src/kernels/elementwise.js";
import { type LlamaConfig, parseLlamaConfig } from "../../src/model/config.js";
import { ParamLayout } from "../../src/model/params.js";
import { Tensor } from "../../src/tensor.js";
import { expectBitwiseEqual, randomF32, randomInts } from "../helpers/reference.js";

const SMALL = { vocab_size: 67, hidden_size: 24, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4 };
/** Grouped-query attention: k_proj and v_proj are [2 × 6, 24]. */
const GQA: LlamaConfig = parseLlamaConfig({ ...SMALL, num_key_value_heads: 2 });
const TIED: LlamaConfig = parseLlamaConfig({ ...SMALL, num_key_value_heads: 2, tie_word_embeddings: true });

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-hf-"));
});
afterEach(() => {
  vi.restoreAllMocks();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Random parameters (padding left zero), a different set per seed. */
function randomParams(layout: ParamLayout, seed: number): Tensor<"float32"> {
  const flat = Tensor.zeros([layout.numel], "float32");
  layout.entries.forEach((e, i) => flat.data.set(randomF32(e.numel, seed * 1000 + i), e.offset));
  return flat;
}

function loaded(layout: ParamLayout, from = dir): Tensor<"float32"> {
  const flat = Tensor.empty([layout.numel], "float32");
  flat.data.fill(NaN);
  loadWeights(from, layout, flat);
  return flat;
}

function files(d = dir): string[] {
  return fs.readdirSync(d).sort();
}

function readJson(name: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(dir, name), "utf8")) as Record<string, unknown>;
}

/** The layout's tensors as writeSafetensors input, views of `flat`. */
function tensorsOf(layout: ParamLayout, flat: Tensor<"float32">): { name: string; shape: readonly number[]; data: Float32Array }[] {
  return layout.entries.map((e) => ({ name: e.name, shape: e.shape, data: flat.data.subarray(e.offset, e.offset + e.numel) }));
}

function withoutMetadata(c: LlamaConfig): Omit<LlamaConfig, "metadata"> {
  const { metadata: _metadata, ...rest } = c;
  return rest;
}

describe("saveModelDir and loadWeights round trips", () => {
  it("writes config.json, generation_config.json and one F32 model.safetensors that load back bitwise", () => {
    const layout = new ParamLayout(GQA);
    const flat = randomParams(layout, 1);
    const saved = saveModelDir(dir, { config: GQA, layout, flat, dtype: "float32" });
    expect(saved).toEqual({ weightFiles: ["model.safetensors"], indexFile: null, totalSize: layout.parameterCount * 4 });
    expect(files()).toEqual(["config.json", "generation_config.json", "model.safetensors"]);

    const back = loaded(layout);
    expectBitwiseEqual(back.data, flat.data, "params (padding zeroed)");

    const text = fs.readFileSync(path.join(dir, "config.json"), "utf8");
    expect(text.endsWith("}\n")).toBe(true);
    expect(text).toContain('\n  "hidden_size": 24,\n');
    const keys = Object.keys(JSON.parse(text) as object);
    expect(keys).toEqual([...keys].sort());
    const config = readModelConfig(dir);
    expect(withoutMetadata(config)).toEqual(withoutMetadata(GQA));
    expect(config.metadata).toMatchObject({ torch_dtype: "float32", architectures: ["LlamaForCausalLM"], model_type: "llama", transformers_version: WRITTEN_TRANSFORMERS_VERSION });

    expect(readJson("generation_config.json")).toEqual({ _from_model_config: true, bos_token_id: 1, eos_token_id: 2, transformers_version: WRITTEN_TRANSFORMERS_VERSION });
    const shapes = Object.fromEntries(listCheckpointTensors(dir).map((t) => [t.name, t.shape]));
    expect(shapes["model.layers.1.self_attn.k_proj.weight"]).toEqual([12, 24]);
    expect(shapes["model.layers.1.self_attn.q_proj.weight"]).toEqual([24, 24]);
  });

  it("writes BF16 weights rounded to nearest even and torch_dtype bfloat16", () => {
    const layout = new ParamLayout(GQA);
    const flat = randomParams(layout, 2);
    saveModelDir(dir, { config: GQA, layout, flat, dtype: "bfloat16" });
    expect(new Set(listCheckpointTensors(dir).map((t) => t.dtype))).toEqual(new Set(["BF16"]));
    expect(readModelConfig(dir).metadata.torch_dtype).toBe("bfloat16");
    const model = loadModelDir(dir);
    expectBitwiseEqual(model.params.data, toFloat32(toBf16(flat)).data, "bf16 params");
    expect(model.generationConfig.eos_token_id).toBe(2);
  });

  it("shards greedily by size in layout order, as transformers does, with an index written last", () => {
    const layout = new ParamLayout(GQA);
    const flat = randomParams(layout, 3);
    // F32 bytes: embed/lm_head 6432 and gate/up/down 3840 exceed 3000 and get shards of their
    // own (ahead of the open shard); q/o 2304, k/v 1152, norms 96 fill the others greedily.
    const saved = saveModelDir(dir, { config: GQA, layout, flat, dtype: "float32", maxShardSize: 3000 });
    const L = (l: number, t: string): string => `model.layers.${l}.${t}.weight`;
    const expected = [
      ["model.embed_tokens.weight"],
      [L(0, "self_attn.q_proj")],
      [L(0, "self_attn.k_proj"), L(0, "self_attn.v_proj")],
      [L(0, "mlp.gate_proj")],
      [L(0, "mlp.up_proj")],
      [L(0, "mlp.down_proj")],
      [L(0, "self_attn.o_proj"), L(0, "input_layernorm"), L(0, "post_attention_layernorm")],
      [L(1, "self_attn.q_proj")],
      [L(1, "self_attn.k_proj"), L(1, "self_attn.v_proj")],
      [L(1, "mlp.gate_proj")],
      [L(1, "mlp.up_proj")],
      [L(1, "mlp.down_proj")],
      ["lm_head.weight"],
      [L(1, "self_attn.o_proj"), L(1, "input_layernorm"), L(1, "post_attention_layernorm"), "model.norm.weight"],
    ];
    const names = expected.map((_, i) => `model-${String(i + 1).padStart(5, "0")}-of-00014.safetensors`);
    expect(saved.weightFiles).toEqual(names);
    expect(saved.indexFile).toBe("model.safetensors.index.json");
    expect(files()).toEqual(["config.json", "generation_config.json", ...names, "model.safetensors.index.json"].sort());

    const index = readJson("model.safetensors.index.json");
    const weightMap = index.weight_map as Record<string, string>;
    expect(index.metadata).toEqual({ total_size: layout.parameterCount * 4 });
    expect(Object.keys(weightMap)).toEqual(layout.entries.map((e) => e.name).sort());
    expected.forEach((group, i) => group.forEach((name) => expect(weightMap[name], name).toBe(names[i])));
    const listed = listCheckpointTensors(dir);
    expect(listed.map((t) => [t.name, t.file])).toEqual(expected.flatMap((group, i) => group.map((n) => [n, names[i]])));

    expectBitwiseEqual(loaded(layout).data, flat.data, "sharded params");
    const down = layout.entry(L(1, "mlp.down_proj"));
    expectBitwiseEqual(readTensor(dir, down.name, new Float32Array(down.numel)), flat.data.subarray(down.offset, down.offset + down.numel), "readTensor");
  });

  it("keeps every BF16 shard within a size string's bytes unless one tensor alone exceeds it", () => {
    const layout = new ParamLayout(GQA);
    const flat = randomParams(layout, 4);
    const saved = saveModelDir(dir, { config: GQA, layout, flat, dtype: "bfloat16", maxShardSize: "0.005MB" });
    expect(saved.weightFiles.length).toBeGreaterThan(2);
    for (const file of saved.weightFiles) {
      const tensors = listCheckpointTensors(dir).filter((t) => t.file === file);
      const bytes = tensors.reduce((n, t) => n + 2 * t.shape.reduce((a, b) => a * b, 1), 0);
      expect(bytes <= 5000 || tensors.length === 1, `${file}: ${bytes} bytes in ${tensors.length} tensors`).toBe(true);
    }
    expectBitwiseEqual(loaded(layout).data, toFloat32(toBf16(flat)).data, "bf16 sharded params");
  });

  it("saves tied embeddings without lm_head and accepts (ignores) a checkpoint's lm_head and rotary inv_freq", () => {
    const layout = new ParamLayout(TIED);
    const flat = randomParams(layout, 5);
    saveModelDir(dir, { config: TIED, layout, flat, dtype: "float32" });
    expect(listCheckpointTensors(dir).some((t) => t.name === "lm_head.weight")).toBe(false);
    expectBitwiseEqual(loaded(layout).data, flat.data, "tied params");

    writeSafetensors(path.join(dir, "model.safetensors"), [
      ...tensorsOf(layout, flat),
      { name: "lm_head.weight", shape: [67, 24], data: randomF32(67 * 24, 6) },
      { name: "model.layers.0.self_attn.rotary_emb.inv_freq", shape: [3], data: randomF32(3, 7) },
    ], { dtype: "F32" });
    expectBitwiseEqual(loaded(layout).data, flat.data, "tied params, extra lm_head ignored");
  });
});

describe("loading float16 checkpoints", () => {
  it("loads a model.safetensors whose parameters are F16 (as many Hub LLaMA checkpoints are)", () => {
    const layout = new ParamLayout(GQA);
    // Values k/256 with |k| <= 512 are exact in float16 (at most 10 mantissa bits, normal range).
    const expected = Tensor.zeros([layout.numel], "float32");
    const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
    const chunks: Uint16Array[] = [];
    let offset = 0;
    layout.entries.forEach((e, i) => {
      const ks = randomInts(e.numel, 50 + i, 1025);
      const bits = new Uint16Array(e.numel);
      ks.forEach((k, j) => {
        const v = (k - 512) / 256;
        expected.data[e.offset + j] = v;
        if (v === 0) return;
        const exp = Math.floor(Math.log2(Math.abs(v)));
        const mant = (Math.abs(v) / 2 ** exp - 1) * 1024;
        bits[j] = (v < 0 ? 0x8000 : 0) | ((exp + 15) << 10) | mant;
      });
      header[e.name] = { dtype: "F16", shape: e.shape, data_offsets: [offset, offset + 2 * e.numel] };
      offset += 2 * e.numel;
      chunks.push(bits);
    });
    const json = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    fs.writeFileSync(path.join(dir, "model.safetensors"), Buffer.concat([length, json, ...chunks.map((c) => Buffer.from(c.buffer))]));
    expectBitwiseEqual(loaded(layout).data, expected.data, "f16 params");
  });
});

describe("saving into a directory that already holds a model", () => {
  it("leaves exactly one consistent set when the sharding changes between saves", () => {
    const layout = new ParamLayout(GQA);
    fs.writeFileSync(path.join(dir, "notes.txt"), "kept");
    const weightFiles = (): string[] => files().filter((n) => n.startsWith("model"));
    const plans: { size: number | string; count: number }[] = [
      { size: 3000, count: 14 },
      { size: 12000, count: 3 },
      { size: "5GB", count: 1 },
      { size: 9000, count: 4 },
      { size: 3000, count: 14 },
    ];
    plans.forEach(({ size, count }, i) => {
      const flat = randomParams(layout, 10 + i);
      const saved = saveModelDir(dir, { config: GQA, layout, flat, dtype: i % 2 ? "bfloat16" : "float32", maxShardSize: size });
      expect(saved.weightFiles.length, `save ${i}`).toBe(count);
      const expected = count === 1 ? ["model.safetensors"] : [...saved.weightFiles, "model.safetensors.index.json"];
      expect(weightFiles(), `save ${i}`).toEqual(expected.sort());
      const want = i % 2 ? toFloat32(toBf16(flat)) : flat;
      expectBitwiseEqual(loaded(layout).data, want.data, `save ${i}`);
    });
    expect(fs.readFileSync(path.join(dir, "notes.txt"), "utf8")).toBe("kept");
    expect(files().filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  it("leaves the previous set intact and no temporary files when a write fails midway", () => {
    const layout = new ParamLayout(GQA);
    const before = randomParams(layout, 20);
    saveModelDir(dir, { config: GQA, layout, flat: before, dtype: "float32", maxShardSize: 12000 });
    const snapshot = new Map(files().map((n) => [n, fs.readFileSync(path.join(dir, n))]));

    const realWrite = fs.writeSync;
    let calls = 0;
    vi.spyOn(fs, "writeSync").mockImplementation(((...args: unknown[]) => {
      if (++calls > 5) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
      return Reflect.apply(realWrite, fs, args) as number;
    }) as typeof fs.writeSync);
    const after = randomParams(layout, 21);
    for (const maxShardSize of [3000, "5GB"]) {
      calls = 0;
      expect(() => saveModelDir(dir, { config: GQA, layout, flat: after, dtype: "float32", maxShardSize })).toThrow(/ENOSPC: no space left on device/);
      expect(files()).toEqual([...snapshot.keys()]);
      for (const [name, bytes] of snapshot) expect(fs.readFileSync(path.join(dir, name)).equals(bytes), name).toBe(true);
    }
    vi.restoreAllMocks();
    expectBitwiseEqual(loaded(layout).data, before.data, "previous params");
  });
});

describe("checkpoint errors", () => {
  it("names the file, the tensor and both shapes when a tensor disagrees with config.json (GQA vs MHA)", () => {
    const mha = parseLlamaConfig({ ...SMALL, num_key_value_heads: 4 });
    const mhaLayout = new ParamLayout(mha);
    saveModelDir(dir, { config: mha, layout: mhaLayout, flat: randomParams(mhaLayout, 30), dtype: "float32" });
    const layout = new ParamLayout(GQA);
    const flat = Tensor.zeros([layout.numel], "float32");
    expect(() => loadWeights(dir, layout, flat)).toThrow(
      /model\.safetensors: tensor "model\.layers\.0\.self_attn\.k_proj\.weight" has shape \[24, 24\] but config\.json implies \[12, 24\]/,
    );
    expect(flat.data.every((v) => v === 0)).toBe(true);
  });

  it("lists missing parameters and unexpected tensors", () => {
    const layout = new ParamLayout(GQA);
    const flat = randomParams(layout, 31);
    const file = path.join(dir, "model.safetensors");
    writeSafetensors(file, tensorsOf(layout, flat).filter((t) => !t.name.includes("norm.weight") || t.name.includes("layers.0")), { dtype: "F32" });
    expect(() => loaded(layout)).toThrow(
      /lacks 3 parameters \(looked in model\.safetensors\): "model\.layers\.1\.input_layernorm\.weight", "model\.layers\.1\.post_attention_layernorm\.weight", "model\.norm\.weight"/,
    );
    writeSafetensors(file, [
      ...tensorsOf(layout, flat),
      { name: "model.layers.0.mlp.extra.weight", shape: [2], data: randomF32(2, 32) },
      { name: "model.layers.0.self_attn.rotary_emb.inv_freq", shape: [3], data: randomF32(3, 33) },
    ], { dtype: "F32" });
    expect(() => loaded(layout)).toThrow(/has 1 tensor a LLaMA model with this config\.json does not have: "model\.layers\.0\.mlp\.extra\.weight" \(model\.safetensors\)/);
  });

  it("refuses parameters of a non-float dtype", () => {
    const layout = new ParamLayout(GQA);
    const file = path.join(dir, "model.safetensors");
    writeSafetensors(file, tensorsOf(layout, randomParams(layout, 34)), { dtype: "F32" });
    const bytes = fs.readFileSync(file);
    const text = bytes.toString("latin1");
    const at = text.indexOf('"model.norm.weight":{"dtype":"F32"') + '"model.norm.weight":{"dtype":"'.length;
    bytes.write("I32", at, "latin1");
    fs.writeFileSync(file, bytes);
    expect(() => loaded(layout)).toThrow(/model\.safetensors: tensor "model\.norm\.weight" is I32; parameters must be F32, F16, BF16/);
  });

  it("refuses a directory without weights, a missing shard, and an index that disagrees with its shards", () => {
    const layout = new ParamLayout(GQA);
    expect(() => loaded(layout)).toThrow(/has neither model\.safetensors nor model\.safetensors\.index\.json/);

    saveModelDir(dir, { config: GQA, layout, flat: randomParams(layout, 35), dtype: "float32", maxShardSize: 12000 });
    const indexFile = path.join(dir, "model.safetensors.index.json");
    const index = readJson("model.safetensors.index.json") as { weight_map: Record<string, string> };
    const original = JSON.stringify(index);

    fs.renameSync(path.join(dir, "model-00002-of-00005.safetensors"), path.join(dir, "moved"));
    expect(() => listCheckpointTensors(dir)).toThrow(/model\.safetensors\.index\.json maps \d+ tensors \(".*"\) to model-00002-of-00005\.safetensors, which is missing from/);
    fs.renameSync(path.join(dir, "moved"), path.join(dir, "model-00002-of-00005.safetensors"));

    const embed = "model.embed_tokens.weight";
    const elsewhere = JSON.parse(original) as typeof index;
    elsewhere.weight_map[embed] = "model-00004-of-00005.safetensors";
    fs.writeFileSync(indexFile, JSON.stringify(elsewhere));
    expect(() => loaded(layout)).toThrow(new RegExp(`index\\.json maps tensor "${embed}" to model-00004-of-00005\\.safetensors, but it is in model-00001-of-00005\\.safetensors`));

    fs.writeFileSync(indexFile, original);
    const last = path.join(dir, "model-00005-of-00005.safetensors");
    const lastBytes = fs.readFileSync(last);
    const lastTensors = listCheckpointTensors(dir).filter((t) => t.file === "model-00005-of-00005.safetensors");
    writeSafetensors(last, [
      ...lastTensors.map((t) => ({ name: t.name, shape: t.shape, data: readTensor(dir, t.name, new Float32Array(t.shape.reduce((a, b) => a * b, 1))) })),
      { name: embed, shape: [67, 24], data: randomF32(67 * 24, 37) },
    ], { dtype: "F32" });
    expect(() => loaded(layout)).toThrow(new RegExp(`tensor "${embed}" is stored in 2 shards \\(model-00001-of-00005\\.safetensors, model-00005-of-00005\\.safetensors\\); .*index\\.json maps it to model-00001-of-00005\\.safetensors`));
    fs.writeFileSync(last, lastBytes);

    const unlisted = JSON.parse(original) as typeof index;
    delete unlisted.weight_map[embed];
    fs.writeFileSync(indexFile, JSON.stringify(unlisted));
    expect(() => loaded(layout)).toThrow(new RegExp(`model-00001-of-00005\\.safetensors holds tensor "${embed}", which .*index\\.json does not list`));

    const phantom = JSON.parse(original) as typeof index;
    phantom.weight_map["model.layers.0.mlp.ghost.weight"] = "model-00001-of-00005.safetensors";
    fs.writeFileSync(indexFile, JSON.stringify(phantom));
    expect(() => loaded(layout)).toThrow(/maps tensor "model\.layers\.0\.mlp\.ghost\.weight" to model-00001-of-00005\.safetensors, which has no such tensor/);

    const escape = JSON.parse(original) as typeof index;
    escape.weight_map[embed] = "../model-00001-of-00005.safetensors";
    fs.writeFileSync(indexFile, JSON.stringify(escape));
    expect(() => loaded(layout)).toThrow(/maps to "\.\.\/model-00001-of-00005\.safetensors", which is not a file name in the directory/);

    fs.writeFileSync(indexFile, "{ not json");
    expect(() => loaded(layout)).toThrow(/model\.safetensors\.index\.json is not valid JSON/);
    expect(() => readTensor(dir, embed, new Float32Array(1))).toThrow(/index\.json is not valid JSON/);
    fs.writeFileSync(indexFile, original);
    expect(() => readTensor(dir, "nope", new Float32Array(1))).toThrow(/index\.json lists no tensor "nope"/);
  });

  it("refuses bad config.json and generation_config.json files by name", () => {
    expect(() => readModelConfig(dir)).toThrow(/cannot read .*config\.json/);
    fs.writeFileSync(path.join(dir, "config.json"), "{");
    expect(() => readModelConfig(dir)).toThrow(/config\.json is not valid JSON/);
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ ...SMALL, rope_scaling: { type: "linear", factor: 2 } }));
    expect(() => readModelConfig(dir)).toThrow(/LlamaConfig\(.*config\.json\): "rope_scaling"/);
    expect(readGenerationConfig(dir)).toBeNull();
    fs.writeFileSync(path.join(dir, "generation_config.json"), JSON.stringify({ eos_token_id: [] }));
    expect(() => readGenerationConfig(dir)).toThrow(/generation_config\.json: "eos_token_id" must be null, a token id or a list of them but is \[\]/);
  });

  it("refuses a layout of another config, a buffer of the wrong size, bad shard sizes and reserved extra files", () => {
    const layout = new ParamLayout(GQA);
    const flat = randomParams(layout, 36);
    expect(() => saveModelDir(dir, { config: TIED, layout, flat, dtype: "float32" })).toThrow(/the layout's parameters differ/);
    expect(() => saveModelDir(dir, { config: GQA, layout, flat: Tensor.zeros([5]), dtype: "float32" })).toThrow(/expected a float32 buffer of \d+ elements/);
    expect(() => saveModelDir(dir, { config: GQA, layout, flat, dtype: "float32", maxShardSize: "5 parsecs" })).toThrow(/max_shard_size "5 parsecs" is not a size/);
    expect(() => saveModelDir(dir, { config: GQA, layout, flat, dtype: "float32", extraFiles: { "config.json": "{}" } })).toThrow(/extra file "config\.json"/);
    expect(() => saveModelDir(dir, { config: GQA, layout, flat, dtype: "float32", extraFiles: { "../x": "{}" } })).toThrow(/extra file "\.\.\/x"/);
    expect(() => loadWeights(dir, layout, Tensor.zeros([5]))).toThrow(/expected a float32 buffer/);
    expect(files()).toEqual([]);
  });
});

describe("configs, sizes and extra files", () => {
  it("parses shard sizes as transformers does", () => {
    expect(DEFAULT_MAX_SHARD_SIZE).toBe(5e9);
    expect(parseShardSize("5GB")).toBe(5e9);
    expect(parseShardSize("500MB")).toBe(5e8);
    expect(parseShardSize(" 2gb ")).toBe(2e9);
    expect(parseShardSize("1.5GB")).toBe(1.5e9);
    expect(parseShardSize("10KB")).toBe(10_000);
    expect(parseShardSize("2GiB")).toBe(2 ** 31);
    expect(parseShardSize(1234)).toBe(1234);
    for (const bad of ["", "GB", "5", "-1GB", "0GB", "5 GBs"]) expect(() => parseShardSize(bad), bad).toThrow(/is not a size/);
    expect(() => parseShardSize(0)).toThrow(/positive integer/);
    expect(() => parseShardSize(1.5)).toThrow(/positive integer/);
  });

  it("keeps a generation config's unknown fields and a config's transformers_version, and writes extra files", () => {
    const layout = new ParamLayout(GQA);
    const flat = randomParams(layout, 40);
    const source = { bos_token_id: 1, eos_token_id: [2, 3], do_sample: true, temperature: 0.6, transformers_version: "4.40.0" };
    fs.writeFileSync(path.join(dir, "generation_config.json"), JSON.stringify(source));
    const gen = readGenerationConfig(dir)!;
    expect(gen).toEqual({ bos_token_id: 1, eos_token_id: [2, 3], pad_token_id: null, extra: { do_sample: true, temperature: 0.6, transformers_version: "4.40.0" } });

    const out = path.join(dir, "out");
    const config = parseLlamaConfig({ ...SMALL, num_key_value_heads: 2, transformers_version: "4.38.2", torch_dtype: "float16", dtype: "float16" });
    saveModelDir(out, { config, layout, flat, dtype: "bfloat16", generationConfig: gen, extraFiles: { "tokenizer.json": '{"model": {}}', "blob.bin": new Uint8Array([1, 2, 3]) } });
    expect(JSON.parse(fs.readFileSync(path.join(out, "generation_config.json"), "utf8"))).toEqual(source);
    const written = JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8")) as Record<string, unknown>;
    expect(written.transformers_version).toBe("4.38.2");
    expect(written.torch_dtype).toBe("bfloat16");
    expect(written.dtype).toBe("bfloat16");
    expect(fs.readFileSync(path.join(out, "tokenizer.json"), "utf8")).toBe('{"model": {}}');
    expect([...fs.readFileSync(path.join(out, "blob.bin"))]).toEqual([1, 2, 3]);
    expect(files(out)).toEqual(["blob.bin", "config.json", "generation_config.json", "model.safetensors", "tokenizer.json"]);
  });
});

describe("writeModelDir (tensors produced one at a time)", () => {
  it("writes what saveModelDir writes, calling each data function once when the writer reaches it", () => {
    const layout = new ParamLayout(GQA);
    const flat = randomParams(layout, 31);
    const viaFlat = path.join(dir, "flat");
    saveModelDir(viaFlat, { config: GQA, layout, flat, dtype: "bfloat16", maxShardSize: 4000 });
    const calls: string[] = [];
    const lazy = path.join(dir, "lazy");
    writeModelDir(lazy, {
      config: GQA,
      dtype: "bfloat16",
      maxShardSize: 4000,
      tensors: layout.entries.map((e) => ({ name: e.name, shape: e.shape, data: () => (calls.push(e.name), flat.data.slice(e.offset, e.offset + e.numel)) })),
    });
    expect(calls).toEqual(layout.entries.map((e) => e.name));
    expect(files(lazy)).toEqual(files(viaFlat));
    for (const f of files(lazy)) expect(fs.readFileSync(path.join(lazy, f)).equals(fs.readFileSync(path.join(viaFlat, f))), f).toBe(true);
  });

  it("refuses tensors that are not the config's parameters in order", () => {
    const layout = new ParamLayout(GQA);
    const tensors = layout.entries.map((e) => ({ name: e.name, shape: e.shape, data: new Float32Array(e.numel) }));
    const swapped = [tensors[1]!, tensors[0]!, ...tensors.slice(2)];
    expect(() => writeModelDir(dir, { config: GQA, dtype: "float32", tensors: swapped })).toThrow(
      /tensor 0 must be "model\.embed_tokens\.weight" \[67, 24\] \(parameterSpecs order of the config\) but is "model\.layers\.0\.self_attn\.q_proj\.weight" \[24, 24\]/,
    );
    expect(() => writeModelDir(dir, { config: GQA, dtype: "float32", tensors: tensors.slice(0, 3) })).toThrow(/tensor 3 must be "model\.layers\.0\.self_attn\.v_proj\.weight" .* but is nothing/);
    const extra = [...tensors, { name: "extra", shape: [1], data: new Float32Array(1) }];
    expect(() => writeModelDir(dir, { config: GQA, dtype: "float32", tensors: extra })).toThrow(/the config has 21 parameters but 22 tensors were given \(the first extra: "extra"\)/);
    expect(files()).toEqual([]);
  });
});
