/**
 * Causal self-attention with grouped-query heads (FlashAttention-2 style on the CPU: tiled,
 * online softmax, O(T·D) memory per head).
 *
 * Shapes: q, out, dout, dq `[B, T, H, D]`; k, v, dk, dv `[B, T, Hkv, D]`; lse `[B, H, T]`.
 * Query head h reads key/value head `h / (H / Hkv)`; H must be a multiple of Hkv. Scores
 * are `scale · q·kᵀ` (default scale `1 / √D`) with keys after the query masked; lse is each
 * query row's natural log-sum-exp of its scores, saved by the forward for the backward.
 *
 * Work, in FlashAttention's convention (what the benchmarks report): the forward is
 * `4·B·H·T²·D / 2` flops, the backward 2.5 times that.
 *
 * `attentionCachedForward` is the inference form: Tq new queries per row against a
 * key/value cache `[B, S, Hkv, D]` whose first Tk slots are filled, each row attending only
 * to its slots from `keyBegin[b]` (left padding below it) up to the query's own.
 *
 * On CUDA (binding.cuda, native/cuda/attention.cu) the same three ops take DeviceBuffers,
 * with D <= 256; keyBegin is then device memory, which the kernel clamps to [0, Tk] instead of
 * checking. The bf16 flash variants (tensor cores) exist only there.
 */
import type { Buffers, DeviceBuffer, HostBuffers } from "../device.js";
import { binding } from "../native.js";
import { Tensor } from "../tensor.js";
import { dimsOf, expectShape, formatShape, integer, output } from "./check.js";

export interface AttentionBinding<B extends Buffers = HostBuffers> {
  attentionForward(
    out: B["f32"],
    lse: B["f32"],
    q: B["f32"],
    k: B["f32"],
    v: B["f32"],
    B: number,
    T: number,
    H: number,
    Hkv: number,
    D: number,
    scale: number,
  ): void;
  attentionBackward(
    dq: B["f32"],
    dk: B["f32"],
    dv: B["f32"],
    dout: B["f32"],
    q: B["f32"],
    k: B["f32"],
    v: B["f32"],
    out: B["f32"],
    lse: B["f32"],
    B: number,
    T: number,
    H: number,
    Hkv: number,
    D: number,
    scale: number,
  ): void;
  attentionCachedForward(
    out: B["f32"],
    q: B["f32"],
    k: B["f32"],
    v: B["f32"],
    keyBegin: B["i32"],
    B: number,
    Tq: number,
    Tk: number,
    S: number,
    H: number,
    Hkv: number,
    D: number,
    scale: number,
  ): void;
}

/**
 * The bf16 flash attention of the CUDA backend (tensor cores): the same semantics as
 * attentionForward / attentionBackward with bf16 tensors (uint16 bits) `[B, T, H, D]` /
 * `[B, T, Hkv, D]` and fp32 lse `[B, H, T]`; products accumulate in fp32. D must be 64 or 128
 * and every bf16 buffer 16-byte aligned. Deterministic (no atomics).
 */
export interface AttentionBf16Binding {
  attentionForwardBf16(
    out: DeviceBuffer,
    lse: DeviceBuffer,
    q: DeviceBuffer,
    k: DeviceBuffer,
    v: DeviceBuffer,
    B: number,
    T: number,
    H: number,
    Hkv: number,
    D: number,
    scale: number,
  ): void;
  attentionBackwardBf16(
    dq: DeviceBuffer,
    dk: DeviceBuffer,
    dv: DeviceBuffer,
    dout: DeviceBuffer,
    q: DeviceBuffer,
    k: DeviceBuffer,
    v: DeviceBuffer,
    out: DeviceBuffer,
    lse: DeviceBuffer,
    B: number,
    T: number,
    H: number,
    Hkv: number,
    D: number,
    scale: number,
  ): void;
}

/** The sizes of one attention call, read from q `[B, T, H, D]` and k `[B, T, Hkv, D]`. */
export interface AttentionDims {
  B: number;
  T: number;
  H: number;
  Hkv: number;
  D: number;
}

export interface AttentionForwardOptions {
  /** Score scale; default `1 / √D`. Finite and > 0. */
  scale?: number;
  /** `[B, T, H, D]` output, overwritten (allocated when absent). */
  out?: Tensor;
  /** `[B, H, T]` log-sum-exp output, overwritten (allocated when absent). */
  lse?: Tensor;
}

