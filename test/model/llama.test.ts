/**
 * LlamaModel's own invariants (its agreement with PyTorch is test/model/parity.test.ts):
 * activation recomputation and the head's chunking do not change the result, threads do not
 * change a bit, gradient accumulation equals one big batch, the pad row gets no gradient,
 * bf16 matrix products track fp32 training, and bad input is refused by name.
 */
import { describe, expect, test } from "vitest";

import { parseLlamaConfig, type LlamaConfig } from "../../src/model/config.js";
import { LlamaModel, type LlamaModelOptions } from "../../src/model/llama.js";
import { scoreSequences } from "../../src/model/score.js";
import { Tensor } from "../../src/tensor.js";
import { Trainer, countedTokens } from "../../src/train/trainer.js";
import { ISAS, withSettings } from "../helpers/native.js";
import { BASE_SEED, expectBitwiseEqual, expectClose, randomInts, rng } from "../helpers/reference.js";

/** Summation order differs (chunked or accumulated weight gradients): a few fp32 ulps of the largest entry. */
const REORDER_RTOL = 2e-5;
/** bf16 products over 200 steps: the bound on the loss curve. */
const BF16_LOSS_RTOL = 0.01;

const TINY_FIELDS = {
  vocab_size: 53,
  hidden_size: 32,
  intermediate_size: 56,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 32,
  pad_token_id: 0,
};
const TINY = parseLlamaConfig(TINY_FIELDS);

function makeModel(config: LlamaConfig, options: LlamaModelOptions = {}, seed = BASE_SEED): LlamaModel {
  const model = new LlamaModel(config, options);
  model.initialize(seed);
  // Norm weights away from 1 so their gradients and uses are exercised.
  const r = rng(seed + 1);
  for (const e of model.layout.entries) {
    if (e.kind.endsWith("norm")) for (let i = 0; i < e.numel; i++) model.params.data[e.offset + i] = 0.5 + r();
  }
  model.markParamsChanged();
  return model;
}

function batch(B: number, T: number, V: number, seed: number): { ids: Tensor; labels: Tensor } {
  const ids = Tensor.from(randomInts(B * T, seed, V), [B, T], "int32");
  const labels = ids.clone();
  const r = rng(seed + 7);
  const data = labels.data as Int32Array;
  for (let i = 0; i < data.length; i++) if (r() < 0.2) data[i] = -100;
  return { ids, labels };
}

function gradsAfter(model: LlamaModel, ids: Tensor, labels: Tensor): { loss: number; grads: Float32Array } {
  model.zeroGrad();
  const { loss } = model.forwardBackward(ids, labels);
  return { loss, grads: Float32Array.from(model.grads.data) };
}

