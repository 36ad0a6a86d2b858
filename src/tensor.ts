/**
 * Tensor: a shape, a dtype and a device over contiguous memory. On the CPU the memory is
 * a typed array; tensors made by growlm (empty, zeros, from, rand...) live in 64-byte-
 * aligned native memory that the kernels read in place, freed by the garbage collector
 * or at once by dispose(). Views (reshape, rows) share their parent's memory.
 *
 * bf16 values are stored as their raw 16-bit patterns in a Uint16Array.
 */
import { binding } from "./native.js";

export type DType = "float32" | "bfloat16" | "int32" | "uint8";
export type Device = "cpu";

/** The typed array that holds each dtype. */
export interface DTypeArray {
  float32: Float32Array;
  bfloat16: Uint16Array;
  int32: Int32Array;
  uint8: Uint8Array;
}

/** "[2, 3, 4]" for error messages. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

const BYTES: Record<DType, number> = { float32: 4, bfloat16: 2, int32: 4, uint8: 1 };

function arrayOf<D extends DType>(dtype: D, buffer: ArrayBuffer, offset: number, length: number): DTypeArray[D] {
  switch (dtype) {
    case "float32":
      return new Float32Array(buffer, offset, length) as DTypeArray[D];
    case "bfloat16":
      return new Uint16Array(buffer, offset, length) as DTypeArray[D];
    case "int32":
      return new Int32Array(buffer, offset, length) as DTypeArray[D];
    default:
      return new Uint8Array(buffer, offset, length) as DTypeArray[D];
  }
}

function dtypeOfArray(data: ArrayBufferView): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Uint16Array) return "bfloat16";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof Uint8Array) return "uint8";
  throw new TypeError("Tensor: expected a Float32Array, Uint16Array (bf16), Int32Array or Uint8Array");
}

/** Number of elements of a shape; throws on negative or fractional dimensions. */
export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`Tensor: invalid shape ${formatShape(shape)}`);
    n *= d;
  }
  return n;
}

export class Tensor<D extends DType = DType> {
  readonly device: Device = "cpu";
  #data: DTypeArray[D];
  #owner: ArrayBuffer | null;
  #disposed = false;

  /**
   * Wraps `data` (no copy). `owner` is the native buffer this tensor may free on dispose();
   * views and wrapped user arrays have none.
   */
  constructor(
    data: DTypeArray[D],
    readonly shape: readonly number[],
    readonly dtype: D,
    owner: ArrayBuffer | null = null,
  ) {
    if (numelOf(shape) !== data.length) {
      throw new RangeError(
        `Tensor: shape ${formatShape(shape)} has ${numelOf(shape)} elements but the data has ${data.length}`,
      );
    }
    this.shape = Object.freeze([...shape]);
    this.#data = data;
    this.#owner = owner;
  }

  /** Uninitialised native memory (contents unspecified). */
  static empty<D extends DType = "float32">(shape: readonly number[], dtype: D = "float32" as D): Tensor<D> {
    return Tensor.#alloc(shape, dtype, false);
  }

  static zeros<D extends DType = "float32">(shape: readonly number[], dtype: D = "float32" as D): Tensor<D> {
    return Tensor.#alloc(shape, dtype, true);
  }

  /** A native copy of `values` (numbers are converted to the dtype; bf16 takes bit patterns). */
  static from<D extends DType = "float32">(
    values: ArrayLike<number>,
    shape: readonly number[] = [values.length],
    dtype: D = "float32" as D,
  ): Tensor<D> {
    const t = Tensor.empty(shape, dtype);
    if (values.length !== t.numel) {
      throw new RangeError(`Tensor.from: ${values.length} values for shape ${formatShape(shape)}`);
    }
    t.data.set(values);
    return t;
  }

  /** Wraps a caller's typed array without copying (its dtype follows the array type). */
  static wrap<A extends DTypeArray[DType]>(data: A, shape: readonly number[] = [data.length]): Tensor {
    return new Tensor(data, shape, dtypeOfArray(data));
  }

  static #alloc<D extends DType>(shape: readonly number[], dtype: D, zero: boolean): Tensor<D> {
    if (!(dtype in BYTES)) throw new TypeError(`Tensor: unknown dtype ${String(dtype)}`);
    const n = numelOf(shape);
    const buffer = binding.alloc(n * BYTES[dtype], zero);
    return new Tensor(arrayOf(dtype, buffer, 0, n), shape, dtype, buffer);
  }

  /** The elements, row-major. Throws after dispose(). */
  get data(): DTypeArray[D] {
    if (this.#disposed) throw new Error("Tensor: used after dispose()");
    return this.#data;
  }

  get numel(): number {
    return this.#data.length;
  }

  get ndim(): number {
    return this.shape.length;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Same memory, new shape with the same number of elements; -1 infers one dimension. */
  reshape(shape: readonly number[]): Tensor<D> {
    const known = shape.filter((d) => d !== -1);
    const resolved =
      known.length === shape.length
        ? shape
        : shape.map((d) => (d === -1 ? this.numel / Math.max(1, numelOf(known)) : d));
    if (shape.filter((d) => d === -1).length > 1 || numelOf(resolved) !== this.numel) {
      throw new RangeError(`Tensor.reshape: cannot view ${formatShape(this.shape)} as ${formatShape(shape)}`);
    }
    return new Tensor(this.data, resolved, this.dtype);
  }

  /** Rows [start, end) along the first dimension, sharing memory. */
  rows(start: number, end: number): Tensor<D> {
    if (this.ndim === 0 || !Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > this.shape[0]!) {
      throw new RangeError(`Tensor.rows: [${start}, ${end}) is not a row range of ${formatShape(this.shape)}`);
    }
    const inner = this.numel / Math.max(1, this.shape[0]!);
    const data = this.data.subarray(start * inner, end * inner) as DTypeArray[D];
    return new Tensor(data, [end - start, ...this.shape.slice(1)], this.dtype);
  }

  /** A native copy. */
  clone(): Tensor<D> {
    const t = Tensor.empty(this.shape, this.dtype);
    t.data.set(this.data);
    return t;
  }

  /** Plain numbers (bf16 as bit patterns), for tests and printing. */
  toArray(): number[] {
    return Array.from(this.data);
  }

  /**
   * Frees native memory now instead of at garbage collection. The tensor, and any view of
   * it, must not be used afterwards. Disposing a view or a wrapped array only marks it.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#owner) binding.free(this.#owner);
    this.#owner = null;
  }

  toString(): string {
    return `Tensor(${formatShape(this.shape)}, ${this.dtype}, ${this.device})`;
  }
}
