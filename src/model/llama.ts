/**
 * The LLaMA decoder (Hugging Face LlamaForCausalLM's math) with an explicit forward and a
 * hand-written backward over flat parameter and gradient buffers.
 *
 * One layer, on the residual stream x [B·T, C]:
 *   h1 = rmsnorm(x, input_layernorm);  q, k, v = h1·Wqᵀ, h1·Wkᵀ, h1·Wvᵀ;  rope(q), rope(k)
 *   a = causal GQA attention(q, k, v);  mid = x + a·Woᵀ
 *   h2 = rmsnorm(mid, post_attention_layernorm);  g, u = h2·Wgᵀ, h2·Wuᵀ
 *   x' = mid + swiglu(g, u)·Wdᵀ
 * then logits = rmsnorm(x_L, norm)·Wlmᵀ (Wlm = embed_tokens when tied) and the loss is
 * Hugging Face's: position t predicts labels[t + 1], labels of -100 are ignored.
 * setBranchScale(l, s) multiplies layer l's two branch outputs (a·Woᵀ and swiglu·Wdᵀ) by s,
 * forward and backward; s = 1 (the default) is the plain layer, computed by the same calls.
 *
 * The head is computed in row chunks, so a [B·T, V] logits matrix never exists during
 * training: each chunk's cross-entropy backward runs right after its forward (the loss
 * weight is known before the forward), and the chunk's logits buffer becomes its gradient.
 *
 * The model calls the binding directly rather than the kernel wrappers: every shape here is
 * built by the model itself, the wrappers would allocate their saved statistics on every
 * call, and the native side re-checks every length anyway.
 *
 * Inference (forwardCached) runs the same layers on new tokens only, with the keys and
 * values of earlier positions in a KvCache; every row is computed on its own there (the
 * cached attention and the GEMM give each row bits that do not depend on the others), so
 * generation results do not depend on how prompts are batched or padded.
 *
 * Checked against a float64 PyTorch reference (tools/torch_llama.py) in test/model/.
 */
import { GrowlmError } from "../errors.js";
import { binding } from "../native.js";
import { Tensor } from "../tensor.js";
import { type LlamaConfig, headDim } from "./config.js";
import type { KvCache } from "./kv-cache.js";
import { LAYER_KINDS, type ModuleKind, ParamLayout, layerParamName } from "./params.js";

export type MatmulPrecision = "float32" | "bfloat16";

export interface LlamaModelOptions {
  /**
   * Keep only each layer's input during the forward and recompute the rest of the layer in
   * the backward (Hugging Face's gradient_checkpointing): about L·(10 C + 3 I)·4 bytes per
   * token saved for one extra forward of every layer.
   */
  recompute?: boolean;
  /**
   * "bfloat16": every matrix product takes bf16 inputs with fp32 accumulation (AVX-512 BF16
   * where the CPU has it); weights are rounded from the fp32 master copy, which the optimizer
   * updates. Norms, attention, softmax and the loss stay fp32.
   */
  matmul?: MatmulPrecision;
  /** Rows of the LM head computed at once (default 256): bounds the logits memory. */
  headChunkRows?: number;
}

export interface ForwardOptions {
  /** int32 [B, T] targets with Hugging Face semantics (shifted inside); -100 is ignored. */
  labels?: Tensor;
  /** int32 [B, T] positions (default 0..T-1 in every row). */
  positions?: Tensor;
  /** Return the float32 [B, T, V] logits (costs B·T·V·4 bytes). */
  returnLogits?: boolean;
}

export interface ForwardResult {
  /** Mean NLL over counted positions (NaN when none is counted or no labels were given). */
  loss: number;
  /** Sum of the NLLs (float64) and the number of counted positions. */
  lossSum: number;
  count: number;
  /**
   * float32 [B, T]: at t, −log p(labels[t+1] | tokens ≤ t), 0 where ignored and at t = T−1.
   * Present when labels were given.
   */
  tokenLosses?: Tensor<"float32">;
  logits?: Tensor<"float32">;
}

export interface BackwardOptions {
  /**
   * Weight of each counted token's NLL in the differentiated objective: grads += ∂(lossWeight ·
   * Σ NLL)/∂θ. Default 1 / count (the mean of this batch); a trainer accumulating several
   * micro-batches passes 1 / (tokens counted in all of them).
   */
  lossWeight?: number;
  /**
   * Called during the backward each time the gradients of some parameters (Hugging Face names)
   * are final for this backward, from the head and final norm through the layers, last first,
   * to the embedding: data-parallel training starts all-reducing them while the backward goes
   * on (src/train/data-parallel.ts).
   */
  onGradientsFinal?: (names: readonly string[]) => void;
}

type F32 = Float32Array;
type BF16 = Uint16Array;

/** One layer's saved activations (all [B·T, ·] row-major). */
interface LayerActs {
  h1: F32; rstd1: F32; q: F32; k: F32; v: F32; att: F32; lse: F32;
  mid: F32; h2: F32; rstd2: F32; gate: F32; up: F32; act: F32;
  /** bf16 copies of the matrix-product inputs (bf16 mode only). */
  h1b: BF16 | null; attb: BF16 | null; h2b: BF16 | null; actb: BF16 | null;
}

