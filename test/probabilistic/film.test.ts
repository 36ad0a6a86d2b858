/**
 * FiLM-Ensemble in the model: gain 0 is the deterministic model bit for bit, M members in one
 * pass are M separate passes, γ/β gradients agree with finite differences, generation
 * decodes the members' averaged distribution, and checkpoints keep the members.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { describe, expect, test } from "vitest";

import { generate } from "../../src/eval/generate.js";
import { KvCache } from "../../src/model/kv-cache.js";
import { LlamaModel } from "../../src/model/llama.js";
import { loadPretrained, savePretrained } from "../../src/model/pretrained.js";
import { FilmEnsemble, filmSites, initializeFilm, xavierUniformBound } from "../../src/probabilistic/film.js";
import { Tensor } from "../../src/tensor.js";
import { loadTrainingCheckpoint, saveTrainingCheckpoint } from "../../src/train/checkpoint.js";
import { Trainer } from "../../src/train/trainer.js";
import { ISAS, withSettings } from "../helpers/native.js";
import { BASE_SEED, expectBitwiseEqual, expectClose } from "../helpers/reference.js";
import { TINY, batch, copyModel, tinyModel } from "./helpers.js";

/** Weight gradients summed in another order (M member rows instead of one): a few fp32 ulps of the largest entry. */
const REORDER_RTOL = 2e-5;
/** log p̄ computed from the cached path vs the full forward (different attention kernels): fp32 rounding of the logits. */
const CACHED_RTOL = 2e-5;
/**
 * Finite differences of the float32 model's loss (sum over tokens, float64 accumulation) with
 * step FD_STEP: the forward's rounding noise (~1e-7 of ~|loss|) over 2·FD_STEP, plus O(h²).
 */
const FD_STEP = 1e-2;
const FD_ATOL = 1e-4;
const FD_RTOL = 5e-3;

function filmModel(M: number, gain: number, seed = BASE_SEED, options = {}): LlamaModel {
  const model = tinyModel(options, seed);
  const film = new FilmEnsemble(model.config, M);
  initializeFilm(film, seed + 11, gain);
  model.attachFilm(film);
  return model;
}

/** A one-member ensemble holding member m of `film` (the same shared weights as `model`). */
function memberModel(model: LlamaModel, m: number): LlamaModel {
  const single = copyModel(model);
  const film = model.film!;
  const one = new FilmEnsemble(model.config, 1);
  const C = film.hiddenSize;
  for (let s = 0; s < film.sites.length; s++) {
    one.gamma(s).set(film.gamma(s).subarray(m * C, (m + 1) * C));
    one.beta(s).set(film.beta(s).subarray(m * C, (m + 1) * C));
  }
  single.attachFilm(one);
  return single;
}

describe("FiLM-Ensemble initialisation", () => {
  test("draws γ = 1 + U(−a, a) and β = U(−a, a) with the Xavier bound of an [M, C] tensor", () => {
    const film = new FilmEnsemble(TINY, 4);
    initializeFilm(film, 5, 2);
    const a = xavierUniformBound(4, TINY.hidden_size, 2);
    expect(a).toBeCloseTo(2 * Math.sqrt(6 / (32 + 4)), 12);
    for (let s = 0; s < film.sites.length; s++) {
      for (const g of film.gamma(s)) expect(Math.abs(g - 1)).toBeLessThanOrEqual(a + 1e-6);
      for (const b of film.beta(s)) expect(Math.abs(b)).toBeLessThanOrEqual(a);
    }
    // Draws differ between members and sites, and are reproducible.
    expect(film.gamma(0)[0]).not.toBe(film.gamma(0)[TINY.hidden_size]);
    expect(film.gamma(0)[0]).not.toBe(film.gamma(1)[0]);
    const again = new FilmEnsemble(TINY, 4);
    initializeFilm(again, 5, 2);
    expectBitwiseEqual(again.params.data, film.params.data, "same seed");
    expect(film.initGain).toBe(2);
  });

  test("gain 0 gives γ = 1 and β = 0 exactly; sites and names follow the norms", () => {
    const film = new FilmEnsemble(TINY, 3);
    initializeFilm(film, 5, 0);
    for (let s = 0; s < film.sites.length; s++) {
      expect(film.gamma(s).every((v) => v === 1)).toBe(true);
      expect(film.beta(s).every((v) => Object.is(v, 0))).toBe(true);
    }
    expect(filmSites(TINY).map((s) => s.gammaName)).toEqual([
      "model.layers.0.input_layernorm.film_gamma",
      "model.layers.0.post_attention_layernorm.film_gamma",
      "model.layers.1.input_layernorm.film_gamma",
      "model.layers.1.post_attention_layernorm.film_gamma",
      "model.norm.film_gamma",
    ]);
    expect(() => initializeFilm(film, 5, -1)).toThrow(/film_init_gain must be a finite number >= 0 but is -1/);
    expect(() => new FilmEnsemble(TINY, 0)).toThrow(/ensemble_size must be a positive integer but is 0/);
  });
});

