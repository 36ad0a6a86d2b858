/**
 * Learning without forgetting (Li & Hoiem 2017) for a causal LM: while fine-tuning on a new
 * task, the model is also pulled towards the predictions the stage's starting model (the
 * teacher: the previous stage's model, or the base model in stage 1) made on the new task's
 * inputs, by Hinton et al.'s distillation loss at temperature T:
 *   objective = (1/N)·[ Σ NLL + α·T²·Σ_positions KL(p_T ‖ q_T) ]
 * over the positions whose labels count (the response tokens; N the counted tokens of the
 * step, replayed rows included, which are not distilled), p_T the teacher's and q_T the
 * student's softmax of logits / T.
 *
 * No second model is kept: before the stage, one forward pass of the starting model (which is
 * the teacher at that moment) over the stage's training examples stores, per counted
 * position, the teacher's top-k tokens at temperature T with their log-probabilities and the
 * log of the mass left outside them. The KL is then taken between the distributions coarsened
 * to those k tokens plus one "rest" bucket, which is exact for the top-k and keeps the total
 * mass; with k >= V it is the full KL. Its gradient with respect to the logits z is
 *   ∂/∂z_j = T·(q_j − p_j)                  j in the top-k,
 *            T·q_j·(1 − p_rest / q_rest)    otherwise,
 * times α and the per-token weight. Both passes are the native distill kernels
 * (src/kernels/distill.ts), which form the student's log-probabilities with exactly the
 * teacher's operations. Memory: (8k + 4) bytes per distilled position plus 4 per example,
 * against 2 bytes per parameter for a bf16 teacher (and its forward every step).
 *
 * The teacher pass runs over the micro-batches of the stage's first epoch exactly as training
 * builds them, so at the first step, where model and teacher are the same, the student's
 * logits are bitwise the teacher's and the distillation loss and its gradient are exactly 0.
 * The targets are written to OUTPUT_DIR/lwf_targets.bin before training starts (a resumed
 * stage reads them back; the model is no longer the teacher then) and removed when the stage
 * ends.
 *
 * On a CUDA model both passes run the CUDA distill kernels, so the first step's exact 0 holds
 * there too: the teacher pass uploads each batch's logits back to the device, and the term
 * works on the head's device logits and gradient (a BackendLogitsTerm), uploading only the
 * targets of the chunk's distilled rows. The targets themselves stay on the host.
 */
import fs from "node:fs";
import path from "node:path";

import type { TokenizedExample } from "../data/collator.js";
import { GrowlmError } from "../errors.js";
import { stageWith } from "../io/atomic.js";
import { distillStudent, distillTeacher } from "../kernels/distill.js";
import { trainFlopsPerToken } from "../model/flops.js";
import type { Buffers, HostBuffers } from "../device.js";
import { BufferSet, type ModelBackend } from "../model/backend.js";
import type { BackendLogitsTerm, LlamaModel } from "../model/llama.js";
import { Tensor } from "../tensor.js";
import type { Batch } from "../train/trainer.js";

/** The teacher targets of a stage in progress. */
export const LWF_TARGETS_NAME = "lwf_targets.bin";

/** What identifies a set of teacher targets (a stored set is reused only when all of it matches). */
export interface TeacherTargetsKey {
  /** The teacher model's folder. */
  teacher: string;
  temperature: number;
  topK: number;
  vocabSize: number;
  /** A hash of the training examples' ids and labels. */
  dataHash: number;
}

/** Per counted position of every training example: the teacher's top-k at temperature T. */
export interface TeacherTargets extends TeacherTargetsKey {
  /** int32 [examples + 1]: example e's positions are offsets[e] .. offsets[e + 1] − 1. */
  offsets: Int32Array;
  /** int32 [positions · k]: token ids, most probable first. */
  ids: Int32Array;
  /** float32 [positions · k]: their log-probabilities at temperature T. */
  logProbs: Float32Array;
  /** float32 [positions]: log of the probability outside the top-k (−Infinity when none). */
  logRest: Float32Array;
}

