/**
 * Text generation with a key/value cache, following Hugging Face's generate() for
 * decoder-only models: greedy decoding, multinomial sampling (temperature, top-k, top-p) and
 * beam search (num_beams, length_penalty, early_stopping), with max_new_tokens,
 * min_new_tokens, repetition_penalty, no_repeat_ngram_size and EOS (one id or several).
 *
 * A batch of prompts of different lengths is left-padded (with the pad id, or the first EOS
 * when there is none: the filler is never attended to) and prefilled once; then each step
 * feeds one token per unfinished row. Rows that finish leave the batch, so they cost
 * nothing. Every row is computed on its own (see LlamaModel.forwardCached) and the sampling
 * draws are keyed by the prompt's index, not its place in the batch: a prompt's result is the
 * same whatever it is batched with and whatever the batch size.
 *
 * Differences from transformers, all deliberate: penalties see each prompt without its
 * padding (transformers also counts the pad tokens of left-padded batches); the random draws
 * come from growlm's Philox stream, so samples follow the same distribution as torch's
 * multinomial but are not the same draws; a beam hypothesis ended by EOS keeps that EOS
 * (transformers writes the first EOS id of the list); ties between equal scores go to the
 * lower beam, then the lower token id.
 *
 * An ensemble model (LlamaModel.inferenceMembers > 1: FiLM-Ensemble members or MC-dropout
 * samples) decodes the members' averaged token distribution p̄ at every step (token-level
 * ensembling); MC-dropout masks are keyed by each prompt's stream id, like the sampling draws.
 */
import { GrowlmError } from "../errors.js";
import { KvCache } from "../model/kv-cache.js";
import type { LlamaModel } from "../model/llama.js";
import { Tensor } from "../tensor.js";
import { RandomStream } from "../train/random.js";
import { BeamHypotheses, type EarlyStopping } from "./beam-search.js";
import {
  applyNoRepeatNgram,
  applyRepetitionPenalty,
  applyTemperature,
  applyTopK,
  applyTopP,
  argmax,
  banTokens,
  logSoftmax,
  sampleToken,
} from "./logits.js";

/** Generation settings, named as transformers' GenerationConfig names them (camelCase). */
export interface GenerateOptions {
  /** New tokens to generate at most (>= 1). */
  maxNewTokens: number;
  /** EOS cannot be generated before this many new tokens (default 0). */
  minNewTokens?: number;
  /** Beam search with this many beams when > 1 (default 1). */
  numBeams?: number;
  /** Beam scores are sum(log p) / generated_length ** lengthPenalty (default 1). */
  lengthPenalty?: number;
  /** Beam search stopping rule (default false, transformers' heuristic). */
  earlyStopping?: EarlyStopping;
  /** Multinomial sampling instead of greedy decoding (default false). */
  doSample?: boolean;
  /** Sampling temperature (> 0, default 1). */
  temperature?: number;
  /** Sampling keeps the k most likely tokens; 0 keeps all (default 50, as transformers). */
  topK?: number;
  /** Sampling keeps the smallest set of most likely tokens of probability >= topP (default 1: all). */
  topP?: number;
  /** > 0; 1 (the default) is no penalty. */
  repetitionPenalty?: number;
  /** n-grams of this size occur at most once (default 0: off). */
  noRepeatNgramSize?: number;
  /** Generation stops at any of these; default the model config's eos_token_id; null: never. */
  eosTokenId?: number | readonly number[] | null;
  /** The left-padding filler; default the config's pad_token_id, else the first EOS id, else 0. */
  padTokenId?: number | null;
  /** Sampling seed (a Philox key, default 0). */
  seed?: number;
  /**
   * Each prompt's stream of random draws (default 0, 1, 2, ...: its position in `prompts`):
   * prompt i draws its token at step g from Philox position streamIds[i] · 2^24 + g of
   * `seed`. Passing each example's index in its dataset makes sampling independent of how
   * the dataset is split into batches.
   */
  streamIds?: readonly number[];
}

