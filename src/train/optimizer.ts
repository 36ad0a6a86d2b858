/**
 * AdamW over a model's flat parameter buffer (torch.optim.AdamW's update, one fused native
 * pass), with Hugging Face's gradient clipping folded into the same pass: the clipping
 * coefficient min(1, max_norm / (‖g‖ + 1e-6)) multiplies every gradient as it is read,
 * which is what torch.nn.utils.clip_grad_norm_ followed by the step computes.
 *
 * A model with a FiLM-Ensemble attached (src/probabilistic/film.ts) has a second flat buffer,
 * its members' γ and β: AdamW keeps moments for it too (filmM, filmV; no weight decay: γ and
 * β are norm parameters), and the clipped norm is the norm over both buffers.
 *
 * The update runs where the model is (LlamaModel.device): the moments live there too, and on
 * a CUDA device the norm and the step are binding.cuda's ops on the model's device buffers
 * (the model's state), so no parameter crosses to the host during training. `m` and `v` are
 * then host mirrors as the model's `params` are: downloaded on access after a step, uploaded
 * by markMomentsChanged() after a write (resuming, growth). The FiLM-Ensemble's parameters
 * live on the model's device too (FilmEnsemble.state), and so do their moments (`filmM`,
 * `filmV` are host mirrors the same way).
 */
import type { Buffers } from "../device.js";
import { GrowlmError } from "../errors.js";
import { type ModelBackend, BufferSet } from "../model/backend.js";
import type { LlamaModel } from "../model/llama.js";
import { Tensor } from "../tensor.js";

export interface AdamwOptions {
  /** Hugging Face TrainingArguments defaults: 0.9, 0.999, 1e-8, weight decay 0. */
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Clip the global gradient norm to this (0 or Infinity: no clipping; HF default 1). */
  maxGradNorm?: number;
}

export interface StepStats {
  /** Global L2 norm of the gradient before clipping. */
  gradNorm: number;
  lr: number;
}

/** AdamW's state for a FiLM-Ensemble's flat buffer (see AdamW's #film). */
interface FilmMoments {
  hostM: Tensor<"float32">;
  hostV: Tensor<"float32">;
  m: Buffers["f32"];
  v: Buffers["f32"];
  segBegin: Buffers["i64"];
  segDecay: Buffers["u8"];
}

export class AdamW {
  /** The moments on the model's device (the host tensors themselves on the CPU). */
  readonly #m: Buffers["f32"];
  readonly #v: Buffers["f32"];
  readonly #hostM: Tensor<"float32">;
  readonly #hostV: Tensor<"float32">;
  /** A step changed the device moments since the host mirrors were downloaded. */
  #momentsMirrorStale = false;
  /**
   * Moments of the FiLM-Ensemble's parameters (null without one; attach it before creating the
   * optimizer): host tensors, with their copies on the model's device and the one
   * no-decay segment the kernel takes, [0, n).
   */
  readonly #film: FilmMoments | null;
  /** Updates taken so far (torch's `step` state). */
  step = 0;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly maxGradNorm: number;
  readonly #memory: BufferSet<Buffers>;
  /** The layout's decay segments as the kernel takes them: begins (and the end) [S + 1], flags [S]. */
  readonly #segBegin: Buffers["i64"];
  readonly #segDecay: Buffers["u8"];