/** 32-bit FNV-1a over the examples' lengths, ids and labels. */
export function hashExamples(examples: readonly TokenizedExample[]): number {
  let h = 0x811c9dc5;
  const mix = (v: number): void => {
    h = Math.imul(h ^ (v & 0xffff), 0x01000193) >>> 0;
    h = Math.imul(h ^ ((v >>> 16) & 0xffff), 0x01000193) >>> 0;
  };
  for (const e of examples) {
    mix(e.ids.length);
    for (const id of e.ids) mix(id);
    for (const l of e.labels) mix(l);
  }
  return h;
}

/** Bytes the targets take in memory. */
export function teacherTargetsBytes(t: TeacherTargets): number {
  return t.offsets.byteLength + t.ids.byteLength + t.logProbs.byteLength + t.logRest.byteLength;
}

/** A micro-batch with, per row, the training example it holds (null: a replayed row, not distilled). */
export interface TrackedBatch {
  batch: Batch;
  rows: readonly (number | null)[];
}

export interface TeacherPassResult {
  targets: TeacherTargets;
  /** Forward FLOPs of the pass (a third of training FLOPs, flops.ts). */
  flops: number;
}

/**
 * Runs the teacher (`model` as it is now) over `batches` (every training example must appear
 * in exactly one row) and collects its top-k targets at every counted position.
 */
export function computeTeacherTargets(model: LlamaModel, examples: readonly TokenizedExample[], batches: Iterable<TrackedBatch>, key: TeacherTargetsKey): TeacherPassResult {
  const op = "computeTeacherTargets";
  const V = model.config.vocab_size;
  const k = Math.min(key.topK, V);
  const counts = examples.map((e) => e.labels.slice(1).filter((l) => l !== -100).length);
  const offsets = new Int32Array(examples.length + 1);
  counts.forEach((c, e) => (offsets[e + 1] = offsets[e]! + c));
  const P = offsets[examples.length]!;
  const ids = new Int32Array(P * k);
  const logProbs = new Float32Array(P * k);
  const logRest = new Float32Array(P);
  const done = new Uint8Array(examples.length);
  let flops = 0;
  const out = { ids: Tensor.wrap(ids, [P, k]), logProbs: Tensor.wrap(logProbs, [P, k]), logRest: Tensor.wrap(logRest, [P]) };
  for (const { batch, rows } of batches) {
    const [B, T] = batch.ids.shape as [number, number];
    const labels = batch.labels.data as Int32Array;
    const positions = new Int32Array(B * T).fill(-1);
    rows.forEach((example, b) => {
      if (example === null) return;
      if (done[example]) throw new GrowlmError(op, `example ${example} appears twice in the teacher pass`);
      done[example] = 1;
      let p = offsets[example]!;
      for (let t = 0; t + 1 < T; t++) if (labels[b * T + t + 1] !== -100) positions[b * T + t] = p++;
    });
    const { logits } = model.forward(batch.ids, { returnLogits: true });
    if (model.device === "cpu") distillTeacher(out, logits!.reshape([B * T, V]), Tensor.wrap(positions), key.temperature);
    else teacherOnDevice(model.state.backend, out, logits!.data as Float32Array, positions, V, k, key.temperature);
    logits!.dispose();
    flops += (B * T * trainFlopsPerToken(model.config, T)) / 3;
  }
  const missing = done.indexOf(0);
  if (missing >= 0) throw new GrowlmError(op, `example ${missing} is in no batch of the teacher pass`);
  return { targets: { ...key, topK: k, offsets, ids, logProbs, logRest }, flops };
}

/** The rows of `positions` that are distilled, with their positions (−1 elsewhere) renumbered 0, 1, … in row order. */
function compact(positions: Int32Array): { local: Int32Array; global: Int32Array } {
  const local = new Int32Array(positions.length).fill(-1);
  const global: number[] = [];
  positions.forEach((p, n) => {
    if (p >= 0) local[n] = global.push(p) - 1;
  });
  return { local, global: Int32Array.from(global) };
}

/**
 * distillTeacher on a device: `logits` [N, V] (host) uploaded, the targets of the distilled
 * rows computed there into compact buffers and scattered into `out` at their positions.
 */
