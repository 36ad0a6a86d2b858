/**
 * Parameter drift between two checkpoints (`growlm diff`), the way the original study compared
 * checkpoints to see what fine-tuning changed: for every tensor of B against its reference in
 * A, the relative L2 change ‖B − A‖/‖A‖, the cosine similarity ⟨A, B⟩/(‖A‖·‖B‖) and the largest
 * absolute change, then the same aggregated per decoder layer and per module type (sums of
 * squares and products over the group's tensors, i.e. the measures of the concatenated
 * tensors) and over the whole model. Sums are float64; a checkpoint against itself gives
 * exactly 0, 1 and 0.
 *
 * Grown models: with a growth record (the first growth.json up B's lineage, else up A's, or
 * one given; a folder's parent is its config.json "_name_or_path"), every layer of B is
 * mapped back to its source layer. When A is the source (small) model and B has the
 * grown shape, B's reference is A grown by the record's plan (src/growth/plan.ts growTensor:
 * a stacked layer's reference is its source layer), so the diff is what training changed
 * since growth. When A already has B's shape (the grown base against a later stage), tensors
 * compare directly. Either way the copies of each source layer are also compared with each
 * other (every pair, in B and in the reference), so one sees whether stacked copies drift
 * apart.
 *
 * Checkpoints are read tensor by tensor (at most four tensors in memory: two copies' in B and
 * their references), never two whole models.
 */
import fs from "node:fs";
import path from "node:path";

import { GrowlmError } from "../errors.js";
import { GROWTH_RECORD_NAME, type GrowthRecord } from "../growth/checkpoint.js";
import { type GrowthPlan, growTensor, planGrowth } from "../growth/plan.js";
import { readModelConfig, readTensor } from "../io/hf.js";
import { type LlamaConfig, parseLlamaConfig } from "../model/config.js";
import { LAYER_KINDS, type ModuleKind, ParamLayout, layerParamName } from "../model/params.js";
import { heatmap } from "../plot/svg.js";

/** Sums from which every drift measure of a group of tensors follows. */
export interface DriftSums {
  /** Σ a², Σ b², Σ (b − a)², Σ a·b (float64). */
  aa: number;
  bb: number;
  dd: number;
  ab: number;
  /** max |b − a|. */
  maxAbs: number;
  numel: number;
}

/** The drift measures of a tensor or group. */
export interface DriftMeasures {
  /** ‖B − A‖ / ‖A‖ (Infinity when A is 0 and B is not; 0 when both are 0). */
  relL2: number;
  /** ⟨A, B⟩ / (‖A‖·‖B‖) (NaN when either is 0). */
  cosine: number;
  maxAbs: number;
  /** ‖A‖, ‖B‖ and ‖B − A‖. */
  normA: number;
  normB: number;
  normDiff: number;
}

export interface TensorDrift extends DriftMeasures {
  name: string;
  layer: number | null;
  module: ModuleKind;
  /** The source layer of a grown model's layer (null for new random layers and global tensors). */
  sourceLayer: number | null;
  shape: readonly number[];
}

export interface LayerDrift extends DriftMeasures {
  layer: number;
  sourceLayer: number | null;
}

export interface ModuleDrift extends DriftMeasures {
  module: ModuleKind;
}

/** Two copies of one source layer compared with each other. */
export interface CopyDrift {
  sourceLayer: number;
  /** [i, j], i < j: B's layers. */
  layers: [number, number];
  /** Layer j against layer i in B. */
  b: DriftMeasures;
  /** The same pair in the reference (A, or A grown): what they started from. */
  reference: DriftMeasures;
  /** B's relative L2 between the copies, per module type. */
  modules: Partial<Record<ModuleKind, number>>;
}

export interface DriftReport {
  a: string;
  b: string;
  /** "a": B against A directly; "grown-a": B against A grown by the growth record's plan. */
  reference: "a" | "grown-a";
  /** The growth record used, or null. */
  growthRecord: string | null;
  /** Per layer of B, its source layer (null without a growth record). */
  layerSources: (number | null)[] | null;
  tensors: TensorDrift[];
  layers: LayerDrift[];
  modules: ModuleDrift[];
  overall: DriftMeasures;
  /** relL2 per layer (rows) and layer module type (columns: LAYER_KINDS). */
  grid: number[][];
  copies: CopyDrift[];
}

