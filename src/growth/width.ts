/**
 * Width growth of a LLaMA decoder: hidden_size C → C' (the residual stream, with the attention
 * heads that make it up) and intermediate_size I → I' (the SwiGLU units), by three operators:
 *
 * - `direct` (Net2WiderNet / bert2BERT's FPI, made exact): every new unit copies an old one,
 *   chosen cyclically (unit j copies j mod n, as the official code's `from_left`) or at random
 *   (its default `random.choices`); the copies' outgoing weights are split so that the sum is
 *   unchanged.
 * - `zero`: old units in place, new units whose outgoing weights are zero (their incoming
 *   weights are drawn from the target's initialisation, so they train).
 * - `random`: old weights in place unchanged, every new weight from the target's
 *   initialisation (MSG's initial state without its masks; not function-preserving).
 *
 * Every map here is an AxisMap: for each unit along one axis of a target tensor, the source
 * unit it copies (or -1 for a new unit), the factor on the copied values, what a new unit
 * holds, and the factor that maps the source's gradient to the copy's (used to carry AdamW's
 * moments). A target tensor W'[r, c] is rows.scale[r]·cols.scale[c]·W[rows.source[r],
 * cols.source[c]] when both are copies.
 *
 * ## When `direct` and `zero` are exact (function-preserving at growth)
 *
 * Exact up to float32 rounding (test/growth/width.test.ts: scores within 1e-5 relative) for
 * every configuration these functions accept. How each obstacle is handled:
 *
 * - **FFN units.** SwiGLU is unit-wise: a copy of unit j has gate_proj and up_proj rows equal
 *   to j's, and down_proj column j is divided by the number of copies n_j. Exact for any
 *   duplication pattern. `zero`: down_proj's new columns are zero.
 * - **RMSNorm over the widened residual stream.** The stream x' is built from the source's x
 *   by x'_{c'} = α_{c'}·x_{src(c')} (the embedding columns and the o_proj / down_proj rows that
 *   write it carry α). RMS(x') = RMS(x) for every x exactly when Σ_{c' copies c} α_{c'}² = C'/C
 *   for every c: the mean of squares over C' units is then (1/C')·Σ_c (C'/C)·x_c², the source's
 *   mean, eps included. Plain copies (α = 1) meet this only when every unit is copied the same
 *   number of times (C' = k·C, uniform duplication): that is Net2WiderNet's case, which growlm
 *   reproduces exactly (α = 1, readers split by 1/k). For non-uniform duplication (C' not a
 *   multiple of C, or random selection) growlm scales each copy: α = sqrt(C' / (C·n_c)) where
 *   n_c is the number of copies of c. A correction through the norm gains instead is impossible:
 *   RMS(x')/RMS(x) then depends on x, and a gain is a constant. The weights reading the normed
 *   stream (q/k/v/gate/up columns, lm_head columns) are scaled by β = α·C/C' so that
 *   Σ_{copies} α·β = 1; norm gains are copied. `zero` is the case n_c = 1 with new units
 *   held at 0: α = sqrt(C'/C) on the old units restores the RMS that the zero units would dilute.
 * - **Tied embeddings.** embed_tokens is both the writer (wants α) and the reader lm_head
 *   (wants β): growlm keeps α on the shared matrix and moves the reader's correction into the
 *   final norm's gain, model.norm ×C/C' (Σ_{copies} α²·C/C' = 1).
 * - **Attention heads and GQA.** Query head h' of kv group k' must read a copy of the kv head
 *   its source read. growlm grows groups: target kv head k' copies source kv head k' mod Hkv
 *   (`direct`) or is new (`zero`, `random`, k' ≥ Hkv); the query heads of a group copy the
 *   source group's heads cyclically, and o_proj's columns of a head copied n times are divided
 *   by n. A copied head computes exactly its source's attention pattern. `direct` requires every
 *   source head to keep at least one copy (always true when the group size H/Hkv does not shrink);
 *   `zero` and `random` keep the source's groups in place, so the group size may only grow.
 * - **Head size and the attention scale.** hidden_size = heads × head size, so C' needs more
 *   heads or larger heads. Adding heads (the default when C' is a multiple of D) keeps D, the
 *   scale 1/sqrt(D) and RoPE unchanged. Growing D to D' changes the scale to 1/sqrt(D') and
 *   RoPE's frequencies θ^(−2i/D'): growlm requires D' = m·D and puts old rotary pair i (dims i,
 *   i + D/2) at pair m·i (dims m·i, m·i + D'/2), whose frequency θ^(−2mi/mD) is exactly the
 *   old one (the float32 exponent 2mi/mD rounds to the same value as 2i/D). The new head
 *   dimensions sit at frequencies no old pair has, so they cannot hold copies: their q_proj
 *   rows and o_proj columns are zero (k and v rows drawn from the initialisation), and the old
 *   q_proj rows are scaled by sqrt(m) so that q·k/sqrt(D') = q_old·k_old/sqrt(D).
 *
 * `random` copies the old weights unchanged and draws every new weight, so the RMS over the
 * wider stream, the attention scale (D' > D) and the new branches all change the function.
 *
 * ## Symmetry
 *
 * A `direct` copy and its source have identical incoming weights and (after the split)
 * identical outgoing weights, so they receive identical gradients: under any optimizer they
 * stay identical unless something breaks the symmetry. Net2Net adds noise for this; growlm
 * does not (noise would break exactness), so `zero` or `random` are the operators to use
 * where new units should learn something different.
 */
