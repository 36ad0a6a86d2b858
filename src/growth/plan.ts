/**
 * A growth plan: the source and target configs, the target layers' sources (depth.ts) and the
 * unit maps of every tensor axis (width.ts), with a pure function from one source tensor to
 * one target tensor. Growth on disk (checkpoint.ts) and in the middle of training
 * (schedule.ts) both run it tensor by tensor, so they produce the same bits.
 *
 * Target tensor `model.layers.i.X` is computed from source tensor `model.layers.src(i).X`
 * alone (the embedding, final norm and head from their own source tensors): W'[r, c] =
 * rows.scale[r]·cols.scale[c]·W[rows.source[r], cols.source[c]] (in float64, rounded once)
 * where both units are copies, 0 where a new unit is zero-filled, and the target's
 * initialisation elsewhere. "The target's initialisation" is exactly what
 * LlamaModel.initialize(seed) would give the target model at that element (normal(0,
 * initializer_range) from the Philox stream of `seed` at the element's flat offset, norms 1,
 * the pad row 0), so new parameters do not depend on how the growth was run.
 */
import { GrowlmError } from "../errors.js";
import { binding } from "../native.js";
import type { LlamaConfig } from "../model/config.js";
import { type ModuleKind, type ParamEntry, ParamLayout, layerParamName } from "../model/params.js";
import { type DepthGrowthOptions, type DepthOperator, type LayerSource, planDepth } from "./depth.js";
import {
  type AxisMap,
  type UnitSelection,
  type WidthGrowthOptions,
  type WidthMaps,
  type WidthOperator,
  identityAxis,
  planWidth,
  widthTargetConfig,
} from "./width.js";

export interface GrowthOptions {
  /** Depth growth (more layers); omit for width growth alone. */
  depth?: DepthGrowthOptions;
  /** Width growth (hidden and/or intermediate size); omit for depth growth alone. */
  width?: WidthGrowthOptions;
  /**
   * Seed of every new parameter (the target's initialisation, LlamaModel.initialize(seed)) and of
   * the random unit selection; default 42.
   */
  seed?: number;
}

/** MSG masks: the target layers whose residual branches ramp from 0 to 1 after growth. */
export interface GrowthMask {
  readonly layers: readonly number[];
  /** Optimizer steps over which the scale goes linearly from 0 to 1. */
  readonly warmupSteps: number;
}

export interface GrowthPlan {
  readonly source: LlamaConfig;
  readonly target: LlamaConfig;
  readonly depthOperator: DepthOperator | null;
  readonly widthOperator: WidthOperator | null;
  readonly selection: UnitSelection;
  /** One entry per target layer: its source layer and how it starts (the identity map when depth does not grow). */
  readonly layers: readonly LayerSource[];
  /** The unit maps of every axis (identity maps when width does not grow). */
  readonly maps: WidthMaps;
  readonly mask: GrowthMask | null;
  readonly seed: number;
  /**
   * Whether the grown model computes the source's function (up to float32 rounding) as
   * growModel returns it, i.e. with MSG masks at 0: depth zero or masked random, or no depth
   * growth; width direct or zero, or no width growth.
   */
  readonly functionPreserving: boolean;
  readonly sourceLayout: ParamLayout;
  readonly targetLayout: ParamLayout;
}