export interface GeneratedSequence {
  /** The new tokens, ending with the EOS that stopped them (when one did). */
  tokens: number[];
  finishReason: "eos" | "length";
  /** Beam search: the hypothesis' length-penalised score (transformers' sequences_scores). */
  score?: number;
}

/** Stream elements reserved per prompt: up to 2^24 new tokens each. */
const DRAWS_PER_PROMPT = 2 ** 24;

interface Settings {
  maxNewTokens: number;
  minNewTokens: number;
  numBeams: number;
  lengthPenalty: number;
  earlyStopping: EarlyStopping;
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  noRepeatNgramSize: number;
  eos: number[];
  pad: number;
  seed: number;
  /** Per prompt; checked against the prompts in generate(). */
  streamIds: readonly number[] | null;
}

function settingsOf(op: string, model: LlamaModel, o: GenerateOptions): Settings {
  const V = model.config.vocab_size;
  const int = (name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (!Number.isSafeInteger(value) || value < min || value > max) throw new GrowlmError(op, `"${name}" must be an integer in [${min}, ${max}] but is ${String(value)}`);
    return value;
  };
  const num = (name: string, value: number, ok: (v: number) => boolean, what: string): number => {
    if (typeof value !== "number" || !Number.isFinite(value) || !ok(value)) throw new GrowlmError(op, `"${name}" must be ${what} but is ${String(value)}`);
    return value;
  };
  const token = (name: string, value: number): number => int(name, value, 0, V - 1);
  const eosOption = o.eosTokenId === undefined ? model.config.eos_token_id : o.eosTokenId;
  const eos = eosOption === null ? [] : (Array.isArray(eosOption) ? [...(eosOption as readonly number[])] : [eosOption as number]).map((t, i) => token(`eosTokenId[${i}]`, t));
  const padOption = o.padTokenId === undefined ? model.config.pad_token_id : o.padTokenId;
  const s: Settings = {
    maxNewTokens: int("maxNewTokens", o.maxNewTokens, 1, DRAWS_PER_PROMPT),
    minNewTokens: int("minNewTokens", o.minNewTokens ?? 0, 0),
    numBeams: int("numBeams", o.numBeams ?? 1, 1),
    lengthPenalty: num("lengthPenalty", o.lengthPenalty ?? 1, () => true, "a finite number"),
    earlyStopping: o.earlyStopping ?? false,
    doSample: o.doSample ?? false,
    temperature: num("temperature", o.temperature ?? 1, (v) => v > 0, "a finite number > 0"),
    topK: int("topK", o.topK ?? 50, 0),
    topP: num("topP", o.topP ?? 1, (v) => v >= 0 && v <= 1, "in [0, 1]"),
    repetitionPenalty: num("repetitionPenalty", o.repetitionPenalty ?? 1, (v) => v > 0, "a finite number > 0"),
    noRepeatNgramSize: int("noRepeatNgramSize", o.noRepeatNgramSize ?? 0, 0),
    eos,
    pad: padOption !== null ? token("padTokenId", padOption) : (eos[0] ?? 0),
    seed: int("seed", o.seed ?? 0, 0, 2 ** 32 - 1),
    streamIds: o.streamIds ?? null,
  };
  if (s.streamIds !== null) {
    if (!Array.isArray(s.streamIds)) throw new GrowlmError(op, `"streamIds" must be a list of integers`);
    s.streamIds.forEach((id, i) => int(`streamIds[${i}]`, id, 0, Math.floor(Number.MAX_SAFE_INTEGER / DRAWS_PER_PROMPT) - 1));
  }
  if (s.earlyStopping !== true && s.earlyStopping !== false && s.earlyStopping !== "never") {
    throw new GrowlmError(op, `"earlyStopping" must be true, false or "never" but is ${JSON.stringify(s.earlyStopping)}`);
  }
  if (typeof s.doSample !== "boolean") throw new GrowlmError(op, `"doSample" must be a boolean but is ${JSON.stringify(s.doSample)}`);
  if (s.doSample && s.numBeams > 1) {
    throw new GrowlmError(op, `beam-search multinomial sampling (doSample with numBeams = ${s.numBeams}) is not supported: use doSample or numBeams > 1`);
  }
  const keep = Math.max(2, 1 + s.eos.length) * s.numBeams;
  if (s.numBeams > 1 && keep > s.numBeams * V) {
    throw new GrowlmError(op, `beam search keeps ${keep} candidates per step but ${s.numBeams} beams × vocab_size ${V} offer fewer`);
  }
  return s;
}

