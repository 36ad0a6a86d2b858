/**
 * The parameters of a LLaMA decoder in one flat float32 buffer, with a named view per
 * tensor in Hugging Face's names and order (model.embed_tokens.weight,
 * model.layers.{i}.self_attn.q_proj.weight, ..., model.norm.weight, lm_head.weight).
 * Each layer's tensors are contiguous, so a layer is one range of the buffer (growth copies
 * ranges; data-parallel all-reduce works on buckets of ranges). Every tensor starts on a
 * 64-byte boundary; the padding between tensors is zero and stays zero (its gradient is zero).
 */
import { GrowlmError } from "../errors.js";
import { Tensor } from "../tensor.js";
import { type LlamaConfig, headDim } from "./config.js";

/** Floats per alignment unit: 16 × 4 bytes = one cache line. */
const ALIGN_FLOATS = 16;

export type ModuleKind =
  | "embed_tokens"
  | "q_proj"
  | "k_proj"
  | "v_proj"
  | "o_proj"
  | "gate_proj"
  | "up_proj"
  | "down_proj"
  | "input_layernorm"
  | "post_attention_layernorm"
  | "norm"
  | "lm_head";

export interface ParamSpec {
  /** Hugging Face state-dict name. */
  name: string;
  /** Row-major shape as in PyTorch ([out_features, in_features] for a linear layer). */
  shape: readonly number[];
  kind: ModuleKind;
  /** Decoder layer index, or null for embeddings, final norm and head. */
  layer: number | null;
  /** AdamW weight decay applies (false for norms, as Hugging Face's Trainer does). */
  decay: boolean;
}

export interface ParamEntry extends ParamSpec {
  /** Offset of the first element in the flat buffer. */
  offset: number;
  numel: number;
}

/** The tensors of one decoder layer, in the order they are stored. */
export const LAYER_KINDS: readonly ModuleKind[] = [
  "q_proj",
  "k_proj",
  "v_proj",
  "o_proj",
  "gate_proj",
  "up_proj",
  "down_proj",
  "input_layernorm",
  "post_attention_layernorm",
];

/** Hugging Face name of a layer tensor. */
export function layerParamName(layer: number, kind: ModuleKind): string {
  const group = kind.endsWith("_proj") ? (["gate_proj", "up_proj", "down_proj"].includes(kind) ? "mlp." : "self_attn.") : "";
  return `model.layers.${layer}.${group}${kind}.weight`;
}

/** Every parameter of the model in storage order (lm_head absent when tied). */
export function parameterSpecs(config: LlamaConfig): ParamSpec[] {
  const C = config.hidden_size;
  const I = config.intermediate_size;
  const kvC = config.num_key_value_heads * headDim(config);
  const shapes: Record<string, readonly number[]> = {
    q_proj: [C, C],
    k_proj: [kvC, C],
    v_proj: [kvC, C],
    o_proj: [C, C],
    gate_proj: [I, C],
    up_proj: [I, C],
    down_proj: [C, I],
    input_layernorm: [C],
    post_attention_layernorm: [C],
  };
  const specs: ParamSpec[] = [
    { name: "model.embed_tokens.weight", shape: [config.vocab_size, C], kind: "embed_tokens", layer: null, decay: true },
  ];
  for (let l = 0; l < config.num_hidden_layers; l++) {
    for (const kind of LAYER_KINDS) {
      specs.push({ name: layerParamName(l, kind), shape: shapes[kind]!, kind, layer: l, decay: !kind.endsWith("layernorm") });
    }
  }
  specs.push({ name: "model.norm.weight", shape: [C], kind: "norm", layer: null, decay: false });
  if (!config.tie_word_embeddings) {
    specs.push({ name: "lm_head.weight", shape: [config.vocab_size, C], kind: "lm_head", layer: null, decay: true });
  }
  return specs;
}

/** Offsets of every parameter in the flat buffer, and its total length. */
export class ParamLayout {
  readonly entries: readonly ParamEntry[];
  readonly numel: number;
  readonly #byName: Map<string, ParamEntry>;

  constructor(readonly config: LlamaConfig) {
    let offset = 0;
    const entries: ParamEntry[] = [];
    for (const spec of parameterSpecs(config)) {
      const numel = spec.shape.reduce((a, b) => a * b, 1);
      entries.push({ ...spec, offset, numel });
      offset += Math.ceil(numel / ALIGN_FLOATS) * ALIGN_FLOATS;
    }
    this.entries = entries;
    this.numel = offset;
    this.#byName = new Map(entries.map((e) => [e.name, e]));
  }

  /** The number of real parameters (padding excluded). */
  get parameterCount(): number {
    return this.entries.reduce((n, e) => n + e.numel, 0);
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  entry(name: string): ParamEntry {
    const e = this.#byName.get(name);
    if (!e) throw new GrowlmError("ParamLayout", `no parameter named "${name}"`);
    return e;
  }

  /** [begin, end) of layer l's tensors (padding included). */
  layerRange(layer: number): [number, number] {
    const first = this.entry(layerParamName(layer, LAYER_KINDS[0]!));
    const last = this.entry(layerParamName(layer, LAYER_KINDS[LAYER_KINDS.length - 1]!));
    return [first.offset, last.offset + Math.ceil(last.numel / ALIGN_FLOATS) * ALIGN_FLOATS];
  }

  /** Contiguous ranges covering the buffer with their weight-decay flags (for adamwStep). */
  decaySegments(): { begin: number; end: number; decay: boolean }[] {
    const segments: { begin: number; end: number; decay: boolean }[] = [];
    this.entries.forEach((e, i) => {
      const end = i + 1 < this.entries.length ? this.entries[i + 1]!.offset : this.numel;
      const last = segments[segments.length - 1];
      if (last && last.decay === e.decay) last.end = end;
      else segments.push({ begin: e.offset, end, decay: e.decay });
    });
    return segments;
  }

  /** A view of tensor `name` inside `flat` (a [numel] buffer with this layout: parameters, gradients, moments or a bf16 copy). */
  view<D extends "float32" | "bfloat16">(flat: Tensor<D>, name: string): Tensor<D> {
    if (flat.numel !== this.numel) {
      throw new GrowlmError("ParamLayout.view", `expected a buffer of ${this.numel} elements but received ${flat.numel}`);
    }
    const e = this.entry(name);
    return flat.reshape([flat.numel]).rows(e.offset, e.offset + e.numel).reshape(e.shape);
  }
}
