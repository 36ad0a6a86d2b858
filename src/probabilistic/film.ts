/**
 * FiLM-Ensemble (Turkoglu et al., "FiLM-Ensemble: Probabilistic Deep Learning via
 * Feature-wise Linear Modulation", NeurIPS 2022) on the LLaMA decoder: M members share every
 * weight; member m owns a per-channel scale γ_m and shift β_m after each RMSNorm
 * (input_layernorm and post_attention_layernorm of every layer, and the final model.norm,
 * 2L + 1 sites):
 *
 *   out = (rmsnorm(x) ⊙ w) ⊙ γ_m + β_m
 *
 * A batch runs all members in one pass: sample b is replicated M times and row b·M + m is
 * sample b as member m sees it (the official code's repeat_interleave), so the training loss
 * is the mean over all rows (the mean over members of each member's NLL) and the prediction
 * is the mean of the members' probabilities (LlamaModel does both when a FilmEnsemble is
 * attached).
 *
 * Initialisation (initializeFilm): the paper draws γ and β with xavier_uniform_(gain = ρ),
 * which for an [M, C] tensor is U(−a, a) with a = ρ·sqrt(6 / (C + M)) (fan_in C, fan_out M).
 * A pretrained network needs γ centred on 1, so growlm draws γ = 1 + ε, β = ε' with ε, ε' from
 * that distribution: the members start as jittered copies of the pretrained function, and
 * ρ = 0 gives M exact copies of the deterministic model.
 *
 * The parameters live in one flat float32 buffer [sites, 2, M, C] (γ then β of each site),
 * with its own gradients; AdamW keeps moments for it beside the model's (no weight decay:
 * γ and β are norm parameters, centred on 1 and 0).
 *
 * Devices. An ensemble is made on the host; attaching it to a model on a CUDA device places it
 * there (LlamaModel.attachFilm calls placeOn), with the model's host-mirror scheme: the kernels
 * and the optimizer use device copies of params and grads (`state`), and `params`, `grads`,
 * gamma(), beta(), gammaGrad(), betaGrad() and tensors() are host mirrors, downloaded on access
 * after device work changed them (an optimizer step, a backward). A write to the host params is
 * made visible by markParamsChanged(), which initializeFilm calls; `grads` is a read-only
 * snapshot there. On the CPU the mirrors are the buffers themselves.
 */
import type { Buffers, Device } from "../device.js";
import { GrowlmError } from "../errors.js";
import { type ModelBackend, BufferSet, cpuBackend } from "../model/backend.js";
import type { LlamaConfig } from "../model/config.js";
import { layerParamName } from "../model/params.js";
import { binding } from "../native.js";
import { Tensor } from "../tensor.js";

/** One normalisation site: the RMSNorm weight it follows and the names of its FiLM tensors. */
export interface FilmSite {
  /** The norm's Hugging Face weight name ("model.layers.3.input_layernorm.weight"). */
  norm: string;
  /** Tensor names in film.safetensors: the norm's module name + ".film_gamma" / ".film_beta", each [M, C]. */
  gammaName: string;
  betaName: string;
}

/**
 * The sites in storage order: layer l's input_layernorm is site 2l, its
 * post_attention_layernorm site 2l + 1, the final norm site 2L.
 */
export function filmSites(config: LlamaConfig): FilmSite[] {
  const norms: string[] = [];
  for (let l = 0; l < config.num_hidden_layers; l++) {
    norms.push(layerParamName(l, "input_layernorm"), layerParamName(l, "post_attention_layernorm"));
  }
  norms.push("model.norm.weight");
  return norms.map((norm) => {
    const module = norm.slice(0, -".weight".length);
    return { norm, gammaName: `${module}.film_gamma`, betaName: `${module}.film_beta` };
  });
}

/** The Xavier-uniform bound of an [M, C] tensor: gain · sqrt(6 / (C + M)). */
export function xavierUniformBound(ensembleSize: number, hiddenSize: number, gain: number): number {
  return gain * Math.sqrt(6 / (hiddenSize + ensembleSize));
}

/** The ensemble's parameters and gradients where its kernels run (the host tensors' own arrays on the CPU). */
export interface FilmState {
  backend: ModelBackend<Buffers>;
  /** float32 [sites, 2, M, C], the layout of FilmEnsemble.params. */
  params: Buffers["f32"];
  grads: Buffers["f32"];
}