/** Plans the growth of a model with config `source`. */
export function planGrowth(source: LlamaConfig, options: GrowthOptions): GrowthPlan {
  const op = "planGrowth";
  const seed = options.seed ?? 42;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new GrowlmError(op, `seed must be an integer >= 0 but is ${JSON.stringify(seed)}`);
  if (!options.depth && !options.width) throw new GrowlmError(op, "nothing to grow: give depth and/or width options");
  const layers: LayerSource[] = options.depth
    ? planDepth(source.num_hidden_layers, options.depth)
    : Array.from({ length: source.num_hidden_layers }, (_, i) => ({ source: i, init: "copy" as const }));
  const widthOptions: WidthGrowthOptions = options.width ?? { operator: "direct" };
  const selection = widthOptions.selection ?? "cyclic";
  const wide = widthTargetConfig(source, widthOptions);
  const target: LlamaConfig = { ...wide, num_hidden_layers: layers.length };
  const maps = planWidth(source, target, widthOptions.operator, selection, seed);
  const deeper = layers.length !== source.num_hidden_layers || layers.some((l, i) => l.source !== i || l.init !== "copy");
  const wider = (["hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads"] as const).some((k) => target[k] !== source[k]);
  if (!deeper && !wider) throw new GrowlmError(op, "the target equals the source: nothing grows");
  // An operator on a dimension that does not change does nothing (and promises nothing).
  const depthOperator = deeper ? options.depth?.operator ?? null : null;
  const widthOperator = wider ? options.width?.operator ?? null : null;
  const masked = options.depth?.maskWarmupSteps;
  const newLayers = layers.flatMap((l, i) => (l.init === "random" ? [i] : []));
  const mask = masked !== undefined && newLayers.length > 0 ? { layers: newLayers, warmupSteps: masked } : null;
  const depthExact = depthOperator === null || depthOperator === "zero" || (depthOperator === "random" && mask !== null);
  const widthExact = widthOperator === null || widthOperator === "direct" || widthOperator === "zero";
  return {
    source,
    target,
    depthOperator,
    widthOperator,
    selection,
    layers,
    maps,
    mask,
    seed,
    functionPreserving: depthExact && widthExact,
    sourceLayout: new ParamLayout(source),
    targetLayout: new ParamLayout(target),
  };
}

/** Returns the source tensor called `name` as float32 (its shape flattened, row-major). */
export type SourceTensorReader = (name: string) => Float32Array;

/** The row and column maps (or the one map of a 1-D tensor) of a tensor kind. */
function tensorAxes(plan: GrowthPlan, kind: ModuleKind): [AxisMap, AxisMap] | [AxisMap] {
  const m = plan.maps;
  switch (kind) {
    case "embed_tokens": return [identityAxis(plan.target.vocab_size), m.residualWrite];
    case "lm_head": return [identityAxis(plan.target.vocab_size), m.residualRead];
    case "q_proj": return [m.query, m.residualRead];
    case "k_proj": case "v_proj": return [m.keyValue, m.residualRead];
    case "o_proj": return [m.residualWrite, m.attentionOutput];
    case "gate_proj": case "up_proj": return [m.ffnIn, m.residualRead];
    case "down_proj": return [m.residualWrite, m.ffnOut];
    case "input_layernorm": case "post_attention_layernorm": return [m.layerNorm];
    case "norm": return [m.finalNorm];
  }
}

/** Writes the target's initialisation of `entry` (LlamaModel.initialize(seed)'s values) into `out`. */
function initialValues(plan: GrowthPlan, entry: ParamEntry, out: Float32Array): void {
  if (entry.kind.endsWith("norm")) {
    out.fill(1);
    return;
  }
  binding.rngNormal(out, entry.numel, plan.seed, entry.offset, 0, plan.target.initializer_range);
  const pad = plan.target.pad_token_id;
  if (entry.kind === "embed_tokens" && pad !== null) {
    const C = plan.target.hidden_size;
    out.fill(0, pad * C, (pad + 1) * C);
  }
}

type Quantity = "params" | "exp_avg" | "exp_avg_sq";

