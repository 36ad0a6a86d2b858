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
 * Probabilistic fine-tuning (src/probabilistic/) hooks in at three places, all off by
 * default, where the code above runs unchanged:
 * - attachFilm(film): a FiLM-Ensemble of M members. Every forward replicates its B input rows
 *   M times (row b·M + m is sample b for member m) and each RMSNorm is followed by the
 *   member's γ_m, β_m (the FiLM-fused norm kernels); the loss is the mean over members.
 * - setDropout(p, stream): dropout on the attention and MLP outputs in training forwards,
 *   masks drawn from the trainer's random stream.
 * - setMcDropout({samples}): inference forwards run S dropout samples of each row (rows
 *   b·S + s) and average their probabilities (MC dropout).
 * With K members (M or S), forward() and forwardCached() take and return logical rows: the
 * loss is the mean over members of each member's NLL, tokenLosses and forwardCached's output
 * come from the members' averaged probabilities p̄ = (1/K) Σ_k softmax(z_k).
 *
 * Devices. `new LlamaModel(config, { device })` runs the same code on "cpu" (the default)
 * or a CUDA device ("cuda", "cuda:N"): every kernel call goes through the device's backend
 * (src/model/backend.ts), whose buffers the parameters, gradients, workspaces and KV caches
 * are. Token ids, positions and targets are prepared on the host and uploaded once per
 * forward; token losses and logits come back when the caller asks for them.
 * On a CUDA device the master parameters, their gradients and the bf16 copy live on the GPU,
 * and `params`, `param(name)`, `grads`, `grad(name)` and `paramsBf16` are HOST MIRRORS:
 * - reading `params` (or `param(name)`) after the device copy changed (an optimizer step)
 *   downloads it first, into the same Tensor; a reference kept across device work is stale
 *   until the next access, so take `model.params` again after training;
 * - writing the host mirror and then calling markParamsChanged() (which every writer calls:
 *   loading, growth, initialize) uploads it: that call is what makes a write visible;
 * - `grads` / `grad(name)` download the device gradients when a backward or zeroGrad changed
 *   them; they are a read-only snapshot (writes to them are not uploaded).
 * On the CPU the mirrors are the buffers themselves and nothing is copied.
 * Logits terms (distillation, LwF) run on either: a BackendLogitsTerm gets the device's
 * buffers, a host-form one copies (see LogitsTerm). An attached FiLM-Ensemble moves to the
 * model's device and keeps its own mirrors the same way (src/probabilistic/film.ts); dropout
 * masks are drawn on the device (rngDropout, the CPU's bits) from row offsets computed on the
 * host and uploaded per site.
 *
 * Checked against a float64 PyTorch reference (tools/torch_llama.py) in test/model/.
 */
import { type Buffers, type Device, parseDevice } from "../device.js";
import { GrowlmError } from "../errors.js";
import { binding } from "../native.js";
import type { FilmEnsemble } from "../probabilistic/film.js";
import { type DropoutDraw, samplingDropoutDraw, trainingDropoutDraw, trainingDropoutElements } from "../probabilistic/mc-dropout.js";
import { Tensor } from "../tensor.js";
import type { RandomStream } from "../train/random.js";
import { type LlamaConfig, headDim } from "./config.js";
import { type ModelBackend, BufferSet, backendFor } from "./backend.js";
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
  /** "cpu" (default), "cuda" (= "cuda:0") or "cuda:N": where parameters, activations and kernels are. */
  device?: string;
}

export interface ForwardOptions {
  /** int32 [B, T] targets with Hugging Face semantics (shifted inside); -100 is ignored. */
  labels?: Tensor;
  /** int32 [B, T] positions (default 0..T-1 in every row). */
  positions?: Tensor;
  /** Return the float32 [B, T, V] logits (costs B·T·V·4 bytes); [B, K, T, V] for K > 1 members. */
  returnLogits?: boolean;
  /**
   * MC dropout only: each row's key for its dropout masks (default: the row's index). Pass
   * each example's index in its dataset to make sampled scores independent of batching.
   */
  sampleKeys?: readonly number[];
}

export interface ForwardResult {
  /** Mean NLL over counted positions (NaN when none is counted or no labels were given). */
  loss: number;
  /** Sum of the NLLs (float64) and the number of counted positions. */
  lossSum: number;
  count: number;
  /**
   * float32 [B, T]: at t, −log p(labels[t+1] | tokens ≤ t), 0 where ignored and at t = T−1.
   * Present when labels were given. With K > 1 members, p is the members' averaged
   * probability p̄ = (1/K) Σ_k p_k (while loss, lossSum are the mean over members of each
   * member's NLL, the ensemble's training objective).
   */
  tokenLosses?: Tensor<"float32">;
  /** K > 1 members only: float32 [B, K, T], each member's −log p_k(labels[t+1] | tokens ≤ t). */
  memberTokenLosses?: Tensor<"float32">;
  /** Members the forward ran (1: a plain model). */
  members: number;
  logits?: Tensor<"float32">;
}

/**
 * An extra term of the objective that depends on the logits (a distillation loss): called for
 * each chunk of rows the head computes, with the chunk's float32 logits [rows, V] (read only;
 * rows rowStart .. rowStart + rows − 1 of the flattened [B·T] positions) and a float32 [rows, V]
 * buffer of zeros, into which it writes ∂term/∂logits. The model adds that to the
 * cross-entropy's logit gradient before the head's backward. Only for the plain model: a FiLM
 * ensemble's training rows are its members' replicas, which a term does not know.
 *
 * Two forms. A function (HostLogitsTerm) gets host arrays: on the CPU the model's own buffers
 * (nothing copied), on a CUDA device copies (the chunk's logits downloaded, the gradient
 * uploaded after the call). A BackendLogitsTerm gets the model's backend buffers themselves
 * (device buffers on a GPU, the same host arrays on the CPU) with the backend, whose kernels
 * (backend.ops) it runs on them: nothing crosses to the host.
 */
export type LogitsTerm = HostLogitsTerm | BackendLogitsTerm;

/** A LogitsTerm on host arrays. */
export type HostLogitsTerm = (rowStart: number, rows: number, logits: Float32Array, grad: Float32Array) => void;

/** A LogitsTerm on the model's backend buffers (see LogitsTerm). */
export interface BackendLogitsTerm {
  /** Work it queues on the backend's stream runs before the model reads `grad`. */
  onBackend(rowStart: number, rows: number, logits: Buffers["f32"], grad: Buffers["f32"], backend: ModelBackend<Buffers>): void;
}

export interface BackwardOptions {
  /**
   * Weight of each counted token's NLL in the differentiated objective: grads += ∂(lossWeight ·
   * Σ NLL)/∂θ. Default 1 / count (the mean of this batch); a trainer accumulating several
   * micro-batches passes 1 / (tokens counted in all of them).
   */
  lossWeight?: number;
  /** An extra logits term differentiated with the loss (see LogitsTerm). */
  logitsTerm?: LogitsTerm;
  /**
   * Called during the backward each time the gradients of some parameters (Hugging Face names)
   * are final for this backward, from the head and final norm through the layers, last first,
   * to the embedding: data-parallel training starts all-reducing them while the backward goes
   * on (src/train/data-parallel.ts). A FiLM-Ensemble's own parameters are not reported.
   */
  onGradientsFinal?: (names: readonly string[]) => void;
}

type F32 = Buffers["f32"];
type BF16 = Buffers["bf16"];
type I32 = Buffers["i32"];
type I64 = Buffers["i64"];

/** One layer's saved activations (all [B·T, ·] row-major). */
interface LayerActs {
  h1: F32; rstd1: F32; q: F32; k: F32; v: F32; att: F32; lse: F32;
  mid: F32; h2: F32; rstd2: F32; gate: F32; up: F32; act: F32;
  /** bf16 copies of the matrix-product inputs (bf16 mode only). */
  h1b: BF16 | null; attb: BF16 | null; h2b: BF16 | null; actb: BF16 | null;
}

/** Backend buffers and host tensors owned together and freed together. */
class NativeBuffers extends BufferSet<Buffers> {
  readonly #tensors: Tensor[] = [];

  /** Takes `t` into the set (freed by dispose()). */
  protected own<D extends "float32" | "bfloat16" | "int32">(t: Tensor<D>): Tensor<D> {
    this.#tensors.push(t);
    return t;
  }