import { GrowlmError } from "../errors.js";
import { binding } from "../native.js";
import { type LlamaConfig, headDim } from "../model/config.js";

export type WidthOperator = "direct" | "zero" | "random";
export const WIDTH_OPERATORS: readonly WidthOperator[] = ["direct", "zero", "random"];

/** Which old unit a new `direct` unit copies: unit j ← j mod n ("cyclic") or uniformly at random ("random"). */
export type UnitSelection = "cyclic" | "random";
export const UNIT_SELECTIONS: readonly UnitSelection[] = ["cyclic", "random"];

export interface WidthGrowthOptions {
  operator: WidthOperator;
  /** Target hidden_size (default: unchanged). */
  hidden_size?: number;
  /** Target intermediate_size (default: unchanged). */
  intermediate_size?: number;
  /**
   * Target num_attention_heads. Default: hidden_size / head size (the head size is kept and heads
   * are added); give it to grow the head size instead (the new head size must be a multiple of
   * the old one).
   */
  num_attention_heads?: number;
  /** Target num_key_value_heads; default keeps the group size num_attention_heads / num_key_value_heads. */
  num_key_value_heads?: number;
  /** How `direct` picks the unit each new residual or FFN unit copies (default "cyclic"); heads are always cyclic. */
  selection?: UnitSelection;
}

/** One axis of target tensors: where each target unit comes from. */
export interface AxisMap {
  /** Number of target units. */
  readonly size: number;
  /** Per target unit, the source unit it copies, or -1 for a new unit. */
  readonly source: Int32Array;
  /** Per target unit, the factor on the copied values (unused for new units). */
  readonly scale: Float64Array;
  /** Per target unit, 1 when a new unit's entries are zero, 0 when they take the target's initialisation (norm gains: 1). */
  readonly newZero: Uint8Array;
  /**
   * Per target unit, the factor on the source's gradient that gives the copy's gradient at
   * growth, 1 / (copies of the source unit × scale); 0 for new units. AdamW's exp_avg maps with
   * it and exp_avg_sq with its square (see src/growth/schedule.ts). Exact for every axis except
   * k_proj/v_proj rows when the new group size is not a multiple of the old (GQA → MHA, say): a
   * copied kv head then serves only some of its source's query heads, and its gradient is not a
   * multiple of the source's.
   */
  readonly gradScale: Float64Array;
  /** True when the map is the identity (every unit copies itself with factor 1). */
  readonly identity: boolean;
}

/** The axis maps of every tensor kind (see tensorAxes in plan.ts for which tensor uses which). */
export interface WidthMaps {
  /** Residual units as the embedding and the o_proj / down_proj rows write them (factor α). */
  readonly residualWrite: AxisMap;
  /** Residual units as the columns of q/k/v/gate/up_proj and lm_head read them after a norm (factor β). */
  readonly residualRead: AxisMap;
  /** input_layernorm and post_attention_layernorm gains. */
  readonly layerNorm: AxisMap;
  /** model.norm gains (×C/C' when the head is tied to the embedding). */
  readonly finalNorm: AxisMap;
  /** q_proj rows, head-major (h·D + d). */
  readonly query: AxisMap;
  /** k_proj and v_proj rows, head-major. */
  readonly keyValue: AxisMap;
  /** o_proj columns, head-major. */
  readonly attentionOutput: AxisMap;
  /** gate_proj and up_proj rows. */
  readonly ffnIn: AxisMap;
  /** down_proj columns. */
  readonly ffnOut: AxisMap;
  /** Per target query head, the source head it copies or -1. */
  readonly heads: Int32Array;
  /** Per target key/value head, the source kv head it copies or -1. */
  readonly kvHeads: Int32Array;
  /** Per target head dimension, the source dimension it holds or -1 (RoPE pairing kept). */
  readonly headDims: Int32Array;
}