function grow(plan: GrowthPlan, name: string, quantity: Quantity, readSource: SourceTensorReader, out: Float32Array | undefined): Float32Array {
  const op = quantity === "params" ? "growTensor" : "growMoment";
  if (!plan.targetLayout.has(name)) throw new GrowlmError(op, `the target model has no parameter "${name}"`);
  const entry = plan.targetLayout.entry(name);
  if (out && out.length !== entry.numel) throw new GrowlmError(op, `"${name}" has ${entry.numel} elements but the output holds ${out.length}`);
  const output = (): Float32Array => out ?? new Float32Array(entry.numel);
  let sourceName = name;
  if (entry.layer !== null) {
    const layer = plan.layers[entry.layer]!;
    if (layer.init === "random") {
      // A new layer: the initialisation, and no history for the optimizer.
      const result = output();
      if (quantity === "params") initialValues(plan, entry, result);
      else result.fill(0);
      return result;
    }
    if (layer.init === "zero_output" && (quantity !== "params" || entry.kind === "o_proj" || entry.kind === "down_proj")) {
      // An identity duplicate: its output projections are zero, and it is a new function, so its moments start at zero.
      return output().fill(0);
    }
    sourceName = layerParamName(layer.source!, entry.kind);
  }
  const sourceEntry = plan.sourceLayout.entry(sourceName);
  const W = readSource(sourceName);
  if (W.length !== sourceEntry.numel) {
    throw new GrowlmError(op, `source tensor "${sourceName}" has ${W.length} elements but the source config implies ${sourceEntry.numel}`);
  }
  const axes = tensorAxes(plan, entry.kind);
  const moment = quantity !== "params";
  const squared = quantity === "exp_avg_sq";

  if (axes.length === 1) {
    const [units] = axes;
    const result = output();
    for (let t = 0; t < units.size; t++) {
      const s = units.source[t]!;
      if (s < 0) result[t] = moment ? 0 : 1; // a new gain starts at the norm's initial 1
      else if (!moment) result[t] = units.scale[t]! * W[s]!;
      else result[t] = (squared ? units.gradScale[t]! ** 2 : units.gradScale[t]!) * W[s]!;
    }
    return result;
  }

  const [rows, cols] = axes;
  if (rows.identity && cols.identity) {
    // An unchanged copy: without `out`, the source array itself (growth on disk then holds one tensor, not two).
    if (!out) return W;
    out.set(W);
    return out;
  }
  const result = output();
  const sourceCols = sourceEntry.shape[1]!;
  const hasNew = rows.source.some((s) => s < 0) || cols.source.some((s) => s < 0);
  if (!moment && hasNew) initialValues(plan, entry, result);
  const n = cols.size;
  for (let r = 0; r < rows.size; r++) {
    const sr = rows.source[r]!;
    const base = r * n;
    if (moment) {
      const gr = rows.gradScale[r]!;
      for (let c = 0; c < n; c++) {
        const sc = cols.source[c]!;
        const g = gr * cols.gradScale[c]!;
        result[base + c] = sr >= 0 && sc >= 0 ? (squared ? g * g : g) * W[sr * sourceCols + sc]! : 0;
      }
      continue;
    }
    const rowZero = sr < 0 && rows.newZero[r] === 1;
    const rs = rows.scale[r]!;
    for (let c = 0; c < n; c++) {
      const sc = cols.source[c]!;
      if (sr >= 0 && sc >= 0) result[base + c] = rs * cols.scale[c]! * W[sr * sourceCols + sc]!;
      else if (rowZero || (sc < 0 && cols.newZero[c] === 1)) result[base + c] = 0;
      // else: the initialisation written above
    }
  }
  return result;
}

/**
 * Target parameter `name` of the plan, computed from the one source tensor it comes from
 * (read through `readSource`, which is called at most once).
 * @param out float32 [numel of the target tensor]; allocated when omitted, except that an
 *   unchanged copy then returns the array readSource gave
 * @returns out, a new array, or readSource's array (see `out`)
 */
export function growTensor(plan: GrowthPlan, name: string, readSource: SourceTensorReader, out?: Float32Array): Float32Array {
  return grow(plan, name, "params", readSource, out);
}

/**
 * AdamW's moment of target parameter `name` under the "carry" policy, from the source's moment
 * of the same source tensor (`readSource` returns exp_avg or exp_avg_sq by parameter name).
 * A copied entry gets the source's moment times its gradScale (exp_avg) or gradScale²
 * (exp_avg_sq): the moments the grown model would hold had its gradients always been the
 * mapped source gradients (exact for width `direct`/`zero` copies, where the grown model's
 * gradient at growth is exactly gradScale times the source's). Layers that are copies keep
 * their source layer's moments; new entries, zero-output duplicates and random layers start at 0.
 * @param out float32 [numel of the target tensor]; allocated when omitted
 */
export function growMoment(
  plan: GrowthPlan,
  name: string,
  moment: "exp_avg" | "exp_avg_sq",
  readSource: SourceTensorReader,
  out?: Float32Array,
): Float32Array {
  if (moment !== "exp_avg" && moment !== "exp_avg_sq") throw new GrowlmError("growMoment", `moment must be "exp_avg" or "exp_avg_sq" but is ${JSON.stringify(moment)}`);
  return grow(plan, name, moment, readSource, out);
}

/** Most runs listed in a description line before "... (N more)". */
const LISTED_RUNS = 12;

