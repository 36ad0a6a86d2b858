/**
 * The trainer's random stream: a Philox key (the seed) and a position. Everything random in
 * training (data order, dropout masks, sampled labels) draws from it and advances the
 * position, so saving {seed, offset} in a checkpoint resumes exactly the same draws.
 */
import { binding } from "../native.js";

export interface RandomState {
  seed: number;
  /** Elements of the stream consumed so far. */
  offset: number;
}

export class RandomStream {
  constructor(
    readonly seed: number,
    public offset = 0,
  ) {}

  /** n uniform floats in [0, 1), the next n elements of the stream. */
  uniform(n: number): Float32Array {
    const out = new Float32Array(n);
    binding.rngUniform(out, n, this.seed, this.offset, 0, 1);
    this.offset += n;
    return out;
  }

  /** A uniformly random permutation of 0..n-1 (Fisher–Yates on the stream). */
  permutation(n: number): number[] {
    const u = this.uniform(n);
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.min(i, Math.floor(u[i]! * (i + 1)));
      [p[i], p[j]] = [p[j]!, p[i]!];
    }
    return p;
  }

  state(): RandomState {
    return { seed: this.seed, offset: this.offset };
  }
}
