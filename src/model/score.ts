/**
 * Log-likelihood scoring: for each token sequence, log p(token t+1 | tokens ≤ t) of every
 * actual next token and the mean next-token NLL. This is `growlm score` and the primitive
 * of log-likelihood evaluation (lm-evaluation-harness style multiple choice).
 *
 * An ensemble model (FiLM-Ensemble, MC dropout: K = inferenceMembers > 1) scores with the
 * members' averaged token probabilities p̄ = (1/K) Σ_k p_k (token-level ensembling, as
 * generation decodes); scoreContinuations also returns each member's log-likelihood, from
 * which multiple-choice calibration builds per-member choice distributions.
 */
import { GrowlmError } from "../errors.js";
import { Tensor } from "../tensor.js";
import type { LlamaModel } from "./llama.js";

export interface ScoreOptions {
  /** Upper bound on B·T of one forward (default 8192): sequences are batched by length under it. */
  maxBatchTokens?: number;
}

export interface ScoreResult {
  /** Mean next-token NLL of each sequence (nats); NaN for sequences shorter than 2 tokens. */
  loss: number[];
  /** log p of each actual next token: length − 1 values per sequence. */
  tokenLogprobs: number[][];
}

/** Scores `sequences` (lists of token ids) with `model` in evaluation mode (no gradients). */
export function scoreSequences(model: LlamaModel, sequences: readonly (readonly number[])[], options: ScoreOptions = {}): ScoreResult {
  const op = "scoreSequences";
  const maxTokens = options.maxBatchTokens ?? 8192;
  const { vocab_size: V, max_position_embeddings: maxLen } = model.config;
  sequences.forEach((seq, i) => {
    if (!Array.isArray(seq)) throw new GrowlmError(op, `sequence ${i} is not a list of token ids`);
    if (seq.length > maxLen) throw new GrowlmError(op, `sequence ${i} has ${seq.length} tokens, more than max_position_embeddings = ${maxLen}`);
    seq.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new GrowlmError(op, `sequence ${i} holds ${String(id)} at position ${t}, not a token id in [0, ${V})`);
    });
  });
  const loss: number[] = sequences.map(() => Number.NaN);
  const tokenLogprobs: number[][] = sequences.map(() => []);
  // Longest first, so each batch's padding is small.
  const order = sequences.map((_, i) => i).filter((i) => sequences[i]!.length >= 2);
  order.sort((a, b) => sequences[b]!.length - sequences[a]!.length || a - b);
  for (let start = 0; start < order.length; ) {
    const T = sequences[order[start]!]!.length;
    const B = Math.max(1, Math.min(order.length - start, Math.floor(maxTokens / T)));
    const batch = order.slice(start, start + B);
    start += B;
    const ids = Tensor.zeros([B, T], "int32");
    const labels = Tensor.empty([B, T], "int32");
    (labels.data as Int32Array).fill(-100);
    batch.forEach((i, b) => {
      const seq = sequences[i]!;
      (ids.data as Int32Array).set(seq, b * T);
      (labels.data as Int32Array).set(seq, b * T);
    });
    const { tokenLosses } = model.forward(ids, { labels, sampleKeys: batch });
    const nll = tokenLosses!.data as Float32Array;
    batch.forEach((i, b) => {
      const n = sequences[i]!.length - 1;
      const lp: number[] = new Array<number>(n);
      let sum = 0;
      for (let t = 0; t < n; t++) {
        const v = nll[b * T + t]!;
        lp[t] = -v;
        sum += v;
      }
      tokenLogprobs[i] = lp;
      loss[i] = sum / n;
    });
    ids.dispose();
    labels.dispose();
  }
  return { loss, tokenLogprobs };
}

/** One log-likelihood request in tokens: score `continuation` after `context` (both non-empty). */
export interface ContinuationRequest {
  context: readonly number[];
  continuation: readonly number[];
}

export interface ContinuationScore {
  /** Σ log p(continuation token | everything before it) over the continuation (nats); p = p̄ for an ensemble. */
  logprob: number;
  /** Whether every continuation token is the argmax of its position's logits (of log p̄ for an ensemble; first maximum on ties). */
  isGreedy: boolean;
  /** K > 1 members only: each member's Σ log p_k over the continuation. */
  memberLogprobs?: number[];
}

