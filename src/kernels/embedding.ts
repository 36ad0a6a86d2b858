/**
 * Token embedding: out[..., :] = table[ids[...], :] (HF's embed_tokens), and its backward,
 * a deterministic scatter-add into the table's gradient.
 */
import type { Buffers, HostBuffers } from "../device.js";
import { binding } from "../native.js";
import { Tensor } from "../tensor.js";
import { dimsOf, expectShape, formatShape, output } from "./check.js";

/**
 * The binding's embedding ops: typed arrays on the CPU, DeviceBuffers under binding.cuda.
 * Device ids cannot be range-checked by the binding: there the forward fills the row of an
 * id outside [0, V) with NaN and the backward skips its token.
 */
export interface EmbeddingBinding<B extends Buffers = HostBuffers> {
  embeddingForward(out: B["f32"], ids: B["i32"], table: B["f32"], N: number, V: number, C: number): void;
  /** paddingIdx: tokens of that id add nothing (nn.Embedding's padding_idx); -1 for none. */
  embeddingBackward(dtable: B["f32"], dout: B["f32"], ids: B["i32"], N: number, V: number, C: number, paddingIdx: number): void;
}

function idsShape(op: string, ids: Tensor): readonly number[] {
  if (ids.ndim !== 1 && ids.ndim !== 2) {
    throw new RangeError(`${op}: expected "ids" of shape [N] or [B, T] but received ${formatShape(ids.shape)}`);
  }
  return dimsOf(op, "ids", ids, "int32", ids.ndim);
}

function outNames(rank: number): string {
  return rank === 1 ? "N, C" : "B, T, C";
}

/**
 * Embedding lookup.
 * @param ids token ids, int32 [N] or [B, T], each in [0, V)
 * @param table embedding table [V, C]
 * @param out optional output [..., C] (ids' shape then C)
 * @returns out [N, C] or [B, T, C]
 */
export function embeddingForward(ids: Tensor, table: Tensor, out?: Tensor): Tensor<"float32"> {
  const op = "embeddingForward";
  const idShape = idsShape(op, ids);
  const [V, C] = dimsOf(op, "table", table, "float32", 2) as [number, number];
  const shape = [...idShape, C];
  const result = output(op, "out", out, "float32", outNames(idShape.length), shape);
  binding.embeddingForward(result.data as Float32Array, ids.data as Int32Array, table.data as Float32Array, ids.numel, V, C);
  return result as Tensor<"float32">;
}

/**
 * Embedding backward: dtable[ids[n], :] += dout[n, :] for every token, repeated ids
 * summed in token order (the same bits for any thread count).
 * @param dout gradient of out [N, C] or [B, T, C]
 * @param ids the forward's ids, int32 [N] or [B, T]
 * @param dtable gradient of the table [V, C], accumulated into
 * @param paddingIdx tokens of this id add nothing, as with nn.Embedding(padding_idx=...); -1 (default) for none
 * @returns dtable
 */
export function embeddingBackward(dout: Tensor, ids: Tensor, dtable: Tensor, paddingIdx = -1): Tensor<"float32"> {
  const op = "embeddingBackward";
  const idShape = idsShape(op, ids);
  const [V, C] = dimsOf(op, "dtable", dtable, "float32", 2) as [number, number];
  expectShape(op, "dout", dout, "float32", outNames(idShape.length), [...idShape, C]);
  binding.embeddingBackward(dtable.data as Float32Array, dout.data as Float32Array, ids.data as Int32Array, ids.numel, V, C, paddingIdx);
  return dtable as Tensor<"float32">;
}