  override dispose(): void {
    super.dispose();
    for (const t of this.#tensors) t.dispose();
  }
}

/** Every buffer of one (B, T) shape; reused across steps of that shape. */
class Workspace extends NativeBuffers {
  readonly residual: F32[]; // L + 1 residual-stream states [BT, C]
  readonly layers: LayerActs[]; // L sets, or 1 when recomputing
  readonly hf: F32; readonly rstdf: F32; readonly hfb: BF16 | null;
  /** The default positions (0..T-1 in every row) on the backend. */
  readonly positions: I32;
  /** Device scratch for what each forward uploads (ids, caller positions, targets, a dropout site's row offsets; unused on the CPU). */
  readonly idsIn: I32; readonly positionsIn: I32; readonly targetsIn: I32; readonly dropoutOffsetsIn: I64;
  /** Host targets: row (b, t) predicts targetsHost[b·T + t]. */
  readonly targetsHost: Int32Array;
  /** The kernels' token losses [B·T] (tokenLosses' own memory on the CPU). */
  readonly tokenLossesOut: F32;
  readonly tokenLosses: Tensor<"float32">;
  readonly headLogits: F32; readonly headLse: F32; readonly headLogitsB: BF16 | null;
  // backward scratch
  readonly dres: F32; readonly dtmp: F32; readonly dq: F32; readonly dk: F32; readonly dv: F32;
  readonly dgate: F32; readonly dup: F32; readonly dact: F32;
  /** The dropped gradient of a residual branch (dropout only). */
  readonly ddrop: F32 | null;
  /** K > 1 members: the mixture's token losses [B / K, T]. */
  readonly mixtureLosses: Tensor<"float32"> | null;
  readonly dresB: BF16 | null; readonly dqB: BF16 | null; readonly dkB: BF16 | null; readonly dvB: BF16 | null;
  readonly dgateB: BF16 | null; readonly dupB: BF16 | null;

  constructor(
    backend: ModelBackend<Buffers>, readonly B: number, readonly T: number, config: LlamaConfig, recompute: boolean, bf16: boolean,
    readonly headRows: number, readonly members: number, readonly dropout: boolean,
  ) {
    super(backend);
    const N = B * T;
    const C = config.hidden_size;
    const I = config.intermediate_size;
    const H = config.num_attention_heads;
    const kvC = config.num_key_value_heads * headDim(config);
    const f = (n: number): F32 => this.alloc(n, "f32");
    const b = (n: number): BF16 | null => (bf16 ? this.alloc(n, "bf16") : null);
    this.residual = Array.from({ length: config.num_hidden_layers + 1 }, () => f(N * C));
    this.layers = Array.from({ length: recompute ? 1 : config.num_hidden_layers }, () => ({
      h1: f(N * C), rstd1: f(N), q: f(N * C), k: f(N * kvC), v: f(N * kvC), att: f(N * C), lse: f(B * H * T),
      mid: f(N * C), h2: f(N * C), rstd2: f(N), gate: f(N * I), up: f(N * I), act: f(N * I),
      h1b: b(N * C), attb: b(N * C), h2b: b(N * C), actb: b(N * I),
    }));
    this.hf = f(N * C);
    this.rstdf = f(N);
    this.hfb = b(N * C);
    this.positions = this.alloc(N, "i32");
    backend.upload(this.positions, Int32Array.from({ length: N }, (_, i) => i % T));
    const onDevice = backend.device !== "cpu";
    this.idsIn = this.alloc(onDevice ? N : 1, "i32");
    this.positionsIn = this.alloc(onDevice ? N : 1, "i32");
    this.targetsIn = this.alloc(onDevice ? N : 1, "i32");
    this.dropoutOffsetsIn = this.alloc(onDevice && dropout ? N : 1, "i64");
    this.targetsHost = new Int32Array(N);
    this.tokenLosses = this.own(Tensor.empty([B, T]));
    this.tokenLossesOut = backend.output(this.tokenLosses.data, () => f(N), "f32");
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
    this.ddrop = dropout ? f(N * C) : null;
    this.mixtureLosses = members > 1 ? this.own(Tensor.empty([B / members, T])) : null;
    this.dresB = b(N * C);
    this.dqB = b(N * C);
    this.dkB = b(N * kvC);
    this.dvB = b(N * kvC);
    this.dgateB = b(N * I);
    this.dupB = b(N * I);
  }

}

/**
 * Token rows up to which forwardCached fuses the products sharing an input (q, k, v; gate,
 * up) into one over their adjacent weights: the native few-row product's limit on AVX-512,
 * where a product streams its weights once and costs one pool job, so fusing saves two jobs
 * and two passes over the input per layer, and the copies out of the fused rows (one
 * copyRows per part) are tiny. (On AVX2 the few-row product stops at 8 rows; past it the
 * fused product is one packed product instead of two or three.)
 */
const FUSED_ROWS = 32;

/**
 * Buffers of forwardCached for up to `capacity` new tokens (rows × new tokens per row), grown
 * on demand and reused across calls (a prefill, then single-token steps).
 */
class DecodeWorkspace extends NativeBuffers {
  readonly x: F32; readonly h: F32; readonly rstd: F32; readonly q: F32; readonly k: F32; readonly v: F32;
  readonly att: F32; readonly mid: F32; readonly gate: F32; readonly up: F32; readonly act: F32;
  readonly hb: BF16 | null; readonly attb: BF16 | null; readonly actb: BF16 | null;
  readonly positions: Int32Array;
  /** Device scratch for the uploaded ids, positions, key begins and a dropout site's row offsets (unused on the CPU). */
  readonly idsIn: I32; readonly positionsIn: I32; readonly keyBeginIn: I32; readonly dropoutOffsetsIn: I64;
  /** [FUSED_ROWS, C + 2·kvC] and [FUSED_ROWS, 2·I]: the fused products of a decoding step. */
  readonly qkv: F32; readonly gateUp: F32;

  constructor(backend: ModelBackend<Buffers>, readonly capacity: number, config: LlamaConfig, bf16: boolean) {
    super(backend);
    const N = capacity;
    const C = config.hidden_size;
    const I = config.intermediate_size;
    const kvC = config.num_key_value_heads * headDim(config);
    const f = (n: number): F32 => this.alloc(n, "f32");
    const b = (n: number): BF16 | null => (bf16 ? this.alloc(n, "bf16") : null);
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
    this.positions = new Int32Array(N);
    const onDevice = backend.device !== "cpu";
    this.idsIn = this.alloc(onDevice ? N : 1, "i32");
    this.positionsIn = this.alloc(onDevice ? N : 1, "i32");
    this.keyBeginIn = this.alloc(onDevice ? N : 1, "i32");
    this.dropoutOffsetsIn = this.alloc(onDevice ? N : 1, "i64");
    this.qkv = f(FUSED_ROWS * (C + 2 * kvC));
    this.gateUp = f(FUSED_ROWS * 2 * I);
  }

}


/** Each of the B rows of T values repeated K times in place: row b·K + k is row b (repeat_interleave). */
function replicateRows(data: Int32Array, B: number, T: number, K: number): Int32Array {
  const out = new Int32Array(B * K * T);
  for (let b = 0; b < B; b++) {
    const row = data.subarray(b * T, (b + 1) * T);
    for (let k = 0; k < K; k++) out.set(row, (b * K + k) * T);
  }
  return out;
}

/**
 * The NLL of the members' averaged probability from each member's NLL:
 * −log((1/K) Σ_k exp(−nll_k)), per token, in float64 (0 stays 0: ignored positions).
 * @param member float32 [B, K, T]
 * @param out float32 [B, T]
 */
function mixtureTokenLosses(member: Float32Array, B: number, K: number, T: number, out: Tensor<"float32">): Tensor<"float32"> {
  const data = out.data;
  const logK = Math.log(K);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      let min = Infinity;
      for (let k = 0; k < K; k++) min = Math.min(min, member[(b * K + k) * T + t]!);
      let sum = 0;
      for (let k = 0; k < K; k++) sum += Math.exp(min - member[(b * K + k) * T + t]!);
      data[b * T + t] = min - Math.log(sum) + logK;
    }
  }
  return out;
}

/**
 * log p̄ of each row from its K members' logits: log((1/K) Σ_k softmax(z_k)), in float64 per
 * element (log-sum-exp over the vocabulary per member, then over the members).
 * @param memberLogits float32 [rows, K, V]
 * @param out float32 [rows, V]
 */
