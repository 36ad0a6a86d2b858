/**
 * Elastic weight consolidation (Kirkpatrick et al. 2017) in its online form (Schwarz et al.
 * 2018; Avalanche's EWC with mode "online"): after each stage the diagonal Fisher information
 * of the stage's model on the stage's training data is estimated and accumulated,
 * F ← γ·F_before + F_stage, and the next stage adds (λ/2)·Σ F·(θ − θ*)² to its objective, θ*
 * being the parameters it started from (the previous stage's model). The penalty and its
 * gradient are one fused native pass over the flat buffer (src/kernels/ewc.ts), added after
 * every micro-batch's backward and before clipping.
 *
 * The Fisher is the mean over N training examples (a seeded subset of at most `samples`) of
 * the squared gradient of the example's mean token NLL, the same per-token loss the trainer
 * minimises (so λ means the same whatever the sequence lengths):
 *   "sampled" (default, the true Fisher E_x E_{y~p_θ}[∇log p(y|x)²]): the target at every
 *            position the example's labels count is drawn from the model's own predictive
 *            distribution given the true prefix (teacher forcing), from a seeded stream;
 *   "true"   (the empirical Fisher): the example's own labels.
 * State across stages lives in the stage folders: OUTPUT_DIR/ewc_fisher.safetensors holds the
 * accumulated F (one tensor per parameter, Hugging Face names, float32), and θ* is the model
 * the stage loads, so a resumed stage sees the same penalty.
 *
 * On a CUDA model the work stays on the device: θ* and F are uploaded once per stage, the
 * penalty reads the device parameters and adds into the device gradients, and the Fisher
 * accumulates the device gradients into a device buffer, downloaded once at the end (the
 * sampled labels are drawn on the host from the head's logits, one chunk at a time).
 */
import fs from "node:fs";
import path from "node:path";

import type { TokenizedExample } from "../data/collator.js";
import { GrowlmError } from "../errors.js";
import { loadWeights } from "../io/hf.js";
import { openSafetensors, writeSafetensors } from "../io/safetensors.js";
import { add, scaleInPlace } from "../kernels/elementwise.js";
import type { Buffers } from "../device.js";
import { BufferSet } from "../model/backend.js";
import { trainFlopsPerToken } from "../model/flops.js";
import type { HostLogitsTerm, LlamaModel } from "../model/llama.js";
import type { ParamLayout } from "../model/params.js";
import { Tensor } from "../tensor.js";
import { RandomStream } from "../train/random.js";
import { STREAM_TAGS, streamKey } from "./replay.js";

export type FisherLabels = "sampled" | "true";
export const FISHER_LABELS: readonly FisherLabels[] = ["sampled", "true"];

/** The accumulated Fisher in a stage folder. */
export const EWC_FISHER_NAME = "ewc_fisher.safetensors";

export interface FisherOptions {
  labels: FisherLabels;
  /** At most this many examples (a seeded subset when the data has more). */
  samples: number;
  seed: number;
}

export interface FisherEstimate {
  /** float32 [layout.numel], the model's flat layout (padding 0). */
  fisher: Tensor<"float32">;
  examples: number;
  /** Positions whose gradient entered the estimate. */
  tokens: number;
  /** Training FLOPs of the per-example forward and backward passes (flops.ts). */
  flops: number;
}

/**
 * A LogitsTerm for a batch of one example whose labels are all ignored: at every row n with
 * counted[n] set it draws a target from softmax(logits[n]) by inverse CDF with the next
 * uniform of `draws`, and writes the NLL gradient of that target, weight·(softmax − onehot).
 * @param counted [T]: 1 where the example's own label counts
 * @param draws one uniform in [0, 1) per counted row, in row order
 */
export function sampledLabelGradient(counted: Uint8Array, draws: Float32Array, weight: number, V: number): HostLogitsTerm {
  let k = 0;
  return (rowStart, rows, logits, grad) => {
    for (let r = 0; r < rows; r++) {
      if (!counted[rowStart + r]) continue;
      const z = logits.subarray(r * V, (r + 1) * V);
      const g = grad.subarray(r * V, (r + 1) * V);
      let m = -Infinity;
      for (let j = 0; j < V; j++) m = Math.max(m, z[j]!);
      let s = 0;
      for (let j = 0; j < V; j++) s += Math.exp(z[j]! - m);
      // Inverse CDF: the first j whose cumulative mass passes u·s (the last one if rounding leaves none).
      const target = draws[k++]! * s;
      let c = 0;
      let sample = -1;
      for (let j = 0; j < V; j++) {
        const e = Math.exp(z[j]! - m);
        g[j] = (weight * e) / s;
        c += e;
        if (sample < 0 && c > target) sample = j;
      }
      if (sample < 0) sample = V - 1;
      g[sample] = g[sample]! - weight;
    }
  };
}