export interface DiffOptions {
  /** A growth.json to map B's layers to their sources (default: B's, else A's, when present). */
  growthRecord?: string;
}

function emptySums(): DriftSums {
  return { aa: 0, bb: 0, dd: 0, ab: 0, maxAbs: 0, numel: 0 };
}

/** The sums of one pair of tensors (same length). */
export function tensorSums(a: Float32Array, b: Float32Array): DriftSums {
  let aa = 0;
  let bb = 0;
  let dd = 0;
  let ab = 0;
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    const d = y - x;
    aa += x * x;
    bb += y * y;
    dd += d * d;
    ab += x * y;
    const m = Math.abs(d);
    if (m > maxAbs) maxAbs = m;
  }
  return { aa, bb, dd, ab, maxAbs, numel: a.length };
}

function addSums(into: DriftSums, s: DriftSums): void {
  into.aa += s.aa;
  into.bb += s.bb;
  into.dd += s.dd;
  into.ab += s.ab;
  into.maxAbs = Math.max(into.maxAbs, s.maxAbs);
  into.numel += s.numel;
}

/** The measures of a group's sums (cosine as ab / sqrt(aa·bb), so that A against A is exactly 1). */
export function measures(s: DriftSums): DriftMeasures {
  return {
    relL2: s.aa > 0 ? Math.sqrt(s.dd / s.aa) : s.dd > 0 ? Infinity : 0,
    cosine: s.aa > 0 && s.bb > 0 ? s.ab / Math.sqrt(s.aa * s.bb) : Number.NaN,
    maxAbs: s.maxAbs,
    normA: Math.sqrt(s.aa),
    normB: Math.sqrt(s.bb),
    normDiff: Math.sqrt(s.dd),
  };
}

function sameShapes(x: LlamaConfig, y: LlamaConfig): boolean {
  const lx = new ParamLayout(x);
  const ly = new ParamLayout(y);
  return lx.entries.length === ly.entries.length && lx.entries.every((e, i) => e.name === ly.entries[i]!.name && e.shape.join(",") === ly.entries[i]!.shape.join(","));
}

function describeShape(c: LlamaConfig): string {
  return `${c.num_hidden_layers} layers, hidden ${c.hidden_size}, intermediate ${c.intermediate_size}, ${c.num_attention_heads}/${c.num_key_value_heads} heads`;
}

/** A growth record file (growth.json as `growlm grow` writes it, under any name). */
function readRecordFile(op: string, file: string): GrowthRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new GrowlmError(op, `cannot read the growth record ${file}: ${(err as Error).message}`, { cause: err });
  }
  const r = raw as Partial<GrowthRecord> | null;
  const isObject = (v: unknown): boolean => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(r) || !isObject(r!.source_config) || !isObject(r!.options) || !Array.isArray(r!.layers)) {
    throw new GrowlmError(op, `${file} is not a growlm growth record (expected source_config, options and layers)`);
  }
  return r as GrowthRecord;
}

/** Most folders followed up a lineage (a guard against a cycle of _name_or_path). */
const MAX_LINEAGE = 64;

/**
 * A folder and its ancestors: each config.json's "_name_or_path" (which `growlm finetune`
 * sets to the folder it started from, as transformers does) names the parent.
 */
function lineage(dir: string): string[] {
  const chain: string[] = [];
  let at: string | null = path.resolve(dir);
  while (at !== null && chain.length < MAX_LINEAGE && !chain.includes(at) && fs.existsSync(path.join(at, "config.json"))) {
    chain.push(at);
    const parent: unknown = readModelConfig(at).metadata._name_or_path;
    at = typeof parent === "string" && parent !== "" ? path.resolve(at, parent) : null;
  }
  return chain;
}

/**
 * The growth record for a diff: the given file (or folder's growth.json), else the first
 * growth.json up B's lineage, else up A's; null when none.
 */