function logMeanSoftmax(memberLogits: Float32Array, rows: number, K: number, V: number, out: Float32Array): void {
  const lse = new Float64Array(K);
  const logK = Math.log(K);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < K; k++) {
      const z = memberLogits.subarray((r * K + k) * V, (r * K + k + 1) * V);
      let max = -Infinity;
      for (let v = 0; v < V; v++) if (z[v]! > max) max = z[v]!;
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp(z[v]! - max);
      lse[k] = max + Math.log(sum);
    }
    for (let v = 0; v < V; v++) {
      let max = -Infinity;
      for (let k = 0; k < K; k++) max = Math.max(max, memberLogits[(r * K + k) * V + v]! - lse[k]!);
      let sum = 0;
      for (let k = 0; k < K; k++) sum += Math.exp(memberLogits[(r * K + k) * V + v]! - lse[k]! - max);
      out[r * V + v] = max === -Infinity ? -Infinity : max + Math.log(sum) - logK;
    }
  }
}

/** The model's parameter, gradient and bf16 buffers on its backend (the optimizer updates them in place). */
export interface ModelState {
  backend: ModelBackend<Buffers>;
  /** float32 [numel] master parameters. */
  params: Buffers["f32"];
  /** float32 [numel] gradients. */
  grads: Buffers["f32"];
  /** bf16 [numel] working copy (bf16 matmul mode only). */
  paramsBf16: Buffers["bf16"] | null;
}

