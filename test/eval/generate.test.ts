/**
 * generate(): every option on models whose next-token distribution is known (a "bigram" model
 * whose logits depend only on the last token, set through its weights), greedy and beam search
 * against references written here over the model's full-sequence forward, the cache against
 * recomputation for left-padded batches, determinism, and errors by name.
 */
import { describe, expect, test } from "vitest";

import { generate, placeBeams, type GenerateOptions } from "../../src/eval/generate.js";
import { parseLlamaConfig } from "../../src/model/config.js";
import { KvCache } from "../../src/model/kv-cache.js";
import { LlamaModel, type MatmulPrecision } from "../../src/model/llama.js";
import { Tensor } from "../../src/tensor.js";
import { BASE_SEED, randomF32, randomInts, rng } from "../helpers/reference.js";

/** The bigram model's logits equal its table up to fp32 rounding of the norm and the head product. */
const BIGRAM_ATOL = 1e-5;
/** Beam scores of the reference and of generate() come from the same logits bits, summed the same way in float32. */
const SCORE_RTOL = 1e-12;

/**
 * A one-layer LLaMA whose logits after token t are table[t] (V ≤ 10): one-hot embeddings, the
 * attention and MLP outputs zero (o_proj, down_proj = 0), the final RMSNorm turns e_t into
 * √C·e_t and lm_head[v][t] = table[t][v] / √C.
 */
function bigramModel(table: readonly (readonly number[])[], extra: Record<string, unknown> = {}): LlamaModel {
  const V = table.length;
  const C = Math.ceil(V / 4) * 4; // two heads of an even size
  const model = new LlamaModel(
    parseLlamaConfig({ vocab_size: V, hidden_size: C, intermediate_size: 4, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 64, rms_norm_eps: 1e-12, bos_token_id: null, eos_token_id: 0, pad_token_id: null, ...extra }),
  );
  const p = model.params.data;
  p.fill(0);
  for (const e of model.layout.entries) if (e.kind.endsWith("norm")) p.fill(1, e.offset, e.offset + e.numel);
  const embed = model.layout.entry("model.embed_tokens.weight").offset;
  const head = model.layout.entry("lm_head.weight").offset;
  for (let t = 0; t < V; t++) {
    p[embed + t * C + t] = 1;
    for (let v = 0; v < V; v++) p[head + v * C + t] = table[t]![v]! / Math.sqrt(C);
  }
  model.markParamsChanged();
  return model;
}

/** Log-probabilities as logits: softmax(log p) = p. */
const logs = (probs: readonly number[]): number[] => probs.map((x) => Math.log(x));

/** The logits after `seq` from one pass over the whole sequence (bitwise what incremental decoding sees). */
function logitsOf(model: LlamaModel, seq: readonly number[]): Float32Array {
  const cache = new KvCache(model.config, 1, seq.length);
  const logits = model.forwardCached(Tensor.from(seq, [1, seq.length], "int32"), cache);
  cache.dispose();
  return logits.data as Float32Array;
}

function logSoftmax64(x: Float32Array): Float64Array {
  const max = Math.max(...x);
  const lse = max + Math.log(x.reduce((s, v) => s + Math.exp(v - max), 0));
  return Float64Array.from(x, (v) => v - lse);
}

/**
 * Beam search as transformers' BeamSearchScorer describes it, written out plainly for one
 * prompt: all candidates sorted (score, then beam, then token), EOS candidates ranked below
 * numBeams ignored, hypotheses scored sum / generated_length ** lengthPenalty.
 */
