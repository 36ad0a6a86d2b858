/**
 * Training checkpoints: a Hugging Face model directory (float32 weights, so resuming is
 * exact) plus the optimizer moments (optimizer.safetensors: exp_avg.<param> and
 * exp_avg_sq.<param> under the parameters' names) and trainer_state.json (Hugging Face's
 * global_step and log_history, and growlm's optimizer step, hyperparameters, schedule and
 * random-stream position). Resuming at step k and training to n gives bitwise the
 * parameters of an uninterrupted run. A FiLM-Ensemble's moments sit in optimizer.safetensors
 * under its tensors' names (exp_avg.model.norm.film_gamma, ...).
 *
 * The directory is written whole under a temporary name and renamed into place, so a crash
 * leaves the previous checkpoint or the new one.
 */
import fs from "node:fs";
import path from "node:path";

import { GrowlmError } from "../errors.js";
import { readModelConfig } from "../io/hf.js";
import { temporaryPath, writeFileAtomic } from "../io/atomic.js";
import { openSafetensors, writeSafetensors } from "../io/safetensors.js";
import type { LlamaModelOptions } from "../model/llama.js";
import { loadPretrained, savePretrained } from "../model/pretrained.js";
import type { LrScheduleConfig } from "./lr.js";
import type { AdamwOptions } from "./optimizer.js";
import type { RandomState } from "./random.js";
import { Trainer } from "./trainer.js";

export const TRAINER_STATE_NAME = "trainer_state.json";
export const OPTIMIZER_STATE_NAME = "optimizer.safetensors";

/** trainer_state.json: Hugging Face's fields plus what growlm needs to resume exactly. */
export interface TrainerStateJson {
  [field: string]: unknown;
  global_step: number;
  max_steps: number;
  log_history: Record<string, number>[];
  growlm: {
    optimizer: Required<AdamwOptions> & { step: number };
    schedule: LrScheduleConfig;
    /** Trainer.scheduleOffset (absent in checkpoints written before it existed: 0). */
    scheduleOffset?: number;
    rng: RandomState;
  };
}

export interface TrainingCheckpointExtras {
  /** Hugging Face's log_history entries so far. */
  logHistory?: Record<string, number>[];
  /** More trainer_state.json fields (epoch, logging_steps, ...: what the Trainer around this one knows). */
  state?: Record<string, unknown>;
  /** Files copied into the checkpoint (e.g. the tokenizer's), by path. */
  copyFiles?: readonly string[];
}

/** Writes `trainer`'s model, optimizer state and position to `dir` (replacing it atomically). */
export function saveTrainingCheckpoint(dir: string, trainer: Trainer, extras: TrainingCheckpointExtras = {}): void {
  const op = "saveTrainingCheckpoint";
  const { model, optimizer } = trainer;
  const staging = temporaryPath(path.resolve(dir));
  fs.mkdirSync(staging, { recursive: true });
  try {
    savePretrained(model, staging, { dtype: "float32" });
    const moments = model.layout.entries.flatMap((e) => [
      { name: `exp_avg.${e.name}`, shape: e.shape, data: optimizer.m.data.subarray(e.offset, e.offset + e.numel) },
      { name: `exp_avg_sq.${e.name}`, shape: e.shape, data: optimizer.v.data.subarray(e.offset, e.offset + e.numel) },
    ]);
    if (model.film && optimizer.filmM && optimizer.filmV) {
      const [m, v] = [model.film.tensors(optimizer.filmM), model.film.tensors(optimizer.filmV)];
      m.forEach((t, i) => moments.push({ ...t, name: `exp_avg.${t.name}` }, { ...v[i]!, name: `exp_avg_sq.${t.name}` }));
    }
    writeSafetensors(path.join(staging, OPTIMIZER_STATE_NAME), moments, { dtype: "F32", metadata: { step: String(optimizer.step) } });
    for (const file of extras.copyFiles ?? []) fs.copyFileSync(file, path.join(staging, path.basename(file)));
    const state: TrainerStateJson = {
      ...extras.state,
      global_step: trainer.step,
      max_steps: trainer.schedule.config.totalSteps,
      log_history: extras.logHistory ?? [],
      growlm: {
        optimizer: {
          beta1: optimizer.beta1,
          beta2: optimizer.beta2,
          eps: optimizer.eps,
          weightDecay: optimizer.weightDecay,
          maxGradNorm: optimizer.maxGradNorm,
          step: optimizer.step,
        },
        schedule: { ...trainer.schedule.config },
        scheduleOffset: trainer.scheduleOffset,
        rng: trainer.rng.state(),
      },
    };
    writeFileAtomic(op, path.join(staging, TRAINER_STATE_NAME), `${JSON.stringify(state, null, 2)}\n`);
    replaceDirectory(op, staging, dir);
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw err;
  }
}

