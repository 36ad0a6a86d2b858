/**
 * growlm's LLaMA against the float64 PyTorch reference of Hugging Face's LlamaForCausalLM
 * (tools/torch_llama.py; fixtures written by tools/make_llama_fixtures.py into
 * test/fixtures/llama): logits, loss, every parameter gradient, and a 20-step AdamW
 * trajectory with clipping, for multi-head untied, grouped-query tied, and multi-query
 * untied configs (the last with pad_token_id in the inputs, rope_theta 5e5 and eps 1e-5).
 * The model runs in float32 from the fixture's float32 weights; both precision modes of the
 * products are checked, bf16 against bounds that follow from its 8-bit mantissa.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import fs from "node:fs";

import { describe, expect, test } from "vitest";

import { openSafetensors, type SafetensorsReader } from "../../src/io/safetensors.js";
import { parseLlamaConfig } from "../../src/model/config.js";
import { LlamaModel, type MatmulPrecision } from "../../src/model/llama.js";
import { Tensor } from "../../src/tensor.js";
import { Trainer } from "../../src/train/trainer.js";
import { expectClose, relError } from "../helpers/reference.js";

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "llama");
const NAMES = ["mha_untied", "gqa_tied", "gqa_untied_odd"] as const;

/** The bounds for float32: logits and gradients normwise, per tensor. */
const LOGITS_RTOL = 1e-5;
const GRAD_RTOL = 1e-4;
const TRAJECTORY_LOSS_RTOL = 1e-4;
/** bf16 products (8-bit mantissa, fp32 accumulation) through a few layers: about 1e-2 of the scale. */
const BF16_LOGITS_RTOL = 3e-2;
const BF16_LOSS_RTOL = 1e-2;

interface Fixture {
  json: {
    config: Record<string, unknown>;
    batch_size: number;
    seq_len: number;
    parameters: string[];
    train: { steps: number; lr: number; betas: [number, number]; eps: number; weight_decay: number; max_grad_norm: number; losses: number[]; grad_norms: number[] };
  };
  reader: SafetensorsReader;
}

function open(name: string): Fixture {
  const json = JSON.parse(fs.readFileSync(path.join(DIR, `${name}.json`), "utf8")) as Fixture["json"];
  return { json, reader: openSafetensors(path.join(DIR, `${name}.safetensors`)) };
}

function modelOf(f: Fixture, matmul: MatmulPrecision = "float32"): LlamaModel {
  const model = new LlamaModel(parseLlamaConfig(f.json.config, `${f.reader.path} config`), { matmul });
  expect(model.layout.entries.map((e) => e.name)).toEqual(f.json.parameters);
  for (const e of model.layout.entries) f.reader.readInto(e.name, model.param(e.name).data);
  model.markParamsChanged();
  return model;
}

function ids(f: Fixture, name: string, shape: number[]): Tensor {
  return Tensor.from(f.reader.readRaw(name) as Int32Array, shape, "int32");
}

describe.each(NAMES)("parity with PyTorch: %s", (name) => {
  const f = open(name);
  const { batch_size: B, seq_len: T } = f.json;

  test("logits, loss and every gradient (float32)", () => {
    const model = modelOf(f);
    const input = ids(f, "input_ids", [B, T]);
    const labels = ids(f, "labels", [B, T]);
    const forward = model.forward(input, { labels, returnLogits: true });
    expectClose(forward.logits!.data, f.reader.readRaw("logits") as Float64Array, LOGITS_RTOL, `${name} logits`);
    const loss = (f.reader.readRaw("loss") as Float64Array)[0]!;
    expect(Math.abs(forward.loss - loss) / loss).toBeLessThan(LOGITS_RTOL);

    model.zeroGrad();
    const both = model.forwardBackward(input, labels);
    expect(both.loss).toBe(forward.loss);
    for (const e of model.layout.entries) {
      expectClose(model.grad(e.name).data, f.reader.readRaw(`grad.${e.name}`) as Float64Array, GRAD_RTOL, `${name} grad ${e.name}`);
    }
    model.dispose();
  });

  test("logits and loss with bf16 products stay within bf16 bounds", () => {
    const model = modelOf(f, "bfloat16");
    const r = model.forward(ids(f, "input_ids", [B, T]), { labels: ids(f, "labels", [B, T]), returnLogits: true });
    const err = relError(r.logits!.data, f.reader.readRaw("logits") as Float64Array);
    expect(err).toBeLessThan(BF16_LOGITS_RTOL);
    const loss = (f.reader.readRaw("loss") as Float64Array)[0]!;
    expect(Math.abs(r.loss - loss) / loss).toBeLessThan(BF16_LOSS_RTOL);
    model.dispose();
  });

  test("20 AdamW steps with clipping follow torch.optim.AdamW's losses", () => {
    const t = f.json.train;
    const model = modelOf(f);
    const trainer = new Trainer(model, {
      schedule: { type: "constant", learningRate: t.lr, totalSteps: t.steps },
      optimizer: { beta1: t.betas[0], beta2: t.betas[1], eps: t.eps, weightDecay: t.weight_decay, maxGradNorm: t.max_grad_norm },
    });
    const allIds = f.reader.readRaw("train.input_ids") as Int32Array;
    const allLabels = f.reader.readRaw("train.labels") as Int32Array;
    const losses: number[] = [];
    const norms: number[] = [];
    for (let s = 0; s < t.steps; s++) {
      const slice = (a: Int32Array) => Tensor.from(a.subarray(s * B * T, (s + 1) * B * T), [B, T], "int32");
      const r = trainer.trainStep([{ ids: slice(allIds), labels: slice(allLabels) }]);
      losses.push(r.loss);
      norms.push(r.gradNorm);
    }
    for (let s = 0; s < t.steps; s++) {
      expect(Math.abs(losses[s]! - t.losses[s]!) / t.losses[s]!, `${name} loss at step ${s}`).toBeLessThan(TRAJECTORY_LOSS_RTOL);
      expect(Math.abs(norms[s]! - t.grad_norms[s]!) / t.grad_norms[s]!, `${name} grad norm at step ${s}`).toBeLessThan(GRAD_RTOL);
    }
    trainer.dispose();
    model.dispose();
  });
});