/** The members' γ and β of every site, with their gradients (see the module comment). */
export class FilmEnsemble {
  /** M, the number of members. */
  readonly ensembleSize: number;
  /** C, the channels of every site. */
  readonly hiddenSize: number;
  readonly sites: readonly FilmSite[];
  /** The film_init_gain the members were drawn with (null: unknown, e.g. loaded without it). */
  initGain: number | null = null;
  readonly #hostParams: Tensor<"float32">;
  readonly #hostGrads: Tensor<"float32">;
  #state: FilmState;
  /** The device copies (null on the CPU). */
  #memory: BufferSet<Buffers> | null = null;
  /** Kernel views of γ, β (p) and their gradients (g) per tensor k = 2·site + (β ? 1 : 0). */
  #kernelViews: { p: Buffers["f32"]; g: Buffers["f32"] }[] = [];
  /** The device copy changed since the host mirror was last downloaded. */
  #paramsStale = false;
  #gradsStale = false;
  #disposed = false;

  /** All members at γ = 1, β = 0 (each member is the deterministic model). */
  constructor(config: LlamaConfig, ensembleSize: number) {
    if (!Number.isSafeInteger(ensembleSize) || ensembleSize < 1) {
      throw new GrowlmError("FilmEnsemble", `ensemble_size must be a positive integer but is ${ensembleSize}`);
    }
    this.ensembleSize = ensembleSize;
    this.hiddenSize = config.hidden_size;
    this.sites = filmSites(config);
    this.#hostParams = Tensor.zeros([this.sites.length, 2, ensembleSize, this.hiddenSize]);
    this.#hostGrads = Tensor.zeros([this.sites.length, 2, ensembleSize, this.hiddenSize]);
    this.#state = { backend: cpuBackend as ModelBackend<Buffers>, params: this.#hostParams.data, grads: this.#hostGrads.data };
    this.#kernelViews = this.#viewsOf(this.#state);
    for (let s = 0; s < this.sites.length; s++) this.gamma(s).fill(1);
  }

  /** float32 [sites, 2, M, C]: γ then β of each site (a host mirror on a device: see the module comment). */
  get params(): Tensor<"float32"> {
    this.#checkAlive();
    if (this.#paramsStale) {
      this.#state.backend.download(this.#hostParams.data, this.#state.params);
      this.#paramsStale = false;
    }
    return this.#hostParams;
  }

  /** float32 gradients in the layout of params; the model's backward accumulates (+=). A read-only snapshot on a device. */
  get grads(): Tensor<"float32"> {
    this.#checkAlive();
    if (this.#gradsStale) {
      this.#state.backend.download(this.#hostGrads.data, this.#state.grads);
      this.#gradsStale = false;
    }
    return this.#hostGrads;
  }

  /** Where the kernels and the optimizer find the parameters and gradients. */
  get state(): FilmState {
    this.#checkAlive();
    return this.#state;
  }

  get device(): Device {
    return this.#state.backend.device;
  }

