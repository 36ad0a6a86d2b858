/**
 * The LLaMA parity fixtures (test/fixtures/llama, written by tools/make_llama_fixtures.py)
 * are well-formed: valid safetensors, a config growlm parses, every parameter, gradient and
 * final value present in growlm's parameter layout and shapes, token ids in range, and the
 * stored loss consistent with the stored logits under Hugging Face's label shift. The
 * model's own parity test compares growlm against them.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

import { describe, expect, it } from "vitest";

import { openSafetensors } from "../../src/io/safetensors.js";
import { parseLlamaConfig } from "../../src/model/config.js";
import { ParamLayout } from "../../src/model/params.js";

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "llama");
const NAMES = ["mha_untied", "gqa_tied", "gqa_untied_odd"];
const STEPS = 20;
const IGNORE_INDEX = -100;
// The loss recomputed from the float64 logits in a different summation order: a few ulps.
const LOSS_FROM_LOGITS_RTOL = 1e-12;
// torch's float32 run against its float64 run (the generator measures about 1e-7).
const F32_LOSS_RTOL = 1e-5;
const MAX_FIXTURE_BYTES = 1 << 20;
const MAX_DIR_BYTES = 3 << 20;

type DType = "F64" | "F32" | "I32";

interface StoredTensor {
  dtype: string;
  shape: readonly number[];
  data: Float64Array | Float32Array | Int32Array;
}

/** Every tensor of a fixture, in its own type (growlm's reader validates the container). */
function readSafetensors(file: string): Map<string, StoredTensor> {
  const reader = openSafetensors(file);
  try {
    return new Map(
      reader.entries.map((e) => [e.name, { dtype: e.dtype, shape: e.shape, data: reader.readRaw(e.name) as StoredTensor["data"] }]),
    );
  } finally {
    reader.close();
  }
}

interface FixtureJson {
  config: unknown;
  batch_size: number;
  seq_len: number;
  loss: number;
  loss_f32: number;
  parameters: string[];
  no_decay: string[];
  train: { steps: number; losses: number[]; grad_norms: number[]; losses_f32: number[]; lr: number; max_grad_norm: number };
}

function tensor(tensors: Map<string, StoredTensor>, name: string, dtype: DType, shape: readonly number[]): StoredTensor["data"] {
  const t = tensors.get(name);
  expect(t, `tensor ${name}`).toBeDefined();
  expect(t!.dtype, `dtype of ${name}`).toBe(dtype);
  expect(t!.shape, `shape of ${name}`).toEqual(shape);
  return t!.data;
}

/** Hugging Face's causal LM loss from logits [B, T, V] and labels [B, T] (target of position t is labels[t + 1]). */
function shiftedLoss(logits: Float64Array, labels: Int32Array, B: number, T: number, V: number): number {
  let sum = 0;
  let count = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      const target = labels[b * T + t + 1]!;
      if (target === IGNORE_INDEX) continue;
      const row = logits.subarray((b * T + t) * V, (b * T + t + 1) * V);
      const max = row.reduce((m, x) => Math.max(m, x), -Infinity);
      const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
      sum += lse - row[target]!;
      count++;
    }
  }
  return sum / count;
}

