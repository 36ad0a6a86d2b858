/** LlamaConfig parsing (transformers' names and defaults, refusals) and the flat parameter layout. */
import { describe, expect, test } from "vitest";

import { LLAMA_DEFAULTS, llamaConfigToJson, parseLlamaConfig } from "../../src/model/config.js";
import { ParamLayout, parameterSpecs } from "../../src/model/params.js";

/** A LLaMA-2-7B config.json as transformers 4.31 wrote it. */
const LLAMA2_7B = {
  architectures: ["LlamaForCausalLM"],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: "silu",
  hidden_size: 4096,
  initializer_range: 0.02,
  intermediate_size: 11008,
  max_position_embeddings: 4096,
  model_type: "llama",
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 32,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  tie_word_embeddings: false,
  torch_dtype: "float16",
  transformers_version: "4.31.0",
  use_cache: true,
  vocab_size: 32000,
};

describe("parseLlamaConfig", () => {
  test("a real LLaMA-2 config.json, with metadata kept for writing back", () => {
    const c = parseLlamaConfig(LLAMA2_7B);
    expect(c.hidden_size).toBe(4096);
    expect(c.num_key_value_heads).toBe(32);
    expect(c.rope_theta).toBe(10000);
    expect(c.rms_norm_eps).toBe(1e-5);
    expect(c.metadata).toEqual({ architectures: ["LlamaForCausalLM"], model_type: "llama", torch_dtype: "float16", transformers_version: "4.31.0", use_cache: true });
    const json = llamaConfigToJson(c, "bfloat16");
    expect(json.torch_dtype).toBe("bfloat16");
    expect(json.transformers_version).toBe("4.31.0");
    expect(parseLlamaConfig(json)).toEqual({ ...c, metadata: { ...c.metadata, torch_dtype: "bfloat16" } });
    expect(Object.keys(json)).toEqual([...Object.keys(json)].sort());
  });

  test("missing fields take transformers' defaults; num_key_value_heads defaults to the heads", () => {
    const c = parseLlamaConfig({});
    expect(c).toMatchObject({ ...LLAMA_DEFAULTS, num_key_value_heads: 32 });
  });

  test("transformers 5 spellings: rope_parameters, dtype, default rope_scaling, a list of eos ids", () => {
    const c = parseLlamaConfig({
      hidden_size: 64,
      num_attention_heads: 4,
      vocab_size: 100,
      rope_parameters: { rope_type: "default", rope_theta: 500000 },
      rope_scaling: { rope_type: "default" },
      dtype: "float32",
      eos_token_id: [2, 7],
    });
    expect(c.rope_theta).toBe(500000);
    expect(c.eos_token_id).toEqual([2, 7]);
    expect(llamaConfigToJson(c, "bfloat16").dtype).toBe("bfloat16");
  });

  test.each([
    [{ rope_scaling: { type: "linear", factor: 2 } }, /"rope_scaling".*not supported/],
    [{ rope_parameters: { rope_type: "llama3", factor: 8, rope_theta: 5e5 } }, /"rope_parameters".*not supported/],
    [{ rope_parameters: { rope_type: "default", rope_theta: 5e5 }, rope_theta: 1e4 }, /disagrees/],
    [{ attention_bias: true }, /"attention_bias": true is not supported/],
    [{ mlp_bias: true }, /"mlp_bias"/],
    [{ hidden_act: "gelu" }, /"hidden_act": "gelu"/],
    [{ pretraining_tp: 2 }, /"pretraining_tp"/],
    [{ attention_dropout: 0.1 }, /"attention_dropout"/],
    [{ head_dim: 64, hidden_size: 64, num_attention_heads: 4 }, /"head_dim": 64/],
    [{ model_type: "mistral" }, /"model_type" must be "llama"/],
    [{ sliding_window: 4096, foo: 1 }, /unknown fields "sliding_window", "foo"/],
    [{ num_attention_heads: 6, num_key_value_heads: 4, hidden_size: 48 }, /num_key_value_heads.*divide/],
    [{ hidden_size: 50, num_attention_heads: 4 }, /not a multiple/],
    [{ hidden_size: 60, num_attention_heads: 4 }, /must be even/],
    [{ vocab_size: 0 }, /"vocab_size" must be a positive integer/],
    [{ rms_norm_eps: -1 }, /"rms_norm_eps" must be a positive number/],
    [{ tie_word_embeddings: "yes" }, /"tie_word_embeddings" must be a boolean/],
    [{ vocab_size: 10, bos_token_id: 10 }, /"bos_token_id" must be null or a token id in \[0, 10\)/],
    [{ vocab_size: 10, eos_token_id: [1, 12] }, /"eos_token_id"/],
  ])("refuses %j", (fields, message) => {
    expect(() => parseLlamaConfig({ hidden_size: 64, num_attention_heads: 4, vocab_size: 100, ...fields }, "cfg.json")).toThrow(message);
    expect(() => parseLlamaConfig({ hidden_size: 64, num_attention_heads: 4, vocab_size: 100, ...fields }, "cfg.json")).toThrow(/LlamaConfig\(cfg\.json\)/);
  });

  test("refuses what is not an object", () => {
    expect(() => parseLlamaConfig([1])).toThrow(/expected a JSON object but received an array/);
    expect(() => parseLlamaConfig("x")).toThrow(/received string/);
  });
});