  /**
   * Moves the parameters and gradients to `backend` (the attaching model's): on a device they
   * are uploaded into device copies, which the kernels use from then on; back on the CPU the
   * host tensors are the buffers again.
   */
  placeOn(backend: ModelBackend<Buffers>): void {
    this.#checkAlive();
    if (backend.device === this.device) return;
    const params = this.params.data;
    const grads = this.grads.data;
    this.#memory?.dispose();
    this.#memory = null;
    if (backend.device === "cpu") {
      this.#state = { backend, params, grads };
    } else {
      const memory = new BufferSet(backend);
      this.#memory = memory;
      this.#state = { backend, params: memory.alloc(params.length, "f32"), grads: memory.alloc(grads.length, "f32") };
      backend.upload(this.#state.params, params);
      backend.upload(this.#state.grads, grads);
    }
    this.#kernelViews = this.#viewsOf(this.#state);
  }

  /** γ or β of site s on the ensemble's backend, [M, C], for the kernels. */
  kernelParam(site: number, which: "gamma" | "beta"): Buffers["f32"] {
    this.#checkAlive();
    return this.#kernelViews[this.offset(site, which) / this.tensorSize]!.p;
  }

  /** The gradient of γ or β of site s on the ensemble's backend, [M, C], for the kernels. */
  kernelGrad(site: number, which: "gamma" | "beta"): Buffers["f32"] {
    this.#checkAlive();
    return this.#kernelViews[this.offset(site, which) / this.tensorSize]!.g;
  }

  /** The views of every [M, C] tensor k (γ then β of each site) of `state`. */
  #viewsOf(state: FilmState): { p: Buffers["f32"]; g: Buffers["f32"] }[] {
    const n = this.tensorSize;
    const view = (b: Buffers["f32"], k: number): Buffers["f32"] => state.backend.view(b, k * n, n, "f32");
    return Array.from({ length: 2 * this.sites.length }, (_, k) => ({ p: view(state.params, k), g: view(state.grads, k) }));
  }

  /** Call after writing the host params (loading, initialisation): on a device this uploads them. */
  markParamsChanged(): void {
    this.#checkAlive();
    this.#state.backend.upload(this.#state.params, this.#hostParams.data);
    this.#paramsStale = false;
  }

  /** An optimizer updated state.params in place on the ensemble's device. */
  markParamsUpdated(): void {
    this.#paramsStale = this.device !== "cpu";
  }

  /** A backward (or a reduction) changed state.grads on the ensemble's device. */
  markGradsChanged(): void {
    this.#gradsStale = this.device !== "cpu";
  }

  /** Elements of params (and of grads): sites · 2 · M · C. */
  get numel(): number {
    return 2 * this.sites.length * this.tensorSize;
  }

  /** Elements of one [M, C] tensor. */
  get tensorSize(): number {
    return this.ensembleSize * this.hiddenSize;
  }

  /** Flat offset of site s's γ (β follows it). */
  offset(site: number, which: "gamma" | "beta"): number {
    if (!Number.isSafeInteger(site) || site < 0 || site >= this.sites.length) {
      throw new GrowlmError("FilmEnsemble", `site must be an integer in [0, ${this.sites.length}) but is ${site}`);
    }
    return (2 * site + (which === "gamma" ? 0 : 1)) * this.tensorSize;
  }

  /** γ of site s, [M, C] row-major (a view of params). */
  gamma(site: number): Float32Array {
    return this.#view(this.params, site, "gamma");
  }

  beta(site: number): Float32Array {
    return this.#view(this.params, site, "beta");
  }

  gammaGrad(site: number): Float32Array {
    return this.#view(this.grads, site, "gamma");
  }

  betaGrad(site: number): Float32Array {
    return this.#view(this.grads, site, "beta");
  }

  /** Every tensor with its file name, for checkpoints (γ and β of each site, in storage order). */
  tensors(buffer: Tensor<"float32"> = this.params): { name: string; shape: [number, number]; data: Float32Array }[] {
    this.#checkAlive();
    const shape: [number, number] = [this.ensembleSize, this.hiddenSize];
    return this.sites.flatMap((site, s) => [
      { name: site.gammaName, shape, data: buffer.data.subarray(this.offset(s, "gamma"), this.offset(s, "gamma") + this.tensorSize) },
      { name: site.betaName, shape, data: buffer.data.subarray(this.offset(s, "beta"), this.offset(s, "beta") + this.tensorSize) },
    ]);
  }

  zeroGrad(): void {
    this.#checkAlive();
    this.#state.backend.zero(this.#state.grads);
    this.markGradsChanged();
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#memory?.dispose();
    this.#memory = null;
    this.#kernelViews = [];
    this.#hostParams.dispose();
    this.#hostGrads.dispose();
  }

  #view(buffer: Tensor<"float32">, site: number, which: "gamma" | "beta"): Float32Array {
    this.#checkAlive();
    const o = this.offset(site, which);
    return buffer.data.subarray(o, o + this.tensorSize);
  }

  #checkAlive(): void {
    if (this.#disposed) throw new GrowlmError("FilmEnsemble", "used after dispose()");
  }
}

/**
 * Draws every member's γ = 1 + ε and β = ε' (ε, ε' ~ U(−a, a), a = xavierUniformBound(M, C,
 * gain)) from the Philox stream of `seed`: tensor k (γ then β of each site, in storage
 * order) takes stream elements [k·M·C, (k + 1)·M·C), so a tensor's values do not depend on
 * the others. gain 0 gives γ = 1 and β = 0 exactly.
 */
export function initializeFilm(film: FilmEnsemble, seed: number, gain: number): void {
  const op = "initializeFilm";
  if (!Number.isFinite(gain) || gain < 0) throw new GrowlmError(op, `film_init_gain must be a finite number >= 0 but is ${gain}`);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new GrowlmError(op, `seed must be an integer >= 0 but is ${seed}`);
  const a = xavierUniformBound(film.ensembleSize, film.hiddenSize, gain);
  for (let s = 0; s < film.sites.length; s++) {
    for (const which of ["gamma", "beta"] as const) {
      const view = which === "gamma" ? film.gamma(s) : film.beta(s);
      if (a === 0) {
        view.fill(which === "gamma" ? 1 : 0);
        continue;
      }
      binding.rngUniform(view, view.length, seed, film.offset(s, which), -a, a);
      if (which === "gamma") for (let i = 0; i < view.length; i++) view[i] = 1 + view[i]!;
    }
  }
  film.markParamsChanged();
  film.initGain = gain;
}
