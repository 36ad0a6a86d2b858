/**
 * The key/value cache of incremental decoding: per layer, the RoPE-rotated keys and the
 * values of every position seen so far, `[rows, capacity, Hkv, D]` float32 in native memory
 * (slot-major, so a row's filled slots are one contiguous range and the attention kernel
 * reads them in place).
 *
 * A batch of prompts of different lengths is left-padded: row b's real tokens start at slot
 * `keyBegin[b]`, the slots below hold padding that no query ever attends to, and the token at
 * slot s has position `s − keyBegin[b]`. `length` slots of every row are filled.
 *
 * The cache holds up to `maxRows` rows; `rows` of them are in use (the first ones).
 * `select` gathers rows into that prefix: finished sequences leave the batch, beam search
 * reorders and expands its beams.
 *
 * An ensemble (FiLM-Ensemble members, MC-dropout samples: LlamaModel.inferenceMembers = K)
 * keeps K rows of keys and values per row, row r's member k in storage row r·K + k; rows,
 * keyBegin, sampleKeys and select() count rows, keys() and values() return the storage rows.
 */
import { GrowlmError } from "../errors.js";
import { Tensor } from "../tensor.js";
import { type LlamaConfig, headDim } from "./config.js";

export class KvCache {
  /** Slots per row. */
  readonly capacity: number;
  /** Rows the storage holds. */
  readonly maxRows: number;
  readonly numLayers: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** Storage rows per row (K members; 1 for a plain model). */
  readonly members: number;
  /** Filled slots of every row in use. */
  length = 0;
  #rows: number;
  readonly #keys: Tensor<"float32">[];
  readonly #values: Tensor<"float32">[];
  readonly #keyBegin: Tensor<"int32">;
  readonly #sampleKeys: Float64Array;
  /** Row-sized scratch for select(): copies of rows that are read after being overwritten. */
  #spare: Float32Array | null = null;
  #disposed = false;

  /**
   * @param maxRows rows of storage (a batch, or batch × beams)
   * @param capacity slots per row: the longest prompt (padded) plus the tokens to generate
   * @param rows rows in use at first (default maxRows)
   * @param members storage rows per row (default 1; LlamaModel.inferenceMembers for an ensemble)
   */
  constructor(config: LlamaConfig, maxRows: number, capacity: number, rows = maxRows, members = 1) {
    const op = "KvCache";
    for (const [name, value] of [["maxRows", maxRows], ["capacity", capacity], ["members", members]] as const) {
      if (!Number.isSafeInteger(value) || value < 1) throw new GrowlmError(op, `"${name}" must be a positive integer but is ${value}`);
    }
    if (!Number.isSafeInteger(rows) || rows < 1 || rows > maxRows) throw new GrowlmError(op, `"rows" must be an integer in [1, ${maxRows}] but is ${rows}`);
    this.maxRows = maxRows;
    this.capacity = capacity;
    this.numLayers = config.num_hidden_layers;
    this.numKvHeads = config.num_key_value_heads;
    this.headDim = headDim(config);
    this.members = members;
    this.#rows = rows;
    const shape = [maxRows * members, capacity, this.numKvHeads, this.headDim];
    this.#keys = Array.from({ length: this.numLayers }, () => Tensor.empty(shape));
    this.#values = Array.from({ length: this.numLayers }, () => Tensor.empty(shape));
    this.#keyBegin = Tensor.zeros([maxRows], "int32");
    this.#sampleKeys = Float64Array.from({ length: maxRows }, (_, r) => r);
  }

  /** Rows in use. */
  get rows(): number {
    return this.#rows;
  }

  /** Floats of one slot of one row: Hkv · D. */
  get slotSize(): number {
    return this.numKvHeads * this.headDim;
  }

