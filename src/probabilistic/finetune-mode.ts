/**
 * The fine-tuning modes of `growlm finetune --probabilistic`:
 *
 * - none: deterministic fine-tuning (the study's). `--dropout p` may still regularise training;
 *   inference stays deterministic.
 * - film: FiLM-Ensemble of `--ensemble_size` M members (default 4). A plain model gets members
 *   drawn with `--film_init_gain` ρ (default 1, the paper's cbn_gain) from `--seed`; a model
 *   that is already an ensemble (the previous stage of a continual scenario) keeps its members.
 * - mc_dropout: dropout `--dropout p` on every attention and MLP output in training and at
 *   inference, where `--mc_samples` S samples (default 10) are averaged.
 *
 * Without --probabilistic the model keeps the mode it was saved with (probabilistic.json).
 */
import { GrowlmError } from "../errors.js";
import type { LlamaModel } from "../model/llama.js";
import { FilmEnsemble, initializeFilm } from "./film.js";

/** The values of --probabilistic. */
export const PROBABILISTIC_METHODS = ["none", "film", "mc_dropout"] as const;
export type ProbabilisticMethod = (typeof PROBABILISTIC_METHODS)[number];

/** The finetune options of this module (null: not given, keep the model's or use the default). */
export interface ProbabilisticFinetuneOptions {
  probabilistic: ProbabilisticMethod | null;
  ensembleSize: number | null;
  filmInitGain: number;
  dropout: number | null;
  mcSamples: number | null;
}

/** --ensemble_size (M), --film_init_gain (ρ, the paper's cbn_gain default) and --mc_samples (S) when not given. */
export const DEFAULT_ENSEMBLE_SIZE = 4;
export const DEFAULT_FILM_INIT_GAIN = 1;
export const DEFAULT_MC_SAMPLES = 10;

/** The mode a loaded model is in. */
export function methodOf(model: LlamaModel): ProbabilisticMethod {
  if (model.film) return "film";
  return model.mcDropout && model.dropout > 0 ? "mc_dropout" : "none";
}

/**
 * Puts a freshly loaded `model` into the requested mode before its optimizer is created (the
 * optimizer allocates moments for the FiLM parameters it finds). The dropout stream is the
 * trainer's and is attached afterwards (model.setDropout(model.dropout, trainer.rng)).
 * @param seed draws new FiLM members
 * @returns the method in effect
 */
export function prepareProbabilisticModel(model: LlamaModel, options: ProbabilisticFinetuneOptions, seed: number): ProbabilisticMethod {
  const op = "finetune";
  const current = methodOf(model);
  const method = options.probabilistic ?? current;
  if (current !== "none" && method !== current) {
    throw new GrowlmError(op, `the model is a ${current === "film" ? "FiLM-Ensemble" : "MC-dropout model"} but --probabilistic is ${method}; fine-tune it as ${current}${current === "film" ? " or export a member first (growlm export-member)" : ""}`);
  }
  if (options.dropout !== null && !(options.dropout >= 0 && Math.fround(options.dropout) < 1)) {
    throw new GrowlmError(op, `--dropout must be in [0, 1) but is ${options.dropout}`);
  }
  for (const [flag, value] of [["ensemble_size", options.ensembleSize], ["mc_samples", options.mcSamples]] as const) {
    if (value !== null && (!Number.isSafeInteger(value) || value < 1)) throw new GrowlmError(op, `--${flag} must be a positive integer but is ${value}`);
  }
  if (method === "film") {
    const film = model.film;
    if (film) {
      if (options.ensembleSize !== null && options.ensembleSize !== film.ensembleSize) {
        throw new GrowlmError(op, `the model is a FiLM-Ensemble of ${film.ensembleSize} members but --ensemble_size is ${options.ensembleSize}`);
      }
    } else {
      const fresh = new FilmEnsemble(model.config, options.ensembleSize ?? DEFAULT_ENSEMBLE_SIZE);
      initializeFilm(fresh, seed, options.filmInitGain);
      model.attachFilm(fresh);
    }
    if (options.dropout !== null) model.setDropout(options.dropout);
    return method;
  }
  if (method === "mc_dropout") {
    const p = options.dropout ?? model.dropout;
    if (!(p > 0)) throw new GrowlmError(op, "--probabilistic mc_dropout needs --dropout p > 0");
    model.setDropout(p);
    model.setMcDropout({ samples: options.mcSamples ?? model.mcDropout?.samples ?? DEFAULT_MC_SAMPLES, seed: model.mcDropout?.seed ?? seed });
    return method;
  }
  if (options.ensembleSize !== null || options.mcSamples !== null) {
    throw new GrowlmError(op, "--ensemble_size and --mc_samples need --probabilistic film or mc_dropout");
  }
  if (options.dropout !== null) model.setDropout(options.dropout);
  return method;
}