/**
 * The diagonal Fisher of `model` on `examples` (see the module comment): one forward and
 * backward per example, its squared gradient accumulated by the native kernel on the model's
 * device. Leaves the model's gradients dirty.
 */
export function estimateFisher(model: LlamaModel, examples: readonly TokenizedExample[], options: FisherOptions): FisherEstimate {
  const op = "estimateFisher";
  if (!FISHER_LABELS.includes(options.labels)) throw new GrowlmError(op, `labels must be one of ${FISHER_LABELS.join(", ")} but is ${JSON.stringify(options.labels)}`);
  if (!Number.isSafeInteger(options.samples) || options.samples < 1) throw new GrowlmError(op, `samples must be a positive integer but is ${options.samples}`);
  const eligible = examples.flatMap((e, i) => (e.labels.slice(1).some((l) => l !== -100) ? [i] : []));
  if (eligible.length === 0) throw new GrowlmError(op, "no example has a label that counts: the Fisher cannot be estimated");
  const chosen =
    eligible.length <= options.samples
      ? eligible
      : new RandomStream(streamKey(op, options.seed, STREAM_TAGS.fisherPick))
          .permutation(eligible.length)
          .slice(0, options.samples)
          .sort((a, b) => a - b)
          .map((k) => eligible[k]!);
  const n = model.layout.numel;
  const fisher = Tensor.zeros([n]);
  const { backend } = model.state;
  const memory = new BufferSet(backend);
  // The accumulator on the model's backend: `fisher` itself on the CPU.
  const onBackend = backend.output(fisher.data, () => memory.zeros(n, "f32"), "f32");
  const scale = 1 / chosen.length;
  const draws = new RandomStream(streamKey(op, options.seed, STREAM_TAGS.fisherLabels));
  const V = model.config.vocab_size;
  let tokens = 0;
  let flops = 0;
  try {
    for (const index of chosen) {
      const e = examples[index]!;
      const T = e.ids.length;
      const ids = Tensor.from(e.ids, [1, T], "int32");
      const counted = new Uint8Array(T);
      for (let t = 0; t + 1 < T; t++) counted[t] = e.labels[t + 1] !== -100 ? 1 : 0;
      const count = counted.reduce((sum, c) => sum + c, 0);
      model.zeroGrad();
      if (options.labels === "true") {
        const labels = Tensor.from(e.labels, [1, T], "int32");
        model.forwardBackward(ids, labels);
        labels.dispose();
      } else {
        const ignored = Tensor.from(new Int32Array(T).fill(-100), [1, T], "int32");
        const weight = 1 / count;
        model.forwardBackward(ids, ignored, { lossWeight: weight, logitsTerm: sampledLabelGradient(counted, draws.uniform(count), weight, V) });
        ignored.dispose();
      }
      ids.dispose();
      backend.ops.ewcFisherAccumulate(onBackend, model.state.grads, n, scale);
      tokens += count;
      flops += T * trainFlopsPerToken(model.config, T);
    }
    backend.download(fisher.data, onBackend);
  } catch (err) {
    fisher.dispose();
    throw err;
  } finally {
    memory.dispose();
  }
  return { fisher, examples: chosen.length, tokens, flops };
}

/** What an accumulated Fisher file records besides the tensors. */
export interface FisherRecord {
  /** Stages accumulated so far. */
  stages: number;
  labels: FisherLabels;
  decay: number;
}

/** Writes the flat Fisher `fisher` (in `layout`) to `dir`/ewc_fisher.safetensors atomically. */
export function writeFisher(dir: string, layout: ParamLayout, fisher: Tensor<"float32">, record: FisherRecord): void {
  writeSafetensors(
    path.join(dir, EWC_FISHER_NAME),
    layout.entries.map((e) => ({ name: e.name, shape: e.shape, data: fisher.data.subarray(e.offset, e.offset + e.numel) })),
    { dtype: "F32", metadata: { format: "growlm-ewc-fisher", stages: String(record.stages), labels: record.labels, decay: String(record.decay) } },
  );
}

/**
 * Reads `dir`/ewc_fisher.safetensors into a flat buffer in `layout` (null when the folder has
 * none). Every parameter of the layout must be there with its shape.
 */