/** The scores of one row after the processors (and, when sampling, the warpers). */
function process(scores: Float32Array, history: readonly number[], generated: number, s: Settings): void {
  if (s.repetitionPenalty !== 1) applyRepetitionPenalty(scores, history, s.repetitionPenalty);
  if (s.noRepeatNgramSize > 0) applyNoRepeatNgram(scores, history, s.noRepeatNgramSize);
  if (generated < s.minNewTokens) banTokens(scores, s.eos);
  if (!s.doSample) return;
  if (s.temperature !== 1) applyTemperature(scores, s.temperature);
  if (s.topK !== 0) applyTopK(scores, s.topK);
  if (s.topP < 1) applyTopP(scores, s.topP);
}

/**
 * Generates a continuation of each prompt (one batch; split large collections into batches
 * and pass `streamIds` when sampling).
 * @param prompts token ids, each non-empty (prepend BOS as the model expects)
 * @returns one GeneratedSequence per prompt, in order
 */
export function generate(model: LlamaModel, prompts: readonly (readonly number[])[], options: GenerateOptions): GeneratedSequence[] {
  const op = "generate";
  const s = settingsOf(op, model, options);
  const { vocab_size: V, max_position_embeddings: maxPositions } = model.config;
  if (s.streamIds !== null && s.streamIds.length !== prompts.length) {
    throw new GrowlmError(op, `"streamIds" has ${s.streamIds.length} entries for ${prompts.length} prompts`);
  }
  if (prompts.length === 0) return [];
  prompts.forEach((p, i) => {
    if (!Array.isArray(p) || p.length === 0) throw new GrowlmError(op, `prompt ${i} is empty (a decoder-only model needs at least one token: prepend BOS)`);
    p.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new GrowlmError(op, `prompt ${i} holds ${String(id)} at position ${t}, not a token id in [0, ${V})`);
    });
    if (p.length + s.maxNewTokens > maxPositions) {
      throw new GrowlmError(op, `prompt ${i} has ${p.length} tokens: with maxNewTokens = ${s.maxNewTokens} it would pass max_position_embeddings = ${maxPositions}`);
    }
  });
  return s.numBeams > 1 ? beamSearch(model, prompts, s) : decode(model, prompts, s);
}

/** Tokens (rows × positions) one prefill call runs at most: bounds the activations' memory. */
const PREFILL_TOKENS = 2048;

/**
 * The buffers of one generation: a cache of `maxRows` rows with every prompt prefilled
 * (left-padded to the longest, in chunks of positions of at most PREFILL_TOKENS tokens; each
 * row's results do not depend on the chunking) and a [maxRows, V] logits buffer whose first
 * rows hold the logits after the prompts.
 */
