/**
 * AdamW over a model's flat parameter buffer (torch.optim.AdamW's update, one fused native
 * pass), with Hugging Face's gradient clipping folded into the same pass: the clipping
 * coefficient min(1, max_norm / (‖g‖ + 1e-6)) multiplies every gradient as it is read,
 * which is what torch.nn.utils.clip_grad_norm_ followed by the step computes.
 *
 * A model with a FiLM-Ensemble attached (src/probabilistic/film.ts) has a second flat buffer,
 * its members' γ and β: AdamW keeps moments for it too (filmM, filmV; no weight decay: γ and
 * β are norm parameters), and the clipped norm is the norm over both buffers.
 */
import { GrowlmError } from "../errors.js";
import { adamwStep, globalGradNorm } from "../kernels/adamw.js";
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

export class AdamW {
  /** First and second moments, flat, in the model's layout (exp_avg, exp_avg_sq). */
  readonly m: Tensor<"float32">;
  readonly v: Tensor<"float32">;
  /** Moments of the FiLM-Ensemble's parameters (null without one; attach it before creating the optimizer). */
  readonly filmM: Tensor<"float32"> | null;
  readonly filmV: Tensor<"float32"> | null;
  /** Updates taken so far (torch's `step` state). */
  step = 0;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly maxGradNorm: number;
  readonly #segments: { begin: number; end: number; decay: boolean }[];

  constructor(readonly model: LlamaModel, options: AdamwOptions = {}) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.maxGradNorm = options.maxGradNorm ?? 1;
    if (!(this.maxGradNorm >= 0)) throw new GrowlmError("AdamW", `max_grad_norm must be >= 0 but is ${this.maxGradNorm}`);
    this.m = Tensor.zeros([model.layout.numel]);
    this.v = Tensor.zeros([model.layout.numel]);
    this.#segments = model.layout.decaySegments();
    this.filmM = model.film ? Tensor.zeros([model.film.params.numel]) : null;
    this.filmV = model.film ? Tensor.zeros([model.film.params.numel]) : null;
  }

  /** One update with learning rate `lr` from the model's accumulated gradients. */
  update(lr: number): StepStats {
    const model = this.model;
    const film = model.film;
    if ((film === null) !== (this.filmM === null) || (film && film.params.numel !== this.filmM!.numel)) {
      throw new GrowlmError("AdamW.update", "the model's FiLM-Ensemble changed since the optimizer was created");
    }
    const gradNorm = film ? Math.hypot(globalGradNorm(model.grads), globalGradNorm(film.grads)) : globalGradNorm(model.grads);
    let gradScale = 1;
    if (this.maxGradNorm > 0 && Number.isFinite(this.maxGradNorm)) {
      // torch: clip_coef = max_norm / (total_norm + 1e-6) in float32, clamped to 1.
      const coef = Math.fround(this.maxGradNorm / Math.fround(Math.fround(gradNorm) + 1e-6));
      gradScale = Number.isNaN(coef) ? Number.NaN : Math.min(1, coef);
    }
    if (!Number.isFinite(gradScale)) {
      throw new GrowlmError("AdamW.update", `the gradient norm is ${gradNorm}: refusing to write non-finite parameters`);
    }
    this.step += 1;
    adamwStep(
      { params: model.params, grads: model.grads, m: this.m, v: this.v, ...(model.paramsBf16 ? { paramsBf16: model.paramsBf16 } : {}) },
      this.#segments,
      { lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay, step: this.step, gradScale },
    );
    if (film) {
      const flat = (t: Tensor<"float32">): Tensor<"float32"> => t.reshape([t.numel]);
      adamwStep(
        { params: flat(film.params), grads: flat(film.grads), m: this.filmM!, v: this.filmV! },
        [{ begin: 0, end: film.params.numel, decay: false }],
        { lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: this.weightDecay, step: this.step, gradScale },
      );
    }
    if (model.paramsBf16) model.markBf16Fresh();
    else model.markParamsChanged();
    return { gradNorm, lr };
  }

  dispose(): void {
    this.m.dispose();
    this.v.dispose();
    this.filmM?.dispose();
    this.filmV?.dispose();
  }
}