describe("ParamLayout", () => {
  const config = parseLlamaConfig({ vocab_size: 37, hidden_size: 24, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 });

  test("Hugging Face names and shapes in state-dict order, lm_head only when untied", () => {
    const names = parameterSpecs(config).map((s) => `${s.name} ${s.shape.join("x")}`);
    expect(names.slice(0, 11)).toEqual([
      "model.embed_tokens.weight 37x24",
      "model.layers.0.self_attn.q_proj.weight 24x24",
      "model.layers.0.self_attn.k_proj.weight 12x24",
      "model.layers.0.self_attn.v_proj.weight 12x24",
      "model.layers.0.self_attn.o_proj.weight 24x24",
      "model.layers.0.mlp.gate_proj.weight 40x24",
      "model.layers.0.mlp.up_proj.weight 40x24",
      "model.layers.0.mlp.down_proj.weight 24x40",
      "model.layers.0.input_layernorm.weight 24",
      "model.layers.0.post_attention_layernorm.weight 24",
      "model.layers.1.self_attn.q_proj.weight 24x24",
    ]);
    expect(names.slice(-2)).toEqual(["model.norm.weight 24", "lm_head.weight 37x24"]);
    const tied = parameterSpecs({ ...config, tie_word_embeddings: true });
    expect(tied.at(-1)!.name).toBe("model.norm.weight");
  });

  test("every tensor starts on a cache line, layers are contiguous ranges, decay skips norms only", () => {
    const layout = new ParamLayout(config);
    for (const e of layout.entries) expect(e.offset % 16).toBe(0);
    const [b0, e0] = layout.layerRange(0);
    const [b1] = layout.layerRange(1);
    expect(e0).toBe(b1);
    expect(b0).toBe(layout.entry("model.layers.0.self_attn.q_proj.weight").offset);
    const segments = layout.decaySegments();
    expect(segments[0]!.begin).toBe(0);
    expect(segments.at(-1)!.end).toBe(layout.numel);
    for (const e of layout.entries) {
      const s = segments.find((seg) => seg.begin <= e.offset && e.offset < seg.end)!;
      expect(s.decay, e.name).toBe(!e.name.includes("norm"));
    }
    expect(layout.parameterCount).toBe(37 * 24 * 2 + 2 * (24 * 24 * 2 + 12 * 24 * 2 + 40 * 24 * 3 + 48) + 24);
    expect(() => layout.entry("model.layers.2.mlp.up_proj.weight")).toThrow(/no parameter named/);
  });
});