/** Philox offsets of random unit selection: far above any parameter offset of the initialisation stream. */
const SELECTION_OFFSET = 2 ** 50;
const SELECTION_STREAM_STRIDE = 2 ** 44;

function axis(size: number): { source: Int32Array; scale: Float64Array; newZero: Uint8Array; gradScale: Float64Array } {
  return { source: new Int32Array(size), scale: new Float64Array(size), newZero: new Uint8Array(size), gradScale: new Float64Array(size) };
}

/** Freezes the arrays into an AxisMap, deriving gradScale from the copy counts and `identity`. */
function finish(parts: ReturnType<typeof axis>, sourceSize: number): AxisMap {
  const { source, scale, gradScale } = parts;
  const copies = new Int32Array(sourceSize);
  for (const s of source) if (s >= 0) copies[s]!++;
  let identity = source.length === sourceSize;
  for (let t = 0; t < source.length; t++) {
    const s = source[t]!;
    gradScale[t] = s >= 0 ? 1 / (copies[s]! * scale[t]!) : 0;
    if (s !== t || scale[t] !== 1) identity = false;
  }
  return { size: source.length, ...parts, identity };
}

/** The identity map of n units. */
export function identityAxis(n: number): AxisMap {
  const parts = axis(n);
  for (let i = 0; i < n; i++) {
    parts.source[i] = i;
    parts.scale[i] = 1;
  }
  return finish(parts, n);
}

/**
 * Sources of n' units grown from n: the first n are themselves; each further unit copies a
 * unit chosen cyclically (j mod n) or uniformly at random from Philox stream `stream` of `seed`.
 */
function duplicateSources(n: number, target: number, selection: UnitSelection, seed: number, stream: number): Int32Array {
  const src = new Int32Array(target);
  for (let j = 0; j < target; j++) src[j] = j % n;
  if (selection === "random" && target > n) {
    const u = new Float32Array(target - n);
    binding.rngUniform(u, u.length, seed, SELECTION_OFFSET + stream * SELECTION_STREAM_STRIDE, 0, 1);
    for (let j = n; j < target; j++) src[j] = Math.min(n - 1, Math.floor(u[j - n]! * n));
  }
  return src;
}

/** Copy counts of each source unit. */
function countCopies(src: Int32Array, n: number): Int32Array {
  const copies = new Int32Array(n);
  for (const s of src) if (s >= 0) copies[s]!++;
  return copies;
}

function positiveInteger(op: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) throw new GrowlmError(op, `${name} must be a positive integer but is ${JSON.stringify(v)}`);
  return v;
}

/**
 * The config after width growth: hidden_size, intermediate_size and the attention heads
 * resolved and checked (no dimension may shrink; the head size may only grow by an integer
 * factor; the group size must allow every source head a place). Other fields are unchanged.
 */
