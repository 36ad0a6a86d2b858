/**
 * A probabilistic model on disk is a standard Hugging Face directory (transformers loads its
 * shared weights unchanged) plus two growlm files:
 *
 * - probabilistic.json: the mode, e.g. {"method": "film", "ensemble_size": 4,
 *   "film_init_gain": 0.5} or {"method": "mc_dropout", "dropout": 0.1, "mc_samples": 10,
 *   "mc_seed": 0}; a FiLM-Ensemble may also carry a training "dropout".
 * - film.safetensors (FiLM only): every member's γ and β, one [M, C] F32 tensor per site,
 *   named after the norm they follow ("model.layers.0.input_layernorm.film_gamma", ...,
 *   "model.norm.film_beta").
 *
 * loadPretrained and savePretrained read and write them, so every command that loads a model
 * (predict, harness, score, continual, finetune) gets the ensemble; a plain model's save
 * removes stale ones.
 */
import fs from "node:fs";
import path from "node:path";

import { GrowlmError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { openSafetensors, writeSafetensors } from "../io/safetensors.js";
import type { LlamaModel } from "../model/llama.js";
import { FilmEnsemble } from "./film.js";

/** The growlm files of a probabilistic model directory. */
export const PROBABILISTIC_CONFIG_NAME = "probabilistic.json";
export const FILM_WEIGHTS_NAME = "film.safetensors";

/** probabilistic.json. */
export type ProbabilisticConfig =
  | { method: "film"; ensemble_size: number; film_init_gain?: number; dropout?: number }
  | { method: "mc_dropout"; dropout: number; mc_samples: number; mc_seed: number };

/** The mode of `model` as probabilistic.json states it (null: a plain deterministic model). */
export function probabilisticConfigOf(model: LlamaModel): ProbabilisticConfig | null {
  const film = model.film;
  if (film) {
    return {
      method: "film",
      ensemble_size: film.ensembleSize,
      ...(film.initGain !== null ? { film_init_gain: film.initGain } : {}),
      ...(model.dropout > 0 ? { dropout: model.dropout } : {}),
    };
  }
  const mc = model.mcDropout;
  if (mc && model.dropout > 0) return { method: "mc_dropout", dropout: model.dropout, mc_samples: mc.samples, mc_seed: mc.seed };
  return null;
}

/** Writes (or, for a plain model, removes) probabilistic.json and film.safetensors in `dir`. */
export function saveProbabilistic(model: LlamaModel, dir: string): void {
  const config = probabilisticConfigOf(model);
  const configFile = path.join(dir, PROBABILISTIC_CONFIG_NAME);
  const filmFile = path.join(dir, FILM_WEIGHTS_NAME);
  if (model.film) {
    writeSafetensors(filmFile, model.film.tensors(), { dtype: "F32", metadata: { format: "pt", ensemble_size: String(model.film.ensembleSize) } });
  } else {
    fs.rmSync(filmFile, { force: true });
  }
  if (config) writeFileAtomic("saveProbabilistic", configFile, `${JSON.stringify(config, null, 2)}\n`);
  else fs.rmSync(configFile, { force: true });
}

/** Reads and checks `dir`/probabilistic.json; null when there is none. */
export function readProbabilisticConfig(dir: string): ProbabilisticConfig | null {
  const op = "readProbabilisticConfig";
  const file = path.join(dir, PROBABILISTIC_CONFIG_NAME);
  if (!fs.existsSync(file)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new GrowlmError(op, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new GrowlmError(op, `${file}: expected a JSON object`);
  const o = raw as Record<string, unknown>;
  const count = (key: string): number => {
    const v = o[key];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new GrowlmError(op, `${file}: "${key}" must be a non-negative integer but is ${JSON.stringify(v)}`);
    return v;
  };
  const probability = (key: string): number => {
    const v = o[key];
    if (typeof v !== "number" || !(v >= 0 && v < 1)) throw new GrowlmError(op, `${file}: "${key}" must be a number in [0, 1) but is ${JSON.stringify(v)}`);
    return v;
  };
  const known = (keys: string[]): void => {
    const unknown = Object.keys(o).filter((k) => !keys.includes(k));
    if (unknown.length > 0) throw new GrowlmError(op, `${file}: unknown field(s) ${unknown.map((k) => `"${k}"`).join(", ")}`);
  };
  if (o.method === "film") {
    known(["method", "ensemble_size", "film_init_gain", "dropout"]);
    const size = count("ensemble_size");
    if (size < 1) throw new GrowlmError(op, `${file}: "ensemble_size" must be >= 1`);
    const gain = o.film_init_gain;
    if (gain !== undefined && (typeof gain !== "number" || !(gain >= 0) || !Number.isFinite(gain))) {
      throw new GrowlmError(op, `${file}: "film_init_gain" must be a finite number >= 0 but is ${JSON.stringify(gain)}`);
    }
    return {
      method: "film",
      ensemble_size: size,
      ...(gain !== undefined ? { film_init_gain: gain as number } : {}),
      ...(o.dropout !== undefined ? { dropout: probability("dropout") } : {}),
    };
  }
  if (o.method === "mc_dropout") {
    known(["method", "dropout", "mc_samples", "mc_seed"]);
    const samples = count("mc_samples");
    if (samples < 1) throw new GrowlmError(op, `${file}: "mc_samples" must be >= 1`);
    return { method: "mc_dropout", dropout: probability("dropout"), mc_samples: samples, mc_seed: o.mc_seed === undefined ? 0 : count("mc_seed") };
  }
  throw new GrowlmError(op, `${file}: "method" must be "film" or "mc_dropout" but is ${JSON.stringify(o.method)}`);
}

/** Reads film.safetensors of `dir` into a new ensemble of the config's size (names and shapes checked). */
export function readFilm(dir: string, model: LlamaModel, ensembleSize: number): FilmEnsemble {
  const op = "readFilm";
  const file = path.join(dir, FILM_WEIGHTS_NAME);
  if (!fs.existsSync(file)) throw new GrowlmError(op, `${dir}/${PROBABILISTIC_CONFIG_NAME} describes a FiLM-Ensemble but ${file} is missing`);
  const film = new FilmEnsemble(model.config, ensembleSize);
  try {
    const reader = openSafetensors(file);
    try {
      const expected = film.tensors();
      const names = new Set(expected.map((t) => t.name));
      const unexpected = reader.entries.map((e) => e.name).filter((n) => !names.has(n));
      if (unexpected.length > 0) throw new GrowlmError(op, `${file}: unexpected tensor(s) ${unexpected.slice(0, 5).map((n) => `"${n}"`).join(", ")}`);
      for (const t of expected) {
        if (!reader.has(t.name)) throw new GrowlmError(op, `${file}: missing tensor "${t.name}"`);
        const entry = reader.entry(t.name);
        if (entry.shape.join(",") !== t.shape.join(",")) {
          throw new GrowlmError(op, `${file}: tensor "${t.name}" has shape [${entry.shape.join(", ")}] but the ensemble's is [${t.shape.join(", ")}] (ensemble_size ${ensembleSize}, hidden_size ${model.config.hidden_size})`);
        }
        reader.readInto(t.name, t.data);
      }
    } finally {
      reader.close();
    }
  } catch (err) {
    film.dispose();
    throw err;
  }
  return film;
}

/** Applies `dir`'s probabilistic.json (and film.safetensors) to a model loaded from `dir`; a directory without one leaves it plain. */
export function loadProbabilistic(model: LlamaModel, dir: string): ProbabilisticConfig | null {
  const config = readProbabilisticConfig(dir);
  if (!config) return null;
  if (config.method === "film") {
    const film = readFilm(dir, model, config.ensemble_size);
    film.initGain = config.film_init_gain ?? null;
    model.attachFilm(film);
    if (config.dropout !== undefined) model.setDropout(config.dropout);
  } else {
    model.setDropout(config.dropout);
    model.setMcDropout({ samples: config.mc_samples, seed: config.mc_seed });
  }
  return config;
}
