/**
 * Argument checks shared by the kernel wrappers. They throw before any native call:
 * TypeError for the wrong kind of value, RangeError for a wrong shape or value, each
 * message starting with the op's name, e.g.
 *   rmsnormForward: expected "weight" of shape [C] = [512] but received [500]
 */
import { Tensor, formatShape, type DType } from "../tensor.js";

export { formatShape };

/** "d0, d1, d2" for a shape with no conventional dimension names. */
export function dimNames(shape: readonly number[]): string {
  return shape.map((_, i) => `d${i}`).join(", ");
}

/** Checks dtype and rank; returns the tensor's shape. */
export function dimsOf(op: string, name: string, t: Tensor, dtype: DType, rank: number): readonly number[] {
  if (t.dtype !== dtype) {
    throw new TypeError(`${op}: expected "${name}" of dtype ${dtype} but received ${t.dtype}`);
  }
  if (t.device !== "cpu") {
    throw new TypeError(`${op}: expected "${name}" on device cpu but received ${t.device}`);
  }
  if (t.shape.length !== rank) {
    throw new RangeError(
      `${op}: expected "${name}" of rank ${rank} but received shape ${formatShape(t.shape)}`,
    );
  }
  return t.shape;
}

/**
 * Checks dtype and the exact shape; `names` spells the dimensions ("B, T, H, D") for the
 * message.
 */
export function expectShape(
  op: string,
  name: string,
  t: Tensor,
  dtype: DType,
  names: string,
  shape: readonly number[],
): void {
  dimsOf(op, name, t, dtype, shape.length);
  if (t.shape.some((d, i) => d !== shape[i])) {
    throw new RangeError(
      `${op}: expected "${name}" of shape [${names}] = ${formatShape(shape)} but received ${formatShape(t.shape)}`,
    );
  }
}

/**
 * An output tensor: `given` checked against dtype and shape, or a new one when absent.
 */
export function output<D extends DType>(
  op: string,
  name: string,
  given: Tensor | undefined,
  dtype: D,
  names: string,
  shape: readonly number[],
): Tensor<D> {
  const t = given ?? Tensor.empty(shape, dtype);
  expectShape(op, name, t, dtype, names, shape);
  return t as Tensor<D>;
}

/** A finite number (hyperparameters); `min`/`max` bound it when given. */
export function finite(op: string, name: string, value: number, min = -Infinity, max = Infinity): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new RangeError(`${op}: expected a finite number for "${name}" but received ${String(value)}`);
  }
  if (value < min || value > max) {
    throw new RangeError(`${op}: expected "${name}" in [${min}, ${max}] but received ${value}`);
  }
  return value;
}

/** An integer in [min, max]. */
export function integer(op: string, name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${op}: expected an integer in [${min}, ${max}] for "${name}" but received ${String(value)}`);
  }
  return value;
}