function referenceBeamSearch(
  model: LlamaModel,
  prompt: readonly number[],
  o: { numBeams: number; maxNewTokens: number; lengthPenalty: number; earlyStopping: boolean | "never"; eos: number[]; minNewTokens?: number },
): { tokens: number[]; score: number } {
  const V = model.config.vocab_size;
  let beams = Array.from({ length: o.numBeams }, (_, r) => ({ tokens: [] as number[], score: r === 0 ? 0 : -1e9 }));
  const hyps: { score: number; tokens: number[] }[] = [];
  let worst = 1e9;
  const add = (tokens: number[], sum: number, length: number) => {
    const score = sum / length ** o.lengthPenalty;
    if (hyps.length < o.numBeams || score > worst) {
      hyps.push({ score, tokens });
      if (hyps.length > o.numBeams) {
        const sorted = hyps.map((h, i) => [h.score, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        hyps.splice(sorted[0]![1], 1);
        worst = sorted[1]![0];
      } else worst = Math.min(worst, score);
    }
  };
  let done = false;
  let g = 0;
  for (; g < o.maxNewTokens && !done; g++) {
    const candidates: { score: number; beam: number; token: number }[] = [];
    beams.forEach((beam, r) => {
      const lp = Float32Array.from(logSoftmax64(logitsOf(model, [...prompt, ...beam.tokens])));
      if (g < (o.minNewTokens ?? 0)) for (const e of o.eos) lp[e] = -Infinity;
      for (let t = 0; t < V; t++) candidates.push({ score: Math.fround(lp[t]! + beam.score), beam: r, token: t });
    });
    candidates.sort((a, b) => b.score - a.score || a.beam - b.beam || a.token - b.token);
    const top = candidates.slice(0, Math.max(2, 1 + o.eos.length) * o.numBeams);
    const next: typeof beams = [];
    for (let rank = 0; rank < top.length && next.length < o.numBeams; rank++) {
      const c = top[rank]!;
      if (o.eos.includes(c.token)) {
        if (rank < o.numBeams) add([...beams[c.beam]!.tokens, c.token], c.score, g + 1);
      } else next.push({ tokens: [...beams[c.beam]!.tokens, c.token], score: c.score });
    }
    beams = next;
    if (hyps.length >= o.numBeams) {
      if (o.earlyStopping === true) done = true;
      else {
        const length = o.earlyStopping === "never" && o.lengthPenalty > 0 ? o.maxNewTokens : g + 1;
        done = worst >= top[0]!.score / length ** o.lengthPenalty;
      }
    }
  }
  if (!done) for (const beam of beams) add(beam.tokens, beam.score, g);
  let best = hyps[0]!;
  for (const h of hyps) if (h.score >= best.score) best = h;
  return best;
}

/** A random model with larger weights than the default init, so its distributions are peaked. */
function randomModel(matmul: MatmulPrecision = "float32"): LlamaModel {
  const model = new LlamaModel(
    parseLlamaConfig({ vocab_size: 37, hidden_size: 24, intermediate_size: 40, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, eos_token_id: 3, pad_token_id: 0 }),
    { matmul },
  );
  model.initialize(BASE_SEED);
  const noise = randomF32(model.params.numel, BASE_SEED + 5, 0.5, 1.5);
  for (let i = 0; i < model.params.numel; i++) model.params.data[i] = model.params.data[i]! * 12 * noise[i]!;
  const r = rng(BASE_SEED + 6);
  for (const e of model.layout.entries) if (e.kind.endsWith("norm")) for (let i = 0; i < e.numel; i++) model.params.data[e.offset + i] = 0.5 + r();
  model.markParamsChanged();
  return model;
}

const PROMPTS = [[5, 9, 11, 2], [7], [12, 30, 1, 1, 4, 8, 19, 22, 6], [14, 15]];

describe("greedy decoding", () => {
  // 0 = EOS; from 1 the best is 2, from 2 it is 3, from 3 it is EOS.
  const table = [logs([0.7, 0.1, 0.1, 0.1]), logs([0.1, 0.1, 0.6, 0.2]), logs([0.2, 0.1, 0.1, 0.6]), logs([0.5, 0.3, 0.1, 0.1])];

  test("follows the argmax and stops at EOS, which it keeps; stops at maxNewTokens otherwise", () => {
    const model = bigramModel(table);
    expect(generate(model, [[1], [3], [2, 1]], { maxNewTokens: 10 })).toEqual([
      { tokens: [2, 3, 0], finishReason: "eos" },
      { tokens: [0], finishReason: "eos" },
      { tokens: [2, 3, 0], finishReason: "eos" },
    ]);
    expect(generate(model, [[1]], { maxNewTokens: 2 })).toEqual([{ tokens: [2, 3], finishReason: "length" }]);
    // No EOS: generation runs to maxNewTokens; several EOS ids: any of them stops it.
    expect(generate(model, [[1]], { maxNewTokens: 5, eosTokenId: null })[0]!.tokens).toEqual([2, 3, 0, 0, 0]);
    expect(generate(model, [[1]], { maxNewTokens: 5, eosTokenId: [7 % 4, 3] })).toEqual([{ tokens: [2, 3], finishReason: "eos" }]);
  });

  test("minNewTokens masks EOS until that many tokens are generated", () => {
    const model = bigramModel(table);
    // From 3 the best non-EOS token is 1 (0.3); from 1 it is 2, from 2 it is 3.
    expect(generate(model, [[3]], { maxNewTokens: 10, minNewTokens: 3 })[0]!.tokens).toEqual([1, 2, 3, 0]);
    expect(generate(model, [[3]], { maxNewTokens: 10, minNewTokens: 1 })[0]!.tokens).toEqual([1, 2, 3, 0]);
  });

  test("repetitionPenalty divides positive scores and multiplies negative ones of every token seen, prompt included", () => {
    // After 1: token 1 at +2.0, token 2 at +1.5 (positive: divided). After 2: token 1 at -1.5,
    // token 2 at -1.0 (negative: multiplied). After 3: token 1 at 1.8, token 2 at 2.0.
    const model = bigramModel([[5, -9, -9, -9], [-9, 2, 1.5, -9], [-9, -1.5, -1, -9], [-9, 1.8, 2, -9]], { eos_token_id: null });
    expect(generate(model, [[1]], { maxNewTokens: 3 })[0]!.tokens).toEqual([1, 1, 1]);
    // penalty 2: after [1], token 1 scores 1.0 < 1.5: 2; after [1, 2], token 2 (-2.0) beats token 1 (-3.0).
    expect(generate(model, [[1]], { maxNewTokens: 3, repetitionPenalty: 2 })[0]!.tokens).toEqual([2, 2, 2]);
    // penalty 1.2: 2 / 1.2 = 1.67 still beats 1.5.
    expect(generate(model, [[1]], { maxNewTokens: 2, repetitionPenalty: 1.2 })[0]!.tokens).toEqual([1, 1]);
    // The prompt counts: after [3] token 2 wins; after [2, 3] it is penalised to 1.67 < 1.8.
    expect(generate(model, [[3]], { maxNewTokens: 1, repetitionPenalty: 1.2 })[0]!.tokens).toEqual([2]);
    expect(generate(model, [[2, 3]], { maxNewTokens: 1, repetitionPenalty: 1.2 })[0]!.tokens).toEqual([1]);
  });

  test("noRepeatNgramSize bans the token that would repeat an n-gram", () => {
    // 1 → 2 → 1 → 2 ... unless banned; second choices: after 1 it is 3, after 2 it is 3, after 3 it is 1.
    const model = bigramModel([[0, -9, -9, -9], [-9, -9, 2, 1], [-9, 2, -9, 1], [-9, 2, 1, -9]], { eos_token_id: null });
    expect(generate(model, [[1]], { maxNewTokens: 6 })[0]!.tokens).toEqual([2, 1, 2, 1, 2, 1]);
    // n = 2: [1, 2, 1], then "1 2" exists: 3 instead of 2; after 3: 1; then "1 2" and "1 3"
    // exist: the best left after 1 is token 0 (tied with 1 at -9, the first wins); then 0.
    expect(generate(model, [[1]], { maxNewTokens: 6, noRepeatNgramSize: 2 })[0]!.tokens).toEqual([2, 1, 3, 1, 0, 0]);
    // n = 3: the first repeat possible is "2 1 2" after [1, 2, 1, 2]: the history [1, 2, 1, 2] then "1 2 1" exists: banned 1 → 3.
    expect(generate(model, [[1]], { maxNewTokens: 4, noRepeatNgramSize: 3 })[0]!.tokens).toEqual([2, 1, 2, 3]);
  });

  test("a left-padded batch gives every prompt the tokens of recomputing its whole sequence each step (fp32 and bf16 products)", () => {
    for (const matmul of ["float32", "bfloat16"] as const) {
      const model = randomModel(matmul);
      const out = generate(model, PROMPTS, { maxNewTokens: 12 });
      PROMPTS.forEach((prompt, i) => {
        // The training forward over the growing sequence (flash attention, many-row GEMM).
        const seq = [...prompt];
        const expected: number[] = [];
        for (let g = 0; g < 12; g++) {
          const logits = model.forward(Tensor.from(seq, [1, seq.length], "int32"), { returnLogits: true }).logits!.data;
          const last = logits.subarray((seq.length - 1) * 37, seq.length * 37);
          const sorted = [...last].sort((a, b) => b - a);
          const best = last.indexOf(sorted[0]!);
          if (best !== out[i]!.tokens[g]) {
            // Only a genuine near-tie may go either way (the two forwards differ by fp32 reordering).
            expect(sorted[0]! - sorted[1]!, `${matmul} prompt ${i} step ${g}: ${best} vs ${out[i]!.tokens[g]} (seed ${BASE_SEED})`).toBeLessThan(1e-4 * Math.abs(sorted[0]!) + 1e-5);
            return;
          }
          expected.push(best);
          seq.push(best);
          if (best === 3) break;
        }
        expect(out[i]!.tokens, `${matmul} prompt ${i} (seed ${BASE_SEED})`).toEqual(expected);
      });
      model.dispose();
    }
  });

  test("a prefill split into chunks of positions (more than 2048 prompt tokens) gives each prompt its tokens alone", () => {
    const model = randomModel();
    const prompts = Array.from({ length: 40 }, (_, i) => Array.from(randomInts(40 + (i % 20), BASE_SEED + 40 + i, 37)));
    const together = generate(model, prompts, { maxNewTokens: 3 });
    [0, 7, 39].forEach((i) => expect(generate(model, [prompts[i]!], { maxNewTokens: 3 })[0]).toEqual(together[i]));
    model.dispose();
  });

  test("each prompt's tokens do not depend on the batch it is in", () => {
    const model = randomModel();
    const together = generate(model, PROMPTS, { maxNewTokens: 10, repetitionPenalty: 1.3, noRepeatNgramSize: 2 });
    PROMPTS.forEach((p, i) => expect(generate(model, [p], { maxNewTokens: 10, repetitionPenalty: 1.3, noRepeatNgramSize: 2 })[0]).toEqual(together[i]));
    model.dispose();
  });
});

describe("sampling", () => {
  const probs = [0.05, 0.4, 0.25, 0.15, 0.1, 0.05];
  const model = bigramModel([probs, probs, probs, probs, probs, probs].map(logs), { eos_token_id: null });
  const N = 4000;
  const prompts = Array.from({ length: N }, () => [1]);

  /** Frequencies of the first sampled token over N prompts (each its own stream position). */
  const frequencies = (o: Partial<GenerateOptions>): number[] => {
    const counts = new Array<number>(probs.length).fill(0);
    for (const s of generate(model, prompts, { maxNewTokens: 1, doSample: true, seed: 7, ...o })) counts[s.tokens[0]!]!++;
    return counts.map((c) => c / N);
  };
  /** Empirical frequencies within 4.5 binomial standard deviations of the expected probabilities. */
  const expectFrequencies = (got: number[], expected: number[], label: string) => {
    expected.forEach((p, t) => {
      const sd = Math.sqrt((p * (1 - p)) / N);
      expect(Math.abs(got[t]! - p), `${label}: token ${t} drawn ${got[t]} vs ${p}`).toBeLessThanOrEqual(4.5 * sd + 1e-12);
    });
  };
  const normalise = (w: number[]) => w.map((x) => x / w.reduce((a, b) => a + b, 0));

  test("draws from softmax(logits), warped by temperature, then top-k, then top-p", () => {
    expectFrequencies(frequencies({ topK: 0 }), probs, "plain");
    expectFrequencies(frequencies({ topK: 0, temperature: 0.5 }), normalise(probs.map((p) => p ** 2)), "temperature 0.5");
    expectFrequencies(frequencies({ topK: 2 }), normalise([0, 0.4, 0.25, 0, 0, 0]), "top-k 2");
    // top-p 0.7: ascending cumulative 0.05, 0.1, 0.2, 0.35 (removed, <= 0.3 fails at 0.35) ...: keeps 1, 2, 3.
    expectFrequencies(frequencies({ topK: 0, topP: 0.7 }), normalise([0, 0.4, 0.25, 0.15, 0, 0]), "top-p 0.7");
    // top-k 3 first (1, 2, 3), then top-p 0.6 of the renormalised 0.4/0.8, 0.25/0.8, 0.15/0.8: keeps 1 and 2.
    expectFrequencies(frequencies({ topK: 3, topP: 0.6 }), normalise([0, 0.4, 0.25, 0, 0, 0]), "top-k 3, top-p 0.6");
    // top-p 0 keeps the single most likely token.
    expect(frequencies({ topP: 0 })).toEqual([0, 1, 0, 0, 0, 0]);
  });

  test("is determined by the seed and the prompt's index, not by the batch", () => {
    const p = [[1], [2], [3, 4], [5]];
    const o: GenerateOptions = { maxNewTokens: 8, doSample: true, topK: 0, seed: 11 };
    const all = generate(model, p, o);
    expect(generate(model, p, o)).toEqual(all);
    expect(generate(model, p, { ...o, seed: 12 })).not.toEqual(all);
    p.forEach((prompt, i) => expect(generate(model, [prompt], { ...o, streamIds: [i] })[0]).toEqual(all[i]));
    expect(generate(model, [p[3]!, p[1]!], { ...o, streamIds: [3, 1] })).toEqual([all[3], all[1]]);
    expect(() => generate(model, p, { ...o, streamIds: [0] })).toThrow(/generate: "streamIds" has 1 entries for 4 prompts/);
  });
});

describe("beam search", () => {
  // 0 = EOS. From 3: 1 (0.55), EOS (0.40), 2 (0.05). From 1: EOS (0.55), 2 (0.45). From 2: EOS (0.9), 1 (0.1).
  const table = [logs([0.25, 0.25, 0.25, 0.25]), logs([0.55, 1e-6, 0.45, 1e-6]), logs([0.9, 0.1, 1e-6, 1e-6]), logs([0.4, 0.55, 0.05, 1e-6])];

  test("length_penalty divides the summed log-probability by generated_length ** length_penalty", () => {
    const model = bigramModel(table);
    // Finished: [EOS] with log 0.40 over 1 token, [1, EOS] with log 0.55 + log 0.55 over 2.
    const long = generate(model, [[3]], { maxNewTokens: 5, numBeams: 2, lengthPenalty: 1, earlyStopping: true })[0]!;
    expect(long.tokens).toEqual([1, 0]);
    expect(long.score).toBeCloseTo((2 * Math.log(0.55)) / 2, 5);
    const short = generate(model, [[3]], { maxNewTokens: 5, numBeams: 2, lengthPenalty: 0 })[0]!;
    expect(short).toMatchObject({ tokens: [0], finishReason: "eos" });
    expect(short.score).toBeCloseTo(Math.log(0.4), 5);
    expect(Math.abs(short.score! - Math.log(0.4))).toBeLessThan(BIGRAM_ATOL);
  });

  test("matches the reference on random tables for every setting", () => {
    const r = rng(BASE_SEED + 21);
    for (let trial = 0; trial < 12; trial++) {
      const V = 5 + Math.floor(r() * 4);
      const table = Array.from({ length: V }, () => Array.from({ length: V }, () => 3 * (r() - 0.5)));
      const eos = trial % 3 === 0 ? [0, 1] : [0];
      const model = bigramModel(table, { eos_token_id: eos });
      const o = {
        numBeams: 2 + (trial % 3),
        maxNewTokens: 3 + (trial % 4),
        lengthPenalty: [1, 0.8, 2, -0.5][trial % 4]!,
        earlyStopping: ([false, true, "never"] as const)[trial % 3]!,
        minNewTokens: trial % 5 === 0 ? 2 : 0,
      };
      const prompts = [[2], [3, 4], [V - 1, 2, 3]];
      const got = generate(model, prompts, { ...o, eosTokenId: eos });
      prompts.forEach((p, i) => {
        const ref = referenceBeamSearch(model, p, { ...o, eos });
        const label = `trial ${trial} prompt ${i} ${JSON.stringify(o)} (seed ${BASE_SEED})`;
        expect(got[i]!.tokens, label).toEqual(ref.tokens);
        expect(Math.abs(got[i]!.score! - ref.score), label).toBeLessThanOrEqual(SCORE_RTOL * Math.abs(ref.score));
        expect(got[i]!.finishReason).toBe(eos.includes(ref.tokens.at(-1)!) ? "eos" : "length");
      });
      model.dispose();
    }
  });

  test("a left-padded batch of a random model matches the reference prompt by prompt", () => {
    const model = randomModel();
    for (const o of [
      { numBeams: 3, maxNewTokens: 7, lengthPenalty: 0.8, earlyStopping: false },
      { numBeams: 2, maxNewTokens: 6, lengthPenalty: 1.5, earlyStopping: "never" },
    ] as const) {
      const got = generate(model, PROMPTS, o);
      PROMPTS.forEach((p, i) => {
        const ref = referenceBeamSearch(model, p, { ...o, eos: [3] });
        expect(got[i]!.tokens, `prompt ${i} ${JSON.stringify(o)} (seed ${BASE_SEED})`).toEqual(ref.tokens);
        expect(got[i]!.score).toBe(ref.score);
      });
    }
    model.dispose();
  });
});

test("placeBeams keeps each parent's first child in the parent's row and gives later children free rows", () => {
  // Rows 4..7 of the second prompt: beams 0 and 2 continue 5, beam 1 continues 7, beam 3 continues 5.
  expect(placeBeams([5, 7, 5, 5], 4, 4)).toEqual([5, 7, 4, 6]);
  // Nothing moves when every beam continues its own row.
  expect(placeBeams([2, 1, 0], 0, 3)).toEqual([2, 1, 0]);
  // Parents outside the range (an earlier prompt finished, the block shifted) take free rows in order.
  expect(placeBeams([9, 8, 9], 4, 3)).toEqual([4, 5, 6]);
});

describe("generate errors", () => {
  const model = bigramModel([logs([0.5, 0.5]), logs([0.5, 0.5])]);
  test.each([
    [{ maxNewTokens: 0 }, /generate: "maxNewTokens" must be an integer in \[1, 16777216\] but is 0/],
    [{ maxNewTokens: 2, numBeams: 0 }, /"numBeams" must be an integer in \[1, /],
    [{ maxNewTokens: 2, doSample: true, temperature: 0 }, /"temperature" must be a finite number > 0 but is 0/],
    [{ maxNewTokens: 2, topP: 1.5 }, /"topP" must be in \[0, 1\] but is 1.5/],
    [{ maxNewTokens: 2, topK: -1 }, /"topK" must be an integer in \[0, /],
    [{ maxNewTokens: 2, repetitionPenalty: 0 }, /"repetitionPenalty" must be a finite number > 0 but is 0/],
    [{ maxNewTokens: 2, noRepeatNgramSize: 1.5 }, /"noRepeatNgramSize" must be an integer/],
    [{ maxNewTokens: 2, eosTokenId: [0, 9] }, /"eosTokenId\[1\]" must be an integer in \[0, 1\] but is 9/],
    [{ maxNewTokens: 2, numBeams: 2, doSample: true }, /beam-search multinomial sampling \(doSample with numBeams = 2\) is not supported/],
    [{ maxNewTokens: 2, numBeams: 2, eosTokenId: [0, 1] }, /beam search keeps 6 candidates per step but 2 beams × vocab_size 2 offer fewer/],
    [{ maxNewTokens: 2, earlyStopping: "sometimes" as unknown as boolean }, /"earlyStopping" must be true, false or "never" but is "sometimes"/],
  ])("%o", (o, message) => {
    expect(() => generate(model, [[1]], o as GenerateOptions)).toThrow(message);
  });

  test("prompts are checked", () => {
    expect(() => generate(model, [[1], []], { maxNewTokens: 2 })).toThrow(/generate: prompt 1 is empty/);
    expect(() => generate(model, [[1, 2]], { maxNewTokens: 2 })).toThrow(/prompt 0 holds 2 at position 1, not a token id in \[0, 2\)/);
    expect(() => generate(model, [[1, 1, 1]], { maxNewTokens: 62 })).toThrow(/prompt 0 has 3 tokens: with maxNewTokens = 62 it would pass max_position_embeddings = 64/);
    expect(generate(model, [], { maxNewTokens: 2 })).toEqual([]);
  });
});

test("random prompts: generation never reads past a row's own tokens (garbage in the padding slots)", () => {
  const model = randomModel();
  const prompts = [Array.from(randomInts(3, BASE_SEED + 31, 37)), Array.from(randomInts(11, BASE_SEED + 32, 37))];
  const o: GenerateOptions = { maxNewTokens: 6, padTokenId: 17 };
  expect(generate(model, prompts, o)).toEqual(generate(model, prompts, { ...o, padTokenId: 29 }));
  model.dispose();
});
