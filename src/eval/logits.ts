/**
 * The logits processors and warpers of Hugging Face's generate(), one row of next-token
 * scores at a time (a Float32Array of vocab_size scores, changed in place, so each operation
 * rounds to float32 as PyTorch's float32 tensors do). generate.ts applies them in
 * transformers' order: repetition penalty, no-repeat n-grams, minimum new tokens; then, when
 * sampling, temperature, top-k and top-p.
 *
 * `history` is a row's tokens so far: its prompt without the left padding, then what it
 * generated. (transformers passes the padded input_ids, so with left-padded batches its
 * penalties also see the pad token; growlm leaves padding out, which keeps every prompt's
 * result independent of how it was batched.)
 */

/**
 * RepetitionPenaltyLogitsProcessor: every token that occurs in `history` has its score
 * divided by `penalty` when positive and multiplied by it when negative (once, however often
 * it occurs).
 */
export function applyRepetitionPenalty(scores: Float32Array, history: readonly number[], penalty: number): void {
  const seen = new Set(history);
  for (const token of seen) {
    const s = scores[token]!;
    scores[token] = s < 0 ? s * penalty : s / penalty;
  }
}

/**
 * NoRepeatNGramLogitsProcessor: bans (score −∞) every token that would complete an n-gram
 * already present in `history`, i.e. that followed an earlier occurrence of the last n − 1
 * tokens. Nothing is banned while the history is shorter than n − 1 tokens.
 */
export function applyNoRepeatNgram(scores: Float32Array, history: readonly number[], n: number): void {
  const len = history.length;
  if (len + 1 < n) return;
  const prefix = len - (n - 1);
  for (let i = 0; i + n <= len; i++) {
    let match = true;
    for (let j = 0; j < n - 1; j++) {
      if (history[i + j] !== history[prefix + j]) {
        match = false;
        break;
      }
    }
    if (match) scores[history[i + n - 1]!] = -Infinity;
  }
}

/** MinNewTokensLengthLogitsProcessor's effect: the given tokens (the EOS ids) get score −∞. */
export function banTokens(scores: Float32Array, tokens: readonly number[]): void {
  for (const t of tokens) scores[t] = -Infinity;
}

/** TemperatureLogitsWarper: scores / temperature. */
export function applyTemperature(scores: Float32Array, temperature: number): void {
  for (let i = 0; i < scores.length; i++) scores[i] = scores[i]! / temperature;
}

/** The k-th largest value of `values` (1-based k), by quickselect on a copy. */
export function kthLargest(values: Float32Array, k: number): number {
  const a = Float32Array.from(values);
  let lo = 0;
  let hi = a.length - 1;
  const target = k - 1; // index in descending order
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! > pivot) i++;
      while (a[j]! < pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target]!;
}

/**
 * TopKLogitsWarper: keeps the scores at least as large as the k-th largest (ties with it
 * survive), the others become −∞. k is raised to `minTokensToKeep` and capped at the
 * vocabulary.
 */
export function applyTopK(scores: Float32Array, topK: number, minTokensToKeep = 1): void {
  const k = Math.min(Math.max(topK, minTokensToKeep), scores.length);
  const kth = kthLargest(scores, k);
  for (let i = 0; i < scores.length; i++) if (scores[i]! < kth) scores[i] = -Infinity;
}

/**
 * TopPLogitsWarper: sorts the scores ascending, and removes (−∞) the tokens whose cumulative
 * softmax probability, summed from the least likely, is at most 1 − topP; the
 * `minTokensToKeep` most likely always stay. The probabilities are float32 as in PyTorch,
 * accumulated in double as torch.cumsum does on the CPU; tokens already at −∞ (after top-k)
 * have probability 0 and stay removed. Equal scores are ordered by token id.
 */
export function applyTopP(scores: Float32Array, topP: number, minTokensToKeep = 1): void {
  const finite: number[] = [];
  for (let i = 0; i < scores.length; i++) if (scores[i]! > -Infinity) finite.push(i);
  finite.sort((a, b) => scores[a]! - scores[b]! || a - b);
  const n = finite.length;
  if (n === 0) return;
  const max = scores[finite[n - 1]!]!;
  let sum = 0;
  for (const i of finite) sum += Math.exp(scores[i]! - max);
  const threshold = Math.fround(1 - topP);
  let cumulative = 0;
  for (let r = 0; r < n - minTokensToKeep; r++) {
    const i = finite[r]!;
    cumulative += Math.fround(Math.exp(scores[i]! - max) / sum);
    if (Math.fround(cumulative) <= threshold) scores[i] = -Infinity;
    else break;
  }
}

/** log_softmax of a row into `out` (float32), computed in float64. */
export function logSoftmax(scores: Float32Array, out: Float32Array): void {
  let max = -Infinity;
  for (let i = 0; i < scores.length; i++) max = Math.max(max, scores[i]!);
  let sum = 0;
  for (let i = 0; i < scores.length; i++) sum += Math.exp(scores[i]! - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < scores.length; i++) out[i] = scores[i]! - lse;
}

/**
 * A token drawn from softmax(scores) by inverse transform sampling: the first token (in id
 * order) at which the cumulative probability exceeds u ∈ [0, 1). Tokens at −∞ are never drawn.
 */
export function sampleToken(scores: Float32Array, u: number): number {
  let max = -Infinity;
  for (let i = 0; i < scores.length; i++) max = Math.max(max, scores[i]!);
  let sum = 0;
  for (let i = 0; i < scores.length; i++) sum += Math.exp(scores[i]! - max);
  const target = u * sum;
  let cumulative = 0;
  let last = -1;
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    if (s === -Infinity) continue;
    cumulative += Math.exp(s - max);
    last = i;
    if (cumulative > target) return i;
  }
  return last;
}

/** The index of the largest score, the first among equals (torch.argmax). */
export function argmax(scores: Float32Array): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i]! > scores[best]!) best = i;
  return best;
}