export interface ContinuationOptions {
  /** Longest input fed to the model (default max_position_embeddings); longer inputs lose tokens on the left. */
  maxLength?: number;
  /** Most distinct inputs in one forward (default 32). */
  batchSize?: number;
  /** Upper bound on B·T of one forward (default 8192). */
  maxBatchTokens?: number;
  /** Upper bound on the B·T·V·4 bytes of logits one forward returns (default 256 MiB; one input always runs). */
  maxLogitsBytes?: number;
  /** Called after each forward with the distinct inputs scored so far and their total. */
  onProgress?: (scored: number, total: number) => void;
}

/**
 * Log-likelihood of each continuation given its context, as lm-evaluation-harness's
 * HFLM._loglikelihood_tokens computes it: the model reads (context + continuation) without
 * its last token, cut from the left to the last `maxLength` tokens, and the continuation's
 * tokens are scored at the last |continuation| positions. Requests whose inputs are the
 * same token sequence (multiple-choice answers of one token after one context) share one
 * forward, as the harness's logits cache does. Inputs run longest first, right-padded.
 */
export function scoreContinuations(
  model: LlamaModel,
  requests: readonly ContinuationRequest[],
  options: ContinuationOptions = {},
): ContinuationScore[] {
  const op = "scoreContinuations";
  const { vocab_size: V, max_position_embeddings: maxPositions } = model.config;
  const maxLength = options.maxLength ?? maxPositions;
  const batchSize = options.batchSize ?? 32;
  const maxTokens = options.maxBatchTokens ?? 8192;
  const maxLogitsBytes = options.maxLogitsBytes ?? 2 ** 28;
  if (!Number.isInteger(maxLength) || maxLength < 1 || maxLength > maxPositions) {
    throw new GrowlmError(op, `maxLength must be an integer in [1, max_position_embeddings = ${maxPositions}] but is ${maxLength}`);
  }
  for (const [name, value] of [["batchSize", batchSize], ["maxBatchTokens", maxTokens], ["maxLogitsBytes", maxLogitsBytes]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new GrowlmError(op, `${name} must be a positive integer but is ${value}`);
  }
  const checkIds = (ids: readonly number[], i: number, part: string): void => {
    if (!Array.isArray(ids) || ids.length === 0) throw new GrowlmError(op, `request ${i}: the ${part} must be a non-empty list of token ids`);
    ids.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new GrowlmError(op, `request ${i}: the ${part} holds ${String(id)} at position ${t}, not a token id in [0, ${V})`);
    });
  };

  // Distinct inputs, each with the requests that read it.
  interface Input {
    ids: number[];
    members: number[];
    /** The input's index among the distinct inputs in request order (its MC-dropout key). */
    key: number;
  }
  const inputs: Input[] = [];
  const byKey = new Map<string, Input>();
  requests.forEach((request, i) => {
    checkIds(request.context, i, "context");
    checkIds(request.continuation, i, "continuation");
    if (request.continuation.length > maxLength) {
      throw new GrowlmError(op, `request ${i}: the continuation has ${request.continuation.length} tokens, more than maxLength = ${maxLength}`);
    }
    const whole = [...request.context, ...request.continuation];
    const ids = whole.slice(Math.max(0, whole.length - (maxLength + 1)), whole.length - 1);
    const key = ids.join(",");
    let input = byKey.get(key);
    if (!input) {
      input = { ids, members: [], key: inputs.length };
      byKey.set(key, input);
      inputs.push(input);
    }
    input.members.push(i);
  });
  inputs.sort((a, b) => b.ids.length - a.ids.length);

  const scores: ContinuationScore[] = new Array<ContinuationScore>(requests.length);
  for (let start = 0; start < inputs.length; ) {
    const T = inputs[start]!.ids.length;
    const fit = Math.min(batchSize, Math.floor(maxTokens / T), Math.floor(maxLogitsBytes / (T * V * 4)));
    const batch = inputs.slice(start, start + Math.max(1, fit));
    start += batch.length;
    const B = batch.length;
    const ids = Tensor.zeros([B, T], "int32");
    batch.forEach((input, b) => (ids.data as Int32Array).set(input.ids, b * T));
    const { logits, members } = model.forward(ids, { returnLogits: true, sampleKeys: batch.map((input) => input.key) });
    ids.dispose();
    const data = logits!.data as Float32Array;
    if (members > 1) {
      batch.forEach((input, b) => scoreEnsembleInput(data, b, members, T, V, input, requests, scores));
      logits!.dispose();
      options.onProgress?.(start, inputs.length);
      continue;
    }
    batch.forEach((input, b) => {
      // log-sum-exp and argmax of each scored row, computed once per row of this input.
      const rows = new Map<number, { lse: number; argmax: number }>();
      const row = (t: number): { lse: number; argmax: number } => {
        let stats = rows.get(t);
        if (stats) return stats;
        const base = (b * T + t) * V;
        let max = -Infinity;
        let argmax = 0;
        for (let v = 0; v < V; v++) {
          const x = data[base + v]!;
          // torch.argmax takes NaN as the maximum.
          if (Number.isNaN(x)) {
            max = Number.NaN;
            argmax = v;
            break;
          }
          if (x > max) {
            max = x;
            argmax = v;
          }
        }
        let sum = 0;
        if (!Number.isNaN(max)) for (let v = 0; v < V; v++) sum += Math.exp(data[base + v]! - max);
        stats = { lse: max + Math.log(sum), argmax };
        rows.set(t, stats);
        return stats;
      };
      const L = input.ids.length;
      for (const i of input.members) {
        const continuation = requests[i]!.continuation;
        const first = L - continuation.length;
        let logprob = 0;
        let isGreedy = true;
        continuation.forEach((token, j) => {
          const stats = row(first + j);
          logprob += data[(b * T + first + j) * V + token]! - stats.lse;
          if (stats.argmax !== token) isGreedy = false;
        });
        scores[i] = { logprob, isGreedy };
      }
    });
    logits!.dispose();
    options.onProgress?.(start, inputs.length);
  }
  return scores;
}