describe("FiLM-Ensemble in the model", () => {
  test.each([
    ["fp32", {}],
    ["bf16 products, recomputed layers", { matmul: "bfloat16" as const, recompute: true }],
  ])("gain 0 (%s): every member's logits and token losses are bitwise the deterministic model's", (_, options) => {
    const det = tinyModel(options);
    const ens = filmModel(4, 0, BASE_SEED, options);
    const { ids, labels } = batch(3, 11, 21);
    const a = det.forward(ids, { labels, returnLogits: true });
    const b = ens.forward(ids, { labels, returnLogits: true });
    expect(b.members).toBe(4);
    expect(b.logits!.shape).toEqual([3, 4, 11, TINY.vocab_size]);
    const rowSize = 11 * TINY.vocab_size;
    for (let r = 0; r < 3; r++) {
      for (let m = 0; m < 4; m++) {
        expectBitwiseEqual(b.logits!.data.subarray((r * 4 + m) * rowSize, (r * 4 + m + 1) * rowSize), a.logits!.data.subarray(r * rowSize, (r + 1) * rowSize), `row ${r} member ${m} logits`);
        expectBitwiseEqual(b.memberTokenLosses!.data.subarray((r * 4 + m) * 11, (r * 4 + m + 1) * 11), a.tokenLosses!.data.subarray(r * 11, (r + 1) * 11), `row ${r} member ${m} losses`);
      }
    }
    // Identical members: the mixture is each member (up to the log-mean-exp's rounding).
    expectClose(b.tokenLosses!.data, a.tokenLosses!.data, 1e-6, "mixture of identical members");
    expect(b.count).toBe(a.count);
    expect(b.loss).toBeCloseTo(a.loss, 12);
  });

  test("gain 0 with one member: loss, token losses and every weight gradient are bitwise the deterministic model's", () => {
    for (const isa of ISAS) {
      withSettings(isa, 2, () => {
        const det = tinyModel();
        const ens = filmModel(1, 0);
        const { ids, labels } = batch(2, 13, 5);
        det.zeroGrad();
        ens.zeroGrad();
        const a = det.forwardBackward(ids, labels);
        const b = ens.forwardBackward(ids, labels);
        expect(b.loss).toBe(a.loss);
        expectBitwiseEqual(b.tokenLosses!.data, a.tokenLosses!.data, `${isa} token losses`);
        expectBitwiseEqual(ens.grads.data, det.grads.data, `${isa} weight gradients`);
      });
    }
  });

  test("gain 0 with four members: the weight gradients are the deterministic ones up to summation order", () => {
    const det = tinyModel();
    const ens = filmModel(4, 0);
    const { ids, labels } = batch(2, 13, 6);
    det.zeroGrad();
    ens.zeroGrad();
    det.forwardBackward(ids, labels);
    ens.forwardBackward(ids, labels);
    expectClose(ens.grads.data, det.grads.data, REORDER_RTOL, "weight gradients");
  });

  test("M members in one pass are M separate passes: logits bitwise, gradients the members' mean", () => {
    const M = 3;
    const ens = filmModel(M, 0.8);
    const { ids, labels } = batch(2, 9, 8);
    ens.zeroGrad();
    const joint = ens.forwardBackward(ids, labels);
    const jointLogits = ens.forward(ids, { returnLogits: true }).logits!;
    const V = TINY.vocab_size;
    const rowSize = 9 * V;
    const meanGrads = new Float64Array(ens.grads.numel);
    let memberLossSum = 0;
    for (let m = 0; m < M; m++) {
      const single = memberModel(ens, m);
      const alone = single.forward(ids, { returnLogits: true }).logits!;
      for (let r = 0; r < 2; r++) {
        expectBitwiseEqual(jointLogits.data.subarray((r * M + m) * rowSize, (r * M + m + 1) * rowSize), alone.data.subarray(r * rowSize, (r + 1) * rowSize), `member ${m} row ${r}`);
      }
      single.zeroGrad();
      memberLossSum += single.forwardBackward(ids, labels).lossSum;
      single.grads.data.forEach((g, i) => (meanGrads[i] = meanGrads[i]! + g / M));
      // Member m's γ, β gradient in the joint pass is 1/M of its own pass's (each member row weighs 1/M).
      const C = TINY.hidden_size;
      for (let s = 0; s < single.film!.sites.length; s++) {
        expectClose(ens.film!.gammaGrad(s).subarray(m * C, (m + 1) * C), Float64Array.from(single.film!.gammaGrad(s), (g) => g / M), REORDER_RTOL, `dγ site ${s} member ${m}`);
        expectClose(ens.film!.betaGrad(s).subarray(m * C, (m + 1) * C), Float64Array.from(single.film!.betaGrad(s), (g) => g / M), REORDER_RTOL, `dβ site ${s} member ${m}`);
      }
      single.dispose();
    }
    expect(joint.lossSum).toBeCloseTo(memberLossSum / M, 9);
    expectClose(ens.grads.data, meanGrads, REORDER_RTOL, "shared weight gradients");
  });

  test("γ and β gradients agree with finite differences of the loss", () => {
    const ens = filmModel(2, 1.5);
    const film = ens.film!;
    const { ids, labels } = batch(2, 7, 9);
    ens.zeroGrad();
    ens.forwardBackward(ids, labels, { lossWeight: 1 });
    const sites = [0, 3, film.sites.length - 1];
    for (const s of sites) {
      for (const which of ["gamma", "beta"] as const) {
        const params = which === "gamma" ? film.gamma(s) : film.beta(s);
        const grads = which === "gamma" ? film.gammaGrad(s) : film.betaGrad(s);
        // The four largest gradients of this tensor (the others are within the noise).
        const picks = Array.from(grads.keys()).sort((i, j) => Math.abs(grads[j]!) - Math.abs(grads[i]!)).slice(0, 4);
        for (const i of picks) {
          const saved = params[i]!;
          const lossAt = (value: number): number => {
            params[i] = value;
            ens.markParamsChanged();
            return ens.forward(ids, { labels }).lossSum;
          };
          const fd = (lossAt(saved + FD_STEP) - lossAt(saved - FD_STEP)) / (2 * FD_STEP);
          params[i] = saved;
          ens.markParamsChanged();
          expect(Math.abs(fd - grads[i]!), `site ${s} ${which}[${i}]: analytic ${grads[i]} vs finite differences ${fd}`).toBeLessThanOrEqual(FD_ATOL + FD_RTOL * Math.abs(fd));
        }
      }
    }
  });

  test("forwardCached returns log p̄ of the members' next-token distributions; greedy decoding of gain 0 is the deterministic model's", () => {
    const ens = filmModel(3, 1);
    const V = TINY.vocab_size;
    const prompt = [1, 7, 9, 4, 11, 3];
    const full = ens.forward(Tensor.from(prompt, [1, prompt.length], "int32"), { returnLogits: true }).logits!;
    const cache = new KvCache(TINY, 1, 16, 1, 3);
    const cached = ens.forwardCached(Tensor.from(prompt, [1, prompt.length], "int32"), cache);
    // log p̄ from the full forward's member logits at the last position.
    const expected = new Float64Array(V);
    for (let v = 0; v < V; v++) {
      let sum = 0;
      for (let m = 0; m < 3; m++) {
        const row = full.data.subarray((m * prompt.length + prompt.length - 1) * V, (m * prompt.length + prompt.length) * V);
        let lse = 0;
        const max = Math.max(...row);
        for (const z of row) lse += Math.exp(z - max);
        sum += Math.exp(row[v]! - max - Math.log(lse));
      }
      expected[v] = Math.log(sum / 3);
    }
    expectClose(cached.data, expected, CACHED_RTOL, "log p̄ (cached) vs the full forward's members");
    expect(() => ens.forwardCached(Tensor.from([5], [1, 1], "int32"), new KvCache(TINY, 1, 16, 1, 1))).toThrow(/the cache keeps 1 member\(s\) per row but the model runs 3/);

    const det = tinyModel();
    const zero = filmModel(4, 0);
    const prompts = [[1, 5, 8, 13], [1, 22], [1, 9, 9, 9, 30, 2, 17]];
    const settings = { maxNewTokens: 8, eosTokenId: null };
    const a = generate(det, prompts, settings);
    expect(generate(zero, prompts, settings)).toEqual(a);
    expect(generate(zero, prompts, { ...settings, numBeams: 3 }).map((g) => g.tokens)).toEqual(generate(det, prompts, { ...settings, numBeams: 3 }).map((g) => g.tokens));
  });

  test("ensemble generation is the same whatever the batch (beam search and sampling)", () => {
    const ens = filmModel(3, 2);
    const prompts = [[1, 5, 8, 13], [1, 22], [1, 9, 9, 9, 30, 2, 17], [1, 40]];
    for (const settings of [{ maxNewTokens: 6, numBeams: 2, eosTokenId: 2 }, { maxNewTokens: 6, doSample: true, seed: 3, eosTokenId: 2 }]) {
      const together = generate(ens, prompts, settings);
      const alone = prompts.map((p, i) => generate(ens, [p], { ...settings, streamIds: [i] })[0]);
      expect(alone).toEqual(together);
    }
  });

  test("refuses an ensemble of the wrong shape and FiLM together with MC dropout", () => {
    const model = tinyModel();
    const other = new FilmEnsemble({ ...TINY, num_hidden_layers: 3 }, 2);
    expect(() => model.attachFilm(other)).toThrow(/the ensemble has 7 sites of 32 channels but the model needs 5 of 32/);
    other.dispose();
    model.attachFilm(new FilmEnsemble(TINY, 2));
    model.setDropout(0.1);
    expect(() => model.setMcDropout({ samples: 3 })).toThrow(/a FiLM-Ensemble is attached/);
    const plain = tinyModel();
    plain.setDropout(0.1);
    plain.setMcDropout({ samples: 2 });
    expect(() => plain.attachFilm(new FilmEnsemble(TINY, 2))).toThrow(/MC dropout is on/);
  });
});

