/**
 * LlamaConfig: the Hugging Face config.json of a LLaMA-family decoder, with transformers'
 * field names and defaults (transformers.LlamaConfig). Fields that would change the
 * computation in a way growlm does not implement (rope_scaling, attention_bias, ...) are
 * refused rather than ignored, and so are keys nobody knows: a silently ignored field is
 * a silently different model.
 */
import { GrowlmError } from "../errors.js";

export interface LlamaConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  /** Grouped-query attention: key/value heads; divides num_attention_heads. */
  num_key_value_heads: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  tie_word_embeddings: boolean;
  bos_token_id: number | null;
  /** A single id or several (Llama 3 style); generation stops at any of them. */
  eos_token_id: number | number[] | null;
  pad_token_id: number | null;
  /** Std of the normal initialisation of linear and embedding weights. */
  initializer_range: number;
  /** Keys that do not change the computation, kept verbatim for writing back (architectures, torch_dtype, ...). */
  metadata: Record<string, unknown>;
}

/** transformers.LlamaConfig's defaults (LLaMA-7B's shape). */
export const LLAMA_DEFAULTS: Readonly<Omit<LlamaConfig, "num_key_value_heads" | "metadata">> = Object.freeze({
  vocab_size: 32000,
  hidden_size: 4096,
  intermediate_size: 11008,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: null,
  initializer_range: 0.02,
});

/** Keys that carry no computation; preserved as metadata. */
const METADATA_KEYS = new Set([
  "architectures",
  "model_type",
  "torch_dtype",
  "dtype",
  "transformers_version",
  "_name_or_path",
  "use_cache",
  "return_dict",
  "output_attentions",
  "output_hidden_states",
  "torchscript",
  "is_decoder",
  "tokenizer_class",
  "chunk_size_feed_forward",
  "output_scores",
  "return_dict_in_generate",
  "problem_type",
]);

/** A rope_parameters / rope_scaling object that asks for plain RoPE (transformers >= 5 writes these). */
function isDefaultRope(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  const type = o.rope_type ?? o.type;
  return type === "default" && Object.keys(o).every((k) => k === "rope_type" || k === "type" || k === "rope_theta");
}

/** Keys that are allowed only at the value that leaves the computation plain LLaMA. */
const NEUTRAL_VALUES: Record<string, (v: unknown, c: Record<string, unknown>) => boolean> = {
  hidden_act: (v) => v === "silu",
  // transformers >= 5 may spell "no scaling" as {"rope_type": "default", ...}.
  rope_scaling: (v) => v === null || isDefaultRope(v),
  attention_bias: (v) => v === false,
  mlp_bias: (v) => v === false,
  attention_dropout: (v) => v === 0,
  pretraining_tp: (v) => v === 1,
  is_encoder_decoder: (v) => v === false,
  head_dim: (v, c) =>
    v === null ||
    v === Number(c.hidden_size ?? LLAMA_DEFAULTS.hidden_size) / Number(c.num_attention_heads ?? LLAMA_DEFAULTS.num_attention_heads),
};

function positiveInt(op: string, raw: Record<string, unknown>, key: keyof typeof LLAMA_DEFAULTS): number {
  const v = raw[key] ?? LLAMA_DEFAULTS[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
    throw new GrowlmError(op, `"${key}" must be a positive integer but is ${JSON.stringify(v)}`);
  }
  return v;
}

function positiveNumber(op: string, raw: Record<string, unknown>, key: keyof typeof LLAMA_DEFAULTS): number {
  const v = raw[key] ?? LLAMA_DEFAULTS[key];
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new GrowlmError(op, `"${key}" must be a positive number but is ${JSON.stringify(v)}`);
  }
  return v;
}