  /** First real slot of each row in use (int32 `[rows]`, a view: writable before the prefill). */
  get keyBegin(): Tensor<"int32"> {
    this.#checkAlive();
    return new Tensor((this.#keyBegin.data as Int32Array).subarray(0, this.#rows), [this.#rows], "int32");
  }

  /**
   * Each row's key for its MC-dropout masks (float64 `[rows]` of integers, a view: writable
   * before the prefill; default the row's index). generate() writes the prompts' stream ids.
   */
  get sampleKeys(): Float64Array {
    this.#checkAlive();
    return this.#sampleKeys.subarray(0, this.#rows);
  }

  /** Layer l's keys of the rows in use, `[rows · members, capacity, Hkv, D]` (a view). */
  keys(l: number): Tensor<"float32"> {
    return this.#rowsOf(this.#keys, l);
  }

  /** Layer l's values of the rows in use, `[rows · members, capacity, Hkv, D]` (a view). */
  values(l: number): Tensor<"float32"> {
    return this.#rowsOf(this.#values, l);
  }

  /**
   * Makes row r (for r < from.length) hold what row from[r] held: keys, values and first
   * slot and sample key (all K storage rows of a row move together). Rows may repeat (beam
   * expansion) or be left out (finished sequences); the rows in use become from.length.
   * Copies only the filled slots of storage rows that change.
   */
  select(from: readonly number[]): void {
    this.#checkAlive();
    const op = "KvCache.select";
    if (from.length < 1 || from.length > this.maxRows) throw new GrowlmError(op, `expected 1 to ${this.maxRows} rows but received ${from.length}`);
    from.forEach((src, r) => {
      if (!Number.isInteger(src) || src < 0 || src >= this.#rows) throw new GrowlmError(op, `from[${r}] = ${src} is not a row in use (rows: ${this.#rows})`);
    });
    const K = this.members;
    const begin = this.#keyBegin.data as Int32Array;
    const begins = from.map((src) => begin[src]!);
    const keys = from.map((src) => this.#sampleKeys[src]!);
    this.#selectStorage(K === 1 ? from : from.flatMap((src) => Array.from({ length: K }, (_, k) => src * K + k)));
    begin.set(begins);
    this.#sampleKeys.set(keys);
    this.#rows = from.length;
  }

  /** Makes storage row r hold what storage row from[r] held (the rows in use: indices below rows · members). */
  #selectStorage(from: readonly number[]): void {
    const moved = from.map((src, r) => (src !== r ? r : -1)).filter((r) => r >= 0);
    const span = this.capacity * this.slotSize;
    const filled = this.length * this.slotSize;
    // A source row overwritten before it is read is saved first.
    const overwritten = new Set(moved);
    const saved = [...new Set(moved.map((r) => from[r]!).filter((src) => overwritten.has(src)))];
    const slotOf = new Map(saved.map((src, i) => [src, i] as const));
    if (saved.length > 0 && filled > 0 && (this.#spare === null || this.#spare.length < saved.length * filled)) {
      this.#spare = new Float32Array(saved.length * filled);
    }
    if (filled > 0) {
      for (const storage of [this.#keys, this.#values]) {
        for (const t of storage) {
          const data = t.data;
          saved.forEach((src, i) => this.#spare!.set(data.subarray(src * span, src * span + filled), i * filled));
          for (const r of moved) {
            const src = from[r]!;
            const i = slotOf.get(src);
            const source = i !== undefined ? this.#spare!.subarray(i * filled, (i + 1) * filled) : data.subarray(src * span, src * span + filled);
            data.set(source, r * span);
          }
        }
      }
    }
  }

  /** Frees the cache's native memory now. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const t of [...this.#keys, ...this.#values, this.#keyBegin]) t.dispose();
    this.#spare = null;
  }

  #rowsOf(storage: Tensor<"float32">[], l: number): Tensor<"float32"> {
    this.#checkAlive();
    if (!Number.isInteger(l) || l < 0 || l >= this.numLayers) throw new GrowlmError("KvCache", `layer ${l} is outside [0, ${this.numLayers})`);
    return storage[l]!.rows(0, this.#rows * this.members) as Tensor<"float32">;
  }

  #checkAlive(): void {
    if (this.#disposed) throw new GrowlmError("KvCache", "used after dispose()");
  }
}