export function readFisher(dir: string, layout: ParamLayout): { fisher: Tensor<"float32">; record: FisherRecord } | null {
  const op = "readFisher";
  const file = path.join(dir, EWC_FISHER_NAME);
  if (!fs.existsSync(file)) return null;
  const reader = openSafetensors(file);
  const fisher = Tensor.zeros([layout.numel]);
  try {
    if (reader.metadata.format !== "growlm-ewc-fisher") throw new GrowlmError(op, `${file} is not a growlm EWC Fisher (its metadata "format" is ${JSON.stringify(reader.metadata.format)})`);
    for (const e of layout.entries) {
      if (!reader.has(e.name)) throw new GrowlmError(op, `${file} has no tensor "${e.name}": it was estimated for another model shape`);
      const entry = reader.entry(e.name);
      if (entry.shape.join(",") !== e.shape.join(",")) {
        throw new GrowlmError(op, `${file}: tensor "${e.name}" has shape [${entry.shape.join(", ")}] but the model's is [${e.shape.join(", ")}]`);
      }
      reader.readInto(e.name, fisher.data.subarray(e.offset, e.offset + e.numel));
    }
    const stages = Number(reader.metadata.stages);
    const labels = reader.metadata.labels as FisherLabels;
    const decay = Number(reader.metadata.decay);
    if (!Number.isSafeInteger(stages) || stages < 1 || !FISHER_LABELS.includes(labels) || !(decay >= 0 && decay <= 1)) {
      throw new GrowlmError(op, `${file}: metadata must give stages (>= 1), labels (${FISHER_LABELS.join("/")}) and decay in [0, 1]`);
    }
    return { fisher, record: { stages, labels, decay } };
  } catch (err) {
    fisher.dispose();
    throw err;
  } finally {
    reader.close();
  }
}

/** The EWC term of one stage: the Fisher of the earlier stages and the parameters θ* the stage started from. */
export class EwcRegularizer {
  /** θ* and F on the model's backend: the host tensors themselves on the CPU, device copies on a GPU. */
  readonly #anchor: Buffers["f32"];
  readonly #fisher: Buffers["f32"];
  readonly #memory: BufferSet<Buffers>;

  /**
   * @param anchor θ*, float32 [layout.numel] on the host (kept: the next stage's Fisher is accumulated onto `fisher`)
   * @param fisher F, float32 [layout.numel] on the host
   * @param lambda λ >= 0 (rounded to float32 for the gradient)
   */
  constructor(
    readonly model: LlamaModel,
    readonly anchor: Tensor<"float32">,
    readonly fisher: Tensor<"float32">,
    readonly lambda: number,
  ) {
    const n = model.layout.numel;
    if (anchor.numel !== n || fisher.numel !== n) throw new GrowlmError("EwcRegularizer", `anchor and Fisher must have the model's ${n} elements`);
    if (!(lambda >= 0 && lambda <= 3.4028234663852886e38)) throw new GrowlmError("EwcRegularizer", `lambda must be in [0, 3.4028234663852886e38] (float32) but is ${lambda}`);
    const { backend } = model.state;
    this.#memory = new BufferSet(backend);
    const place = (host: Float32Array): Buffers["f32"] => {
      const onBackend = backend.output(host, () => this.#memory.alloc(n, "f32"), "f32");
      backend.upload(onBackend, host);
      return onBackend;
    };
    this.#anchor = place(anchor.data);
    this.#fisher = place(fisher.data);
  }

  /**
   * The regulariser of a stage starting from the model in `fromDir`: its accumulated Fisher
   * (null when the folder has none: the first stage) and its weights as θ*, read tensor by
   * tensor.
   */
  static open(model: LlamaModel, fromDir: string, lambda: number): { regularizer: EwcRegularizer; record: FisherRecord } | null {
    const found = readFisher(fromDir, model.layout);
    if (!found) return null;
    const anchor = Tensor.zeros([model.layout.numel]);
    try {
      loadWeights(fromDir, model.layout, anchor);
      return { regularizer: new EwcRegularizer(model, anchor, found.fisher, lambda), record: found.record };
    } catch (err) {
      anchor.dispose();
      found.fisher.dispose();
      throw err;
    }
  }

  /** grads += λ·F·(θ − θ*) on the model's device; returns (λ/2)·Σ F·(θ − θ*)². */
  addGradient(): number {
    const { backend, params, grads } = this.model.state;
    const penalty = backend.ops.ewcPenalty(grads, params, this.#anchor, this.#fisher, this.model.layout.numel, this.lambda);
    this.model.markGradsChanged();
    return penalty;
  }

  dispose(): void {
    this.#memory.dispose();
    this.anchor.dispose();
    this.fisher.dispose();
  }
}

/** F ← γ·F_before + F_stage, into `stage` (F_before unchanged). */
export function accumulateFisher(stage: Tensor<"float32">, before: Tensor<"float32"> | null, decay: number): void {
  if (!before) return;
  const scaled = Tensor.from(before.data);
  scaleInPlace(scaled, decay);
  add(stage, scaled, stage);
  scaled.dispose();
}
