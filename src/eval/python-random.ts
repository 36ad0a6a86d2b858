/**
 * CPython's `random.Random` for an integer seed: the MT19937 generator seeded by
 * `init_by_array` over the seed's 32-bit words, `getrandbits`, `_randbelow` (rejection
 * sampling on getrandbits) and `sample` (pool or set selection, as random.py chooses).
 * lm-evaluation-harness draws few-shot examples with `Random(seed).sample(docs, k)`, one
 * generator per task consumed document after document, so reproducing its prompts needs
 * these exact draws. Checked against CPython 3.11 in test/eval/python-random.test.ts.
 */
import { GrowlmError } from "../errors.js";

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

/** `random.Random(seed)` of CPython for a non-negative or negative integer seed (its absolute value is used). */
export class PythonRandom {
  readonly #mt = new Uint32Array(N);
  #mti = N + 1;

  /** @param seed a safe integer; CPython seeds with |seed|, split into 32-bit words, least significant first. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new GrowlmError("PythonRandom", `the seed must be a safe integer but is ${seed}`);
    let rest = Math.abs(seed);
    const key: number[] = [];
    do {
      key.push(rest % 0x100000000);
      rest = Math.floor(rest / 0x100000000);
    } while (rest > 0);
    this.#initByArray(key);
  }

  #initGenrand(s: number): void {
    const mt = this.#mt;
    mt[0] = s >>> 0;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.#mti = N;
  }

  #initByArray(key: readonly number[]): void {
    const mt = this.#mt;
    this.#initGenrand(19650218);
    let i = 1;
    let j = 0;
    for (let k = Math.max(N, key.length); k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1664525)) + key[j]! + j) >>> 0;
      i++;
      j++;
      if (i >= N) {
        mt[0] = mt[N - 1]!;
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = N - 1; k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= N) {
        mt[0] = mt[N - 1]!;
        i = 1;
      }
    }
    mt[0] = 0x80000000;
  }

  /** The next 32-bit output of MT19937 (CPython's genrand_uint32). */
  nextUint32(): number {
    const mt = this.#mt;
    if (this.#mti >= N) {
      let kk = 0;
      for (; kk < N - M; kk++) {
        const y = (mt[kk]! & UPPER_MASK) | (mt[kk + 1]! & LOWER_MASK);
        mt[kk] = mt[kk + M]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
      }
      for (; kk < N - 1; kk++) {
        const y = (mt[kk]! & UPPER_MASK) | (mt[kk + 1]! & LOWER_MASK);
        mt[kk] = mt[kk + (M - N)]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
      }
      const y = (mt[N - 1]! & UPPER_MASK) | (mt[0]! & LOWER_MASK);
      mt[N - 1] = mt[M - 1]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
      this.#mti = 0;
    }
    let y = mt[this.#mti++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** `getrandbits(k)` for 1 <= k <= 32: the top k bits of one 32-bit output. */
  getrandbits(k: number): number {
    if (!Number.isInteger(k) || k < 1 || k > 32) throw new GrowlmError("PythonRandom.getrandbits", `k must be an integer in [1, 32] but is ${k}`);
    return this.nextUint32() >>> (32 - k);
  }

  /** `_randbelow(n)`: uniform in [0, n) by rejection on getrandbits(n.bit_length()); 1 <= n < 2^32. */
  randbelow(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n >= 2 ** 32) throw new GrowlmError("PythonRandom.randbelow", `n must be an integer in [1, 2^32) but is ${n}`);
    const k = 32 - Math.clz32(n);
    let r = this.getrandbits(k);
    while (r >= n) r = this.getrandbits(k);
    return r;
  }

  /**
   * `sample(population, k)`: k distinct positions of `population` in selection order, with
   * random.py's choice between a shrinking pool (small populations) and a set of taken
   * indices (large ones), which consume the generator differently.
   */
  sample<T>(population: readonly T[], k: number): T[] {
    const n = population.length;
    if (!Number.isInteger(k) || k < 0 || k > n) {
      throw new GrowlmError("PythonRandom.sample", `cannot draw ${k} items from a population of ${n} (Sample larger than population or is negative)`);
    }
    const result: T[] = [];
    let setsize = 21;
    if (k > 5) setsize += 4 ** Math.ceil(Math.log(k * 3) / Math.log(4));
    if (n <= setsize) {
      const pool = population.slice();
      for (let i = 0; i < k; i++) {
        const j = this.randbelow(n - i);
        result.push(pool[j]!);
        pool[j] = pool[n - i - 1]!;
      }
    } else {
      const selected = new Set<number>();
      for (let i = 0; i < k; i++) {
        let j = this.randbelow(n);
        while (selected.has(j)) j = this.randbelow(n);
        selected.add(j);
        result.push(population[j]!);
      }
    }
    return result;
  }
}