describe("FiLM-Ensemble training and checkpoints", () => {
  test("AdamW updates γ and β (no weight decay) and clips over both buffers", () => {
    const ens = filmModel(2, 1);
    const before = Float32Array.from(ens.film!.params.data);
    const trainer = new Trainer(ens, { schedule: { type: "constant", learningRate: 1e-2, totalSteps: 10 }, optimizer: { weightDecay: 0.5, maxGradNorm: 1 } });
    const { ids, labels } = batch(2, 9, 12);
    const r = trainer.trainStep([{ ids, labels }]);
    expect(r.gradNorm).toBeGreaterThan(0);
    let changed = 0;
    ens.film!.params.data.forEach((v, i) => (changed += v !== before[i] ? 1 : 0));
    expect(changed).toBeGreaterThan(before.length / 2);
    // The optimizer refuses an ensemble attached after it was created.
    const late = tinyModel();
    const lateTrainer = new Trainer(late, { schedule: { type: "constant", learningRate: 1e-3, totalSteps: 1 } });
    late.attachFilm(new FilmEnsemble(TINY, 2));
    expect(() => lateTrainer.trainStep([{ ids, labels }])).toThrow(/the model's FiLM-Ensemble changed since the optimizer was created/);
  });

  test("savePretrained / loadPretrained keep the members; a resumed training checkpoint continues bitwise", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-film-"));
    try {
      const ens = filmModel(3, 1.2);
      savePretrained(ens, path.join(dir, "model"));
      expect(JSON.parse(fs.readFileSync(path.join(dir, "model", "probabilistic.json"), "utf8"))).toEqual({ method: "film", ensemble_size: 3, film_init_gain: 1.2 });
      const back = loadPretrained(path.join(dir, "model"));
      expect(back.film!.ensembleSize).toBe(3);
      expectBitwiseEqual(back.film!.params.data, ens.film!.params.data, "members");
      const { ids, labels } = batch(2, 9, 13);
      expectBitwiseEqual(back.forward(ids, { labels }).tokenLosses!.data, ens.forward(ids, { labels }).tokenLosses!.data, "loaded forward");
      // Saving a plain model over it removes the ensemble's files.
      savePretrained(tinyModel(), path.join(dir, "model"));
      expect(fs.existsSync(path.join(dir, "model", "film.safetensors"))).toBe(false);
      expect(loadPretrained(path.join(dir, "model")).film).toBeNull();

      const schedule = { type: "linear" as const, learningRate: 5e-3, totalSteps: 6 };
      const batches = [0, 1, 2, 3].map((i) => batch(2, 9, 40 + i));
      const straight = new Trainer(filmModel(2, 1), { schedule });
      for (const b of batches) straight.trainStep([b]);
      const first = new Trainer(filmModel(2, 1), { schedule });
      for (const b of batches.slice(0, 2)) first.trainStep([b]);
      saveTrainingCheckpoint(path.join(dir, "checkpoint-2"), first);
      const { trainer: resumed } = loadTrainingCheckpoint(path.join(dir, "checkpoint-2"));
      for (const b of batches.slice(2)) resumed.trainStep([b]);
      expectBitwiseEqual(resumed.model.params.data, straight.model.params.data, "shared weights");
      expectBitwiseEqual(resumed.model.film!.params.data, straight.model.film!.params.data, "members");
      expectBitwiseEqual(resumed.optimizer.filmV!.data, straight.optimizer.filmV!.data, "FiLM second moments");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a corrupt film.safetensors is refused by name", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-film-"));
    try {
      savePretrained(filmModel(2, 1), dir);
      const config = JSON.parse(fs.readFileSync(path.join(dir, "probabilistic.json"), "utf8"));
      fs.writeFileSync(path.join(dir, "probabilistic.json"), JSON.stringify({ ...config, ensemble_size: 3 }));
      expect(() => loadPretrained(dir)).toThrow(/film.safetensors: tensor "model.layers.0.input_layernorm.film_gamma" has shape \[2, 32\] but the ensemble's is \[3, 32\]/);
      fs.writeFileSync(path.join(dir, "probabilistic.json"), JSON.stringify({ method: "film", ensemble_size: 2, extra: 1 }));
      expect(() => loadPretrained(dir)).toThrow(/probabilistic.json: unknown field\(s\) "extra"/);
      fs.writeFileSync(path.join(dir, "probabilistic.json"), JSON.stringify({ method: "film", ensemble_size: 2 }));
      fs.rmSync(path.join(dir, "film.safetensors"));
      expect(() => loadPretrained(dir)).toThrow(/describes a FiLM-Ensemble but .*film.safetensors is missing/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