function findGrowthRecord(op: string, a: string, b: string, given: string | undefined): { file: string; record: GrowthRecord } | null {
  if (given !== undefined) {
    const file = fs.existsSync(given) && fs.statSync(given).isDirectory() ? path.join(given, GROWTH_RECORD_NAME) : given;
    return { file, record: readRecordFile(op, file) };
  }
  for (const dir of [...lineage(b), ...lineage(a)]) {
    const file = path.join(dir, GROWTH_RECORD_NAME);
    if (fs.existsSync(file)) return { file, record: readRecordFile(op, file) };
  }
  return null;
}

/**
 * Compares checkpoint `b` with checkpoint `a` (Hugging Face folders), tensor by tensor (see
 * the module comment).
 */
export function diffCheckpoints(a: string, b: string, options: DiffOptions = {}): DriftReport {
  const op = "diffCheckpoints";
  const configA = readModelConfig(a);
  const configB = readModelConfig(b);
  const found = findGrowthRecord(op, a, b, options.growthRecord);
  let plan: GrowthPlan | null = null;
  let reference: "a" | "grown-a" = "a";
  if (found) {
    let source: LlamaConfig;
    try {
      source = parseLlamaConfig(found.record.source_config, `${found.file} source_config`);
      plan = planGrowth(source, found.record.options);
    } catch (err) {
      throw new GrowlmError(op, `${found.file}: cannot rebuild the growth plan: ${(err as Error).message}`, { cause: err });
    }
    if (!sameShapes(plan.target, configB)) {
      throw new GrowlmError(op, `${found.file} grows to ${describeShape(plan.target)} but ${b} has ${describeShape(configB)}`);
    }
    if (sameShapes(configA, configB)) reference = "a";
    else if (sameShapes(configA, plan.source)) reference = "grown-a";
    else throw new GrowlmError(op, `${a} (${describeShape(configA)}) is neither the source of ${found.file} (${describeShape(plan.source)}) nor shaped like ${b}`);
  } else if (!sameShapes(configA, configB)) {
    throw new GrowlmError(op, `${a} (${describeShape(configA)}) and ${b} (${describeShape(configB)}) differ in shape; give --growth_record for a grown model`);
  }
  const layoutB = new ParamLayout(configB);
  const layoutA = new ParamLayout(configA);
  const readA = (name: string): Float32Array => readTensor(a, name, new Float32Array(layoutA.entry(name).numel));
  const readB = (name: string): Float32Array => readTensor(b, name, new Float32Array(layoutB.entry(name).numel));
  const readReference = (name: string): Float32Array => (reference === "grown-a" ? growTensor(plan!, name, readA) : readA(name));
  const sourceOf = (layer: number | null): number | null => (layer === null || !plan ? null : plan.layers[layer]!.source);

  const tensors: TensorDrift[] = [];
  const layerSums = new Map<number, DriftSums>();
  const moduleSums = new Map<ModuleKind, DriftSums>();
  const gridSums = new Map<string, DriftSums>();
  const overall = emptySums();
  for (const e of layoutB.entries) {
    const sums = tensorSums(readReference(e.name), readB(e.name));
    tensors.push({ name: e.name, layer: e.layer, module: e.kind, sourceLayer: sourceOf(e.layer), shape: e.shape, ...measures(sums) });
    addSums(overall, sums);
    if (!moduleSums.has(e.kind)) moduleSums.set(e.kind, emptySums());
    addSums(moduleSums.get(e.kind)!, sums);
    if (e.layer !== null) {
      if (!layerSums.has(e.layer)) layerSums.set(e.layer, emptySums());
      addSums(layerSums.get(e.layer)!, sums);
      gridSums.set(`${e.layer}/${e.kind}`, sums);
    }
  }
  const L = configB.num_hidden_layers;
  const copies: CopyDrift[] = [];
  if (plan) {
    const bySource = new Map<number, number[]>();
    plan.layers.forEach((l, i) => {
      if (l.source !== null) bySource.set(l.source, [...(bySource.get(l.source) ?? []), i]);
    });
    for (const [source, layers] of bySource) {
      for (let x = 0; x < layers.length; x++) {
        for (let y = x + 1; y < layers.length; y++) {
          const [i, j] = [layers[x]!, layers[y]!];
          const inB = emptySums();
          const inRef = emptySums();
          const modules: Partial<Record<ModuleKind, number>> = {};
          for (const kind of LAYER_KINDS) {
            const sb = tensorSums(readB(layerParamName(i, kind)), readB(layerParamName(j, kind)));
            addSums(inB, sb);
            modules[kind] = measures(sb).relL2;
            addSums(inRef, tensorSums(readReference(layerParamName(i, kind)), readReference(layerParamName(j, kind))));
          }
          copies.push({ sourceLayer: source, layers: [i, j], b: measures(inB), reference: measures(inRef), modules });
        }
      }
    }
  }
  return {
    a,
    b,
    reference,
    growthRecord: found ? found.file : null,
    layerSources: plan ? plan.layers.map((l) => l.source) : null,
    tensors,
    layers: Array.from({ length: L }, (_, l) => ({ layer: l, sourceLayer: sourceOf(l), ...measures(layerSums.get(l)!) })),
    modules: [...moduleSums].map(([module, s]) => ({ module, ...measures(s) })),
    overall: measures(overall),
    grid: Array.from({ length: L }, (_, l) => LAYER_KINDS.map((k) => measures(gridSums.get(`${l}/${k}`)!).relL2)),
    copies,
  };
}

