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
 *
 * The keys and values live on the cache's device (the model's: LlamaModel.forwardCached
 * refuses a cache on another one); keyBegin and sampleKeys stay on the host.
 */
import type { Buffers, Device } from "../device.js";
import { GrowlmError } from "../errors.js";
import { Tensor } from "../tensor.js";
import { type ModelBackend, BufferSet, backendFor } from "./backend.js";
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
  /** Where the keys and values are. */
  readonly device: Device;
  /** Filled slots of every row in use. */
  length = 0;
  #rows: number;
  readonly #backend: ModelBackend<Buffers>;
  readonly #memory: BufferSet<Buffers>;
  /** Per layer, [maxRows · members, capacity, Hkv, D] on the device. */
  readonly #keys: Buffers["f32"][];
  readonly #values: Buffers["f32"][];
  readonly #keyBegin: Tensor<"int32">;
  readonly #sampleKeys: Float64Array;
  /** Scratch for select(): copies of rows that are read after being overwritten. */
  #spare: { buffer: Buffers["f32"]; length: number; memory: BufferSet<Buffers> } | null = null;
  #disposed = false;

  /**
   * @param maxRows rows of storage (a batch, or batch × beams)
   * @param capacity slots per row: the longest prompt (padded) plus the tokens to generate
   * @param rows rows in use at first (default maxRows)
   * @param members storage rows per row (default 1; LlamaModel.inferenceMembers for an ensemble)
   * @param device where the keys and values live: the model's device (LlamaModel.device)
   */
  constructor(config: LlamaConfig, maxRows: number, capacity: number, rows = maxRows, members = 1, device: Device = "cpu") {
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
    this.device = device;
    this.#backend = backendFor(device);
    this.#memory = new BufferSet(this.#backend);
    const n = maxRows * members * capacity * this.slotSize;
    this.#keys = Array.from({ length: this.numLayers }, () => this.#memory.alloc(n, "f32"));
    this.#values = Array.from({ length: this.numLayers }, () => this.#memory.alloc(n, "f32"));
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

  /** Layer l's keys of the rows in use, `[rows · members, capacity, Hkv, D]` (a view on the CPU, a copy from a device). */
  keys(l: number): Tensor<"float32"> {
    return this.#hostRows(this.#keys, l);
  }

  /** Layer l's values of the rows in use, `[rows · members, capacity, Hkv, D]` (a view on the CPU, a copy from a device). */
  values(l: number): Tensor<"float32"> {
    return this.#hostRows(this.#values, l);
  }

  /** Layer l's key storage of the rows in use on the cache's device (the model writes and reads it). */
  keyBuffer(l: number): Buffers["f32"] {
    return this.#rowsOf(this.#keys, l);
  }

  /** Layer l's value storage of the rows in use on the cache's device. */
  valueBuffer(l: number): Buffers["f32"] {
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
    const backend = this.#backend;
    const view = (b: Buffers["f32"], offset: number, n: number): Buffers["f32"] => backend.view(b, offset, n, "f32");
    if (saved.length > 0 && filled > 0 && (this.#spare === null || this.#spare.length < saved.length * filled)) {
      this.#spare?.memory.dispose();
      const memory = new BufferSet(backend);
      this.#spare = { buffer: memory.alloc(saved.length * filled, "f32"), length: saved.length * filled, memory };
    }
    if (filled > 0) {
      for (const storage of [this.#keys, this.#values]) {
        for (const data of storage) {
          saved.forEach((src, i) => backend.copy(view(this.#spare!.buffer, i * filled, filled), view(data, src * span, filled)));
          for (const r of moved) {
            const src = from[r]!;
            const i = slotOf.get(src);
            const source = i !== undefined ? view(this.#spare!.buffer, i * filled, filled) : view(data, src * span, filled);
            backend.copy(view(data, r * span, filled), source);
          }
        }
      }
    }
  }

  /** Frees the cache's native memory now. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#memory.dispose();
    this.#keyBegin.dispose();
    this.#spare?.memory.dispose();
    this.#spare = null;
  }

  #rowsOf(storage: Buffers["f32"][], l: number): Buffers["f32"] {
    this.#checkAlive();
    if (!Number.isInteger(l) || l < 0 || l >= this.numLayers) throw new GrowlmError("KvCache", `layer ${l} is outside [0, ${this.numLayers})`);
    return this.#backend.view(storage[l]!, 0, this.#rows * this.members * this.capacity * this.slotSize, "f32");
  }

  #hostRows(storage: Buffers["f32"][], l: number): Tensor<"float32"> {
    const rows = this.#rowsOf(storage, l);
    const shape = [this.#rows * this.members, this.capacity, this.numKvHeads, this.headDim];
    if (rows instanceof Float32Array) return new Tensor(rows, shape, "float32");
    const copy = Tensor.empty(shape);
    this.#backend.download(copy.data, rows);
    return copy;
  }

  #checkAlive(): void {
    if (this.#disposed) throw new GrowlmError("KvCache", "used after dispose()");
  }
}
