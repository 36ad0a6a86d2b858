/**
 * Dropout in training (masks from the trainer's stream) and MC dropout at inference (S
 * samples per row, masks keyed by row key, sample and position).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { describe, expect, test } from "vitest";

import { generate } from "../../src/eval/generate.js";
import { KvCache } from "../../src/model/kv-cache.js";
import { loadPretrained, savePretrained } from "../../src/model/pretrained.js";
import { scoreSequences } from "../../src/model/score.js";
import { trainingDropoutElements } from "../../src/probabilistic/mc-dropout.js";
import { Tensor } from "../../src/tensor.js";
import { RandomStream } from "../../src/train/random.js";
import { expectBitwiseEqual, expectClose } from "../helpers/reference.js";
import { TINY, batch, tinyModel } from "./helpers.js";

/** Finite differences of the float32 loss (see film.test.ts): rounding noise over 2·FD_STEP plus O(h²). */
const FD_STEP = 1e-2;
const FD_ATOL = 1e-4;
const FD_RTOL = 5e-3;
/** Cached vs full forward (different attention kernels, same masks): fp32 rounding of the logits. */
const CACHED_RTOL = 2e-5;

describe("dropout in training", () => {
  test("p = 0 is the plain model bit for bit; p > 0 consumes 2L·B·T·C stream elements per forward", () => {
    const plain = tinyModel();
    const zero = tinyModel();
    const stream = new RandomStream(3);
    zero.setDropout(0, stream);
    const { ids, labels } = batch(2, 9, 1);
    plain.zeroGrad();
    zero.zeroGrad();
    expect(zero.forwardBackward(ids, labels).loss).toBe(plain.forwardBackward(ids, labels).loss);
    expectBitwiseEqual(zero.grads.data, plain.grads.data, "p = 0 gradients");
    expect(stream.offset).toBe(0);

    const dropped = tinyModel();
    dropped.setDropout(0.3, stream);
    const r = dropped.forwardBackward(ids, labels);
    expect(r.loss).not.toBe(plain.forward(ids, { labels }).loss);
    expect(stream.offset).toBe(trainingDropoutElements(2 * TINY.num_hidden_layers, 2 * 9, TINY.hidden_size));
    // Evaluation forwards (no MC dropout) are deterministic and draw nothing.
    expect(dropped.forward(ids, { labels }).loss).toBe(plain.forward(ids, { labels }).loss);
    expect(stream.offset).toBe(trainingDropoutElements(4, 18, TINY.hidden_size));
    const noStream = tinyModel();
    noStream.setDropout(0.1);
    expect(() => noStream.forwardBackward(ids, labels)).toThrow(/dropout 0.1 needs a random stream for training: setDropout\(p, trainer.rng\)/);
    expect(() => noStream.setDropout(1)).toThrow(/must be in \[0, 1\) but is 1/);
  });

  test("gradients with dropout agree with finite differences of the same masks; recomputation sees the same masks", () => {
    const model = tinyModel();
    const stream = new RandomStream(8);
    model.setDropout(0.25, stream);
    const { ids, labels } = batch(2, 8, 2);
    model.zeroGrad();
    stream.offset = 100;
    model.forwardBackward(ids, labels, { lossWeight: 1 });
    const names = ["model.layers.0.self_attn.o_proj.weight", "model.layers.1.mlp.down_proj.weight", "model.layers.1.input_layernorm.weight"];
    for (const name of names) {
      const p = model.param(name).data;
      const g = model.grad(name).data;
      const picks = Array.from(g.keys()).sort((i, j) => Math.abs(g[j]!) - Math.abs(g[i]!)).slice(0, 3);
      for (const i of picks) {
        const saved = p[i]!;
        const lossAt = (value: number): number => {
          p[i] = value;
          model.markParamsChanged();
          stream.offset = 100;
          const copy = Float32Array.from(model.grads.data);
          const loss = model.forwardBackward(ids, labels, { lossWeight: 1 }).lossSum;
          model.grads.data.set(copy);
          return loss;
        };
        const fd = (lossAt(saved + FD_STEP) - lossAt(saved - FD_STEP)) / (2 * FD_STEP);
        p[i] = saved;
        model.markParamsChanged();
        expect(Math.abs(fd - g[i]!), `${name}[${i}]: analytic ${g[i]} vs finite differences ${fd}`).toBeLessThanOrEqual(FD_ATOL + FD_RTOL * Math.abs(fd));
      }
    }
    const recomputed = tinyModel({ recompute: true });
    const other = new RandomStream(8, 100);
    recomputed.setDropout(0.25, other);
    recomputed.zeroGrad();
    stream.offset = 100;
    model.zeroGrad();
    model.forwardBackward(ids, labels);
    recomputed.forwardBackward(ids, labels);
    expectBitwiseEqual(recomputed.grads.data, model.grads.data, "recomputed layers");
  });
});

