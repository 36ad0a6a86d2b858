/**
 * Log-likelihood scoring: for each token sequence, log p(token t+1 | tokens ≤ t) of every
 * actual next token and the mean next-token NLL. This is `growlm score` and the primitive
 * of log-likelihood evaluation (lm-evaluation-harness style multiple choice).
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
    const { tokenLosses } = model.forward(ids, { labels });
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