export function widthTargetConfig(source: LlamaConfig, options: WidthGrowthOptions): LlamaConfig {
  const op = "growWidth";
  if (!WIDTH_OPERATORS.includes(options.operator)) {
    throw new GrowlmError(op, `unknown width operator ${JSON.stringify(options.operator)}; expected one of ${WIDTH_OPERATORS.join(", ")}`);
  }
  if (options.selection !== undefined && !UNIT_SELECTIONS.includes(options.selection)) {
    throw new GrowlmError(op, `unit selection must be one of ${UNIT_SELECTIONS.join(", ")} but is ${JSON.stringify(options.selection)}`);
  }
  const C = source.hidden_size;
  const D = headDim(source);
  const H = source.num_attention_heads;
  const Hkv = source.num_key_value_heads;
  const group = H / Hkv;
  const C2 = positiveInteger(op, "hidden_size", options.hidden_size ?? C);
  const I2 = positiveInteger(op, "intermediate_size", options.intermediate_size ?? source.intermediate_size);
  if (C2 < C) throw new GrowlmError(op, `hidden_size ${C2} is smaller than the source's ${C}: growth cannot shrink`);
  if (I2 < source.intermediate_size) {
    throw new GrowlmError(op, `intermediate_size ${I2} is smaller than the source's ${source.intermediate_size}: growth cannot shrink`);
  }
  let H2: number;
  if (options.num_attention_heads !== undefined) {
    H2 = positiveInteger(op, "num_attention_heads", options.num_attention_heads);
  } else if (C2 % D === 0) {
    H2 = C2 / D;
  } else {
    throw new GrowlmError(op, `hidden_size ${C2} is not a multiple of the head size ${D}: give num_attention_heads (the head size hidden_size / heads must be a multiple of ${D})`);
  }
  if (H2 < H) throw new GrowlmError(op, `num_attention_heads ${H2} is smaller than the source's ${H}: growth cannot remove heads`);
  if (C2 % H2 !== 0) throw new GrowlmError(op, `hidden_size ${C2} is not a multiple of num_attention_heads ${H2}`);
  const D2 = C2 / H2;
  if (D2 % D !== 0) {
    throw new GrowlmError(op, `the head size would go from ${D} to ${D2} (hidden_size ${C2} / ${H2} heads); it may only grow by an integer factor, so that every RoPE frequency of the source stays (choose num_attention_heads accordingly)`);
  }
  let Hkv2: number;
  if (options.num_key_value_heads !== undefined) {
    Hkv2 = positiveInteger(op, "num_key_value_heads", options.num_key_value_heads);
  } else if (H2 % group === 0) {
    Hkv2 = H2 / group;
  } else {
    throw new GrowlmError(op, `num_attention_heads ${H2} is not a multiple of the source's group size ${group} (num_attention_heads / num_key_value_heads): give num_key_value_heads`);
  }
  if (H2 % Hkv2 !== 0) throw new GrowlmError(op, `num_key_value_heads ${Hkv2} does not divide num_attention_heads ${H2}`);
  if (Hkv2 < Hkv) throw new GrowlmError(op, `num_key_value_heads ${Hkv2} is smaller than the source's ${Hkv}: growth cannot remove key/value heads`);
  const group2 = H2 / Hkv2;
  if (options.operator !== "direct" && group2 < group) {
    throw new GrowlmError(op, `operator "${options.operator}" keeps the source's kv groups in place, so the group size (heads per kv head) cannot shrink from ${group} to ${group2}`);
  }
  if (options.operator === "direct" && Math.floor(Hkv2 / Hkv) * group2 < group) {
    throw new GrowlmError(op, `with ${Hkv2} kv heads of ${group2} query heads each, some of the source's ${group} query heads per kv head would get no copy; use more kv heads or a larger group`);
  }
  return { ...source, hidden_size: C2, intermediate_size: I2, num_attention_heads: H2, num_key_value_heads: Hkv2, metadata: { ...source.metadata } };
}

/**
 * The axis maps of growing `source` to `target` (same depth, or any: only widths are read)
 * with `operator`. `seed` drives the "random" unit selection only.
 */
