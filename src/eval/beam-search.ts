/**
 * The finished-hypothesis bookkeeping of Hugging Face's beam search (transformers'
 * BeamHypotheses and the parts of BeamSearchScorer.process / finalize that use it), one
 * prompt at a time.
 *
 * A hypothesis' score is its summed log-probability divided by generated_length **
 * length_penalty, generated_length counting the new tokens including the EOS that ended it
 * (transformers >= 4.38: `cur_len + 1 − decoder_prompt_len` for a hypothesis ended by EOS,
 * the number of new tokens for one still open at max_new_tokens). A positive penalty
 * favours longer sequences (the sums are negative), a negative one shorter ones.
 */

/** transformers' early_stopping: true, false (its default, a heuristic) or "never". */
export type EarlyStopping = boolean | "never";

export interface BeamHypothesis {
  /** Length-penalised score. */
  score: number;
  /** The new tokens before the EOS (or all of them, for a hypothesis open at the end). */
  tokens: number[];
  /** The EOS token that ended it, or null. */
  eos: number | null;
}

export class BeamHypotheses {
  readonly beams: BeamHypothesis[] = [];
  /** The lowest score kept once the list is full (1e9 while empty, as transformers starts it). */
  worstScore = 1e9;

  constructor(
    readonly numBeams: number,
    readonly lengthPenalty: number,
    readonly earlyStopping: EarlyStopping,
    /** max_new_tokens (transformers' max_length − decoder_prompt_len). */
    readonly maxNewTokens: number,
  ) {}

  /** Keeps the hypothesis when the list is not full or it beats the worst kept one. */
  add(tokens: number[], sumLogprobs: number, generatedLength: number, eos: number | null): void {
    const score = sumLogprobs / generatedLength ** this.lengthPenalty;
    if (this.beams.length < this.numBeams || score > this.worstScore) {
      this.beams.push({ score, tokens, eos });
      if (this.beams.length > this.numBeams) {
        // Python's sorted() of (score, index) pairs: the lowest score, the first among equals.
        const order = this.beams.map((b, i) => [b.score, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        this.beams.splice(order[0]![1], 1);
        this.worstScore = order[1]![0];
      } else {
        this.worstScore = Math.min(score, this.worstScore);
      }
    }
  }

  /**
   * Whether no open beam can still beat the kept hypotheses: `bestSumLogprobs` is the best
   * candidate score of this step, `generatedLength` the new tokens it counts.
   */
  isDone(bestSumLogprobs: number, generatedLength: number): boolean {
    if (this.beams.length < this.numBeams) return false;
    if (this.earlyStopping === true) return true;
    const length = this.earlyStopping === "never" && this.lengthPenalty > 0 ? this.maxNewTokens : generatedLength;
    return this.worstScore >= bestSumLogprobs / length ** this.lengthPenalty;
  }

  /** The best hypothesis: the highest score, the last added among equals (sorted(), then pop()). */
  best(): BeamHypothesis {
    let best = this.beams[0]!;
    for (const b of this.beams) if (b.score >= best.score) best = b;
    return best;
  }
}
