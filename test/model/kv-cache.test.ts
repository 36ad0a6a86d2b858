/**
 * Inference with a key/value cache (LlamaModel.forwardCached, KvCache): the logits follow the
 * full forward, and each row's logits are bitwise independent of how the sequence was fed
 * (one prefill or token by token), of the other rows, of left padding, of cache row moves
 * (KvCache.select), of the thread count and of the GEMM's few-row path.
 */
import { describe, expect, test } from "vitest";

import { parseLlamaConfig } from "../../src/model/config.js";
import { KvCache } from "../../src/model/kv-cache.js";
import { LlamaModel, type MatmulPrecision } from "../../src/model/llama.js";
import { Tensor } from "../../src/tensor.js";
import { ISAS, withSettings } from "../helpers/native.js";
import { BASE_SEED, expectBitwiseEqual, expectClose, randomInts, rng } from "../helpers/reference.js";

/** The full forward uses the flash attention kernel and the many-row GEMM blocking: fp32 reordering, a few ulps of the largest logit. */
const FORWARD_RTOL = 2e-5;

// GQA (4 heads on 2 kv heads), head dim 6 (no multiple of a vector width), tied and untied heads.
const FIELDS = {
  vocab_size: 61,
  hidden_size: 24,
  intermediate_size: 40,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 48,
  rope_theta: 500,
};

function makeModel(matmul: MatmulPrecision = "float32", tied = false): LlamaModel {
  const model = new LlamaModel(parseLlamaConfig({ ...FIELDS, tie_word_embeddings: tied }), { matmul });
  model.initialize(BASE_SEED);
  const r = rng(BASE_SEED + 1);
  // Larger weights than the default init, so the logits are far from uniform and attention is peaked.
  for (let i = 0; i < model.params.numel; i++) model.params.data[i] = model.params.data[i]! * 8;
  for (const e of model.layout.entries) {
    if (e.kind.endsWith("norm")) for (let i = 0; i < e.numel; i++) model.params.data[e.offset + i] = 0.5 + r();
  }
  model.markParamsChanged();
  return model;
}

const ids = (values: readonly number[], B: number): Tensor => Tensor.from(values, [B, values.length / B], "int32");

/** Logits [V] of each position of `seq`, feeding the prompt's first `prefill` tokens at once and the rest one by one. */
function cachedLogits(model: LlamaModel, seq: readonly number[], prefill: number): Float32Array[] {
  const cache = new KvCache(model.config, 1, seq.length);
  const out: Float32Array[] = [];
  out.push(Float32Array.from(model.forwardCached(ids(seq.slice(0, prefill), 1), cache).data));
  for (let t = prefill; t < seq.length; t++) out.push(Float32Array.from(model.forwardCached(ids([seq[t]!], 1), cache).data));
  cache.dispose();
  return out;
}