describe("LlamaModel", () => {
  test("recomputing activations gives bitwise the same loss and gradients", () => {
    const { ids, labels } = batch(2, 11, TINY.vocab_size, BASE_SEED + 1);
    const stored = gradsAfter(makeModel(TINY), ids, labels);
    const recomputed = gradsAfter(makeModel(TINY, { recompute: true }), ids, labels);
    expect(recomputed.loss).toBe(stored.loss);
    expectBitwiseEqual(recomputed.grads, stored.grads, "gradients");
  });

  test.each(["float32", "bfloat16"] as const)("forward with labels then backward() is bitwise forwardBackward (%s products)", (matmul) => {
    const { ids, labels } = batch(2, 9, TINY.vocab_size, BASE_SEED + 9);
    const fused = gradsAfter(makeModel(TINY, { matmul, headChunkRows: 4 }), ids, labels);
    const model = makeModel(TINY, { matmul, headChunkRows: 4 });
    model.zeroGrad();
    const { loss } = model.forward(ids, { labels });
    model.backward();
    expect(loss).toBe(fused.loss);
    expectBitwiseEqual(model.grads.data, fused.grads, "gradients");
    expect(() => model.backward()).toThrow(/no forward with labels to differentiate/);
    model.forward(ids, { labels });
    model.markParamsChanged();
    expect(() => model.backward()).toThrow(/parameters changed since the forward/);
    model.forward(ids);
    expect(() => model.backward()).toThrow(/no forward with labels/);
  });

  test("the head's chunk size changes neither the token losses' bits nor the gradients beyond reordering", () => {
    const { ids, labels } = batch(3, 9, TINY.vocab_size, BASE_SEED + 2);
    const [a, b] = [1024, 5].map((headChunkRows) => makeModel(TINY, { headChunkRows }));
    expectBitwiseEqual(a!.forward(ids, { labels }).tokenLosses!.data, b!.forward(ids, { labels }).tokenLosses!.data, "token losses");
    const whole = gradsAfter(a!, ids, labels);
    const chunked = gradsAfter(b!, ids, labels);
    expect(chunked.loss).toBeCloseTo(whole.loss, 12);
    expectClose(chunked.grads, whole.grads, REORDER_RTOL, "chunked head gradients");
  });

  test.each(ISAS)("1 and 2 threads give the same bits (%s)", (isa) => {
    const { ids, labels } = batch(2, 13, TINY.vocab_size, BASE_SEED + 3);
    const runs = [1, 2, 1].map((threads) => withSettings(isa, threads, () => gradsAfter(makeModel(TINY), ids, labels)));
    for (const other of runs.slice(1)) {
      expect(other.loss).toBe(runs[0]!.loss);
      expectBitwiseEqual(other.grads, runs[0]!.grads, `${isa} gradients`);
    }
  });

  test("two accumulated micro-batches give the gradient of the whole batch", () => {
    const { ids, labels } = batch(2, 10, TINY.vocab_size, BASE_SEED + 4);
    const model = makeModel(TINY);
    const whole = gradsAfter(model, ids, labels);
    const total = countedTokens(labels);
    model.zeroGrad();
    let lossSum = 0;
    for (const b of [0, 1]) {
      lossSum += model.forwardBackward(ids.rows(b, b + 1), labels.rows(b, b + 1), { lossWeight: 1 / total }).lossSum;
    }
    expect(lossSum / total).toBeCloseTo(whole.loss, 10);
    expectClose(model.grads.data, whole.grads, REORDER_RTOL, "accumulated gradients");
  });

  test("the pad row of embed_tokens gets no gradient from the lookup (nn.Embedding padding_idx)", () => {
    const { ids, labels } = batch(2, 12, TINY.vocab_size, BASE_SEED + 5);
    (ids.data as Int32Array)[3] = 0;
    (ids.data as Int32Array)[15] = 0;
    const model = makeModel(TINY);
    const { grads } = gradsAfter(model, ids, labels);
    const embed = model.layout.entry("model.embed_tokens.weight");
    const C = TINY.hidden_size;
    expect(Array.from(grads.subarray(embed.offset, embed.offset + C))).toEqual(new Array(C).fill(0));
    // A row that does occur gets one.
    const used = (ids.data as Int32Array).find((id) => id !== 0)!;
    expect(grads.subarray(embed.offset + used * C, embed.offset + (used + 1) * C).some((g) => g !== 0)).toBe(true);
  });

  test("forward returns logits whose cross-entropy is the loss, and token losses per position", () => {
    const { ids, labels } = batch(2, 7, TINY.vocab_size, BASE_SEED + 6);
    const model = makeModel(TINY);
    const r = model.forward(ids, { labels, returnLogits: true });
    const V = TINY.vocab_size;
    const logits = r.logits!.data;
    let sum = 0;
    let count = 0;
    const lab = labels.data as Int32Array;
    for (let b = 0; b < 2; b++) {
      for (let t = 0; t + 1 < 7; t++) {
        const target = lab[b * 7 + t + 1]!;
        if (target === -100) continue;
        const row = logits.subarray((b * 7 + t) * V, (b * 7 + t + 1) * V);
        const max = Math.max(...row);
        const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
        const nll = lse - row[target]!;
        expect(r.tokenLosses!.data[b * 7 + t]).toBeCloseTo(nll, 5);
        sum += nll;
        count++;
      }
    }
    expect(r.count).toBe(count);
    expect(r.loss).toBeCloseTo(sum / count, 5);
  });

  test("scoring batches by length gives each sequence's own log-probabilities", () => {
    const model = makeModel(TINY);
    const r = rng(BASE_SEED + 8);
    const seqs = [5, 1, 9, 2, 9, 3].map((n) => Array.from({ length: n }, () => Math.floor(r() * TINY.vocab_size)));
    const batched = scoreSequences(model, seqs, { maxBatchTokens: 20 });
    seqs.forEach((seq, i) => {
      const alone = scoreSequences(model, [seq]);
      expect(batched.tokenLogprobs[i]!.length).toBe(Math.max(0, seq.length - 1));
      expectClose(batched.tokenLogprobs[i]!, alone.tokenLogprobs[0]!, 1e-6, `sequence ${i}`);
      if (seq.length < 2) expect(batched.loss[i]).toBeNaN();
      else expect(batched.loss[i]).toBeCloseTo(-batched.tokenLogprobs[i]!.reduce((a, b) => a + b, 0) / (seq.length - 1), 6);
    });
  });

  test("bf16 matrix products track the fp32 loss curve within 1% over 200 steps", () => {
    const config = parseLlamaConfig({ ...TINY_FIELDS, vocab_size: 61, max_position_embeddings: 64 });
    const curves = (["float32", "bfloat16"] as const).map((matmul) => {
      const model = makeModel(config, { matmul }, 99);
      const trainer = new Trainer(model, {
        schedule: { type: "cosine", learningRate: 3e-3, totalSteps: 200, warmupRatio: 0.05 },
        optimizer: { weightDecay: 0.01 },
      });
      const losses: number[] = [];
      for (let s = 0; s < 200; s++) {
        // A learnable stream: each row counts up from a random start modulo the vocabulary.
        const starts = randomInts(4, 1000 + s, 61);
        const ids = Tensor.from(Array.from({ length: 4 * 24 }, (_, i) => (starts[Math.floor(i / 24)]! + (i % 24) * 3) % 61), [4, 24], "int32");
        losses.push(trainer.trainStep([{ ids, labels: ids }]).loss);
      }
      return losses;
    });
    const [fp32, bf16] = curves as [number[], number[]];
    expect(fp32[199]!).toBeLessThan(fp32[0]! * 0.5); // it learned something
    for (let s = 0; s < 200; s += 10) {
      const window = (c: number[]) => c.slice(s, s + 10).reduce((a, b) => a + b, 0) / 10;
      expect(Math.abs(window(bf16) - window(fp32)) / window(fp32), `steps ${s}..${s + 9}`).toBeLessThan(BF16_LOSS_RTOL);
    }
  });

  describe("branch scale (setBranchScale, for masked growth)", () => {
    /** alpha·(A·B) against A·(s·B): the same products rounded in another order. */
    const SCALE_RTOL = 1e-5;

    test("scale s on a layer's branches is s·o_proj and s·down_proj, forward and backward", () => {
      const s = 0.37;
      const { ids, labels } = batch(2, 9, TINY.vocab_size, BASE_SEED + 21);
      const scaled = makeModel(TINY);
      scaled.setBranchScale(1, s);
      expect(scaled.branchScale(1)).toBe(s);
      const folded = makeModel(TINY);
      for (const kind of ["self_attn.o_proj", "mlp.down_proj"]) {
        const w = folded.param(`model.layers.1.${kind}.weight`).data;
        for (let i = 0; i < w.length; i++) w[i] = Math.fround(w[i]! * s);
      }
      folded.markParamsChanged();
      const a = gradsAfter(scaled, ids, labels);
      const b = gradsAfter(folded, ids, labels);
      expect(a.loss).toBeCloseTo(b.loss, 5);
      // ∂L/∂W = s·∂L/∂(sW) for the two scaled weights; every other gradient is the same.
      for (const e of scaled.layout.entries) {
        const factor = e.layer === 1 && (e.kind === "o_proj" || e.kind === "down_proj") ? s : 1;
        const expected = Float32Array.from(b.grads.subarray(e.offset, e.offset + e.numel), (g) => g * factor);
        expectClose(a.grads.subarray(e.offset, e.offset + e.numel), expected, SCALE_RTOL, e.name);
      }
    });

    test("scale 0 makes the layer the identity: bitwise the model without it, and no gradient for its weights", () => {
      const config = parseLlamaConfig({ ...TINY_FIELDS, num_hidden_layers: 3 });
      const three = makeModel(config);
      three.setBranchScale(1, 0);
      const two = makeModel(TINY);
      for (const e of two.layout.entries) {
        const from = e.layer === 1 ? e.name.replace("layers.1.", "layers.2.") : e.name;
        two.param(e.name).data.set(three.param(from).data);
      }
      two.markParamsChanged();
      const { ids, labels } = batch(2, 8, TINY.vocab_size, BASE_SEED + 22);
      const a = gradsAfter(three, ids, labels);
      const b = gradsAfter(two, ids, labels);
      expect(a.loss).toBe(b.loss);
      for (const e of three.layout.entries.filter((x) => x.layer === 1 && !x.kind.endsWith("layernorm"))) {
        expect(a.grads.subarray(e.offset, e.offset + e.numel).every((g) => g === 0), e.name).toBe(true);
      }
      three.setBranchScale(1, 1);
      expect(gradsAfter(three, ids, labels).loss).not.toBe(b.loss);
    });

    test("a scale change invalidates the pending backward; bad layers and scales are refused", () => {
      const model = makeModel(TINY);
      const { ids, labels } = batch(1, 5, TINY.vocab_size, BASE_SEED + 23);
      model.forward(ids, { labels });
      model.setBranchScale(0, 0.5);
      expect(() => model.backward()).toThrow(/parameters changed since the forward/);
      expect(() => model.setBranchScale(2, 1)).toThrow(/layer must be an integer in \[0, 2\) but is 2/);
      expect(() => model.setBranchScale(0, Number.NaN)).toThrow(/scale of layer 0 must be finite/);
      expect(() => model.branchScale(-1)).toThrow(/layer must be an integer/);
    });
  });

  test("intermediate_size below hidden_size trains (the backward's scratch holds N·max(C, I))", () => {
    const config = parseLlamaConfig({ ...TINY_FIELDS, intermediate_size: 20 });
    const { ids, labels } = batch(2, 6, TINY.vocab_size, BASE_SEED + 24);
    const stored = gradsAfter(makeModel(config), ids, labels);
    const recomputed = gradsAfter(makeModel(config, { recompute: true }), ids, labels);
    expect(Number.isFinite(stored.loss)).toBe(true);
    expectBitwiseEqual(recomputed.grads, stored.grads, "gradients");
  });

  describe("refuses bad input by name", () => {
    const model = makeModel(TINY);
    const ids = Tensor.from([1, 2, 3, 4], [1, 4], "int32");
    test.each([
      ["an id out of range", () => model.forward(Tensor.from([1, 53], [1, 2], "int32")), /ids.*53.*\[0, 53\)/],
      ["float ids", () => model.forward(Tensor.from([1, 2], [1, 2])), /int32 \[B, T\]/],
      ["1-D ids", () => model.forward(Tensor.from([1, 2], [2], "int32")), /int32 \[B, T\]/],
      ["labels of another shape", () => model.forward(ids, { labels: Tensor.from([1, 2], [1, 2], "int32") }), /labels.*shape/],
      ["a label out of range", () => model.forward(ids, { labels: Tensor.from([1, 2, 99, 4], [1, 4], "int32") }), /labels.*99/],
      ["too long a sequence", () => model.forward(Tensor.zeros([1, 33], "int32")), /max_position_embeddings = 32/],
      ["no counted label", () => model.forwardBackward(ids, Tensor.from([1, -100, -100, -100], [1, 4], "int32")), /no label is counted/],
    ])("%s", (_, call, message) => {
      expect(call).toThrow(message);
    });
    test("use after dispose", () => {
      const m = makeModel(TINY);
      m.dispose();
      expect(() => m.forward(ids)).toThrow(/dispose/);
    });
  });
});