/** Renames `staging` to `dir`; an existing `dir` is moved aside first and removed after. */
function replaceDirectory(op: string, staging: string, dir: string): void {
  const old = fs.existsSync(dir) ? temporaryPath(path.resolve(dir)) : null;
  try {
    if (old) fs.renameSync(dir, old);
    fs.renameSync(staging, dir);
  } catch (err) {
    if (old && !fs.existsSync(dir)) fs.renameSync(old, dir);
    throw new GrowlmError(op, `cannot replace ${dir}: ${(err as Error).message}`, { cause: err });
  }
  if (old) fs.rmSync(old, { recursive: true, force: true });
}

function readTrainerState(dir: string): TrainerStateJson {
  const op = "loadTrainingCheckpoint";
  const file = path.join(dir, TRAINER_STATE_NAME);
  let state: TrainerStateJson;
  try {
    state = JSON.parse(fs.readFileSync(file, "utf8")) as TrainerStateJson;
  } catch (err) {
    throw new GrowlmError(op, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const g = state?.growlm;
  const ok =
    typeof g === "object" &&
    g !== null &&
    Number.isSafeInteger(g.optimizer?.step) &&
    typeof g.schedule?.type === "string" &&
    Number.isSafeInteger(g.rng?.seed) &&
    Number.isSafeInteger(g.rng?.offset);
  if (!ok) throw new GrowlmError(op, `${file} lacks growlm's optimizer step, schedule or random state (not a growlm training checkpoint)`);
  return state;
}

/**
 * Rebuilds the model and trainer of a checkpoint written by saveTrainingCheckpoint, at the
 * step it was saved. `options` chooses how the model computes (recompute, bf16 products).
 */
export function loadTrainingCheckpoint(dir: string, options: LlamaModelOptions = {}): { trainer: Trainer; state: TrainerStateJson } {
  const op = "loadTrainingCheckpoint";
  const state = readTrainerState(dir);
  readModelConfig(dir);
  const model = loadPretrained(dir, options);
  const { step, ...hyper } = state.growlm.optimizer;
  const trainer = new Trainer(model, {
    schedule: state.growlm.schedule,
    optimizer: hyper,
    seed: state.growlm.rng.seed,
    scheduleOffset: state.growlm.scheduleOffset ?? 0,
  });
  try {
    const file = path.join(dir, OPTIMIZER_STATE_NAME);
    const reader = openSafetensors(file);
    try {
      for (const e of model.layout.entries) {
        for (const [prefix, buffer] of [["exp_avg", trainer.optimizer.m], ["exp_avg_sq", trainer.optimizer.v]] as const) {
          const name = `${prefix}.${e.name}`;
          if (!reader.has(name)) throw new GrowlmError(op, `${file}: missing tensor "${name}"`);
          const entry = reader.entry(name);
          if (entry.shape.join(",") !== e.shape.join(",")) {
            throw new GrowlmError(op, `${file}: tensor "${name}" has shape [${entry.shape.join(", ")}] but the model's is [${e.shape.join(", ")}]`);
          }
          reader.readInto(name, buffer.data.subarray(e.offset, e.offset + e.numel));
        }
      }
      const film = model.film;
      if (film && trainer.optimizer.filmM && trainer.optimizer.filmV) {
        for (const [prefix, buffer] of [["exp_avg", trainer.optimizer.filmM], ["exp_avg_sq", trainer.optimizer.filmV]] as const) {
          for (const t of film.tensors(buffer)) {
            const name = `${prefix}.${t.name}`;
            if (!reader.has(name)) throw new GrowlmError(op, `${file}: missing tensor "${name}"`);
            if (reader.entry(name).shape.join(",") !== t.shape.join(",")) {
              throw new GrowlmError(op, `${file}: tensor "${name}" has shape [${reader.entry(name).shape.join(", ")}] but the ensemble's is [${t.shape.join(", ")}]`);
            }
            reader.readInto(name, t.data);
          }
        }
      }
    } finally {
      reader.close();
    }
    trainer.optimizer.markMomentsChanged();
  } catch (err) {
    trainer.dispose();
    model.dispose();
    throw err;
  }
  trainer.optimizer.step = step;
  trainer.rng.offset = state.growlm.rng.offset;
  return { trainer, state };
}
