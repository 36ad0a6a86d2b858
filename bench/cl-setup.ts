/**
 * The continual-learning strategies' per-step setups on config S of the train suite (B = 8,
 * T = 256, the second half of every row counted): a naive step, a step with the EWC term
 * (Fisher and anchor flat buffers, one fused native pass), and a step with LwF's distillation
 * term against top-k teacher targets of a dataset of `examples` rows computed by one teacher
 * pass — or, for comparison, against a second fp32 model kept as the teacher and run every
 * step (what LwF costs without precomputed targets). Shared by cl.bench.ts and cl-memory.ts.
 */
import { EwcRegularizer } from "../src/continual/ewc.js";
import { type TeacherTargets, type TrackedBatch, computeTeacherTargets, distillationTerm } from "../src/continual/lwf.js";
import { distillStudent, distillTeacher } from "../src/kernels/distill.js";
import { parseLlamaConfig } from "../src/model/config.js";
import { LlamaModel } from "../src/model/llama.js";
import { Tensor } from "../src/tensor.js";
import { type ObjectiveTerms, Trainer } from "../src/train/trainer.js";
import { TRAIN_CONFIGS } from "./train.bench.js";

export type ClMode = "naive" | "ewc" | "lwf" | "lwf-teacher-model";
export const CL_MODES: readonly ClMode[] = ["naive", "ewc", "lwf", "lwf-teacher-model"];
export const LWF_TOP_K = 32;
const TEMPERATURE = 2;

export interface ClStep {
  step: () => void;
  /** Tokens of one step (B·T). */
  tokens: number;
  /** Bytes the strategy keeps besides the model and optimizer (Fisher + anchor, targets, or the teacher's parameters). */
  stateBytes: number;
  dispose: () => void;
}

/** One step of config S with `mode`'s strategy; LwF's targets cover `examples` training rows. */
export function makeClStep(mode: ClMode, examples = 64): ClStep {
  const bench = TRAIN_CONFIGS[0]!;
  const config = parseLlamaConfig({ ...bench.config, max_position_embeddings: bench.T });
  const model = new LlamaModel(config);
  model.initialize(1234);
  const trainer = new Trainer(model, { schedule: { type: "constant", learningRate: 1e-4, totalSteps: 1 << 30 }, optimizer: { weightDecay: 0.1, maxGradNorm: 1 } });
  const { B, T } = bench;
  const row = (r: number): number[] => Array.from({ length: T }, (_, t) => ((r * 7919 + t) * 2654435761) % config.vocab_size >>> 0);
  const train = Array.from({ length: examples }, (_, r) => {
    const ids = row(r);
    return { ids, labels: ids.map((id, t) => (t < T / 2 ? -100 : id)) };
  });
  const batchOf = (first: number): TrackedBatch => {
    const rows = Array.from({ length: B }, (_, b) => first + b);
    return { batch: { ids: Tensor.from(rows.flatMap((r) => train[r]!.ids), [B, T], "int32"), labels: Tensor.from(rows.flatMap((r) => train[r]!.labels), [B, T], "int32") }, rows };
  };
  const tracked = batchOf(0);
  const owned: { dispose(): void }[] = [trainer, model, tracked.batch.ids, tracked.batch.labels];
  let terms: ObjectiveTerms = {};
  let stateBytes = 0;
  if (mode === "ewc") {
    const anchor = Tensor.from(model.params.data);
    const fisher = Tensor.zeros([model.layout.numel]);
    fisher.data.fill(1e-6);
    const ewc = new EwcRegularizer(model, anchor, fisher, 100);
    owned.push(ewc);
    terms = { addParameterTerm: () => void ewc.addGradient() };
    stateBytes = 8 * model.layout.numel;
  } else if (mode === "lwf") {
    const batches = Array.from({ length: examples / B }, (_, k) => batchOf(k * B));
    const { targets } = computeTeacherTargets(model, train, batches, { teacher: "bench", temperature: TEMPERATURE, topK: LWF_TOP_K, vocabSize: config.vocab_size, dataHash: 0 });
    for (const b of batches) {
      b.batch.ids.dispose();
      b.batch.labels.dispose();
    }
    const t: TeacherTargets = targets;
    terms = { logitsTerm: (_, w) => distillationTerm(t, tracked, 1, w, () => {}) };
    stateBytes = t.offsets.byteLength + t.ids.byteLength + t.logProbs.byteLength + t.logRest.byteLength;
  } else if (mode === "lwf-teacher-model") {
    // The teacher as a second model: its forward and top-k every step, distilled at once.
    const teacher = new LlamaModel(config);
    teacher.params.data.set(model.params.data);
    teacher.markParamsChanged();
    owned.push(teacher);
    const V = config.vocab_size;
    const labels = tracked.batch.labels.data as Int32Array;
    const positions = Int32Array.from({ length: B * T }, (_, n) => ((n + 1) % T !== 0 && labels[n + 1] !== -100 ? n : -1));
    const step = { ids: Tensor.zeros([B * T, LWF_TOP_K], "int32"), logProbs: Tensor.zeros([B * T, LWF_TOP_K]), logRest: Tensor.zeros([B * T]) };
    owned.push(step.ids, step.logProbs, step.logRest);
    terms = {
      logitsTerm: (_, w) => {
        const { logits } = teacher.forward(tracked.batch.ids, { returnLogits: true });
        distillTeacher(step, logits!.reshape([B * T, V]), Tensor.wrap(positions), TEMPERATURE);
        logits!.dispose();
        return (rowStart, rows, student, grad) =>
          void distillStudent(Tensor.wrap(grad, [rows, V]), Tensor.wrap(student, [rows, V]), step, Tensor.wrap(positions.subarray(rowStart, rowStart + rows)), TEMPERATURE, w);
      },
    };
    stateBytes = 8 * model.layout.numel;
  }
  return {
    step: () => void trainer.trainStep([tracked.batch], terms),
    tokens: B * T,
    stateBytes,
    dispose: () => owned.forEach((o) => o.dispose()),
  };
}