describe("MC dropout at inference", () => {
  function mcModel(samples = 4): ReturnType<typeof tinyModel> {
    const model = tinyModel();
    model.setDropout(0.2);
    model.setMcDropout({ samples, seed: 5 });
    return model;
  }

  test("runs S samples per row, each with its own masks; a row's samples do not depend on its batch", () => {
    const model = mcModel(4);
    expect(model.inferenceMembers).toBe(4);
    const { ids, labels } = batch(3, 10, 3);
    const r = model.forward(ids, { labels, sampleKeys: [7, 8, 9] });
    expect(r.members).toBe(4);
    // Copies: the next forward of another shape frees the workspace these live in.
    const member = Float32Array.from(r.memberTokenLosses!.data);
    const mixture = Float32Array.from(r.tokenLosses!.data);
    expect(member.subarray(0, 10)).not.toEqual(member.subarray(10, 20));
    // Row 1 alone, with its key, gives the same samples.
    const row = (t: Tensor, b: number): Tensor => Tensor.from(t.data.subarray(b * 10, (b + 1) * 10), [1, 10], "int32");
    const alone = model.forward(row(ids, 1), { labels: row(labels, 1), sampleKeys: [8] });
    expectBitwiseEqual(alone.memberTokenLosses!.data, member.subarray(40, 80), "row 1 alone");
    // The mixture is −log mean exp(−member losses).
    const t = 3;
    const expected = -Math.log([0, 1, 2, 3].reduce((s, k) => s + Math.exp(-member[(0 * 4 + k) * 10 + t]!), 0) / 4);
    expect(mixture[t]).toBeCloseTo(expected, 5);
    // scoreSequences keys sequences by their index, so batching does not change the scores.
    const seqs = [[1, 4, 6, 8, 10], [1, 3, 5], [1, 9, 9, 9, 9, 9, 2]];
    const together = scoreSequences(model, seqs);
    const one = scoreSequences(model, seqs, { maxBatchTokens: 7 });
    expect(one).toEqual(together);
  });

  test("forwardCached applies the masks of the same (key, sample, position) as the full forward", () => {
    const model = mcModel(3);
    const V = TINY.vocab_size;
    const tokens = [1, 7, 9, 4, 11, 3, 8];
    const full = model.forward(Tensor.from(tokens, [1, tokens.length], "int32"), { returnLogits: true, sampleKeys: [4] }).logits!;
    const logMean = (t: number): Float64Array => {
      const out = new Float64Array(V);
      for (let v = 0; v < V; v++) {
        let s = 0;
        for (let k = 0; k < 3; k++) {
          const row = full.data.subarray((k * tokens.length + t) * V, (k * tokens.length + t + 1) * V);
          const max = Math.max(...row);
          let lse = 0;
          for (const z of row) lse += Math.exp(z - max);
          s += Math.exp(row[v]! - max - Math.log(lse));
        }
        out[v] = Math.log(s / 3);
      }
      return out;
    };
    const cache = new KvCache(TINY, 1, 12, 1, 3);
    cache.sampleKeys[0] = 4;
    const prefill = model.forwardCached(Tensor.from(tokens.slice(0, 5), [1, 5], "int32"), cache);
    expectClose(prefill.data, logMean(4), CACHED_RTOL, "prefill");
    const step = model.forwardCached(Tensor.from([tokens[5]!], [1, 1], "int32"), cache);
    expectClose(step.data, logMean(5), CACHED_RTOL, "one step");
  });

  test("generation with MC dropout is the same for any batch size; the mode survives save and load", () => {
    const model = mcModel(3);
    const prompts = [[1, 5, 8, 13], [1, 22], [1, 9, 9, 30, 2, 17]];
    const settings = { maxNewTokens: 6, eosTokenId: 2 };
    const together = generate(model, prompts, settings);
    const alone = prompts.map((p, i) => generate(model, [p], { ...settings, streamIds: [i] })[0]);
    expect(alone).toEqual(together);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-mc-"));
    try {
      savePretrained(model, dir);
      expect(JSON.parse(fs.readFileSync(path.join(dir, "probabilistic.json"), "utf8"))).toEqual({ method: "mc_dropout", dropout: 0.2, mc_samples: 3, mc_seed: 5 });
      const back = loadPretrained(dir);
      expect(back.inferenceMembers).toBe(3);
      expect(generate(back, prompts, settings)).toEqual(together);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
