/** scoreContinuations: lm-evaluation-harness's loglikelihood over token ids, checked against scoreSequences and the logits. */
import { describe, expect, test } from "vitest";

import { parseLlamaConfig } from "../../src/model/config.js";
import { LlamaModel } from "../../src/model/llama.js";
import { scoreContinuations, scoreSequences, type ContinuationRequest } from "../../src/model/score.js";
import { Tensor } from "../../src/tensor.js";
import { BASE_SEED, rng } from "../helpers/reference.js";

const CONFIG = parseLlamaConfig({ vocab_size: 47, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 24 });
// A sum of a few float32 log-probabilities, each within ~1e-6 between the two code paths.
const SUM_TOL = 1e-5;

function makeModel(): LlamaModel {
  const model = new LlamaModel(CONFIG);
  model.initialize(BASE_SEED);
  return model;
}

function tokens(next: () => number, n: number): number[] {
  return Array.from({ length: n }, () => Math.floor(next() * CONFIG.vocab_size));
}

/** The reference: score the last min(len, maxLength + 1) tokens of context + continuation with scoreSequences. */
function reference(model: LlamaModel, r: ContinuationRequest, maxLength: number): number {
  const whole = [...r.context, ...r.continuation].slice(-(maxLength + 1));
  const lp = scoreSequences(model, [whole]).tokenLogprobs[0]!;
  return lp.slice(-r.continuation.length).reduce((s, x) => s + x, 0);
}

/** Argmax of each position's logits for `ids`. */
function argmaxes(model: LlamaModel, ids: number[]): number[] {
  const t = Tensor.from(ids, [1, ids.length], "int32");
  const logits = model.forward(t, { returnLogits: true }).logits!.data as Float32Array;
  const V = CONFIG.vocab_size;
  return ids.map((_, p) => {
    const row = Array.from(logits.subarray(p * V, (p + 1) * V));
    return row.indexOf(Math.max(...row));
  });
}

describe("scoreContinuations", () => {
  test("each continuation's log-likelihood is its summed next-token log-probabilities, batched or alone, shared inputs too", () => {
    const model = makeModel();
    const next = rng(BASE_SEED + 1);
    const context = tokens(next, 7);
    const requests: ContinuationRequest[] = [
      ...[3, 9, 14].map((t) => ({ context, continuation: [t] })), // one forward for all three
      { context: context.slice(0, 6), continuation: [context[6]!, 5] }, // the same input again, split elsewhere
      ...[2, 5, 11, 1].map((n) => ({ context: tokens(next, n), continuation: tokens(next, 1 + (n % 3)) })),
    ];
    const progress: [number, number][] = [];
    const batched = scoreContinuations(model, requests, { maxBatchTokens: 20, batchSize: 2, onProgress: (done, total) => progress.push([done, total]) });
    // 8 requests, 5 distinct inputs (the first four read the same 7 tokens), at most 2 per forward.
    expect(progress.at(-1)).toEqual([5, 5]);
    expect(progress.length).toBeGreaterThanOrEqual(3);
    requests.forEach((r, i) => {
      expect(batched[i]!.logprob, `request ${i} (GROWLM_TEST_SEED=${BASE_SEED})`).toBeCloseTo(reference(model, r, CONFIG.max_position_embeddings), -Math.log10(SUM_TOL));
      const alone = scoreContinuations(model, [r])[0]!;
      expect(batched[i]!.logprob).toBeCloseTo(alone.logprob, 6);
      expect(batched[i]!.isGreedy).toBe(alone.isGreedy);
    });
    model.dispose();
  });

  test("inputs longer than maxLength lose tokens on the left: (context + continuation)[-(maxLength + 1):][:-1]", () => {
    const model = makeModel();
    const next = rng(BASE_SEED + 2);
    const r = { context: tokens(next, 20), continuation: tokens(next, 3) };
    for (const maxLength of [5, 8, 22, 24]) {
      expect(scoreContinuations(model, [r], { maxLength })[0]!.logprob).toBeCloseTo(reference(model, r, maxLength), -Math.log10(SUM_TOL));
    }
    model.dispose();
  });

  test("is_greedy: true exactly when every continuation token is its position's argmax", () => {
    const model = makeModel();
    const next = rng(BASE_SEED + 3);
    const context = tokens(next, 5);
    const greedy: number[] = [];
    for (let i = 0; i < 3; i++) greedy.push(argmaxes(model, [...context, ...greedy]).at(-1)!);
    expect(scoreContinuations(model, [{ context, continuation: greedy }])[0]!.isGreedy).toBe(true);
    const other = [...greedy];
    other[1] = (other[1]! + 1) % CONFIG.vocab_size;
    expect(scoreContinuations(model, [{ context, continuation: other }])[0]!.isGreedy).toBe(false);
    model.dispose();
  });

  test("bad requests and options are refused by name", () => {
    const model = makeModel();
    expect(() => scoreContinuations(model, [{ context: [], continuation: [1] }])).toThrow(/request 0: the context must be a non-empty list of token ids/);
    expect(() => scoreContinuations(model, [{ context: [1], continuation: [] }])).toThrow(/request 0: the continuation must be a non-empty list/);
    expect(() => scoreContinuations(model, [{ context: [1], continuation: [47] }])).toThrow(/request 0: the continuation holds 47 at position 0, not a token id in \[0, 47\)/);
    expect(() => scoreContinuations(model, [{ context: [1], continuation: [1, 2, 3] }], { maxLength: 2 })).toThrow(/the continuation has 3 tokens, more than maxLength = 2/);
    expect(() => scoreContinuations(model, [], { maxLength: 25 })).toThrow(/maxLength must be an integer in \[1, max_position_embeddings = 24\]/);
    expect(() => scoreContinuations(model, [], { batchSize: 0 })).toThrow(/batchSize must be a positive integer/);
    model.dispose();
  });
});