export function planWidth(source: LlamaConfig, target: LlamaConfig, operator: WidthOperator, selection: UnitSelection, seed: number): WidthMaps {
  const direct = operator === "direct";
  const exact = operator !== "random";
  const C = source.hidden_size;
  const C2 = target.hidden_size;

  // Residual stream.
  const write = axis(C2);
  const read = axis(C2);
  const gain = axis(C2);
  const finalGain = axis(C2);
  const residualSrc = direct ? duplicateSources(C, C2, selection, seed, 0) : Int32Array.from({ length: C2 }, (_, j) => (j < C ? j : -1));
  const residualCopies = countCopies(residualSrc, C);
  for (let j = 0; j < C2; j++) {
    const s = residualSrc[j]!;
    write.source[j] = read.source[j] = gain.source[j] = finalGain.source[j] = s;
    if (s < 0) {
      write.newZero[j] = operator === "zero" ? 1 : 0; // zero: new stream units start at 0
      continue;
    }
    const n = residualCopies[s]!;
    // Σ over the copies of c of α² = C'/C keeps the RMS; β = α·C/C' gives Σ α·β = 1.
    const alpha = exact ? Math.sqrt(C2 / (C * n)) : 1;
    const beta = exact ? (alpha * C) / C2 : 1;
    write.scale[j] = alpha;
    read.scale[j] = beta;
    gain.scale[j] = 1;
    finalGain.scale[j] = exact && source.tie_word_embeddings ? C / C2 : 1;
  }

  // Attention heads, kv groups and head dimensions.
  const D = headDim(source);
  const D2 = headDim(target);
  const m = D2 / D;
  const H = source.num_attention_heads;
  const Hkv = source.num_key_value_heads;
  const H2 = target.num_attention_heads;
  const Hkv2 = target.num_key_value_heads;
  const group = H / Hkv;
  const group2 = H2 / Hkv2;
  const kvHeads = new Int32Array(Hkv2);
  const heads = new Int32Array(H2);
  for (let k = 0; k < Hkv2; k++) {
    const g = k < Hkv ? k : direct ? k % Hkv : -1;
    kvHeads[k] = g;
    const copyIndex = Math.floor(k / Hkv);
    for (let p = 0; p < group2; p++) {
      const position = copyIndex * group2 + p;
      heads[k * group2 + p] = g < 0 ? -1 : direct ? g * group + (position % group) : position < group ? g * group + position : -1;
    }
  }
  const headCopies = countCopies(heads, H);
  const missing = headCopies.findIndex((n) => n === 0);
  if (missing >= 0) throw new GrowlmError("growWidth", `source query head ${missing} gets no place in the target's heads (${H2} heads in ${Hkv2} kv groups)`);
  // Old rotary pair i (dims i, i + D/2) goes to pair m·i (dims m·i, m·i + D'/2): the same frequency.
  const headDims = new Int32Array(D2).fill(-1);
  for (let i = 0; i < D / 2; i++) {
    headDims[m * i] = i;
    headDims[m * i + D2 / 2] = i + D / 2;
  }
  const query = axis(H2 * D2);
  const keyValue = axis(Hkv2 * D2);
  const attnOut = axis(H2 * D2);
  const qScale = exact ? Math.sqrt(m) : 1;
  for (let h = 0; h < H2; h++) {
    const src = heads[h]!;
    for (let d = 0; d < D2; d++) {
      const t = h * D2 + d;
      const sd = headDims[d]!;
      const s = src >= 0 && sd >= 0 ? src * D + sd : -1;
      query.source[t] = attnOut.source[t] = s;
      if (s >= 0) {
        query.scale[t] = qScale;
        attnOut.scale[t] = direct ? 1 / headCopies[src]! : 1;
      } else {
        // A new dimension of a copied head must not change the scores (q rows zero) nor the
        // output (o_proj columns zero); a new head of `zero` only needs o_proj's columns zero.
        query.newZero[t] = exact && src >= 0 ? 1 : 0;
        attnOut.newZero[t] = exact ? 1 : 0;
      }
    }
  }
  for (let k = 0; k < Hkv2; k++) {
    const src = kvHeads[k]!;
    for (let d = 0; d < D2; d++) {
      const t = k * D2 + d;
      const sd = headDims[d]!;
      keyValue.source[t] = src >= 0 && sd >= 0 ? src * D + sd : -1;
      keyValue.scale[t] = 1;
    }
  }

  // SwiGLU units.
  const I = source.intermediate_size;
  const I2 = target.intermediate_size;
  const ffnIn = axis(I2);
  const ffnOut = axis(I2);
  const ffnSrc = direct ? duplicateSources(I, I2, selection, seed, 1) : Int32Array.from({ length: I2 }, (_, j) => (j < I ? j : -1));
  const ffnCopies = countCopies(ffnSrc, I);
  for (let j = 0; j < I2; j++) {
    const s = ffnSrc[j]!;
    ffnIn.source[j] = ffnOut.source[j] = s;
    if (s < 0) {
      ffnOut.newZero[j] = operator === "zero" ? 1 : 0;
      continue;
    }
    ffnIn.scale[j] = 1;
    ffnOut.scale[j] = direct ? 1 / ffnCopies[s]! : 1;
  }
  return {
    residualWrite: finish(write, C),
    residualRead: finish(read, C),
    layerNorm: finish(gain, C),
    finalNorm: finish(finalGain, C),
    query: finish(query, H * D),
    keyValue: finish(keyValue, Hkv * D),
    attentionOutput: finish(attnOut, H * D),
    ffnIn: finish(ffnIn, I),
    ffnOut: finish(ffnOut, I),
    heads,
    kvHeads,
    headDims,
  };
}