function prefill(model: LlamaModel, prompts: readonly (readonly number[])[], s: Settings, maxRows: number): { cache: KvCache; logits: Tensor<"float32"> } {
  const P = Math.max(...prompts.map((p) => p.length));
  const B = prompts.length;
  const chunk = Math.max(1, Math.floor(PREFILL_TOKENS / B));
  // An ensemble (FiLM members, MC-dropout samples) keeps K rows per row; forwardCached then
  // returns the log of the members' averaged token probabilities.
  const cache = new KvCache(model.config, maxRows, P + s.maxNewTokens, B, model.inferenceMembers, model.device);
  const logits = Tensor.empty([maxRows, model.config.vocab_size]);
  const ids = Tensor.empty([B, Math.min(P, chunk)], "int32");
  try {
    const padded = new Int32Array(B * P).fill(s.pad);
    const begin = cache.keyBegin.data as Int32Array;
    const sampleKeys = cache.sampleKeys;
    prompts.forEach((p, b) => {
      begin[b] = P - p.length;
      sampleKeys[b] = s.streamIds?.[b] ?? b;
      padded.set(p, b * P + P - p.length);
    });
    for (let t0 = 0; t0 < P; t0 += chunk) {
      const T = Math.min(chunk, P - t0);
      const part = T === ids.shape[1] ? ids : Tensor.empty([B, T], "int32");
      for (let b = 0; b < B; b++) (part.data as Int32Array).set(padded.subarray(b * P + t0, b * P + t0 + T), b * T);
      model.forwardCached(part, cache, logits.rows(0, B));
      if (part !== ids) part.dispose();
    }
    return { cache, logits };
  } catch (err) {
    cache.dispose();
    logits.dispose();
    throw err;
  } finally {
    ids.dispose();
  }
}

/** Greedy decoding or sampling. */
function decode(model: LlamaModel, prompts: readonly (readonly number[])[], s: Settings): GeneratedSequence[] {
  const V = model.config.vocab_size;
  const out: GeneratedSequence[] = prompts.map(() => ({ tokens: [], finishReason: "length" }));
  const histories = prompts.map((p) => [...p]);
  const eos = new Set(s.eos);
  const stream = new RandomStream(s.seed);
  const { cache, logits } = prefill(model, prompts, s, prompts.length);
  const step = Tensor.empty([prompts.length, 1], "int32");
  try {
    let active = prompts.map((_, i) => i);
    for (let g = 0; g < s.maxNewTokens; g++) {
      const next = active.map((p, row) => {
        const scores = (logits.data as Float32Array).subarray(row * V, (row + 1) * V);
        process(scores, histories[p]!, g, s);
        if (!s.doSample) return argmax(scores);
        stream.offset = (s.streamIds?.[p] ?? p) * DRAWS_PER_PROMPT + g;
        return sampleToken(scores, stream.uniform(1)[0]!);
      });
      const keep: number[] = [];
      active.forEach((p, row) => {
        const token = next[row]!;
        out[p]!.tokens.push(token);
        histories[p]!.push(token);
        if (eos.has(token)) out[p]!.finishReason = "eos";
        else keep.push(row);
      });
      if (keep.length === 0 || g + 1 === s.maxNewTokens) break;
      if (keep.length < active.length) cache.select(keep);
      active = keep.map((row) => active[row]!);
      const ids = step.rows(0, active.length);
      (ids.data as Int32Array).set(keep.map((row) => next[row]!));
      model.forwardCached(ids, cache, logits.rows(0, active.length));
    }
  } finally {
    cache.dispose();
    logits.dispose();
    step.dispose();
  }
  return out;
}

/**
 * The cache rows of a prompt's next beams, in [start, start + n): beam r goes to its parent's
 * row parents[r] when that row is in the range and no earlier beam took it, otherwise to the
 * lowest free row. (Rows are computed independently, so where a beam lives changes no bits.)
 */
export function placeBeams(parents: readonly number[], start: number, n: number): number[] {
  const rows = new Array<number>(parents.length).fill(-1);
  const taken = new Array<boolean>(n).fill(false);
  parents.forEach((p, r) => {
    if (p >= start && p < start + n && !taken[p - start]) {
      rows[r] = p;
      taken[p - start] = true;
    }
  });
  let free = 0;
  return rows.map((row) => {
    if (row >= 0) return row;
    while (taken[free]) free++;
    taken[free] = true;
    return start + free;
  });
}