function teacherOnDevice(backend: ModelBackend<Buffers>, out: { ids: Tensor; logProbs: Tensor; logRest: Tensor }, logits: Float32Array, positions: Int32Array, V: number, k: number, temperature: number): void {
  const { local, global } = compact(positions);
  const P = global.length;
  if (P === 0) return;
  const N = positions.length;
  const memory = new BufferSet(backend);
  try {
    const z = memory.alloc(N * V, "f32");
    backend.upload(z, logits);
    const pos = memory.alloc(N, "i32");
    backend.upload(pos, local);
    const ids = memory.alloc(P * k, "i32"), logProbs = memory.alloc(P * k, "f32"), logRest = memory.alloc(P, "f32");
    backend.ops.distillTeacher(ids, logProbs, logRest, z, pos, N, V, P, k, temperature);
    const hostIds = new Int32Array(P * k), hostLogProbs = new Float32Array(P * k), hostLogRest = new Float32Array(P);
    backend.download(hostIds, ids);
    backend.download(hostLogProbs, logProbs);
    backend.download(hostLogRest, logRest);
    const [outIds, outLogProbs, outLogRest] = [out.ids.data as Int32Array, out.logProbs.data as Float32Array, out.logRest.data as Float32Array];
    global.forEach((p, i) => {
      outIds.set(hostIds.subarray(i * k, (i + 1) * k), p * k);
      outLogProbs.set(hostLogProbs.subarray(i * k, (i + 1) * k), p * k);
      outLogRest[p] = hostLogRest[i]!;
    });
  } finally {
    memory.dispose();
  }
}

/**
 * The distillation term of one micro-batch: α·T²·KL at each counted position of its new-task
 * rows, weighted by `tokenWeight`. `record` receives T²·Σ KL and the number of positions.
 */
export function distillationTerm(targets: TeacherTargets, tracked: TrackedBatch, alpha: number, tokenWeight: number, record: (klSum: number, positions: number) => void): BackendLogitsTerm {
  const [, T] = tracked.batch.ids.shape as [number, number];
  const labels = tracked.batch.labels.data as Int32Array;
  const k = targets.topK;
  // Flattened row n = b·T + t → its target position, or −1.
  const positionOf = new Int32Array(tracked.rows.length * T).fill(-1);
  tracked.rows.forEach((example, b) => {
    if (example === null) return;
    let p = targets.offsets[example]!;
    for (let t = 0; t + 1 < T; t++) if (labels[b * T + t + 1] !== -100) positionOf[b * T + t] = p++;
  });
  const targetTensors = { ids: Tensor.wrap(targets.ids, [targets.logRest.length, k]), logProbs: Tensor.wrap(targets.logProbs, [targets.logRest.length, k]), logRest: Tensor.wrap(targets.logRest) };
  const V = targets.vocabSize;
  return {
    onBackend(rowStart, rows, logits, grad, backend) {
      const positions = positionOf.subarray(rowStart, rowStart + rows);
      let count = 0;
      for (const p of positions) if (p >= 0) count++;
      if (count === 0) return;
      const scale = alpha * tokenWeight;
      let kl: number;
      if (logits instanceof Float32Array && grad instanceof Float32Array) {
        kl = distillStudent(Tensor.wrap(grad, [rows, V]), Tensor.wrap(logits, [rows, V]), targetTensors, Tensor.wrap(positions), targets.temperature, scale);
      } else {
        kl = studentOnDevice(backend, grad, logits, targets, positions, rows, scale);
      }
      record(kl, count);
    },
  };
}