export interface AttentionBackwardOptions {
  /** The scale the forward used; default `1 / √D`. */
  scale?: number;
  /** `[B, T, H, D]` gradient of q, overwritten (allocated when absent). */
  dq?: Tensor;
  /** `[B, T, Hkv, D]` gradient of k, overwritten (allocated when absent). */
  dk?: Tensor;
  /** `[B, T, Hkv, D]` gradient of v, overwritten (allocated when absent). */
  dv?: Tensor;
}

const Q_NAMES = "B, T, H, D";
const KV_NAMES = "B, T, Hkv, D";

function attentionDims(op: string, q: Tensor, k: Tensor, v: Tensor): AttentionDims {
  const [B, T, H, D] = dimsOf(op, "q", q, "float32", 4) as readonly [number, number, number, number];
  const kShape = dimsOf(op, "k", k, "float32", 4);
  const Hkv = kShape[2]!;
  if (kShape[0] !== B || kShape[1] !== T || kShape[3] !== D) {
    throw new RangeError(
      `${op}: expected "k" of shape [${KV_NAMES}] = [${B}, ${T}, Hkv, ${D}] but received ${formatShape(kShape)}`,
    );
  }
  if ([B, T, H, Hkv, D].some((n) => n < 1)) {
    throw new RangeError(
      `${op}: every dimension must be >= 1 but q is ${formatShape(q.shape)} and k is ${formatShape(kShape)}`,
    );
  }
  if (H % Hkv !== 0) {
    throw new RangeError(`${op}: H = ${H} (from "q") must be a multiple of Hkv = ${Hkv} (from "k")`);
  }
  expectShape(op, "v", v, "float32", KV_NAMES, [B, T, Hkv, D]);
  return { B, T, H, Hkv, D };
}

function scaleOf(op: string, scale: number | undefined, D: number): number {
  const s = scale ?? 1 / Math.sqrt(D);
  if (typeof s !== "number" || !Number.isFinite(s) || !(s > 0) || !Number.isFinite(Math.fround(s))) {
    throw new RangeError(`${op}: expected a finite "scale" > 0 but received ${String(s)}`);
  }
  return s;
}

function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/** Outputs are written while inputs are still read: no output may share memory with another buffer. */
function expectDisjoint(op: string, outputs: [string, Tensor][], inputs: [string, Tensor][]): void {
  const all = [...outputs, ...inputs];
  outputs.forEach(([name, t], i) => {
    for (const [other, u] of all.slice(i + 1)) {
      if (overlaps(t.data, u.data)) throw new RangeError(`${op}: "${name}" must not share memory with "${other}"`);
    }
  });
}

/**
 * Forward: out = softmax(scale · q·kᵀ, causal) · v per head, and the rows' log-sum-exp.
 * @param q `[B, T, H, D]` float32
 * @param k `[B, T, Hkv, D]` float32
 * @param v `[B, T, Hkv, D]` float32
 * @returns out `[B, T, H, D]` and lse `[B, H, T]` (natural log)
 */
export function attentionForward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: AttentionForwardOptions = {},
): { out: Tensor<"float32">; lse: Tensor<"float32"> } {
  const op = "attentionForward";
  const { B, T, H, Hkv, D } = attentionDims(op, q, k, v);
  const scale = scaleOf(op, opts.scale, D);
  const out = output(op, "out", opts.out, "float32", Q_NAMES, [B, T, H, D]);
  const lse = output(op, "lse", opts.lse, "float32", "B, H, T", [B, H, T]);
  expectDisjoint(op, [["out", out], ["lse", lse]], [["q", q], ["k", k], ["v", v]]);
  binding.attentionForward(
    out.data as Float32Array,
    lse.data as Float32Array,
    q.data as Float32Array,
    k.data as Float32Array,
    v.data as Float32Array,
    B,
    T,
    H,
    Hkv,
    D,
    scale,
  );
  return { out: out as Tensor<"float32">, lse: lse as Tensor<"float32"> };
}

/**
 * Backward of {@link attentionForward}: gradients of q, k and v from the gradient of out,
 * recomputing the probabilities from q, k and the saved lse. dk and dv of a kv head sum
 * its H / Hkv query heads.
 * @param dout `[B, T, H, D]` gradient of out
 * @param out `[B, T, H, D]` and lse `[B, H, T]`: what the forward returned
 * @returns dq `[B, T, H, D]`, dk and dv `[B, T, Hkv, D]`
 */