/** Beam search, transformers' BeamSearchScorer semantics (see beam-search.ts). */
function beamSearch(model: LlamaModel, prompts: readonly (readonly number[])[], s: Settings): GeneratedSequence[] {
  const V = model.config.vocab_size;
  const nb = s.numBeams;
  const B = prompts.length;
  const keep = Math.max(2, 1 + s.eos.length) * nb;
  const eos = new Set(s.eos);
  const hyps = prompts.map(() => new BeamHypotheses(nb, s.lengthPenalty, s.earlyStopping, s.maxNewTokens));
  const done = prompts.map(() => false);
  // Beam r of prompt b: its new tokens, its float32 score, and the cache row holding it.
  let beams = prompts.map(() => Array.from({ length: nb }, (_, r) => ({ tokens: [] as number[], score: r === 0 ? 0 : -1e9 })));
  let rowOf: number[][] = prompts.map((_, b) => Array.from({ length: nb }, () => b));
  const { cache, logits } = prefill(model, prompts, s, B * nb);
  const lp = new Float32Array(V);
  const ids = Tensor.empty([B * nb, 1], "int32");
  let generated = 0;
  try {
    for (;;) {
      // Per prompt still searching: its next beams and the cache rows of their parents.
      const parents: number[][] = prompts.map(() => []);
      beams = beams.map((current, b) => {
        if (done[b]) return current;
        // The step's candidates: the top `keep` of beam score + processed log p over all beams.
        const top: { score: number; beam: number; token: number }[] = [];
        for (let r = 0; r < nb; r++) {
          const row = rowOf[b]![r]!;
          logSoftmax((logits.data as Float32Array).subarray(row * V, (row + 1) * V), lp);
          process(lp, [...prompts[b]!, ...current[r]!.tokens], generated, s);
          // `worst`: the score a candidate must beat once `top` is full (-∞ before).
          const base = current[r]!.score;
          let worst = top.length === keep ? top[keep - 1]!.score : -Infinity;
          for (let t = 0; t < V; t++) {
            const score = Math.fround(lp[t]! + base);
            if (!(score > worst) && top.length === keep) continue;
            let at = top.length;
            while (at > 0 && score > top[at - 1]!.score) at--;
            top.splice(at, 0, { score, beam: r, token: t });
            if (top.length > keep) top.pop();
            if (top.length === keep) worst = top[keep - 1]!.score;
          }
        }
        const next: { tokens: number[]; score: number }[] = [];
        for (let rank = 0; rank < top.length && next.length < nb; rank++) {
          const c = top[rank]!;
          const parent = current[c.beam]!;
          if (eos.has(c.token)) {
            // An EOS outside the top numBeams candidates is not a hypothesis.
            if (rank < nb) hyps[b]!.add([...parent.tokens], c.score, generated + 1, c.token);
          } else {
            next.push({ tokens: [...parent.tokens, c.token], score: c.score });
            parents[b]!.push(rowOf[b]![c.beam]!);
          }
        }
        done[b] = hyps[b]!.isDone(top[0]!.score, generated + 1);
        return next;
      });
      generated++;
      const open = prompts.map((_, b) => b).filter((b) => !done[b]);
      if (open.length === 0 || generated === s.maxNewTokens) break;
      // Prompts still searching keep nb rows each; a new beam stays in its parent's row where
      // it can, so the cache copies only the rows of a parent's second and later children.
      const from: number[] = [];
      const stepIds = ids.rows(0, open.length * nb);
      const last = stepIds.data as Int32Array;
      rowOf = prompts.map(() => []);
      open.forEach((b, i) => {
        const rows = placeBeams(parents[b]!, i * nb, nb);
        rowOf[b] = rows;
        rows.forEach((row, r) => {
          from[row] = parents[b]![r]!;
          last[row] = beams[b]![r]!.tokens.at(-1)!;
        });
      });
      cache.select(from);
      model.forwardCached(stepIds, cache, logits.rows(0, open.length * nb));
    }
  } finally {
    cache.dispose();
    logits.dispose();
    ids.dispose();
  }
  return prompts.map((_, b) => {
    if (!done[b]) for (const beam of beams[b]!) hyps[b]!.add(beam.tokens, beam.score, generated, null);
    const best = hyps[b]!.best();
    return {
      tokens: best.eos === null ? best.tokens : [...best.tokens, best.eos],
      finishReason: best.eos === null ? "length" : "eos",
      score: best.score,
    };
  });
}
