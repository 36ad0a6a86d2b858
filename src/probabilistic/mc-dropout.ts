/**
 * MC dropout (Gal & Ghahramani, ICML 2016) on the LLaMA decoder: dropout on the output of
 * every attention block and every MLP (the two residual branches of each layer, before they
 * are added to the residual stream, as GPT-2's resid_pdrop), active in training and, with
 * `LlamaModel.setMcDropout`, at inference, where S stochastic passes are averaged:
 * p̄ = (1/S) Σ_s softmax(f(x; mask_s)).
 *
 * Masks come from growlm's Philox stream (rngDropout), keyed so that they can be recomputed
 * instead of stored: the backward, a recomputed layer and a resumed run see the same masks.
 * Site k of a forward is layer floor(k / 2)'s attention output (k even) or MLP output (k odd).
 *
 * - Training (trainingDropoutDraw): the masks of one forward take the next sites·rows·C
 *   elements of the trainer's RandomStream, so a checkpoint's {seed, offset} resumes them.
 * - Sampling (samplingDropoutDraw): the mask of sample s of the sequence with key κ at
 *   position t does not depend on the batch around it (κ is an example's index): scores and
 *   generations are the same for any batch size.
 */
import { GrowlmError } from "../errors.js";

/** Where a forward's dropout masks come from. */
export interface DropoutDraw {
  /** Drop probability in [0, 1). */
  readonly p: number;
  /** Philox key. */
  readonly seed: number;
  /** Stream position of each row's first element at site k (int64 [rows], rows = B·T tokens). */
  rowOffsets(site: number): BigInt64Array;
}

function checkP(op: string, p: number): void {
  if (!(p >= 0 && Math.fround(p) < 1)) throw new GrowlmError(op, `the dropout probability must be in [0, 1) but is ${p}`);
}

function checkSeed(op: string, seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new GrowlmError(op, `the dropout seed must be an integer >= 0 but is ${seed}`);
}

/**
 * The masks of one training forward over `rows` token rows of C channels: row n of site k
 * starts at stream element base + (k·rows + n)·C. The forward uses
 * trainingDropoutElements(sites, rows, C) elements from base.
 */
export function trainingDropoutDraw(p: number, seed: number, base: number, rows: number, C: number): DropoutDraw {
  const op = "trainingDropoutDraw";
  checkP(op, p);
  checkSeed(op, seed);
  if (!Number.isSafeInteger(base) || base < 0) throw new GrowlmError(op, `the stream offset must be an integer >= 0 but is ${base}`);
  const start = BigInt(base);
  const width = BigInt(C);
  return {
    p,
    seed,
    rowOffsets(site) {
      const out = new BigInt64Array(rows);
      const first = start + BigInt(site) * BigInt(rows) * width;
      for (let n = 0; n < rows; n++) out[n] = BigInt.asIntN(64, first + BigInt(n) * width);
      return out;
    },
  };
}

/** Stream elements one training forward consumes: sites · rows · C. */
export function trainingDropoutElements(sites: number, rows: number, C: number): number {
  return sites * rows * C;
}

/**
 * The masks of S Monte-Carlo samples at inference. Physical row n = (b·S + s)·T + t is token
 * t of sample s of logical row b; its mask at site k starts at stream element
 *   ((((keys[b]·S + s)·sites + k)·P + positions[n])·C   (mod 2^64)
 * with P = max_position_embeddings, so each (sequence key, sample, site, position) has its
 * own C elements.
 * @param keys one key per logical row (e.g. the example's index in its dataset)
 * @param positions int32 [B·S·T], the position of every physical row
 */
export function samplingDropoutDraw(
  p: number,
  seed: number,
  keys: readonly number[],
  samples: number,
  T: number,
  positions: Int32Array,
  sites: number,
  maxPositions: number,
  C: number,
): DropoutDraw {
  const op = "samplingDropoutDraw";
  checkP(op, p);
  checkSeed(op, seed);
  keys.forEach((key, b) => {
    if (!Number.isSafeInteger(key) || key < 0) throw new GrowlmError(op, `sample key ${b} must be an integer >= 0 but is ${key}`);
  });
  const rows = keys.length * samples * T;
  if (positions.length < rows) throw new GrowlmError(op, `${positions.length} positions for ${rows} rows`);
  const [S, K, P, W] = [samples, sites, maxPositions, C].map(BigInt) as [bigint, bigint, bigint, bigint];
  return {
    p,
    seed,
    rowOffsets(site) {
      const out = new BigInt64Array(rows);
      const k = BigInt(site);
      for (let b = 0; b < keys.length; b++) {
        const key = BigInt(keys[b]!);
        for (let s = 0; s < samples; s++) {
          const sequence = ((key * S + BigInt(s)) * K + k) * P;
          const row0 = (b * samples + s) * T;
          for (let t = 0; t < T; t++) out[row0 + t] = BigInt.asIntN(64, (sequence + BigInt(positions[row0 + t]!)) * W);
        }
      }
      return out;
    },
  };
}
