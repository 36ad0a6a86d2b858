/**
 * Rotary position embedding in Hugging Face's LLaMA convention (rotate_half): in every
 * head, the pair (x[i], x[i + D/2]) is rotated by positions[b, t] · inv_freq[i] radians,
 * inv_freq[i] = 1 / theta^(2i / D), all in float32 as HF computes it.
 */
import type { Buffers, HostBuffers } from "../device.js";
import { binding } from "../native.js";
import { Tensor } from "../tensor.js";
import { dimsOf, expectShape, finite, output } from "./check.js";

/**
 * The binding's RoPE ops: typed arrays on the CPU, DeviceBuffers under binding.cuda (where
 * positions are not range-checked: on a device they index nothing, so a negative one only
 * rotates the other way).
 */
export interface RopeBinding<B extends Buffers = HostBuffers> {
  ropeForward(out: B["f32"], inp: B["f32"], positions: B["i32"], B: number, T: number, H: number, D: number, theta: number): void;
  ropeBackward(dinp: B["f32"], dout: B["f32"], positions: B["i32"], B: number, T: number, H: number, D: number, theta: number): void;
}

/** A finite number > 0 (hyperparameters that divide or are raised to a power). */
function positive(op: string, name: string, value: number): void {
  finite(op, name, value);
  if (!(value > 0)) throw new RangeError(`${op}: expected "${name}" > 0 but received ${value}`);
}

function ropeDims(op: string, name: string, x: Tensor, positions: Tensor, theta: number): readonly number[] {
  const shape = dimsOf(op, name, x, "float32", 4);
  const [B, T, , D] = shape as [number, number, number, number];
  if (D % 2 !== 0 || D === 0) {
    throw new RangeError(`${op}: expected "${name}" of shape [B, T, H, D] with D even but received D = ${D}`);
  }
  expectShape(op, "positions", positions, "int32", "B, T", [B, T]);
  positive(op, "theta", theta);
  return shape;
}

/**
 * RoPE forward.
 * @param x queries or keys [B, T, H, D], D even
 * @param positions token positions, int32 [B, T], each >= 0
 * @param theta base of the frequencies (HF's rope_theta: 10000 for LLaMA 2, 500000 for LLaMA 3)
 * @param out optional output [B, T, H, D]; may be x itself (in place)
 * @returns out [B, T, H, D]
 */
export function ropeForward(x: Tensor, positions: Tensor, theta: number, out?: Tensor): Tensor<"float32"> {
  const op = "ropeForward";
  const shape = ropeDims(op, "x", x, positions, theta);
  const result = output(op, "out", out, "float32", "B, T, H, D", shape);
  const [B, T, H, D] = shape as [number, number, number, number];
  binding.ropeForward(result.data as Float32Array, x.data as Float32Array, positions.data as Int32Array, B, T, H, D, theta);
  return result as Tensor<"float32">;
}

/**
 * RoPE backward: the rotation by the opposite angles.
 * @param dout gradient of the forward's output [B, T, H, D]
 * @param positions the forward's positions, int32 [B, T]
 * @param theta the forward's theta
 * @param dinp optional output [B, T, H, D] (overwritten); may be dout itself
 * @returns dinp, the gradient of x [B, T, H, D]
 */
export function ropeBackward(dout: Tensor, positions: Tensor, theta: number, dinp?: Tensor): Tensor<"float32"> {
  const op = "ropeBackward";
  const shape = ropeDims(op, "dout", dout, positions, theta);
  const result = output(op, "dinp", dinp, "float32", "B, T, H, D", shape);
  const [B, T, H, D] = shape as [number, number, number, number];
  binding.ropeBackward(result.data as Float32Array, dout.data as Float32Array, positions.data as Int32Array, B, T, H, D, theta);
  return result as Tensor<"float32">;
}