/**
 * The scores of one input's requests from K members' logits [B, K, T, V] (input b): per
 * member Σ log p_k, and the ensemble's Σ log p̄ with p̄ = (1/K) Σ_k softmax(z_k) per token.
 */
function scoreEnsembleInput(
  data: Float32Array,
  b: number,
  K: number,
  T: number,
  V: number,
  input: { ids: readonly number[]; members: readonly number[] },
  requests: readonly ContinuationRequest[],
  scores: ContinuationScore[],
): void {
  // Per scored position: each member's log-softmax row, and log p̄ over the vocabulary.
  const rows = new Map<number, { member: Float64Array[]; mixture: Float64Array; argmax: number }>();
  const row = (t: number) => {
    let stats = rows.get(t);
    if (stats) return stats;
    const member = Array.from({ length: K }, (_, k) => {
      const base = ((b * K + k) * T + t) * V;
      let max = -Infinity;
      for (let v = 0; v < V; v++) max = Math.max(max, data[base + v]!);
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp(data[base + v]! - max);
      const lse = max + Math.log(sum);
      return Float64Array.from({ length: V }, (_, v) => data[base + v]! - lse);
    });
    const mixture = new Float64Array(V);
    let argmax = 0;
    for (let v = 0; v < V; v++) {
      let max = -Infinity;
      for (let k = 0; k < K; k++) max = Math.max(max, member[k]![v]!);
      let sum = 0;
      for (let k = 0; k < K; k++) sum += Math.exp(member[k]![v]! - max);
      mixture[v] = max + Math.log(sum / K);
      if (mixture[v]! > mixture[argmax]!) argmax = v;
    }
    stats = { member, mixture, argmax };
    rows.set(t, stats);
    return stats;
  };
  const L = input.ids.length;
  for (const i of input.members) {
    const continuation = requests[i]!.continuation;
    const first = L - continuation.length;
    let logprob = 0;
    let isGreedy = true;
    const memberLogprobs = new Array<number>(K).fill(0);
    continuation.forEach((token, j) => {
      const stats = row(first + j);
      logprob += stats.mixture[token]!;
      if (stats.argmax !== token) isGreedy = false;
      for (let k = 0; k < K; k++) memberLogprobs[k] = memberLogprobs[k]! + stats.member[k]![token]!;
    });
    scores[i] = { logprob, isGreedy, memberLogprobs };
  }
}