export class LlamaModel {
  readonly layout: ParamLayout;
  readonly device: Device;
  readonly recompute: boolean;
  readonly matmul: MatmulPrecision;
  readonly headChunkRows: number;
  readonly #backend: ModelBackend<Buffers>;
  /** The device copies of parameters, gradients and bf16 weights (empty on the CPU, where the host tensors are them). */
  readonly #memory: BufferSet<Buffers>;
  readonly #state: ModelState;
  /** Host tensors: the buffers themselves on the CPU, mirrors on a device (see the module comment). */
  readonly #hostParams: Tensor<"float32">;
  #hostGrads: Tensor<"float32"> | null;
  #hostParamsBf16: Tensor<"bfloat16"> | null;
  /** The device copy changed since the host mirror was last downloaded. */
  #paramsMirrorStale = false;
  #gradsMirrorStale = false;
  /** Kernel views of each parameter (weights, master params, grads) by name, made once. */
  readonly #views = new Map<string, { w: F32 | BF16; p: F32; g: F32 }>();
  #bf16Stale = true;
  #workspace: Workspace | null = null;
  /** forwardCached's head logits on a device [rows, V], grown on demand. */
  #decodeLogits: { memory: BufferSet<Buffers>; buffer: F32; length: number } | null = null;
  /**
   * The gradient buffer [headChunkRows, V] of a LogitsTerm on the backend, allocated on first
   * use, and (a host-form term on a device) the host copies of the chunk's logits and gradient.
   */
  #termGrad: { memory: BufferSet<Buffers>; buffer: F32; length: number; host: { logits: Float32Array; grad: Float32Array } | null } | null = null;
  #decode: DecodeWorkspace | null = null;
  /**
   * What the last forward with labels saved for backward; null when there is nothing to
   * differentiate. B counts the rows run (members included); count the logical tokens.
   */
  #pending: {
    ids: I32; positions: I32; targets: I32; B: number; T: number; count: number; headDone: boolean; version: number;
    members: number; dropout: DropoutDraw | null;
  } | null = null;
  /** Counts markParamsChanged() and setBranchScale() calls: a backward must see the parameters its forward saw. */
  #version = 0;
  /** Per layer, the factor on its two residual branches (1 everywhere unless setBranchScale changed it). */
  readonly #branchScales: Float64Array;
  #film: FilmEnsemble | null = null;
  #dropoutP = 0;
  #dropoutStream: RandomStream | null = null;
  #mcDropout: { samples: number; seed: number } | null = null;
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
    this.device = parseDevice(options.device ?? "cpu");
    this.#backend = backendFor(this.device);
    this.#memory = new BufferSet(this.#backend);
    const n = this.layout.numel;
    const bf16 = this.matmul === "bfloat16";
    this.#hostParams = Tensor.zeros([n]);
    this.#branchScales = new Float64Array(config.num_hidden_layers).fill(1);
    if (this.device === "cpu") {
      this.#hostGrads = Tensor.zeros([n]);
      this.#hostParamsBf16 = bf16 ? Tensor.zeros([n], "bfloat16") : null;
      this.#state = { backend: this.#backend, params: this.#hostParams.data, grads: this.#hostGrads.data, paramsBf16: this.#hostParamsBf16?.data ?? null };
    } else {
      this.#hostGrads = null;
      this.#hostParamsBf16 = null;
      this.#state = { backend: this.#backend, params: this.#memory.zeros(n, "f32"), grads: this.#memory.zeros(n, "f32"), paramsBf16: bf16 ? this.#memory.zeros(n, "bf16") : null };
    }
  }

  /**
   * float32 master parameters, flat, in `layout`: on a CUDA device a host mirror, downloaded
   * here when the device copy changed since (write it, then call markParamsChanged()).
   */
  get params(): Tensor<"float32"> {
    this.#checkAlive();
    if (this.#paramsMirrorStale) {
      this.#backend.download(this.#hostParams.data, this.#state.params);
      this.#paramsMirrorStale = false;
    }
    return this.#hostParams;
  }

  /**
   * float32 gradients, flat, in `layout`; backward accumulates (+=). On a CUDA device a
   * read-only host snapshot, downloaded here when a backward or zeroGrad changed them.
   */
  get grads(): Tensor<"float32"> {
    this.#checkAlive();
    if (!this.#hostGrads) {
      this.#hostGrads = Tensor.empty([this.layout.numel]);
      this.#gradsMirrorStale = true;
    }
    if (this.#gradsMirrorStale) {
      this.#backend.download(this.#hostGrads.data, this.#state.grads);
      this.#gradsMirrorStale = false;
    }
    return this.#hostGrads;
  }

  /** bf16 working copy of the parameters (bf16 matmul mode only); on a CUDA device a host copy made here. */
  get paramsBf16(): Tensor<"bfloat16"> | null {
    this.#checkAlive();
    const device = this.#state.paramsBf16;
    if (device === null || this.device === "cpu") return this.#hostParamsBf16;
    this.#hostParamsBf16 ??= Tensor.empty([this.layout.numel], "bfloat16");
    this.#backend.download(this.#hostParamsBf16.data, device);
    return this.#hostParamsBf16;
  }

  /** The parameters, gradients and bf16 copy on the model's device, for an optimizer that updates them in place. */
  get state(): ModelState {
    this.#checkAlive();
    return this.#state;
  }

  /** The view of parameter `name` (Hugging Face name) in the flat buffer (of the host mirror on a device). */
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
    const data = this.#hostParams.data;
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

  /**
   * Call after writing `params` (the host tensor) directly: loading, growth, initialisation.
   * On a CUDA device this uploads it.
   */
  markParamsChanged(): void {
    this.#checkAlive();
    if (this.device !== "cpu") {
      this.#backend.upload(this.#state.params, this.#hostParams.data);
      this.#paramsMirrorStale = false;
    }
    this.#bf16Stale = true;
    this.#version++;
  }

  /**
   * Tell the model that an optimizer updated `state.params` in place on its device, and
   * `state.paramsBf16` with them when `bf16Written` (fused AdamW does).
   */
  markParamsUpdated(bf16Written: boolean): void {
    this.#checkAlive();
    if (this.device !== "cpu") this.#paramsMirrorStale = true;
    this.#bf16Stale = !bf16Written;
    this.#version++;
  }

  /**
   * Tell the model that something besides its backward (an EWC penalty, src/continual/ewc.ts)
   * added into `state.grads` on its device: the host mirror `grads` downloads them again.
   */
  markGradsChanged(): void {
    this.#checkAlive();
    this.#gradsMirrorStale = this.device !== "cpu";
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

  /** The attached FiLM-Ensemble (null: a plain model). */
  get film(): FilmEnsemble | null {
    return this.#film;
  }

  /**
   * Makes the model a FiLM-Ensemble of film.ensembleSize members (see the module comment), or
   * plain again with null. The model owns the ensemble from then on (dispose() frees it; a
   * replaced one is disposed). A forward waiting for its backward is invalidated.
   */
  attachFilm(film: FilmEnsemble | null): void {
    this.#checkAlive();
    if (film !== null) {
      if (this.#mcDropout) throw new GrowlmError("LlamaModel.attachFilm", "MC dropout is on: an ensemble is either FiLM members or dropout samples (setMcDropout(null) first)");
      const sites = 2 * this.config.num_hidden_layers + 1;
      if (film.hiddenSize !== this.config.hidden_size || film.sites.length !== sites) {
        throw new GrowlmError("LlamaModel.attachFilm", `the ensemble has ${film.sites.length} sites of ${film.hiddenSize} channels but the model needs ${sites} of ${this.config.hidden_size}`);
      }
      film.placeOn(this.#backend);
    }
    if (this.#film !== film) this.#film?.dispose();
    this.#film = film;
    this.#version++;
  }

  /** The dropout probability of training forwards (0: none). */
  get dropout(): number {
    return this.#dropoutP;
  }

  /**
   * Dropout with probability p on every attention and MLP output (src/probabilistic/
   * mc-dropout.ts): in training forwards (forwardBackward) with masks from `stream` (the
   * trainer's RandomStream, which each forward advances), and in inference forwards when
   * setMcDropout is on. p = 0 turns it off.
   */
  setDropout(p: number, stream: RandomStream | null = null): void {
    this.#checkAlive();
    if (!(p >= 0 && Math.fround(p) < 1)) throw new GrowlmError("LlamaModel.setDropout", `the dropout probability must be in [0, 1) but is ${p}`);
    this.#dropoutP = p;
    this.#dropoutStream = stream;
    this.#version++;
  }

  /** MC dropout at inference: samples per row and the masks' Philox key (null: off). */
  get mcDropout(): { samples: number; seed: number } | null {
    return this.#mcDropout;
  }

  /**
   * MC dropout: inference forwards (forward() and forwardCached()) run `samples` dropout
   * samples of every row with the dropout probability of setDropout, keyed by `seed`, and
   * average their probabilities. null turns it off.
   */
  setMcDropout(options: { samples: number; seed?: number } | null): void {
    this.#checkAlive();
    const op = "LlamaModel.setMcDropout";
    if (options !== null) {
      if (this.#film) throw new GrowlmError(op, "a FiLM-Ensemble is attached: an ensemble is either FiLM members or dropout samples");
      if (!Number.isSafeInteger(options.samples) || options.samples < 1) throw new GrowlmError(op, `mc_samples must be a positive integer but is ${options.samples}`);
      const seed = options.seed ?? 0;
      if (!Number.isSafeInteger(seed) || seed < 0) throw new GrowlmError(op, `the seed must be an integer >= 0 but is ${seed}`);
      this.#mcDropout = { samples: options.samples, seed };
    } else {
      this.#mcDropout = null;
    }
    this.#version++;
  }

  /** Members an inference forward (forward(), forwardCached()) runs per row: M, S or 1. */
  get inferenceMembers(): number {
    if (this.#film) return this.#film.ensembleSize;
    return this.#mcDropout && this.#dropoutP > 0 ? this.#mcDropout.samples : 1;
  }

  zeroGrad(): void {
    this.#checkAlive();
    this.#backend.zero(this.#state.grads);
    this.#gradsMirrorStale = this.device !== "cpu";
    this.#film?.zeroGrad();
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
    this.#head(ws, pending.B * pending.T, pending.targets, weight / pending.members, null, options.logitsTerm);
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
   *
   * An ensemble of K = inferenceMembers members (FiLM-Ensemble, MC dropout) needs a cache of
   * K members (new KvCache(config, rows, capacity, rows, K)); it runs every row once per
   * member and returns log p̄, the log of the members' averaged next-token probabilities
   * (a valid logits vector: softmax(log p̄) = p̄), so greedy search, sampling and beam search
   * decode the ensemble's token distribution at every step.
   * @param ids int32 [rows, T] token ids in [0, vocab_size)
   * @param cache a KvCache on the model's device
   * @param out optional float32 [rows, vocab_size] output
   * @returns float32 [rows, vocab_size] logits
   */
  forwardCached(ids: Tensor, cache: KvCache, out?: Tensor): Tensor<"float32"> {
    this.#checkAlive();
    const op = "LlamaModel.forwardCached";
    const { data: logicalIds, B: rows, T } = this.#ids(op, ids, "ids");
    const cfg = this.config;
    const V = cfg.vocab_size;
    const C = cfg.hidden_size;
    const I = cfg.intermediate_size;
    const H = cfg.num_attention_heads;
    const Hkv = cfg.num_key_value_heads;
    const D = headDim(cfg);
    const kvC = Hkv * D;
    const K = this.inferenceMembers;
    if (cache.numLayers !== cfg.num_hidden_layers || cache.numKvHeads !== Hkv || cache.headDim !== D) {
      throw new GrowlmError(op, `the cache holds ${cache.numLayers} layers of ${cache.numKvHeads} kv heads of size ${cache.headDim} but the model has ${cfg.num_hidden_layers} of ${Hkv} of size ${D}`);
    }
    if (cache.device !== this.device) throw new GrowlmError(op, `the cache is on "${cache.device}" but the model on "${this.device}"`);
    if (cache.members !== K) throw new GrowlmError(op, `the cache keeps ${cache.members} member(s) per row but the model runs ${K} (inferenceMembers)`);
    if (rows !== cache.rows) throw new GrowlmError(op, `"ids" has ${rows} rows but the cache has ${cache.rows} in use`);
    const start = cache.length;
    if (start + T > cache.capacity) throw new GrowlmError(op, `${T} new tokens after ${start} exceed the cache's ${cache.capacity} slots`);
    for (let i = 0; i < logicalIds.length; i++) {
      const id = logicalIds[i]!;
      if (id < 0 || id >= V) throw new GrowlmError(op, `"ids" holds ${id} at flat index ${i}, outside [0, ${V})`);
    }
    const logits = out ?? Tensor.empty([rows, V]);
    if (logits.dtype !== "float32" || logits.ndim !== 2 || logits.shape[0] !== rows || logits.shape[1] !== V) {
      throw new GrowlmError(op, `expected "out" float32 [${rows}, ${V}] but received ${logits.dtype} [${logits.shape.join(", ")}]`);
    }
    // Storage row b·K + k is member k of row b.
    const B = rows * K;
    const N = B * T;
    if (!this.#decode || this.#decode.capacity < N) {
      this.#decode?.dispose();
      this.#decode = new DecodeWorkspace(this.#backend, Math.max(N, this.#decode?.capacity ?? 0), cfg, this.#state.paramsBf16 !== null);
    }
    const ws = this.#decode;
    const backend = this.#backend;
    const idData = backend.input(K === 1 ? logicalIds : replicateRows(logicalIds, rows, T, K), () => ws.idsIn, "i32");
    const logicalBegin = cache.keyBegin.data as Int32Array;
    const keyBeginHost = K === 1 ? logicalBegin : Int32Array.from({ length: B }, (_, r) => logicalBegin[Math.floor(r / K)]!);
    const hostPositions = ws.positions.subarray(0, N);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const position = start + t - keyBeginHost[b]!;
        if (position >= cfg.max_position_embeddings) {
          throw new GrowlmError(op, `row ${Math.floor(b / K)} reaches position ${position}, beyond max_position_embeddings = ${cfg.max_position_embeddings}`);
        }
        hostPositions[b * T + t] = Math.max(0, position);
      }
    }
    const positions = backend.input(hostPositions, () => ws.positionsIn, "i32");
    const keyBegin = backend.input(keyBeginHost, () => ws.keyBeginIn, "i32");
    const dropout =
      this.#mcDropout && this.#dropoutP > 0
        ? samplingDropoutDraw(this.#dropoutP, this.#mcDropout.seed, Array.from(cache.sampleKeys), K, T, hostPositions, 2 * cfg.num_hidden_layers, cfg.max_position_embeddings, C)
        : null;
    this.#refreshBf16();
    const sub = <A extends F32 | BF16>(a: A, n: number, kind: "f32" | "bf16"): A => backend.view(a as Buffers[typeof kind], 0, n, kind) as A;
    const f = (a: F32, n: number): F32 => sub(a, n, "f32");
    const x = f(ws.x, N * C);
    const h = f(ws.h, N * C);
    const rstd = f(ws.rstd, N);
    const q = f(ws.q, N * C);
    const k = f(ws.k, N * kvC);
    const v = f(ws.v, N * kvC);
    const att = f(ws.att, N * C);
    const mid = f(ws.mid, N * C);
    const gate = f(ws.gate, N * I);
    const up = f(ws.up, N * I);
    const act = f(ws.act, N * I);
    const hb = ws.hb && sub(ws.hb, N * C, "bf16");
    const attb = ws.attb && sub(ws.attb, N * C, "bf16");
    const actb = ws.actb && sub(ws.actb, N * I, "bf16");
    const span = cache.capacity * kvC;
    const ops = this.#ops;
    // The fused products serve the CPU's few-row GEMM; on a device each row copy would be a transfer of its own.
    const fuse = N <= FUSED_ROWS && this.device === "cpu";
    ops.embeddingForward(x, idData, this.#p("model.embed_tokens.weight"), N, V, C);
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      this.#normForward(2 * l, h, rstd, x, layerParamName(l, "input_layernorm"), N, T);
      const h1 = this.#operand(h, hb, N * C);
      const qkvWeight = fuse ? this.#adjacentWeights(l, ["q_proj", "k_proj", "v_proj"]) : null;
      if (qkvWeight) {
        // Each element gets the same operations as in three products: same bits.
        const W = C + 2 * kvC;
        this.#gemm(false, true, N, W, C, h1, qkvWeight, 0, ws.qkv);
        backend.copyRows(q, ws.qkv, N, C, C, W, "f32");
        backend.copyRows(k, backend.view(ws.qkv, C, N * W - C, "f32"), N, kvC, kvC, W, "f32");
        backend.copyRows(v, backend.view(ws.qkv, C + kvC, N * W - C - kvC, "f32"), N, kvC, kvC, W, "f32");
      } else {
        this.#gemm(false, true, N, C, C, h1, this.#lw(l, "q_proj"), 0, q);
        this.#gemm(false, true, N, kvC, C, h1, this.#lw(l, "k_proj"), 0, k);
        this.#gemm(false, true, N, kvC, C, h1, this.#lw(l, "v_proj"), 0, v);
      }
      ops.ropeForward(q, q, positions, B, T, H, D, cfg.rope_theta);
      ops.ropeForward(k, k, positions, B, T, Hkv, D, cfg.rope_theta);
      const keys = cache.keyBuffer(l);
      const values = cache.valueBuffer(l);
      const slots = B * span - start * kvC;
      backend.copyRows(backend.view(keys, start * kvC, slots, "f32"), k, B, T * kvC, span, T * kvC, "f32");
      backend.copyRows(backend.view(values, start * kvC, slots, "f32"), v, B, T * kvC, span, T * kvC, "f32");
      ops.attentionCachedForward(att, q, keys, values, keyBegin, B, T, start + T, cache.capacity, H, Hkv, D, 1 / Math.sqrt(D));
      const scale = this.#branchScales[l]!;
      this.#gemm(false, true, N, C, C, this.#operand(att, attb, N * C), this.#lw(l, "o_proj"), 0, mid, scale);
      if (dropout) this.#dropout(mid, mid, N, dropout, 2 * l, () => ws.dropoutOffsetsIn);
      ops.add(mid, mid, x, N * C);
      this.#normForward(2 * l + 1, h, rstd, mid, layerParamName(l, "post_attention_layernorm"), N, T);
      const h2 = this.#operand(h, hb, N * C);
      const gateUpWeight = fuse ? this.#adjacentWeights(l, ["gate_proj", "up_proj"]) : null;
      if (gateUpWeight) {
        this.#gemm(false, true, N, 2 * I, C, h2, gateUpWeight, 0, ws.gateUp);
        backend.copyRows(gate, ws.gateUp, N, I, I, 2 * I, "f32");
        backend.copyRows(up, backend.view(ws.gateUp, I, 2 * N * I - I, "f32"), N, I, I, 2 * I, "f32");
      } else {
        this.#gemm(false, true, N, I, C, h2, this.#lw(l, "gate_proj"), 0, gate);
        this.#gemm(false, true, N, I, C, h2, this.#lw(l, "up_proj"), 0, up);
      }
      ops.swigluForward(act, gate, up, N * I);
      this.#gemm(false, true, N, C, I, this.#operand(act, actb, N * I), this.#lw(l, "down_proj"), 0, x, scale);
      if (dropout) this.#dropout(x, x, N, dropout, 2 * l + 1, () => ws.dropoutOffsetsIn);
      ops.add(x, x, mid, N * C);
    }
    cache.length = start + T;
    // The head on each row's last token only.
    const last = f(ws.mid, B * C);
    backend.copyRows(last, backend.view(x, (T - 1) * C, B * T * C - (T - 1) * C, "f32"), B, C, C, T * C, "f32");
    const hf = f(ws.h, B * C);
    this.#normForward(2 * cfg.num_hidden_layers, hf, f(ws.rstd, B), last, "model.norm.weight", B, 1);
    const hfOperand = this.#operand(hf, hb && sub(hb, B * C, "bf16"), B * C);
    if (K === 1) {
      const head = backend.output(logits.data as Float32Array, () => this.#decodeLogitsBuffer(B * V), "f32");
      this.#gemm(false, true, B, V, C, hfOperand, this.#w(this.#headName), 0, head);
      backend.download(logits.data as Float32Array, head);
    } else {
      // The members' logits [rows, K, V] come to the host, which averages their probabilities.
      const memberLogits = new Float32Array(B * V);
      const head = backend.output(memberLogits, () => this.#decodeLogitsBuffer(B * V), "f32");
      this.#gemm(false, true, B, V, C, hfOperand, this.#w(this.#headName), 0, head);
      backend.download(memberLogits, head);
      logMeanSoftmax(memberLogits, rows, K, V, logits.data as Float32Array);
    }
    return logits as Tensor<"float32">;
  }

  #checkAlive(): void {
    if (this.#disposed) throw new GrowlmError("LlamaModel", "used after dispose()");
  }

  get #ops(): ModelBackend<Buffers>["ops"] {
    return this.#backend.ops;
  }

  /** Rounds the master weights into the bf16 copy when they changed since (bf16 mode). */
  #refreshBf16(): void {
    const bf16 = this.#state.paramsBf16;
    if (bf16 && this.#bf16Stale) {
      this.#ops.f32ToBf16(bf16, this.#state.params, this.layout.numel);
      this.#bf16Stale = false;
    }
  }

  /**
   * Runs `term` on a head chunk of `rows` rows (of at most `chunkRows`): returns the backend
   * buffer [rows, V] holding its gradient (zeroed before the call).
   */
  #logitsTerm(term: LogitsTerm, rowStart: number, rows: number, logits: F32, chunkRows: number): F32 {
    const backend = this.#backend;
    const n = rows * this.config.vocab_size;
    const length = chunkRows * this.config.vocab_size;
    if (!this.#termGrad || this.#termGrad.length < n) {
      this.#termGrad?.memory.dispose();
      const memory = new BufferSet(backend);
      this.#termGrad = { memory, buffer: memory.alloc(length, "f32"), length, host: null };
    }
    const grad = backend.view(this.#termGrad.buffer, 0, n, "f32");
    if (typeof term !== "function") {
      backend.zero(grad);
      term.onBackend(rowStart, rows, logits, grad, backend);
    } else if (logits instanceof Float32Array && grad instanceof Float32Array) {
      backend.zero(grad);
      term(rowStart, rows, logits, grad);
    } else {
      const size = this.#termGrad.length;
      this.#termGrad.host ??= { logits: new Float32Array(size), grad: new Float32Array(size) };
      const host = { logits: this.#termGrad.host.logits.subarray(0, n), grad: this.#termGrad.host.grad.subarray(0, n) };
      backend.download(host.logits, logits);
      host.grad.fill(0);
      term(rowStart, rows, host.logits, host.grad);
      backend.upload(grad, host.grad);
    }
    return grad;
  }

  /** forwardCached's head output on a device, at least n floats. */
  #decodeLogitsBuffer(n: number): F32 {
    if (!this.#decodeLogits || this.#decodeLogits.length < n) {
      this.#decodeLogits?.memory.dispose();
      const memory = new BufferSet(this.#backend);
      this.#decodeLogits = { memory, buffer: memory.alloc(n, "f32"), length: n };
    }
    return this.#decodeLogits.buffer;
  }

  /** op(A)·op(B) with fp32 or (bf16 mode) bf16 inputs: C [M, N] = alpha·op(A)·op(B) + beta·C. */
  #gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, A: F32 | BF16, B: F32 | BF16, beta: number, C: F32, alpha = 1): void {
    const lda = transA ? M : K;
    const ldb = transB ? K : N;
    if (this.#state.paramsBf16) this.#ops.gemmBf16(transA, transB, M, N, K, alpha, A as BF16, lda, B as BF16, ldb, beta, C, N);
    else this.#ops.sgemm(transA, transB, M, N, K, alpha, A as F32, lda, B as F32, ldb, beta, C, N);
  }

  /** Dropout of site `site` on N rows; its row offsets go through `offsetsIn` (device scratch of at least N) on a device. */
  #dropout(out: F32, inp: F32, N: number, dropout: DropoutDraw, site: number, offsetsIn: () => I64): void {
    const offsets = this.#backend.input(dropout.rowOffsets(site), offsetsIn, "i64");
    this.#ops.rngDropout(out, inp, N, this.config.hidden_size, dropout.p, dropout.seed, offsets);
  }

  #ids(op: string, t: Tensor, name: string): { data: Int32Array; B: number; T: number } {
    if (t.dtype !== "int32" || t.ndim !== 2 || t.shape[0]! < 1 || t.shape[1]! < 1) {
      throw new GrowlmError(op, `expected "${name}" int32 [B, T] with B, T >= 1 but received ${t.dtype} [${t.shape.join(", ")}]`);
    }
    return { data: t.data as Int32Array, B: t.shape[0]!, T: t.shape[1]! };
  }

  /** The buffers of B rows (members included) of T tokens, run by K members, with or without dropout. */
  #workspaceFor(B: number, T: number, K: number, dropout: boolean): Workspace {
    const ws = this.#workspace;
    if (ws && ws.B === B && ws.T === T && ws.members === K && ws.dropout === dropout) return ws;
    ws?.dispose();
    this.#workspace = null;
    const rows = Math.min(this.headChunkRows, B * T);
    this.#workspace = new Workspace(this.#backend, B, T, this.config, this.recompute, this.matmul === "bfloat16", rows, K, dropout);
    return this.#workspace;
  }

  /**
   * The RMSNorm of site `site` (2l, 2l + 1: layer l's two norms; 2L: the final norm) over N
   * rows in runs of `group` rows per sequence, followed by the FiLM members' γ, β when an
   * ensemble is attached.
   */
  #normForward(site: number, out: F32, rstd: F32, inp: F32, weight: string, N: number, group: number): void {
    const eps = this.config.rms_norm_eps;
    const C = this.config.hidden_size;
    const film = this.#film;
    if (!film) {
      this.#ops.rmsnormForward(out, rstd, inp, this.#p(weight), N, C, eps);
      return;
    }
    this.#ops.rmsnormFilmForward(out, rstd, inp, this.#p(weight), film.kernelParam(site, "gamma"), film.kernelParam(site, "beta"), N, C, group, film.ensembleSize, eps);
  }

  /** Backward of #normForward: dinp overwritten; the norm weight's, γ's and β's gradients accumulate. */
  #normBackward(site: number, dinp: F32, dout: F32, inp: F32, weight: string, rstd: F32, N: number, group: number): void {
    const C = this.config.hidden_size;
    const film = this.#film;
    if (!film) {
      this.#ops.rmsnormBackward(dinp, this.#g(weight), dout, inp, this.#p(weight), rstd, N, C);
      return;
    }
    this.#ops.rmsnormFilmBackward(
      dinp, this.#g(weight), film.kernelGrad(site, "gamma"), film.kernelGrad(site, "beta"), dout, inp, this.#p(weight), film.kernelParam(site, "gamma"), rstd,
      N, C, group, film.ensembleSize,
    );
  }

  /** The kernel views of parameter `name`: matrix-product weight (bf16 in bf16 mode), master value, gradient. */
  #viewsOf(name: string): { w: F32 | BF16; p: F32; g: F32 } {
    let views = this.#views.get(name);
    if (!views) {
      const e = this.layout.entry(name);
      const { backend, params, grads, paramsBf16 } = this.#state;
      const p = backend.view(params, e.offset, e.numel, "f32");
      views = { p, g: backend.view(grads, e.offset, e.numel, "f32"), w: paramsBf16 ? backend.view(paramsBf16, e.offset, e.numel, "bf16") : p };
      this.#views.set(name, views);
    }
    return views;
  }

  /** Weight `name` as the matrix-product operand of the current precision. */
  #w(name: string): F32 | BF16 {
    return this.#viewsOf(name).w;
  }

  #p(name: string): F32 {
    return this.#viewsOf(name).p;
  }

  #g(name: string): F32 {
    return this.#viewsOf(name).g;
  }

  #lw(l: number, kind: ModuleKind): F32 | BF16 {
    return this.#w(layerParamName(l, kind));
  }

  /**
   * Layer l's weights `kinds` as one matrix (their rows one after the other) when the
   * layout stores them back to back without alignment padding between them, else null.
   */
  #adjacentWeights(l: number, kinds: readonly ModuleKind[]): F32 | BF16 | null {
    const entries = kinds.map((kind) => this.layout.entry(layerParamName(l, kind)));
    for (let i = 1; i < entries.length; i++) {
      if (entries[i]!.offset !== entries[i - 1]!.offset + entries[i - 1]!.numel) return null;
    }
    const { backend, params, paramsBf16 } = this.#state;
    const first = entries[0]!;
    const last = entries[entries.length - 1]!;
    const n = last.offset + last.numel - first.offset;
    return paramsBf16 ? backend.view(paramsBf16, first.offset, n, "bf16") : backend.view(params, first.offset, n, "f32");
  }

  /** The bf16 copy of `src` when in bf16 mode (written into `dst`), else src itself. */
  #operand(src: F32, dst: BF16 | null, n: number): F32 | BF16 {
    if (!dst) return src;
    this.#ops.f32ToBf16(dst, src, n);
    return dst;
  }

  get #headName(): string {
    return this.config.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  }

  /** @param backward null for a forward only */
  #run(idsTensor: Tensor, options: ForwardOptions, backward: BackwardOptions | null): ForwardResult {
    this.#checkAlive();
    const op = backward === null ? "LlamaModel.forward" : "LlamaModel.forwardBackward";
    const logical = this.#ids(op, idsTensor, "ids");
    const cfg = this.config;
    const V = cfg.vocab_size;
    const T = logical.T;
    if (T > cfg.max_position_embeddings) {
      throw new GrowlmError(op, `sequence length T = ${T} exceeds max_position_embeddings = ${cfg.max_position_embeddings}`);
    }
    for (let i = 0; i < logical.data.length; i++) {
      const id = logical.data[i]!;
      if (id < 0 || id >= V) throw new GrowlmError(op, `"ids" holds ${id} at flat index ${i}, outside [0, ${V})`);
    }
    const labels = options.labels ? this.#ids(op, options.labels, "labels") : null;
    if (labels && (labels.B !== logical.B || labels.T !== T)) {
      throw new GrowlmError(op, `"labels" must have the shape of "ids" [${logical.B}, ${T}] but is [${labels.B}, ${labels.T}]`);
    }
    if (backward !== null && !labels) throw new GrowlmError(op, "labels are required for the backward");
    // K members run every row: rows b·K + k (K = 1: the plain model, nothing replicated).
    const K = backward !== null ? (this.#film?.ensembleSize ?? 1) : this.inferenceMembers;
    if (K > 1 && backward?.logitsTerm) throw new GrowlmError(op, `a logits term needs the plain model, but this one trains a FiLM ensemble of ${K} members`);
    const B = logical.B * K;
    const dropping = this.#dropoutP > 0 && (backward !== null || this.#mcDropout !== null);
    const ws = this.#workspaceFor(B, T, K, dropping);
    const backend = this.#backend;
    const ids = backend.input(K === 1 ? logical.data : replicateRows(logical.data, logical.B, T, K), () => ws.idsIn, "i32");
    let positions = ws.positions;
    let hostPositions: Int32Array | null = null;
    if (options.positions) {
      const p = this.#ids(op, options.positions, "positions");
      if (p.B !== logical.B || p.T !== T) throw new GrowlmError(op, `"positions" must have the shape of "ids" [${logical.B}, ${T}]`);
      hostPositions = K === 1 ? p.data : replicateRows(p.data, logical.B, T, K);
      positions = backend.input(hostPositions, () => ws.positionsIn, "i32");
    }
    const dropout = dropping ? this.#dropoutDraw(op, backward !== null, K, logical.B, T, hostPositions, options.sampleKeys) : null;
    this.#refreshBf16();

    // Targets: row (b, t) predicts labels[b, t + 1] (member rows share their sample's labels).
    let count = 0;
    if (labels) {
      for (let b = 0; b < logical.B; b++) {
        for (let t = 0; t < T; t++) {
          const target = t + 1 < T ? labels.data[b * T + t + 1]! : -100;
          if (target !== -100 && (target < 0 || target >= V)) {
            throw new GrowlmError(op, `"labels" holds ${target} at [${b}, ${t + 1}], neither -100 nor in [0, ${V})`);
          }
          for (let k = 0; k < K; k++) ws.targetsHost[(b * K + k) * T + t] = target;
          if (target !== -100) count++;
        }
      }
    }
    const targets = labels ? backend.input(ws.targetsHost, () => ws.targetsIn, "i32") : null;
    if (dropout && backward !== null) this.#dropoutStream!.offset += trainingDropoutElements(2 * cfg.num_hidden_layers, B * T, cfg.hidden_size);

    const N = B * T;
    const C = cfg.hidden_size;
    this.#ops.embeddingForward(ws.residual[0]!, ids, this.#p("model.embed_tokens.weight"), N, V, C);
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      this.#layerForward(l, ws, this.recompute ? ws.layers[0]! : ws.layers[l]!, positions, dropout);
    }
    this.#normForward(2 * cfg.num_hidden_layers, ws.hf, ws.rstdf, ws.residual[cfg.num_hidden_layers]!, "model.norm.weight", N, T);

    const weight = backward === null ? null : backward.lossWeight ?? 1 / count;
    if (weight !== null && !Number.isFinite(weight)) {
      throw new GrowlmError(op, `the loss weight must be finite but is ${weight}${count === 0 ? " (no label is counted)" : ""}`);
    }
    const logits = options.returnLogits ? Tensor.empty(K === 1 ? [logical.B, T, V] : [logical.B, K, T, V]) : null;
    // Each member's token counts 1/K of its sample's weight: the mean over members.
    const lossSum = this.#head(ws, N, targets, weight === null ? null : weight / K, logits, backward?.logitsTerm) / K;
    this.#pending = targets ? { ids, positions, targets, B, T, count, headDone: weight !== null, version: this.#version, members: K, dropout } : null;
    const result: ForwardResult = { loss: labels ? lossSum / count : Number.NaN, lossSum: labels ? lossSum : Number.NaN, count, members: K };
    if (labels && K === 1) {
      if (this.device === "cpu") result.tokenLosses = ws.tokenLosses;
      else {
        // Downloaded when read (the next forward overwrites them, on the CPU too).
        let downloaded = false;
        Object.defineProperty(result, "tokenLosses", {
          enumerable: true,
          get: (): Tensor<"float32"> => {
            if (!downloaded) backend.download(ws.tokenLosses.data, ws.tokenLossesOut);
            downloaded = true;
            return ws.tokenLosses;
          },
        });
      }
    }
    if (labels && K > 1) {
      backend.download(ws.tokenLosses.data, ws.tokenLossesOut);
      result.memberTokenLosses = ws.tokenLosses.reshape([logical.B, K, T]);
      result.tokenLosses = mixtureTokenLosses(ws.tokenLosses.data, logical.B, K, T, ws.mixtureLosses!);
    }
    if (logits) result.logits = logits;
    return result;
  }

  /**
   * The masks of this forward: a training forward with setDropout's p draws from its stream;
   * an inference forward with MC dropout samples K masks per row keyed by its sample key.
   * @param positions the caller's positions [B·K·T] (null: 0..T-1 in every row)
   */
  #dropoutDraw(
    op: string, training: boolean, K: number, logicalRows: number, T: number, positions: Int32Array | null, sampleKeys: readonly number[] | undefined,
  ): DropoutDraw {
    const p = this.#dropoutP;
    const cfg = this.config;
    if (training) {
      const stream = this.#dropoutStream;
      if (!stream) throw new GrowlmError(op, `dropout ${p} needs a random stream for training: setDropout(p, trainer.rng)`);
      return trainingDropoutDraw(p, stream.seed, stream.offset, logicalRows * K * T, cfg.hidden_size);
    }
    const keys = sampleKeys ?? Array.from({ length: logicalRows }, (_, b) => b);
    if (keys.length !== logicalRows) throw new GrowlmError(op, `"sampleKeys" has ${keys.length} entries for ${logicalRows} rows`);
    const rowPositions = positions ?? Int32Array.from({ length: logicalRows * K * T }, (_, i) => i % T);
    return samplingDropoutDraw(p, this.#mcDropout!.seed, keys, K, T, rowPositions, 2 * cfg.num_hidden_layers, cfg.max_position_embeddings, cfg.hidden_size);
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

  #layerForward(l: number, ws: Workspace, a: LayerActs, positions: I32, dropout: DropoutDraw | null): void {
    const cfg = this.config;
    const { B, T, N, C, I, H, Hkv, D } = this.#layerDims(ws);
    const x = ws.residual[l]!;
    this.#normForward(2 * l, a.h1, a.rstd1, x, layerParamName(l, "input_layernorm"), N, T);
    const h1 = this.#operand(a.h1, a.h1b, N * C);
    this.#gemm(false, true, N, C, C, h1, this.#lw(l, "q_proj"), 0, a.q);
    this.#gemm(false, true, N, Hkv * D, C, h1, this.#lw(l, "k_proj"), 0, a.k);
    this.#gemm(false, true, N, Hkv * D, C, h1, this.#lw(l, "v_proj"), 0, a.v);
    this.#ops.ropeForward(a.q, a.q, positions, B, T, H, D, cfg.rope_theta);
    this.#ops.ropeForward(a.k, a.k, positions, B, T, Hkv, D, cfg.rope_theta);
    this.#ops.attentionForward(a.att, a.lse, a.q, a.k, a.v, B, T, H, Hkv, D, 1 / Math.sqrt(D));
    const att = this.#operand(a.att, a.attb, N * C);
    const scale = this.#branchScales[l]!;
    this.#gemm(false, true, N, C, C, att, this.#lw(l, "o_proj"), 0, a.mid, scale);
    if (dropout) this.#dropout(a.mid, a.mid, N, dropout, 2 * l, () => ws.dropoutOffsetsIn);
    this.#ops.add(a.mid, a.mid, x, N * C);
    this.#normForward(2 * l + 1, a.h2, a.rstd2, a.mid, layerParamName(l, "post_attention_layernorm"), N, T);
    const h2 = this.#operand(a.h2, a.h2b, N * C);
    this.#gemm(false, true, N, I, C, h2, this.#lw(l, "gate_proj"), 0, a.gate);
    this.#gemm(false, true, N, I, C, h2, this.#lw(l, "up_proj"), 0, a.up);
    this.#ops.swigluForward(a.act, a.gate, a.up, N * I);
    const act = this.#operand(a.act, a.actb, N * I);
    const out = ws.residual[l + 1]!;
    this.#gemm(false, true, N, C, I, act, this.#lw(l, "down_proj"), 0, out, scale);
    if (dropout) this.#dropout(out, out, N, dropout, 2 * l + 1, () => ws.dropoutOffsetsIn);
    this.#ops.add(out, out, a.mid, N * C);
  }

  /**
   * Final head in chunks of rows: logits, per-token NLL, and (when `weight` is set) the
   * head's backward: ws.dres = ∂/∂hf, the head weight's gradient accumulated.
   * @returns the summed NLL (float64)
   */
  #head(ws: Workspace, N: number, allTargets: I32 | null, weight: number | null, logitsOut: Tensor | null, term?: LogitsTerm): number {
    const cfg = this.config;
    const V = cfg.vocab_size;
    const C = cfg.hidden_size;
    const backend = this.#backend;
    const f = (b: F32, offset: number, n: number): F32 => backend.view(b, offset, n, "f32");
    const W = this.#w(this.#headName);
    const hf = this.#operand(ws.hf, ws.hfb, N * C);
    const hfRows = (r0: number, rows: number): F32 | BF16 => (ws.hfb ? backend.view(hf as BF16, r0 * C, rows * C, "bf16") : f(hf as F32, r0 * C, rows * C));
    const dW = weight !== null ? this.#g(this.#headName) : null;
    let lossSum = 0;
    for (let r0 = 0; r0 < N; r0 += ws.headRows) {
      const rows = Math.min(ws.headRows, N - r0);
      const logits = f(ws.headLogits, 0, rows * V);
      this.#gemm(false, true, rows, V, C, hfRows(r0, rows), W, 0, logits);
      if (logitsOut) backend.download(logitsOut.data.subarray(r0 * V, (r0 + rows) * V) as Float32Array, logits);
      if (!allTargets) continue;
      const targets = backend.view(allTargets, r0, rows, "i32");
      const lse = f(ws.headLse, 0, rows);
      lossSum += this.#ops.crossEntropyForward(f(ws.tokenLossesOut, r0, rows), lse, logits, targets, rows, V, -100).lossSum;
      if (weight === null || !dW) continue;
      const termGrad = term ? this.#logitsTerm(term, r0, rows, logits, ws.headRows) : null;
      this.#ops.crossEntropyBackward(logits, logits, lse, targets, rows, V, -100, weight);
      if (termGrad) this.#ops.add(logits, logits, termGrad, rows * V);
      const dlogits = this.#operand(logits, ws.headLogitsB ? backend.view(ws.headLogitsB, 0, rows * V, "bf16") : null, rows * V);
      this.#gemm(false, false, rows, C, V, dlogits, W, 0, f(ws.dtmp, r0 * C, rows * C));
      this.#gemm(true, false, V, C, rows, dlogits, hfRows(r0, rows), 1, dW);
    }
    return lossSum;
  }

  /** Backward through the final norm, the layers and the embedding (after the head's backward in #head). */
  #backwardLayers(onGradientsFinal?: (names: readonly string[]) => void): void {
    const pending = this.#pending!;
    const ws = this.#workspace!;
    this.#pending = null;
    const cfg = this.config;
    const { B, T, ids, positions, dropout } = pending;
    const N = B * T;
    const C = cfg.hidden_size;
    const L = cfg.num_hidden_layers;
    const backend = this.#backend;
    // #head left ∂/∂hf in dtmp.
    this.#normBackward(2 * L, ws.dres, backend.view(ws.dtmp, 0, N * C, "f32"), ws.residual[L]!, "model.norm.weight", ws.rstdf, N, T);
    // A tied head's gradient lives in the embedding's, which is final only at the end.
    onGradientsFinal?.(cfg.tie_word_embeddings ? ["model.norm.weight"] : ["model.norm.weight", "lm_head.weight"]);
    for (let l = L - 1; l >= 0; l--) {
      const a = this.recompute ? ws.layers[0]! : ws.layers[l]!;
      if (this.recompute) this.#layerForward(l, ws, a, positions, dropout);
      this.#layerBackward(l, ws, a, positions, dropout);
      onGradientsFinal?.(LAYER_KINDS.map((kind) => layerParamName(l, kind)));
    }
    const embed = "model.embed_tokens.weight";
    const dEmbed = this.#g(embed);
    // nn.Embedding(padding_idx=pad_token_id) gives the pad row no gradient from the lookup.
    this.#ops.embeddingBackward(dEmbed, ws.dres, ids, N, cfg.vocab_size, C, cfg.pad_token_id ?? -1);
    this.#gradsMirrorStale = this.device !== "cpu";
    this.#film?.markGradsChanged();
    onGradientsFinal?.([embed]);
  }

  /** ws.dres holds ∂/∂x_{l+1} on entry and ∂/∂x_l on exit; parameter gradients accumulate. */
  #layerBackward(l: number, ws: Workspace, a: LayerActs, positions: I32, dropout: DropoutDraw | null): void {
    const cfg = this.config;
    const { B, T, N, C, I, H, Hkv, D } = this.#layerDims(ws);
    const kvC = Hkv * D;
    const g = (kind: ModuleKind): F32 => this.#g(layerParamName(l, kind));
    const scale = this.#branchScales[l]!;

    // The gradient of a dropped branch output is the stream's gradient through the same mask.
    const branchGrad = (site: number): F32 => {
      if (!dropout) return ws.dres;
      this.#dropout(ws.ddrop!, ws.dres, N, dropout, site, () => ws.dropoutOffsetsIn);
      return ws.ddrop!;
    };

    // MLP: x' = mid + scale·dropout(act·Wdᵀ)
    const dres = this.#operand(branchGrad(2 * l + 1), ws.dresB, N * C);
    const dact = this.#backend.view(ws.dact, 0, N * I, "f32");
    this.#gemm(false, false, N, I, C, dres, this.#lw(l, "down_proj"), 0, dact, scale);
    this.#gemm(true, false, C, I, N, dres, a.actb ?? a.act, 1, g("down_proj"), scale);
    this.#ops.swigluBackward(ws.dgate, ws.dup, dact, a.gate, a.up, N * I);
    const dgate = this.#operand(ws.dgate, ws.dgateB, N * I);
    const dup = this.#operand(ws.dup, ws.dupB, N * I);
    const dh2 = this.#backend.view(ws.dtmp, 0, N * C, "f32");
    this.#gemm(false, false, N, C, I, dgate, this.#lw(l, "gate_proj"), 0, dh2);
    this.#gemm(false, false, N, C, I, dup, this.#lw(l, "up_proj"), 1, dh2);
    const h2 = a.h2b ?? a.h2;
    this.#gemm(true, false, I, C, N, dgate, h2, 1, g("gate_proj"));
    this.#gemm(true, false, I, C, N, dup, h2, 1, g("up_proj"));
    // ∂/∂mid = dres + rmsnorm_backward(dh2); dact is free scratch of at least N·C.
    const dmidNorm = this.#backend.view(ws.dact, 0, N * C, "f32");
    this.#normBackward(2 * l + 1, dmidNorm, dh2, a.mid, layerParamName(l, "post_attention_layernorm"), a.rstd2, N, T);
    this.#ops.add(ws.dres, ws.dres, dmidNorm, N * C);

    // Attention: mid = x + scale·dropout(att·Woᵀ)
    const dmid = this.#operand(branchGrad(2 * l), ws.dresB, N * C);
    const datt = this.#backend.view(ws.dtmp, 0, N * C, "f32");
    this.#gemm(false, false, N, C, C, dmid, this.#lw(l, "o_proj"), 0, datt, scale);
    this.#gemm(true, false, C, C, N, dmid, a.attb ?? a.att, 1, g("o_proj"), scale);
    this.#ops.attentionBackward(ws.dq, ws.dk, ws.dv, datt, a.q, a.k, a.v, a.att, a.lse, B, T, H, Hkv, D, 1 / Math.sqrt(D));
    this.#ops.ropeBackward(ws.dq, ws.dq, positions, B, T, H, D, cfg.rope_theta);
    this.#ops.ropeBackward(ws.dk, ws.dk, positions, B, T, Hkv, D, cfg.rope_theta);
    const dq = this.#operand(ws.dq, ws.dqB, N * C);
    const dk = this.#operand(ws.dk, ws.dkB, N * kvC);
    const dv = this.#operand(ws.dv, ws.dvB, N * kvC);
    const dh1 = this.#backend.view(ws.dtmp, 0, N * C, "f32");
    this.#gemm(false, false, N, C, C, dq, this.#lw(l, "q_proj"), 0, dh1);
    this.#gemm(false, false, N, C, kvC, dk, this.#lw(l, "k_proj"), 1, dh1);
    this.#gemm(false, false, N, C, kvC, dv, this.#lw(l, "v_proj"), 1, dh1);
    const h1 = a.h1b ?? a.h1;
    this.#gemm(true, false, C, C, N, dq, h1, 1, g("q_proj"));
    this.#gemm(true, false, kvC, C, N, dk, h1, 1, g("k_proj"));
    this.#gemm(true, false, kvC, C, N, dv, h1, 1, g("v_proj"));
    const dxNorm = this.#backend.view(ws.dact, 0, N * C, "f32");
    this.#normBackward(2 * l, dxNorm, dh1, ws.residual[l]!, layerParamName(l, "input_layernorm"), a.rstd1, N, T);
    this.#ops.add(ws.dres, ws.dres, dxNorm, N * C);
  }

  /** Frees the parameters, gradients and activations now. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#workspace?.dispose();
    this.#workspace = null;
    this.#decode?.dispose();
    this.#decode = null;
    this.#termGrad?.memory.dispose();
    this.#termGrad = null;
    this.#decodeLogits?.memory.dispose();
    this.#decodeLogits = null;
    this.#views.clear();
    this.#memory.dispose();
    this.#hostParams.dispose();
    this.#hostGrads?.dispose();
    this.#hostParamsBf16?.dispose();
    this.#film?.dispose();
    this.#film = null;
  }
}