  constructor(readonly model: LlamaModel, options: AdamwOptions = {}) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.maxGradNorm = options.maxGradNorm ?? 1;
    if (!(this.maxGradNorm >= 0)) throw new GrowlmError("AdamW", `max_grad_norm must be >= 0 but is ${this.maxGradNorm}`);
    for (const [name, value] of [["beta1", this.beta1], ["beta2", this.beta2]] as const) {
      if (!(value >= 0 && value < 1)) throw new GrowlmError("AdamW", `${name} must be in [0, 1) but is ${value}`);
    }
    if (!(this.eps > 0 && Number.isFinite(this.eps))) throw new GrowlmError("AdamW", `eps must be finite and > 0 but is ${this.eps}`);
    if (!(this.weightDecay >= 0 && Number.isFinite(this.weightDecay))) throw new GrowlmError("AdamW", `weight_decay must be finite and >= 0 but is ${this.weightDecay}`);
    const { backend } = model.state;
    this.#memory = new BufferSet(backend);
    const n = model.layout.numel;
    this.#hostM = Tensor.zeros([n]);
    this.#hostV = Tensor.zeros([n]);
    const onDevice = model.device !== "cpu";
    this.#m = onDevice ? this.#memory.zeros(n, "f32") : this.#hostM.data;
    this.#v = onDevice ? this.#memory.zeros(n, "f32") : this.#hostV.data;
    const segments = model.layout.decaySegments();
    const begins = BigInt64Array.from([...segments.map((s) => BigInt(s.begin)), BigInt(n)]);
    const decay = Uint8Array.from(segments, (s) => (s.decay ? 1 : 0));
    this.#segBegin = backend.input(begins, () => this.#memory.alloc(begins.length, "i64"), "i64");
    this.#segDecay = backend.input(decay, () => this.#memory.alloc(decay.length, "u8"), "u8");
    this.#film = model.film ? this.#filmMoments(backend, model.film.numel) : null;
  }

  #filmMoments(backend: ModelBackend<Buffers>, n: number): FilmMoments {
    const hostM = Tensor.zeros([n]);
    const hostV = Tensor.zeros([n]);
    const onDevice = backend.device !== "cpu";
    const begins = BigInt64Array.from([0n, BigInt(n)]);
    const decay = Uint8Array.from([0]);
    return {
      hostM, hostV,
      m: onDevice ? this.#memory.zeros(n, "f32") : hostM.data,
      v: onDevice ? this.#memory.zeros(n, "f32") : hostV.data,
      segBegin: backend.input(begins, () => this.#memory.alloc(begins.length, "i64"), "i64"),
      segDecay: backend.input(decay, () => this.#memory.alloc(decay.length, "u8"), "u8"),
    };
  }

  /** First moment of the FiLM-Ensemble's parameters (null without one), in their layout: a host mirror on a CUDA device. */
  get filmM(): Tensor<"float32"> | null {
    this.#syncMoments();
    return this.#film?.hostM ?? null;
  }

  /** Second moment of the FiLM-Ensemble's parameters (null without one): a host mirror on a CUDA device. */
  get filmV(): Tensor<"float32"> | null {
    this.#syncMoments();
    return this.#film?.hostV ?? null;
  }

  /** First moment (exp_avg), flat, in the model's layout: a host mirror on a CUDA device (see the module comment). */
  get m(): Tensor<"float32"> {
    this.#syncMoments();
    return this.#hostM;
  }

  /** Second moment (exp_avg_sq), flat, in the model's layout: a host mirror on a CUDA device. */
  get v(): Tensor<"float32"> {
    this.#syncMoments();
    return this.#hostV;
  }

  /** Call after writing `m` or `v` directly (resuming, growth): on a CUDA device this uploads them. */
  markMomentsChanged(): void {
    const { backend } = this.model.state;
    backend.upload(this.#m, this.#hostM.data);
    backend.upload(this.#v, this.#hostV.data);
    if (this.#film) {
      backend.upload(this.#film.m, this.#film.hostM.data);
      backend.upload(this.#film.v, this.#film.hostV.data);
    }
    this.#momentsMirrorStale = false;
  }

  #syncMoments(): void {
    if (!this.#momentsMirrorStale) return;
    const { backend } = this.model.state;
    backend.download(this.#hostM.data, this.#m);
    backend.download(this.#hostV.data, this.#v);
    if (this.#film) {
      backend.download(this.#film.hostM.data, this.#film.m);
      backend.download(this.#film.hostV.data, this.#film.v);
    }
    this.#momentsMirrorStale = false;
  }

  /** One update with learning rate `lr` from the model's accumulated gradients. */
  update(lr: number): StepStats {
    const model = this.model;
    const film = model.film;
    const filmMoments = this.#film;
    if ((film === null) !== (filmMoments === null) || (film && film.numel !== filmMoments!.hostM.numel)) {
      throw new GrowlmError("AdamW.update", "the model's FiLM-Ensemble changed since the optimizer was created");
    }
    const { backend, params, grads, paramsBf16 } = model.state;
    const n = model.layout.numel;
    const filmN = filmMoments?.hostM.numel ?? 0;
    const modelNorm = backend.ops.globalGradNorm(grads, n);
    const gradNorm = film ? Math.hypot(modelNorm, backend.ops.globalGradNorm(film.state.grads, filmN)) : modelNorm;
    let gradScale = 1;
    if (this.maxGradNorm > 0 && Number.isFinite(this.maxGradNorm)) {
      // torch: clip_coef = max_norm / (total_norm + 1e-6) in float32, clamped to 1.
      const coef = Math.fround(this.maxGradNorm / Math.fround(Math.fround(gradNorm) + 1e-6));
      gradScale = Number.isNaN(coef) ? Number.NaN : Math.min(1, coef);
    }
    if (!Number.isFinite(gradScale)) {
      throw new GrowlmError("AdamW.update", `the gradient norm is ${gradNorm}: refusing to write non-finite parameters`);
    }
    if (!(lr >= 0 && Number.isFinite(lr))) throw new GrowlmError("AdamW.update", `the learning rate must be finite and >= 0 but is ${lr}`);
    this.step += 1;
    backend.ops.adamwStep(
      params, this.#m, this.#v, paramsBf16, grads, n, this.#segBegin, this.#segDecay,
      lr, this.beta1, this.beta2, this.eps, this.weightDecay, this.step, gradScale,
    );
    if (film && filmMoments) {
      backend.ops.adamwStep(
        film.state.params, filmMoments.m, filmMoments.v, null, film.state.grads, filmN, filmMoments.segBegin, filmMoments.segDecay,
        lr, this.beta1, this.beta2, this.eps, this.weightDecay, this.step, gradScale,
      );
      film.markParamsUpdated();
    }
    model.markParamsUpdated(paramsBf16 !== null);
    this.#momentsMirrorStale = model.device !== "cpu";
    return { gradNorm, lr };
  }

  dispose(): void {
    this.#memory.dispose();
    this.#hostM.dispose();
    this.#hostV.dispose();
    this.#film?.hostM.dispose();
    this.#film?.hostV.dispose();
  }
}