export function attentionBackward(
  dout: Tensor,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  opts: AttentionBackwardOptions = {},
): { dq: Tensor<"float32">; dk: Tensor<"float32">; dv: Tensor<"float32"> } {
  const op = "attentionBackward";
  const { B, T, H, Hkv, D } = attentionDims(op, q, k, v);
  const scale = scaleOf(op, opts.scale, D);
  expectShape(op, "dout", dout, "float32", Q_NAMES, [B, T, H, D]);
  expectShape(op, "out", out, "float32", Q_NAMES, [B, T, H, D]);
  expectShape(op, "lse", lse, "float32", "B, H, T", [B, H, T]);
  const dq = output(op, "dq", opts.dq, "float32", Q_NAMES, [B, T, H, D]);
  const dk = output(op, "dk", opts.dk, "float32", KV_NAMES, [B, T, Hkv, D]);
  const dv = output(op, "dv", opts.dv, "float32", KV_NAMES, [B, T, Hkv, D]);
  expectDisjoint(
    op,
    [["dq", dq], ["dk", dk], ["dv", dv]],
    [["dout", dout], ["q", q], ["k", k], ["v", v], ["out", out], ["lse", lse]],
  );
  binding.attentionBackward(
    dq.data as Float32Array,
    dk.data as Float32Array,
    dv.data as Float32Array,
    dout.data as Float32Array,
    q.data as Float32Array,
    k.data as Float32Array,
    v.data as Float32Array,
    out.data as Float32Array,
    lse.data as Float32Array,
    B,
    T,
    H,
    Hkv,
    D,
    scale,
  );
  return { dq: dq as Tensor<"float32">, dk: dk as Tensor<"float32">, dv: dv as Tensor<"float32"> };
}

export interface AttentionCachedOptions {
  /** Score scale; default `1 / √D`. Finite and > 0. */
  scale?: number;
  /** `[B, Tq, H, D]` output, overwritten (allocated when absent). */
  out?: Tensor;
}

/**
 * Attention of new queries against a key/value cache (incremental decoding). Query i of row
 * b sits at slot `length − Tq + i` and attends to the slots from `keyBegin[b]` up to its own;
 * a query below `keyBegin[b]` (a padding position) gets zeros. Each row's result depends only
 * on its own query and valid keys, so prefill followed by single-token steps gives bitwise
 * what one call over the whole sequence gives, whatever the batch and its padding.
 * @param q `[B, Tq, H, D]` float32: the new positions' queries (RoPE applied)
 * @param k `[B, S, Hkv, D]` float32 key cache (RoPE applied), slots `0 .. length − 1` filled
 * @param v `[B, S, Hkv, D]` float32 value cache
 * @param keyBegin int32 `[B]`: each row's first valid slot, in `[0, length]`
 * @param length Tk, the filled slots of every row (the new positions included): `Tq <= Tk <= S`
 * @returns out `[B, Tq, H, D]`
 */
export function attentionCachedForward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  keyBegin: Tensor,
  length: number,
  opts: AttentionCachedOptions = {},
): Tensor<"float32"> {
  const op = "attentionCachedForward";
  const [B, Tq, H, D] = dimsOf(op, "q", q, "float32", 4) as readonly [number, number, number, number];
  const kShape = dimsOf(op, "k", k, "float32", 4);
  const [S, Hkv] = [kShape[1]!, kShape[2]!];
  if (kShape[0] !== B || kShape[3] !== D) {
    throw new RangeError(`${op}: expected "k" of shape [B, S, Hkv, D] = [${B}, S, Hkv, ${D}] but received ${formatShape(kShape)}`);
  }
  if ([B, Tq, H, Hkv, D].some((n) => n < 1)) {
    throw new RangeError(`${op}: every dimension must be >= 1 but q is ${formatShape(q.shape)} and k is ${formatShape(kShape)}`);
  }
  if (H % Hkv !== 0) throw new RangeError(`${op}: H = ${H} (from "q") must be a multiple of Hkv = ${Hkv} (from "k")`);
  expectShape(op, "v", v, "float32", "B, S, Hkv, D", [B, S, Hkv, D]);
  expectShape(op, "keyBegin", keyBegin, "int32", "B", [B]);
  integer(op, "length", length, Tq, S);
  const begin = keyBegin.data as Int32Array;
  begin.forEach((first, b) => {
    if (first < 0 || first > length) throw new RangeError(`${op}: "keyBegin"[${b}] = ${first} is outside [0, length = ${length}]`);
  });
  const scale = scaleOf(op, opts.scale, D);
  const out = output(op, "out", opts.out, "float32", Q_NAMES, [B, Tq, H, D]);
  expectDisjoint(op, [["out", out]], [["q", q], ["k", k], ["v", v]]);
  binding.attentionCachedForward(out.data as Float32Array, q.data as Float32Array, k.data as Float32Array, v.data as Float32Array, begin, B, Tq, length, S, H, Hkv, D, scale);
  return out as Tensor<"float32">;
}