describe("LLaMA parity fixtures", () => {
  it("stay small", () => {
    let total = 0;
    for (const name of NAMES) {
      for (const ext of [".safetensors", ".json"]) {
        const size = fs.statSync(path.join(DIR, name + ext)).size;
        expect(size, `${name}${ext}`).toBeLessThan(MAX_FIXTURE_BYTES);
        total += size;
      }
    }
    expect(total).toBeLessThan(MAX_DIR_BYTES);
  });

  for (const name of NAMES) {
    it(`${name}: shapes, ids and losses agree with its config`, () => {
      const meta = JSON.parse(fs.readFileSync(path.join(DIR, `${name}.json`), "utf8")) as FixtureJson;
      const config = parseLlamaConfig(meta.config, `${name}.json`);
      const layout = new ParamLayout(config);
      const tensors = readSafetensors(path.join(DIR, `${name}.safetensors`));
      const B = meta.batch_size;
      const T = meta.seq_len;
      const V = config.vocab_size;

      expect(meta.parameters).toEqual(layout.entries.map((e) => e.name));
      expect(meta.no_decay).toEqual(layout.entries.filter((e) => !e.decay).map((e) => e.name));
      const expectedNames = new Set<string>(["input_ids", "labels", "logits", "loss", "logits_f32", "loss_f32"]);
      for (const n of ["input_ids", "labels", "losses", "grad_norms"]) expectedNames.add(`train.${n}`);
      for (const e of layout.entries) {
        for (const prefix of ["", "grad.", "final."]) expectedNames.add(prefix + e.name);
        tensor(tensors, e.name, "F32", e.shape);
        tensor(tensors, `grad.${e.name}`, "F64", e.shape);
        tensor(tensors, `final.${e.name}`, "F32", e.shape);
        if (!e.decay) {
          const w = tensor(tensors, e.name, "F32", e.shape);
          expect(w.some((x) => x !== 1), `${e.name} is not all ones`).toBe(true);
        }
      }
      expect(new Set(tensors.keys())).toEqual(expectedNames);

      const checkBatch = (ids: Int32Array, labels: Int32Array, label: string): void => {
        ids.forEach((id, i) => {
          expect(id >= 0 && id < V, `${label} input_ids[${i}] = ${id} in [0, ${V})`).toBe(true);
          expect(labels[i] === id || labels[i] === IGNORE_INDEX, `${label} labels[${i}]`).toBe(true);
        });
        expect(labels.some((x) => x === IGNORE_INDEX), `${label} ignores some labels`).toBe(true);
      };
      const ids = tensor(tensors, "input_ids", "I32", [B, T]) as Int32Array;
      const labels = tensor(tensors, "labels", "I32", [B, T]) as Int32Array;
      checkBatch(ids, labels, "");
      const trainIds = tensor(tensors, "train.input_ids", "I32", [STEPS, B, T]) as Int32Array;
      const trainLabels = tensor(tensors, "train.labels", "I32", [STEPS, B, T]) as Int32Array;
      checkBatch(trainIds, trainLabels, "train.");

      const logits = tensor(tensors, "logits", "F64", [B, T, V]) as Float64Array;
      tensor(tensors, "logits_f32", "F32", [B, T, V]);
      const loss = tensor(tensors, "loss", "F64", [1])[0]!;
      expect(loss).toBe(meta.loss);
      expect(Math.abs(shiftedLoss(logits, labels, B, T, V) - loss) / loss).toBeLessThan(LOSS_FROM_LOGITS_RTOL);
      expect(Math.abs(tensor(tensors, "loss_f32", "F32", [1])[0]! - loss) / loss).toBeLessThan(F32_LOSS_RTOL);

      expect(meta.train.steps).toBe(STEPS);
      expect(Array.from(tensor(tensors, "train.losses", "F64", [STEPS]))).toEqual(meta.train.losses);
      expect(Array.from(tensor(tensors, "train.grad_norms", "F64", [STEPS]))).toEqual(meta.train.grad_norms);
      meta.train.losses_f32.forEach((l, s) => {
        expect(Math.abs(l - meta.train.losses[s]!) / meta.train.losses[s]!, `train step ${s}`).toBeLessThan(F32_LOSS_RTOL);
      });

      if (config.pad_token_id !== null) {
        // nn.Embedding(padding_idx=pad_token_id): the pad row gets no gradient even though the pad id occurs.
        const C = config.hidden_size;
        expect(ids.includes(config.pad_token_id)).toBe(true);
        const grad = tensor(tensors, "grad.model.embed_tokens.weight", "F64", [V, C]);
        const padRow = grad.subarray(config.pad_token_id * C, (config.pad_token_id + 1) * C);
        expect(Array.from(padRow).every((x) => x === 0)).toBe(true);
      }
    });
  }
});