/** Short column labels of the heat maps. */
const SHORT: Record<string, string> = {
  q_proj: "q",
  k_proj: "k",
  v_proj: "v",
  o_proj: "o",
  gate_proj: "gate",
  up_proj: "up",
  down_proj: "down",
  input_layernorm: "in_norm",
  post_attention_layernorm: "post_norm",
};

function layerLabel(layer: number, source: number | null | undefined, grown: boolean): string {
  return grown ? `layer ${layer} ← ${source ?? "new"}` : `layer ${layer}`;
}

/** The heat map of relative L2 change, layers × module types. */
export function driftHeatmap(report: DriftReport, title: string): string {
  const grown = report.layerSources !== null;
  return heatmap({
    title,
    rows: report.layers.map((l) => layerLabel(l.layer, l.sourceLayer, grown)),
    columns: LAYER_KINDS.map((k) => SHORT[k]!),
    values: report.grid,
  });
}

/** The heat map of how far the copies of each source layer moved apart in B (rows: pairs). */
export function copiesHeatmap(report: DriftReport, title: string): string {
  return heatmap({
    title,
    rows: report.copies.map((c) => `${c.layers[0]} vs ${c.layers[1]} (← ${c.sourceLayer})`),
    columns: LAYER_KINDS.map((k) => SHORT[k]!),
    values: report.copies.map((c) => LAYER_KINDS.map((k) => c.modules[k] ?? Number.NaN)),
  });
}

/** JSON with non-finite numbers as null (JSON has no Infinity or NaN). */
export function driftJson(report: DriftReport): string {
  return `${JSON.stringify(report, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2)}\n`;
}

/** What a scenario keeps of a diff after each stage: enough for its plots and tables. */
export interface DriftSummary {
  overall: { relL2: number; cosine: number; maxAbs: number };
  modules: Partial<Record<ModuleKind, number>>;
  /** relL2 per layer. */
  layers: number[];
  /** relL2 per layer × LAYER_KINDS. */
  grid: number[][];
  layerSources: (number | null)[] | null;
  /** Mean relative L2 between copies of the same source layer in B (null without copies). */
  copyDivergence: number | null;
}

export function summarizeDrift(report: DriftReport): DriftSummary {
  const copies = report.copies.map((c) => c.b.relL2).filter(Number.isFinite);
  return {
    overall: { relL2: report.overall.relL2, cosine: report.overall.cosine, maxAbs: report.overall.maxAbs },
    modules: Object.fromEntries(report.modules.map((m) => [m.module, m.relL2])),
    layers: report.layers.map((l) => l.relL2),
    grid: report.grid,
    layerSources: report.layerSources,
    copyDivergence: copies.length > 0 ? copies.reduce((s, v) => s + v, 0) / copies.length : null,
  };
}
