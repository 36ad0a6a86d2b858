/** Uncertainty of a model on data: consistency with the model's own losses, and multiple choice by hand. */
import { describe, expect, test } from "vitest";

import type { TokenizedExample } from "../../src/data/collator.js";
import { FilmEnsemble, initializeFilm } from "../../src/probabilistic/film.js";
import { choiceTemperatureData, fitTokenTemperature, multipleChoiceUncertainty, teacherForcedUncertainty } from "../../src/probabilistic/evaluate.js";
import { Tensor } from "../../src/tensor.js";
import { evaluateLoss } from "../../src/train/finetune.js";
import { randomInts } from "../helpers/reference.js";
import { TINY, tinyModel } from "./helpers.js";

/** Token NLLs computed two ways (float32 cross-entropy vs float64 softmax of float32 logits). */
const NLL_RTOL = 1e-6;

function examples(n: number, seed: number): TokenizedExample[] {
  return Array.from({ length: n }, (_, i) => {
    const length = 6 + ((i * 5) % 7);
    const ids = Array.from(randomInts(length, seed + i, TINY.vocab_size - 1), (v) => v + 1);
    // The first three tokens are the prompt (-100), the rest the target.
    return { ids, labels: ids.map((id, t) => (t < 3 ? -100 : id)) };
  });
}

describe("teacher-forced uncertainty", () => {
  test("a deterministic model's token NLL is its eval loss; one member has no epistemic part", () => {
    const model = tinyModel();
    const data = examples(7, 3);
    const u = teacherForcedUncertainty(model, data, { padId: 0, batchSize: 3 });
    const loss = evaluateLoss(model, data, 3, 0);
    expect(Math.abs(u.token.nll - loss)).toBeLessThanOrEqual(NLL_RTOL * loss);
    expect(u.token.count).toBe(data.reduce((n, e) => n + e.labels.filter((l, t) => t > 0 && l !== -100).length, 0));
    expect(u.token.mutualInformation).toBe(0);
    expect(u.token.entropy).toBeCloseTo(u.token.expectedEntropy, 12);
    expect(u.sequence.count).toBe(7);
    expect(u.sequence.rmi).toBe(0);
  });

  test("an ensemble's token NLL is that of its averaged probabilities (the forward's token losses)", () => {
    const model = tinyModel();
    const film = new FilmEnsemble(TINY, 3);
    initializeFilm(film, 4, 2);
    model.attachFilm(film);
    const data = examples(4, 9);
    const u = teacherForcedUncertainty(model, data, { padId: 0, batchSize: 4, temperature: 1.5 });
    let sum = 0;
    let count = 0;
    // One example at a time: the mixture's token losses of its counted positions.
    for (const { ids, labels } of data) {
      const r = model.forward(Tensor.from(ids, [1, ids.length], "int32"), { labels: Tensor.from(labels, [1, labels.length], "int32") });
      for (let t = 0; t + 1 < ids.length; t++) if (labels[t + 1] !== -100) sum += r.tokenLosses!.data[t]!;
      count += r.count;
    }
    expect(Math.abs(u.token.nll - sum / count)).toBeLessThanOrEqual(NLL_RTOL * u.token.nll);
    expect(u.token.mutualInformation).toBeGreaterThan(0);
    expect(u.token.members).toBe(3);
    expect(u.sequence.rmi).toBeGreaterThan(0);
    expect(u.scaled!.count).toBe(u.token.count);
    // Temperature scaling on held-out data never raises that data's NLL.
    const fit = fitTokenTemperature(model, data, { padId: 0 });
    expect(fit.nll).toBeLessThanOrEqual(fit.nllAtOne);
    expect(fit.tokens).toBe(u.token.count);
    expect(fitTokenTemperature(model, data, { padId: 0, maxValues: 3 * TINY.vocab_size * 5 }).tokens).toBe(5);
  });
});

describe("multiple-choice uncertainty", () => {
  test("per-member choice distributions from log-likelihoods, averaged (by hand)", () => {
    // Member 0 prefers choice 0 with odds 4:1, member 1 choice 1 with odds 4:1.
    const ln = Math.log;
    const docs = [
      {
        scores: [
          { logprob: 0, isGreedy: true, memberLogprobs: [ln(0.8) - 3, ln(0.2) - 3] },
          { logprob: 0, isGreedy: false, memberLogprobs: [ln(0.2) - 3, ln(0.8) - 3] },
        ],
        gold: 0,
      },
    ];
    const s = multipleChoiceUncertainty(docs);
    expect(s.nll).toBeCloseTo(Math.LN2, 12);
    expect(s.mutualInformation).toBeCloseTo(Math.LN2 - 0.500402424, 8);
    // A plain model's scores: one member, its logprob.
    const plain = multipleChoiceUncertainty([{ scores: [{ logprob: ln(0.3), isGreedy: false }, { logprob: ln(0.1), isGreedy: false }], gold: 1 }]);
    expect(plain.nll).toBeCloseTo(-ln(0.25), 12);
    expect(plain.accuracy).toBe(0);
    // At temperature 2 the odds 3:1 become sqrt(3):1.
    const warm = multipleChoiceUncertainty([{ scores: [{ logprob: ln(0.3), isGreedy: false }, { logprob: ln(0.1), isGreedy: false }], gold: 1 }], 2);
    expect(warm.nll).toBeCloseTo(ln(1 + Math.sqrt(3)), 12);
    expect(choiceTemperatureData(docs).nll(1)).toBeCloseTo(Math.LN2, 12);
    expect(() => multipleChoiceUncertainty([{ scores: [{ logprob: 0, isGreedy: true }], gold: 1 }])).toThrow(/document 0: gold 1 is not one of its 1 choices/);
  });
});