/** "0-5 ← 0-5, 6-11 ← 0-5, 12 new": target indices grouped into runs of consecutive sources. */
export function formatUnitMap(source: ArrayLike<number>, tag?: (target: number) => string): string {
  const runs: string[] = [];
  const range = (a: number, b: number): string => (a === b ? `${a}` : `${a}-${b}`);
  for (let start = 0; start < source.length; ) {
    const s0 = source[start]!;
    const label = tag ? tag(start) : "";
    let end = start;
    while (end + 1 < source.length && (tag ? tag(end + 1) : "") === label && (s0 < 0 ? source[end + 1]! < 0 : source[end + 1] === s0 + (end + 1 - start))) end++;
    const what = s0 < 0 ? "new" : `← ${range(s0, s0 + end - start)}`;
    runs.push(`${range(start, end)} ${what}${label ? ` ${label}` : ""}`);
    start = end + 1;
  }
  const shown = runs.slice(0, LISTED_RUNS).join(", ");
  return runs.length > LISTED_RUNS ? `${shown}, ... (${runs.length - LISTED_RUNS} more runs)` : shown;
}

/** A human-readable account of the plan, one line per grown dimension plus the exactness verdict. */
export function describeGrowth(plan: GrowthPlan): string[] {
  const { source: s, target: t } = plan;
  const lines: string[] = [];
  if (plan.depthOperator) {
    const initTag: Record<string, string> = { copy: "", zero_output: "(o_proj, down_proj = 0)", random: "(initialised)" };
    const sources = plan.layers.map((l) => l.source ?? -1);
    lines.push(`layers ${s.num_hidden_layers} → ${t.num_hidden_layers} (${plan.depthOperator}): ${formatUnitMap(sources, (i) => initTag[plan.layers[i]!.init]!)}`);
    if (plan.mask) lines.push(`  MSG mask on layers ${plan.mask.layers.join(", ")}: branches scaled by min(1, step/${plan.mask.warmupSteps}) after growth`);
  }
  if (plan.widthOperator) {
    const m = plan.maps;
    const op = `${plan.widthOperator}${plan.widthOperator === "direct" ? `, ${plan.selection}` : ""}`;
    if (t.hidden_size !== s.hidden_size) {
      lines.push(`hidden_size ${s.hidden_size} → ${t.hidden_size} (${op}): ${formatUnitMap(m.residualWrite.source)}`);
      const alphas = [...new Set(Array.from(m.residualWrite.scale).filter((_, i) => m.residualWrite.source[i]! >= 0).map((a) => a.toPrecision(4)))];
      if (plan.widthOperator !== "random") lines.push(`  residual copies written ×${alphas.join(" or ×")} (RMS kept), read ×β = α·${s.hidden_size}/${t.hidden_size}${s.tie_word_embeddings ? `; tied head: model.norm ×${s.hidden_size}/${t.hidden_size}` : ""}`);
    }
    if (t.num_attention_heads !== s.num_attention_heads || t.num_key_value_heads !== s.num_key_value_heads) {
      lines.push(`heads ${s.num_attention_heads} → ${t.num_attention_heads} (kv ${s.num_key_value_heads} → ${t.num_key_value_heads}): ${formatUnitMap(m.heads)}; kv heads ${formatUnitMap(m.kvHeads)}`);
    }
    const D = s.hidden_size / s.num_attention_heads;
    const D2 = t.hidden_size / t.num_attention_heads;
    if (D2 !== D) {
      lines.push(`head size ${D} → ${D2}: rotary pair i → ${D2 / D}·i ${plan.widthOperator === "random" ? "(new dims initialised)" : `(q ×√${D2 / D}; new dims: q rows and o_proj columns 0)`}`);
    }
    if (t.intermediate_size !== s.intermediate_size) {
      lines.push(`intermediate_size ${s.intermediate_size} → ${t.intermediate_size} (${op}): ${formatUnitMap(m.ffnIn.source)}`);
    }
  }
  const why = !plan.functionPreserving
    ? plan.depthOperator === "stack" || plan.depthOperator === "interpolate"
      ? "no (duplicated layers add their residual branches again)"
      : plan.depthOperator === "random" && !plan.mask
        ? "no (new layers are random; a mask would keep the function)"
        : "no (random width growth)"
    : plan.mask
      ? "yes, while the MSG mask is 0"
      : "yes (up to float32 rounding)";
  lines.push(`function preserved: ${why}`);
  return lines;
}