describe("LlamaModel.forwardCached", () => {
  const V = FIELDS.vocab_size;
  const seq = Array.from(randomInts(30, BASE_SEED + 2, V));

  test.each([
    ["float32", false],
    ["bfloat16", true],
  ] as const)("%s products (tied %s): logits of every position follow the full forward; prefill and steps are bitwise one pass", (matmul, tied) => {
    const model = makeModel(matmul, tied);
    model.setBranchScale(1, 0.5);
    const full = model.forward(ids(seq, 1), { returnLogits: true }).logits!.data;
    const stepwise = cachedLogits(model, seq, 1);
    const prefilled = cachedLogits(model, seq, 12);
    for (let t = 0; t < seq.length; t++) {
      expectClose(stepwise[t]!, full.subarray(t * V, (t + 1) * V), FORWARD_RTOL, `${matmul} position ${t} against the full forward`);
    }
    for (let t = 11; t < seq.length; t++) expectBitwiseEqual(prefilled[t - 11]!, stepwise[t]!, `${matmul} position ${t}: prefill of 12 vs token by token`);
    model.dispose();
  });

  test.each(ISAS)("%s: a left-padded batch gives each row bitwise its logits alone, on 1 or 2 threads", (isa) => {
    const model = makeModel();
    const prompts = [seq.slice(0, 5), seq.slice(3, 16), seq.slice(7, 11)];
    const P = 13;
    const steps = 6;
    const continuation = Array.from(randomInts(prompts.length * steps, BASE_SEED + 3, V));
    const alone = prompts.map((p, b) =>
      withSettings(isa, 1, () => cachedLogits(model, [...p, ...continuation.slice(b * steps, (b + 1) * steps)], p.length)),
    );
    for (const threads of [1, 2]) {
      withSettings(isa, threads, () => {
        const cache = new KvCache(model.config, prompts.length, P + steps);
        // Padding slots hold arbitrary ids (never attended to).
        const padded = prompts.flatMap((p, b) => [...Array.from(randomInts(P - p.length, BASE_SEED + 4 + b, V)), ...p]);
        prompts.forEach((p, b) => (cache.keyBegin.data[b] = P - p.length));
        let logits = model.forwardCached(ids(padded, prompts.length), cache);
        for (let s = 0; s <= steps; s++) {
          prompts.forEach((_, b) => expectBitwiseEqual(logits.data.subarray(b * V, (b + 1) * V), alone[b]![s]!, `${isa} ${threads} threads row ${b} step ${s}`));
          if (s === steps) break;
          logits = model.forwardCached(ids(prompts.map((_, b) => continuation[b * steps + s]!), prompts.length), cache);
        }
        cache.dispose();
      });
    }
    model.dispose();
  });

  test("KvCache.select reorders, drops and repeats rows: decoding goes on as if the rows had been fed that way", () => {
    const model = makeModel();
    const prompts = [seq.slice(0, 6), seq.slice(6, 12), seq.slice(12, 18)];
    const cache = new KvCache(model.config, 4, 10, 3);
    model.forwardCached(ids(prompts.flat(), 3), cache);
    cache.select([2, 0, 2, 1]);
    expect(cache.rows).toBe(4);
    const next = [5, 7, 9, 11];
    const logits = model.forwardCached(ids(next, 4), cache);
    [2, 0, 2, 1].forEach((src, r) => {
      const expected = cachedLogits(model, [...prompts[src]!, next[r]!], 6)[1]!;
      expectBitwiseEqual(logits.data.subarray(r * V, (r + 1) * V), expected, `row ${r} from prompt ${src}`);
    });
    cache.select([3]);
    const one = model.forwardCached(ids([13], 1), cache);
    expectBitwiseEqual(one.data, cachedLogits(model, [...prompts[1]!, 11, 13], 6)[2]!, "a single row left");
    cache.dispose();
    model.dispose();
  });

  test("bad input is refused by name", () => {
    const model = makeModel();
    const cache = new KvCache(model.config, 2, 4);
    expect(() => model.forwardCached(ids([1, 2, 3], 1), cache)).toThrow(/LlamaModel.forwardCached: "ids" has 1 rows but the cache has 2 in use/);
    expect(() => model.forwardCached(ids([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 2), cache)).toThrow(/5 new tokens after 0 exceed the cache's 4 slots/);
    expect(() => model.forwardCached(ids([1, V], 2), cache)).toThrow(/"ids" holds 61 at flat index 1, outside \[0, 61\)/);
    const other = new KvCache(parseLlamaConfig({ ...FIELDS, num_hidden_layers: 3 }), 2, 4);
    expect(() => model.forwardCached(ids([1, 2], 2), other)).toThrow(/the cache holds 3 layers/);
    const long = new KvCache(model.config, 1, 60);
    expect(() => model.forwardCached(ids(Array.from({ length: 50 }, () => 1), 1), long)).toThrow(/row 0 reaches position 48, beyond max_position_embeddings = 48/);
    expect(() => cache.select([0, 2])).toThrow(/KvCache.select: from\[1\] = 2 is not a row in use \(rows: 2\)/);
    expect(() => new KvCache(model.config, 0, 4)).toThrow(/KvCache: "maxRows" must be a positive integer but is 0/);
    cache.dispose();
    expect(() => cache.keys(0)).toThrow(/KvCache: used after dispose\(\)/);
    for (const c of [other, long]) c.dispose();
    model.dispose();
  });
});