/** Every buffer of one (B, T) shape; reused across steps of that shape. */
class Workspace {
  readonly #tensors: Tensor[] = [];
  readonly residual: F32[]; // L + 1 residual-stream states [BT, C]
  readonly layers: LayerActs[]; // L sets, or 1 when recomputing
  readonly hf: F32; readonly rstdf: F32; readonly hfb: BF16 | null;
  readonly positions: Int32Array; readonly targets: Int32Array; readonly tokenLosses: Tensor<"float32">;
  readonly headLogits: F32; readonly headLse: F32; readonly headLogitsB: BF16 | null;
  // backward scratch
  readonly dres: F32; readonly dtmp: F32; readonly dq: F32; readonly dk: F32; readonly dv: F32;
  readonly dgate: F32; readonly dup: F32; readonly dact: F32;
  readonly dresB: BF16 | null; readonly dqB: BF16 | null; readonly dkB: BF16 | null; readonly dvB: BF16 | null;
  readonly dgateB: BF16 | null; readonly dupB: BF16 | null;

  constructor(readonly B: number, readonly T: number, config: LlamaConfig, recompute: boolean, bf16: boolean, readonly headRows: number) {
    const N = B * T;
    const C = config.hidden_size;
    const I = config.intermediate_size;
    const H = config.num_attention_heads;
    const kvC = config.num_key_value_heads * headDim(config);
    const f = (n: number): F32 => this.#alloc(n, "float32") as F32;
    const b = (n: number): BF16 | null => (bf16 ? (this.#alloc(n, "bfloat16") as BF16) : null);
    this.residual = Array.from({ length: config.num_hidden_layers + 1 }, () => f(N * C));
    this.layers = Array.from({ length: recompute ? 1 : config.num_hidden_layers }, () => ({
      h1: f(N * C), rstd1: f(N), q: f(N * C), k: f(N * kvC), v: f(N * kvC), att: f(N * C), lse: f(B * H * T),
      mid: f(N * C), h2: f(N * C), rstd2: f(N), gate: f(N * I), up: f(N * I), act: f(N * I),
      h1b: b(N * C), attb: b(N * C), h2b: b(N * C), actb: b(N * I),
    }));
    this.hf = f(N * C);
    this.rstdf = f(N);
    this.hfb = b(N * C);
    this.positions = this.#alloc(N, "int32") as Int32Array;
    for (let i = 0; i < N; i++) this.positions[i] = i % T;
    this.targets = this.#alloc(N, "int32") as Int32Array;
    this.tokenLosses = Tensor.empty([B, T]);
    this.#tensors.push(this.tokenLosses);
    this.headLogits = f(headRows * config.vocab_size);
    this.headLse = f(headRows);
    this.headLogitsB = b(headRows * config.vocab_size);
    this.dres = f(N * C);
    this.dtmp = f(N * Math.max(C, I));
    this.dq = f(N * C);
    this.dk = f(N * kvC);
    this.dv = f(N * kvC);
    this.dgate = f(N * I);
    this.dup = f(N * I);
    this.dact = f(N * Math.max(C, I)); // also the scratch of two rmsnorm backwards (N·C)
    this.dresB = b(N * C);
    this.dqB = b(N * C);
    this.dkB = b(N * kvC);
    this.dvB = b(N * kvC);
    this.dgateB = b(N * I);
    this.dupB = b(N * I);
  }

  #alloc(n: number, dtype: "float32" | "bfloat16" | "int32"): F32 | BF16 | Int32Array {
    const t = Tensor.empty([n], dtype);
    this.#tensors.push(t);
    return t.data as F32 | BF16 | Int32Array;
  }

  dispose(): void {
    for (const t of this.#tensors) t.dispose();
  }
}

/**
 * Buffers of forwardCached for up to `capacity` new tokens (rows × new tokens per row), grown
 * on demand and reused across calls (a prefill, then single-token steps).
 */
class DecodeWorkspace {
  readonly #tensors: Tensor[] = [];
  readonly x: F32; readonly h: F32; readonly rstd: F32; readonly q: F32; readonly k: F32; readonly v: F32;
  readonly att: F32; readonly mid: F32; readonly gate: F32; readonly up: F32; readonly act: F32;
  readonly hb: BF16 | null; readonly attb: BF16 | null; readonly actb: BF16 | null;
  readonly positions: Int32Array;

  constructor(readonly capacity: number, config: LlamaConfig, bf16: boolean) {
    const N = capacity;
    const C = config.hidden_size;
    const I = config.intermediate_size;
    const kvC = config.num_key_value_heads * headDim(config);
    const f = (n: number): F32 => this.#alloc(n, "float32") as F32;
    const b = (n: number): BF16 | null => (bf16 ? (this.#alloc(n, "bfloat16") as BF16) : null);
    this.x = f(N * C);
    this.h = f(N * C);
    this.rstd = f(N);
    this.q = f(N * C);
    this.k = f(N * kvC);
    this.v = f(N * kvC);
    this.att = f(N * C);
    this.mid = f(N * C);
    this.gate = f(N * I);
    this.up = f(N * I);
    this.act = f(N * I);
    this.hb = b(N * C);
    this.attb = b(N * C);
    this.actb = b(N * I);
    this.positions = this.#alloc(N, "int32") as Int32Array;
  }

  #alloc(n: number, dtype: "float32" | "bfloat16" | "int32"): F32 | BF16 | Int32Array {
    const t = Tensor.empty([n], dtype);
    this.#tensors.push(t);
    return t.data as F32 | BF16 | Int32Array;
  }

  dispose(): void {
    for (const t of this.#tensors) t.dispose();
  }
}

/** op(A)·op(B) with fp32 or bf16 inputs, C [M, N] = alpha·op(A)·op(B) + beta·C. */
function gemm(
  transA: boolean, transB: boolean, M: number, N: number, K: number,
  A: F32 | BF16, B: F32 | BF16, beta: number, C: F32, alpha = 1,
): void {
  const lda = transA ? M : K;
  const ldb = transB ? K : N;
  if (A instanceof Float32Array && B instanceof Float32Array) binding.sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, N);
  else binding.gemmBf16(transA, transB, M, N, K, alpha, A as BF16, lda, B as BF16, ldb, beta, C, N);
}

export class LlamaModel {
  readonly layout: ParamLayout;
  /** float32 master parameters, flat, in `layout`. */
  readonly params: Tensor<"float32">;
  /** float32 gradients, flat, in `layout`; backward accumulates (+=). */
  readonly grads: Tensor<"float32">;
  /** bf16 working copy of the parameters (bf16 matmul mode only). */
  readonly paramsBf16: Tensor<"bfloat16"> | null;
  readonly recompute: boolean;
  readonly matmul: MatmulPrecision;
  readonly headChunkRows: number;
  #bf16Stale = true;
  #workspace: Workspace | null = null;
  #decode: DecodeWorkspace | null = null;
  /** What the last forward with labels saved for backward; null when there is nothing to differentiate. */
  #pending: { ids: Int32Array; positions: Int32Array; B: number; T: number; count: number; headDone: boolean; version: number } | null = null;
  /** Counts markParamsChanged() and setBranchScale() calls: a backward must see the parameters its forward saw. */
  #version = 0;
  /** Per layer, the factor on its two residual branches (1 everywhere unless setBranchScale changed it). */
  readonly #branchScales: Float64Array;
  #disposed = false;

  constructor(readonly config: LlamaConfig, options: LlamaModelOptions = {}) {
    this.layout = new ParamLayout(config);
    this.recompute = options.recompute ?? false;
    this.matmul = options.matmul ?? "float32";
    if (this.matmul !== "float32" && this.matmul !== "bfloat16") {
      throw new GrowlmError("LlamaModel", `"matmul" must be "float32" or "bfloat16" but is ${JSON.stringify(this.matmul)}`);
    }
    this.headChunkRows = options.headChunkRows ?? 256;
    if (!Number.isSafeInteger(this.headChunkRows) || this.headChunkRows < 1) {
      throw new GrowlmError("LlamaModel", `"headChunkRows" must be a positive integer but is ${this.headChunkRows}`);
    }
    this.params = Tensor.zeros([this.layout.numel]);
    this.grads = Tensor.zeros([this.layout.numel]);
    this.#branchScales = new Float64Array(config.num_hidden_layers).fill(1);
    this.paramsBf16 = this.matmul === "bfloat16" ? Tensor.zeros([this.layout.numel], "bfloat16") : null;
  }

  /** The view of parameter `name` (Hugging Face name) in the flat buffer. */
  param(name: string): Tensor<"float32"> {
    return this.layout.view(this.params, name);
  }

  /** The view of the gradient of parameter `name`. */
  grad(name: string): Tensor<"float32"> {
    return this.layout.view(this.grads, name);
  }

  /**
   * Hugging Face's initialisation, seeded: linear and embedding weights normal(0,
   * initializer_range) (the pad row of the embedding at zero), norm weights 1. Each tensor
   * draws from its own range of the Philox stream of `seed` (its flat offset), so a tensor's
   * values do not depend on the tensors before it.
   */
  initialize(seed: number | bigint): void {
    this.#checkAlive();
    const data = this.params.data;
    data.fill(0);
    for (const e of this.layout.entries) {
      const view = data.subarray(e.offset, e.offset + e.numel);
      if (e.kind.endsWith("norm")) view.fill(1);
      else binding.rngNormal(view, e.numel, seed, e.offset, 0, this.config.initializer_range);
    }
    const pad = this.config.pad_token_id;
    if (pad !== null) {
      const C = this.config.hidden_size;
      const embed = this.layout.entry("model.embed_tokens.weight").offset;
      data.fill(0, embed + pad * C, embed + (pad + 1) * C);
    }
    this.markParamsChanged();
  }

  /** Call after writing `params` directly (loading, growth, an optimizer without a bf16 output). */
  markParamsChanged(): void {
    this.#bf16Stale = true;
    this.#version++;
  }

  /** Tell the model that `paramsBf16` was written together with `params` (fused AdamW does). */
  markBf16Fresh(): void {
    this.#bf16Stale = false;
    this.#version++;
  }

  /**
   * Multiplies layer `layer`'s two residual branches by `scale` in the forward and the backward:
   * mid = x + scale·attention(x)·Woᵀ and x' = mid + scale·mlp(mid)·Wdᵀ. At 0 the layer is the
   * identity (and its weights get no gradient), at 1 (the default) the plain layer. MSG-style
   * growth ramps the scale of newly added layers from 0 to 1 (src/growth/schedule.ts). The scale
   * is a float32 factor; a forward waiting for its backward is invalidated by a change.
   */
  setBranchScale(layer: number, scale: number): void {
    this.#checkAlive();
    const op = "LlamaModel.setBranchScale";
    if (!Number.isSafeInteger(layer) || layer < 0 || layer >= this.config.num_hidden_layers) {
      throw new GrowlmError(op, `layer must be an integer in [0, ${this.config.num_hidden_layers}) but is ${layer}`);
    }
    if (!Number.isFinite(scale)) throw new GrowlmError(op, `the scale of layer ${layer} must be finite but is ${scale}`);
    if (this.#branchScales[layer] === scale) return;
    this.#branchScales[layer] = scale;
    this.#version++;
  }

  /** The factor on layer `layer`'s residual branches (see setBranchScale). */
  branchScale(layer: number): number {
    const s = this.#branchScales[layer];
    if (s === undefined) throw new GrowlmError("LlamaModel.branchScale", `layer must be an integer in [0, ${this.config.num_hidden_layers}) but is ${layer}`);
    return s;
  }

  zeroGrad(): void {
    this.#checkAlive();
    this.grads.data.fill(0);
  }

  /**
   * Forward pass. With labels it also computes the loss and keeps what backward() needs.
   * @param ids int32 [B, T] token ids in [0, vocab_size)
   */
  forward(ids: Tensor, options: ForwardOptions = {}): ForwardResult {
    return this.#run(ids, options, null);
  }

  /**
   * Backward of the last forward with labels: grads += ∂(lossWeight · Σ NLL)/∂θ. The LM head's
   * logits are not kept by the forward, so this recomputes them chunk by chunk (one extra
   * head product); forwardBackward avoids that.
   */
  backward(options: BackwardOptions = {}): void {
    this.#checkAlive();
    const op = "LlamaModel.backward";
    const pending = this.#pending;
    const ws = this.#workspace;
    if (!pending || !ws || pending.headDone) throw new GrowlmError(op, "no forward with labels to differentiate (or it was differentiated already)");
    if (pending.version !== this.#version) throw new GrowlmError(op, "the parameters changed since the forward");
    const weight = options.lossWeight ?? 1 / pending.count;
    if (!Number.isFinite(weight)) throw new GrowlmError(op, `the loss weight must be finite but is ${weight}${pending.count === 0 ? " (no label is counted)" : ""}`);
    this.#head(ws, pending.B * pending.T, true, weight, null);
    this.#backwardLayers(options.onGradientsFinal);
  }

  /**
   * Forward and backward in one call (the head's backward runs inside the forward, chunk by
   * chunk, which is why the loss weight is needed up front): grads += ∂(lossWeight · Σ NLL)/∂θ.
   */
  forwardBackward(ids: Tensor, labels: Tensor, options: BackwardOptions & { positions?: Tensor } = {}): ForwardResult {
    const result = this.#run(ids, { labels, ...(options.positions ? { positions: options.positions } : {}) }, options);
    this.#backwardLayers(options.onGradientsFinal);
    return result;
  }

  /**
   * Inference step with a key/value cache: runs T new tokens of every row in use through the
   * model, appends their keys and values to `cache` at slots `cache.length .. + T − 1`, and
   * returns the logits of each row's last new token. A prefill passes the (left-padded)
   * prompts with `cache.keyBegin` set to each row's first real slot; each later step passes
   * one token per row. Token t of row b has position `slot − keyBegin[b]` (padding slots get
   * position 0; nothing attends to them). Computes no loss and saves nothing for a backward.
   * @param ids int32 [rows, T] token ids in [0, vocab_size)
   * @param out optional float32 [rows, vocab_size] output
   * @returns float32 [rows, vocab_size] logits
   */
  forwardCached(ids: Tensor, cache: KvCache, out?: Tensor): Tensor<"float32"> {
    this.#checkAlive();
    const op = "LlamaModel.forwardCached";
    const { data: idData, B, T } = this.#ids(op, ids, "ids");
    const cfg = this.config;
    const V = cfg.vocab_size;
    const C = cfg.hidden_size;
    const I = cfg.intermediate_size;
    const H = cfg.num_attention_heads;
    const Hkv = cfg.num_key_value_heads;
    const D = headDim(cfg);
    const kvC = Hkv * D;
    if (cache.numLayers !== cfg.num_hidden_layers || cache.numKvHeads !== Hkv || cache.headDim !== D) {
      throw new GrowlmError(op, `the cache holds ${cache.numLayers} layers of ${cache.numKvHeads} kv heads of size ${cache.headDim} but the model has ${cfg.num_hidden_layers} of ${Hkv} of size ${D}`);
    }
    if (B !== cache.rows) throw new GrowlmError(op, `"ids" has ${B} rows but the cache has ${cache.rows} in use`);
    const start = cache.length;
    if (start + T > cache.capacity) throw new GrowlmError(op, `${T} new tokens after ${start} exceed the cache's ${cache.capacity} slots`);
    for (let i = 0; i < idData.length; i++) {
      const id = idData[i]!;
      if (id < 0 || id >= V) throw new GrowlmError(op, `"ids" holds ${id} at flat index ${i}, outside [0, ${V})`);
    }
    const logits = out ?? Tensor.empty([B, V]);
    if (logits.dtype !== "float32" || logits.ndim !== 2 || logits.shape[0] !== B || logits.shape[1] !== V) {
      throw new GrowlmError(op, `expected "out" float32 [${B}, ${V}] but received ${logits.dtype} [${logits.shape.join(", ")}]`);
    }
    const N = B * T;
    if (!this.#decode || this.#decode.capacity < N) {
      this.#decode?.dispose();
      this.#decode = new DecodeWorkspace(Math.max(N, this.#decode?.capacity ?? 0), cfg, this.paramsBf16 !== null);
    }
    const ws = this.#decode;
    const keyBegin = cache.keyBegin.data as Int32Array;
    const positions = ws.positions.subarray(0, N);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const position = start + t - keyBegin[b]!;
        if (position >= cfg.max_position_embeddings) {
          throw new GrowlmError(op, `row ${b} reaches position ${position}, beyond max_position_embeddings = ${cfg.max_position_embeddings}`);
        }
        positions[b * T + t] = Math.max(0, position);
      }
    }
    if (this.paramsBf16 && this.#bf16Stale) {
      binding.f32ToBf16(this.paramsBf16.data, this.params.data, this.layout.numel);
      this.#bf16Stale = false;
    }
    const sub = <A extends F32 | BF16>(a: A, n: number): A => a.subarray(0, n) as A;
    const x = sub(ws.x, N * C);
    const h = sub(ws.h, N * C);
    const rstd = sub(ws.rstd, N);
    const q = sub(ws.q, N * C);
    const k = sub(ws.k, N * kvC);
    const v = sub(ws.v, N * kvC);
    const att = sub(ws.att, N * C);
    const mid = sub(ws.mid, N * C);
    const gate = sub(ws.gate, N * I);
    const up = sub(ws.up, N * I);
    const act = sub(ws.act, N * I);
    const hb = ws.hb && sub(ws.hb, N * C);
    const attb = ws.attb && sub(ws.attb, N * C);
    const actb = ws.actb && sub(ws.actb, N * I);
    const span = cache.capacity * kvC;
    binding.embeddingForward(x, idData, this.#p("model.embed_tokens.weight"), N, V, C);
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      binding.rmsnormForward(h, rstd, x, this.#p(layerParamName(l, "input_layernorm")), N, C, cfg.rms_norm_eps);
      const h1 = this.#operand(h, hb, N * C);
      gemm(false, true, N, C, C, h1, this.#lw(l, "q_proj"), 0, q);
      gemm(false, true, N, kvC, C, h1, this.#lw(l, "k_proj"), 0, k);
      gemm(false, true, N, kvC, C, h1, this.#lw(l, "v_proj"), 0, v);
      binding.ropeForward(q, q, positions, B, T, H, D, cfg.rope_theta);
      binding.ropeForward(k, k, positions, B, T, Hkv, D, cfg.rope_theta);
      const keys = cache.keys(l);
      const values = cache.values(l);
      for (let b = 0; b < B; b++) {
        keys.data.set(k.subarray(b * T * kvC, (b + 1) * T * kvC), b * span + start * kvC);
        values.data.set(v.subarray(b * T * kvC, (b + 1) * T * kvC), b * span + start * kvC);
      }
      binding.attentionCachedForward(att, q, keys.data, values.data, keyBegin, B, T, start + T, cache.capacity, H, Hkv, D, 1 / Math.sqrt(D));
      const scale = this.#branchScales[l]!;
      gemm(false, true, N, C, C, this.#operand(att, attb, N * C), this.#lw(l, "o_proj"), 0, mid, scale);
      binding.add(mid, mid, x, N * C);
      binding.rmsnormForward(h, rstd, mid, this.#p(layerParamName(l, "post_attention_layernorm")), N, C, cfg.rms_norm_eps);
      const h2 = this.#operand(h, hb, N * C);
      gemm(false, true, N, I, C, h2, this.#lw(l, "gate_proj"), 0, gate);
      gemm(false, true, N, I, C, h2, this.#lw(l, "up_proj"), 0, up);
      binding.swigluForward(act, gate, up, N * I);
      gemm(false, true, N, C, I, this.#operand(act, actb, N * I), this.#lw(l, "down_proj"), 0, x, scale);
      binding.add(x, x, mid, N * C);
    }
    cache.length = start + T;
    // The head on each row's last token only.
    const last = sub(ws.mid, B * C);
    for (let b = 0; b < B; b++) last.set(x.subarray((b * T + T - 1) * C, (b * T + T) * C), b * C);
    const hf = sub(ws.h, B * C);
    binding.rmsnormForward(hf, sub(ws.rstd, B), last, this.#p("model.norm.weight"), B, C, cfg.rms_norm_eps);
    gemm(false, true, B, V, C, this.#operand(hf, hb && sub(hb, B * C), B * C), this.#w(this.#headName), 0, logits.data as F32);
    return logits as Tensor<"float32">;
  }

  #checkAlive(): void {
    if (this.#disposed) throw new GrowlmError("LlamaModel", "used after dispose()");
  }

  #ids(op: string, t: Tensor, name: string): { data: Int32Array; B: number; T: number } {
    if (t.dtype !== "int32" || t.ndim !== 2 || t.shape[0]! < 1 || t.shape[1]! < 1) {
      throw new GrowlmError(op, `expected "${name}" int32 [B, T] with B, T >= 1 but received ${t.dtype} [${t.shape.join(", ")}]`);
    }
    return { data: t.data as Int32Array, B: t.shape[0]!, T: t.shape[1]! };
  }

  #workspaceFor(B: number, T: number): Workspace {
    const ws = this.#workspace;
    if (ws && ws.B === B && ws.T === T) return ws;
    ws?.dispose();
    const rows = Math.min(this.headChunkRows, B * T);
    this.#workspace = new Workspace(B, T, this.config, this.recompute, this.matmul === "bfloat16", rows);
    return this.#workspace;
  }

  /** Weight `name` as the matrix-product operand of the current precision. */
  #w(name: string): F32 | BF16 {
    const e = this.layout.entry(name);
    const flat = this.paramsBf16 ? this.paramsBf16.data : this.params.data;
    return flat.subarray(e.offset, e.offset + e.numel);
  }

  #p(name: string): F32 {
    const e = this.layout.entry(name);
    return this.params.data.subarray(e.offset, e.offset + e.numel);
  }

  #g(name: string): F32 {
    const e = this.layout.entry(name);
    return this.grads.data.subarray(e.offset, e.offset + e.numel);
  }

  #lw(l: number, kind: ModuleKind): F32 | BF16 {
    return this.#w(layerParamName(l, kind));
  }

  /** The bf16 copy of `src` when in bf16 mode (written into `dst`), else src itself. */
  #operand(src: F32, dst: BF16 | null, n: number): F32 | BF16 {
    if (!dst) return src;
    binding.f32ToBf16(dst, src, n);
    return dst;
  }

  get #headName(): string {
    return this.config.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  }

  /** @param backward null for a forward only */
  #run(idsTensor: Tensor, options: ForwardOptions, backward: BackwardOptions | null): ForwardResult {
    this.#checkAlive();
    const op = backward === null ? "LlamaModel.forward" : "LlamaModel.forwardBackward";
    const { data: ids, B, T } = this.#ids(op, idsTensor, "ids");
    const cfg = this.config;
    const V = cfg.vocab_size;
    if (T > cfg.max_position_embeddings) {
      throw new GrowlmError(op, `sequence length T = ${T} exceeds max_position_embeddings = ${cfg.max_position_embeddings}`);
    }
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id < 0 || id >= V) throw new GrowlmError(op, `"ids" holds ${id} at flat index ${i}, outside [0, ${V})`);
    }
    const labels = options.labels ? this.#ids(op, options.labels, "labels") : null;
    if (labels && (labels.B !== B || labels.T !== T)) {
      throw new GrowlmError(op, `"labels" must have the shape of "ids" [${B}, ${T}] but is [${labels.B}, ${labels.T}]`);
    }
    if (backward !== null && !labels) throw new GrowlmError(op, "labels are required for the backward");
    const ws = this.#workspaceFor(B, T);
    let positions = ws.positions;
    if (options.positions) {
      const p = this.#ids(op, options.positions, "positions");
      if (p.B !== B || p.T !== T) throw new GrowlmError(op, `"positions" must have the shape of "ids" [${B}, ${T}]`);
      positions = p.data;
    }
    if (this.paramsBf16 && this.#bf16Stale) {
      binding.f32ToBf16(this.paramsBf16.data, this.params.data, this.layout.numel);
      this.#bf16Stale = false;
    }

    // Targets: row (b, t) predicts labels[b, t + 1].
    let count = 0;
    if (labels) {
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) {
          const target = t + 1 < T ? labels.data[b * T + t + 1]! : -100;
          if (target !== -100 && (target < 0 || target >= V)) {
            throw new GrowlmError(op, `"labels" holds ${target} at [${b}, ${t + 1}], neither -100 nor in [0, ${V})`);
          }
          ws.targets[b * T + t] = target;
          if (target !== -100) count++;
        }
      }
    }

    const N = B * T;
    const C = cfg.hidden_size;
    binding.embeddingForward(ws.residual[0]!, ids, this.#p("model.embed_tokens.weight"), N, V, C);
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      this.#layerForward(l, ws, this.recompute ? ws.layers[0]! : ws.layers[l]!, positions);
    }
    binding.rmsnormForward(ws.hf, ws.rstdf, ws.residual[cfg.num_hidden_layers]!, this.#p("model.norm.weight"), N, C, cfg.rms_norm_eps);

    const weight = backward === null ? null : backward.lossWeight ?? 1 / count;
    if (weight !== null && !Number.isFinite(weight)) {
      throw new GrowlmError(op, `the loss weight must be finite but is ${weight}${count === 0 ? " (no label is counted)" : ""}`);
    }
    const logits = options.returnLogits ? Tensor.empty([B, T, V]) : null;
    const lossSum = this.#head(ws, N, labels !== null, weight, logits);
    this.#pending = labels ? { ids, positions, B, T, count, headDone: weight !== null, version: this.#version } : null;
    const result: ForwardResult = { loss: labels ? lossSum / count : Number.NaN, lossSum: labels ? lossSum : Number.NaN, count };
    if (labels) result.tokenLosses = ws.tokenLosses;
    if (logits) result.logits = logits;
    return result;
  }

  /** The sizes one layer works with: rows N = B·T, hidden C, intermediate I, heads H and Hkv of size D. */
  #layerDims(ws: Workspace): { B: number; T: number; N: number; C: number; I: number; H: number; Hkv: number; D: number } {
    const cfg = this.config;
    const { B, T } = ws;
    return {
      B, T, N: B * T, C: cfg.hidden_size, I: cfg.intermediate_size,
      H: cfg.num_attention_heads, Hkv: cfg.num_key_value_heads, D: headDim(cfg),
    };
  }

  #layerForward(l: number, ws: Workspace, a: LayerActs, positions: Int32Array): void {
    const cfg = this.config;
    const { B, T, N, C, I, H, Hkv, D } = this.#layerDims(ws);
    const x = ws.residual[l]!;
    binding.rmsnormForward(a.h1, a.rstd1, x, this.#p(layerParamName(l, "input_layernorm")), N, C, cfg.rms_norm_eps);
    const h1 = this.#operand(a.h1, a.h1b, N * C);
    gemm(false, true, N, C, C, h1, this.#lw(l, "q_proj"), 0, a.q);
    gemm(false, true, N, Hkv * D, C, h1, this.#lw(l, "k_proj"), 0, a.k);
    gemm(false, true, N, Hkv * D, C, h1, this.#lw(l, "v_proj"), 0, a.v);
    binding.ropeForward(a.q, a.q, positions, B, T, H, D, cfg.rope_theta);
    binding.ropeForward(a.k, a.k, positions, B, T, Hkv, D, cfg.rope_theta);
    binding.attentionForward(a.att, a.lse, a.q, a.k, a.v, B, T, H, Hkv, D, 1 / Math.sqrt(D));
    const att = this.#operand(a.att, a.attb, N * C);
    const scale = this.#branchScales[l]!;
    gemm(false, true, N, C, C, att, this.#lw(l, "o_proj"), 0, a.mid, scale);
    binding.add(a.mid, a.mid, x, N * C);
    binding.rmsnormForward(a.h2, a.rstd2, a.mid, this.#p(layerParamName(l, "post_attention_layernorm")), N, C, cfg.rms_norm_eps);
    const h2 = this.#operand(a.h2, a.h2b, N * C);
    gemm(false, true, N, I, C, h2, this.#lw(l, "gate_proj"), 0, a.gate);
    gemm(false, true, N, I, C, h2, this.#lw(l, "up_proj"), 0, a.up);
    binding.swigluForward(a.act, a.gate, a.up, N * I);
    const act = this.#operand(a.act, a.actb, N * I);
    const out = ws.residual[l + 1]!;
    gemm(false, true, N, C, I, act, this.#lw(l, "down_proj"), 0, out, scale);
    binding.add(out, out, a.mid, N * C);
  }

  /**
   * Final head in chunks of rows: logits, per-token NLL, and (when `weight` is set) the
   * head's backward: ws.dres = ∂/∂hf, the head weight's gradient accumulated.
   * @returns the summed NLL (float64)
   */
  #head(ws: Workspace, N: number, withLoss: boolean, weight: number | null, logitsOut: Tensor | null): number {
    const cfg = this.config;
    const V = cfg.vocab_size;
    const C = cfg.hidden_size;
    const W = this.#w(this.#headName);
    const hf = this.#operand(ws.hf, ws.hfb, N * C);
    const dW = weight !== null ? this.#g(this.#headName) : null;
    const tokenLosses = ws.tokenLosses.data;
    let lossSum = 0;
    for (let r0 = 0; r0 < N; r0 += ws.headRows) {
      const rows = Math.min(ws.headRows, N - r0);
      const logits = ws.headLogits.subarray(0, rows * V);
      gemm(false, true, rows, V, C, hf.subarray(r0 * C, (r0 + rows) * C), W, 0, logits);
      if (logitsOut) logitsOut.data.set(logits, r0 * V);
      if (!withLoss) continue;
      const targets = ws.targets.subarray(r0, r0 + rows);
      const lse = ws.headLse.subarray(0, rows);
      lossSum += binding.crossEntropyForward(tokenLosses.subarray(r0, r0 + rows), lse, logits, targets, rows, V, -100).lossSum;
      if (weight === null || !dW) continue;
      binding.crossEntropyBackward(logits, logits, lse, targets, rows, V, -100, weight);
      const dlogits = this.#operand(logits, ws.headLogitsB ? ws.headLogitsB.subarray(0, rows * V) : null, rows * V);
      gemm(false, false, rows, C, V, dlogits, W, 0, ws.dtmp.subarray(r0 * C, (r0 + rows) * C));
      gemm(true, false, V, C, rows, dlogits, hf.subarray(r0 * C, (r0 + rows) * C), 1, dW);
    }
    return lossSum;
  }

  /** Backward through the final norm, the layers and the embedding (after the head's backward in #head). */
  #backwardLayers(onGradientsFinal?: (names: readonly string[]) => void): void {
    const pending = this.#pending!;
    const ws = this.#workspace!;
    this.#pending = null;
    const cfg = this.config;
    const { B, T, ids, positions } = pending;
    const N = B * T;
    const C = cfg.hidden_size;
    const L = cfg.num_hidden_layers;
    // #head left ∂/∂hf in dtmp.
    binding.rmsnormBackward(ws.dres, this.#g("model.norm.weight"), ws.dtmp.subarray(0, N * C), ws.residual[L]!, this.#p("model.norm.weight"), ws.rstdf, N, C);
    // A tied head's gradient lives in the embedding's, which is final only at the end.
    onGradientsFinal?.(cfg.tie_word_embeddings ? ["model.norm.weight"] : ["model.norm.weight", "lm_head.weight"]);
    for (let l = L - 1; l >= 0; l--) {
      const a = this.recompute ? ws.layers[0]! : ws.layers[l]!;
      if (this.recompute) this.#layerForward(l, ws, a, positions);
      this.#layerBackward(l, ws, a, positions);
      onGradientsFinal?.(LAYER_KINDS.map((kind) => layerParamName(l, kind)));
    }
    const embed = "model.embed_tokens.weight";
    const dEmbed = this.#g(embed);
    const pad = cfg.pad_token_id;
    // nn.Embedding(padding_idx=pad_token_id) gives the pad row no gradient from the lookup.
    const padRow = pad !== null ? dEmbed.slice(pad * C, (pad + 1) * C) : null;
    binding.embeddingBackward(dEmbed, ws.dres, ids, N, cfg.vocab_size, C);
    if (padRow && pad !== null) dEmbed.set(padRow, pad * C);
    onGradientsFinal?.([embed]);
  }

  /** ws.dres holds ∂/∂x_{l+1} on entry and ∂/∂x_l on exit; parameter gradients accumulate. */
  #layerBackward(l: number, ws: Workspace, a: LayerActs, positions: Int32Array): void {
    const cfg = this.config;
    const { B, T, N, C, I, H, Hkv, D } = this.#layerDims(ws);
    const kvC = Hkv * D;
    const g = (kind: ModuleKind): F32 => this.#g(layerParamName(l, kind));
    const scale = this.#branchScales[l]!;

    // MLP: x' = mid + scale·act·Wdᵀ
    const dres = this.#operand(ws.dres, ws.dresB, N * C);
    const dact = ws.dact.subarray(0, N * I);
    gemm(false, false, N, I, C, dres, this.#lw(l, "down_proj"), 0, dact, scale);
    gemm(true, false, C, I, N, dres, a.actb ?? a.act, 1, g("down_proj"), scale);
    binding.swigluBackward(ws.dgate, ws.dup, dact, a.gate, a.up, N * I);
    const dgate = this.#operand(ws.dgate, ws.dgateB, N * I);
    const dup = this.#operand(ws.dup, ws.dupB, N * I);
    const dh2 = ws.dtmp.subarray(0, N * C);
    gemm(false, false, N, C, I, dgate, this.#lw(l, "gate_proj"), 0, dh2);
    gemm(false, false, N, C, I, dup, this.#lw(l, "up_proj"), 1, dh2);
    const h2 = a.h2b ?? a.h2;
    gemm(true, false, I, C, N, dgate, h2, 1, g("gate_proj"));
    gemm(true, false, I, C, N, dup, h2, 1, g("up_proj"));
    // ∂/∂mid = dres + rmsnorm_backward(dh2); dact is free scratch of at least N·C.
    const dmidNorm = ws.dact.subarray(0, N * C);
    binding.rmsnormBackward(dmidNorm, g("post_attention_layernorm"), dh2, a.mid, this.#p(layerParamName(l, "post_attention_layernorm")), a.rstd2, N, C);
    binding.add(ws.dres, ws.dres, dmidNorm, N * C);

    // Attention: mid = x + scale·att·Woᵀ
    const dmid = this.#operand(ws.dres, ws.dresB, N * C);
    const datt = ws.dtmp.subarray(0, N * C);
    gemm(false, false, N, C, C, dmid, this.#lw(l, "o_proj"), 0, datt, scale);
    gemm(true, false, C, C, N, dmid, a.attb ?? a.att, 1, g("o_proj"), scale);
    binding.attentionBackward(ws.dq, ws.dk, ws.dv, datt, a.q, a.k, a.v, a.att, a.lse, B, T, H, Hkv, D, 1 / Math.sqrt(D));
    binding.ropeBackward(ws.dq, ws.dq, positions, B, T, H, D, cfg.rope_theta);
    binding.ropeBackward(ws.dk, ws.dk, positions, B, T, Hkv, D, cfg.rope_theta);
    const dq = this.#operand(ws.dq, ws.dqB, N * C);
    const dk = this.#operand(ws.dk, ws.dkB, N * kvC);
    const dv = this.#operand(ws.dv, ws.dvB, N * kvC);
    const dh1 = ws.dtmp.subarray(0, N * C);
    gemm(false, false, N, C, C, dq, this.#lw(l, "q_proj"), 0, dh1);
    gemm(false, false, N, C, kvC, dk, this.#lw(l, "k_proj"), 1, dh1);
    gemm(false, false, N, C, kvC, dv, this.#lw(l, "v_proj"), 1, dh1);
    const h1 = a.h1b ?? a.h1;
    gemm(true, false, C, C, N, dq, h1, 1, g("q_proj"));
    gemm(true, false, kvC, C, N, dk, h1, 1, g("k_proj"));
    gemm(true, false, kvC, C, N, dv, h1, 1, g("v_proj"));
    const dxNorm = ws.dact.subarray(0, N * C);
    binding.rmsnormBackward(dxNorm, g("input_layernorm"), dh1, ws.residual[l]!, this.#p(layerParamName(l, "input_layernorm")), a.rstd1, N, C);
    binding.add(ws.dres, ws.dres, dxNorm, N * C);
  }

  /** Frees the parameters, gradients and activations now. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#workspace?.dispose();
    this.#workspace = null;
    this.#decode?.dispose();
    this.#decode = null;
    this.params.dispose();
    this.grads.dispose();
    this.paramsBf16?.dispose();
  }
}