function tokenId(op: string, raw: Record<string, unknown>, key: "bos_token_id" | "pad_token_id", vocab: number): number | null {
  const v = key in raw ? raw[key] : LLAMA_DEFAULTS[key];
  if (v === null || v === undefined) return null;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v >= vocab) {
    throw new GrowlmError(op, `"${key}" must be null or a token id in [0, ${vocab}) but is ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Validates a parsed config.json (or a partial one: missing fields take transformers'
 * defaults) and returns a complete LlamaConfig.
 * @param source names the file in error messages
 */
export function parseLlamaConfig(raw: unknown, source = "config"): LlamaConfig {
  const op = `LlamaConfig(${source})`;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new GrowlmError(op, `expected a JSON object but received ${Array.isArray(raw) ? "an array" : typeof raw}`);
  }
  const obj = raw as Record<string, unknown>;
  const known = new Set<string>([...Object.keys(LLAMA_DEFAULTS), "num_key_value_heads", "eos_token_id", "rope_parameters"]);
  const unknown: string[] = [];
  const metadata: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    if (known.has(key)) continue;
    if (METADATA_KEYS.has(key)) {
      metadata[key] = value;
    } else if (key in NEUTRAL_VALUES) {
      if (!NEUTRAL_VALUES[key]!(value, obj)) {
        throw new GrowlmError(op, `"${key}": ${JSON.stringify(value)} is not supported (growlm implements plain LLaMA only)`);
      }
    } else {
      unknown.push(key);
    }
  }
  if (unknown.length > 0) {
    throw new GrowlmError(op, `unknown field${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `"${k}"`).join(", ")}`);
  }
  if ("model_type" in metadata && metadata.model_type !== "llama") {
    throw new GrowlmError(op, `"model_type" must be "llama" but is ${JSON.stringify(metadata.model_type)}`);
  }

  // transformers >= 5 moves rope_theta into rope_parameters {"rope_type": "default", "rope_theta": θ}.
  let ropeSource = obj;
  if ("rope_parameters" in obj && obj.rope_parameters !== null) {
    const rp = obj.rope_parameters;
    if (!isDefaultRope(rp)) {
      throw new GrowlmError(op, `"rope_parameters": ${JSON.stringify(rp)} is not supported (growlm implements plain RoPE, rope_type "default")`);
    }
    if ("rope_theta" in rp && "rope_theta" in obj && rp.rope_theta !== obj.rope_theta) {
      throw new GrowlmError(op, `"rope_theta" = ${JSON.stringify(obj.rope_theta)} disagrees with "rope_parameters".rope_theta = ${JSON.stringify(rp.rope_theta)}`);
    }
    if ("rope_theta" in rp) ropeSource = { rope_theta: rp.rope_theta };
  }

  const vocab_size = positiveInt(op, obj, "vocab_size");
  const hidden_size = positiveInt(op, obj, "hidden_size");
  const num_attention_heads = positiveInt(op, obj, "num_attention_heads");
  const kvRaw = obj.num_key_value_heads ?? num_attention_heads;
  if (typeof kvRaw !== "number" || !Number.isSafeInteger(kvRaw) || kvRaw < 1 || num_attention_heads % kvRaw !== 0) {
    throw new GrowlmError(op, `"num_key_value_heads" must divide num_attention_heads = ${num_attention_heads} but is ${JSON.stringify(kvRaw)}`);
  }
  if (hidden_size % num_attention_heads !== 0) {
    throw new GrowlmError(op, `hidden_size = ${hidden_size} is not a multiple of num_attention_heads = ${num_attention_heads}`);
  }
  const headDim = hidden_size / num_attention_heads;
  if (headDim % 2 !== 0) {
    throw new GrowlmError(op, `the head size hidden_size / num_attention_heads = ${headDim} must be even (RoPE rotates pairs)`);
  }
  const tie = obj.tie_word_embeddings ?? LLAMA_DEFAULTS.tie_word_embeddings;
  if (typeof tie !== "boolean") throw new GrowlmError(op, `"tie_word_embeddings" must be a boolean but is ${JSON.stringify(tie)}`);

  const eosRaw = "eos_token_id" in obj ? obj.eos_token_id : LLAMA_DEFAULTS.eos_token_id;
  let eos_token_id: number | number[] | null;
  const isId = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0 && v < vocab_size;
  if (eosRaw === null || eosRaw === undefined) eos_token_id = null;
  else if (isId(eosRaw)) eos_token_id = eosRaw;
  else if (Array.isArray(eosRaw) && eosRaw.length > 0 && eosRaw.every(isId)) eos_token_id = [...eosRaw];
  else throw new GrowlmError(op, `"eos_token_id" must be null, a token id in [0, ${vocab_size}) or a list of them but is ${JSON.stringify(eosRaw)}`);

  return {
    vocab_size,
    hidden_size,
    intermediate_size: positiveInt(op, obj, "intermediate_size"),
    num_hidden_layers: positiveInt(op, obj, "num_hidden_layers"),
    num_attention_heads,
    num_key_value_heads: kvRaw,
    max_position_embeddings: positiveInt(op, obj, "max_position_embeddings"),
    rms_norm_eps: positiveNumber(op, obj, "rms_norm_eps"),
    rope_theta: positiveNumber(op, ropeSource, "rope_theta"),
    tie_word_embeddings: tie,
    bos_token_id: tokenId(op, obj, "bos_token_id", vocab_size),
    eos_token_id,
    pad_token_id: tokenId(op, obj, "pad_token_id", vocab_size),
    initializer_range: positiveNumber(op, obj, "initializer_range"),
    metadata,
  };
}

/** The head size D = hidden_size / num_attention_heads. */
export function headDim(config: LlamaConfig): number {
  return config.hidden_size / config.num_attention_heads;
}

/**
 * The config.json object transformers writes for this config (every LlamaConfig field
 * explicit, metadata carried over; architectures and model_type filled in when absent).
 * @param torchDtype the dtype the weights are saved in ("float32" or "bfloat16")
 */
export function llamaConfigToJson(config: LlamaConfig, torchDtype?: "float32" | "bfloat16"): Record<string, unknown> {
  const { metadata, ...fields } = config;
  const out: Record<string, unknown> = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    ...metadata,
    ...fields,
    hidden_act: "silu",
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    pretraining_tp: 1,
    rope_scaling: null,
    head_dim: headDim(config),
  };
  if (torchDtype) {
    out.torch_dtype = torchDtype;
    // transformers >= 4.56 writes "dtype" instead; keep the two in agreement.
    if ("dtype" in out) out.dtype = torchDtype;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}