/** distillStudent on a device, with the targets of the chunk's distilled rows uploaded (compacted). */
function studentOnDevice(backend: ModelBackend<Buffers>, grad: Buffers["f32"], logits: Buffers["f32"], targets: TeacherTargets, positions: Int32Array, rows: number, scale: number): number {
  const k = targets.topK;
  const { local, global } = compact(positions);
  const P = global.length;
  const ids = new Int32Array(P * k), logProbs = new Float32Array(P * k), logRest = new Float32Array(P);
  global.forEach((p, i) => {
    ids.set(targets.ids.subarray(p * k, (p + 1) * k), i * k);
    logProbs.set(targets.logProbs.subarray(p * k, (p + 1) * k), i * k);
    logRest[i] = targets.logRest[p]!;
  });
  const memory = new BufferSet(backend);
  try {
    const upload = <K extends "f32" | "i32">(host: HostBuffers[K], kind: K): Buffers[K] => {
      const b = memory.alloc(host.length, kind);
      backend.upload(b, host);
      return b;
    };
    return backend.ops.distillStudent(grad, logits, upload(ids, "i32"), upload(logProbs, "f32"), upload(logRest, "f32"), upload(local, "i32"), rows, targets.vocabSize, P, k, targets.temperature, scale);
  } finally {
    memory.dispose();
  }
}

const MAGIC = "GROWLM-LWF-TARGETS\n";

/** Writes `targets` to `file` atomically: a JSON header line after MAGIC, then the arrays. */
export function writeTeacherTargets(file: string, targets: TeacherTargets): void {
  const { offsets, ids, logProbs, logRest, ...key } = targets;
  const header = Buffer.from(`${MAGIC}${JSON.stringify({ ...key, examples: offsets.length - 1, positions: logRest.length })}\n`);
  const tmp = stageWith("writeTeacherTargets", file, (fd) => {
    for (const part of [header, offsets, ids, logProbs, logRest]) {
      const bytes = new Uint8Array(part.buffer, part.byteOffset, part.byteLength);
      let done = 0;
      while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
    }
  });
  fs.renameSync(tmp, file);
}

/**
 * Reads targets written by writeTeacherTargets, or null when `file` is missing or was made for
 * another key (teacher, temperature, k, vocabulary or data).
 */
export function readTeacherTargets(file: string, key: TeacherTargetsKey): TeacherTargets | null {
  const op = "readTeacherTargets";
  if (!fs.existsSync(file)) return null;
  const bytes = fs.readFileSync(file);
  const headerEnd = bytes.indexOf(10, MAGIC.length);
  if (bytes.subarray(0, MAGIC.length).toString() !== MAGIC || headerEnd < 0) throw new GrowlmError(op, `${file} is not a growlm LwF targets file`);
  let header: TeacherTargetsKey & { examples: number; positions: number };
  try {
    header = JSON.parse(bytes.subarray(MAGIC.length, headerEnd).toString());
  } catch (err) {
    throw new GrowlmError(op, `${file}: unreadable header: ${(err as Error).message}`, { cause: err });
  }
  const k = Math.min(key.topK, key.vocabSize);
  if (header.teacher !== key.teacher || header.temperature !== key.temperature || header.topK !== k || header.vocabSize !== key.vocabSize || header.dataHash !== key.dataHash) return null;
  const E = header.examples;
  const P = header.positions;
  const expected = 4 * (E + 1) + 8 * P * k + 4 * P;
  const start = headerEnd + 1;
  if (!Number.isSafeInteger(E) || !Number.isSafeInteger(P) || bytes.length - start !== expected) {
    throw new GrowlmError(op, `${file} has ${bytes.length - start} bytes of data but its header (${E} examples, ${P} positions, k = ${k}) implies ${expected}`);
  }
  const data = new Uint8Array(bytes.subarray(start)); // aligned copy
  let at = 0;
  const take = <A extends Int32Array | Float32Array>(make: (b: ArrayBuffer, o: number, n: number) => A, n: number): A => {
    const a = make(data.buffer, at, n);
    at += 4 * n;
    return a;
  };
  return {
    ...key,
    topK: k,
    offsets: take((b, o, n) => new Int32Array(b, o, n), E + 1),
    ids: take((b, o, n) => new Int32Array(b, o, n), P * k),
    logProbs: take((b, o, n) => new Float32Array(b, o, n), P * k),
    logRest: take((b, o, n) => new Float32Array(b, o, n), P),
  };
}

/** Removes a stage's targets file (the stage is over). */
export function removeTeacherTargets(dir: string): void {
  fs.rmSync(path.join(dir, LWF_TARGETS_NAME), { force: true });
}
