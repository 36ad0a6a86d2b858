/**
 * SwiGLU activation of LLaMA's MLP: out = silu(gate) · up with silu(x) = x / (1 + e^-x),
 * elementwise on tensors of any (equal) shape. Finite inputs give finite outputs however
 * large |gate| is.
 */
import type { Buffers, HostBuffers } from "../device.js";
import { binding } from "../native.js";
import type { Tensor } from "../tensor.js";
import { dimNames, expectShape, output } from "./check.js";

/** The binding's SwiGLU ops: typed arrays on the CPU, DeviceBuffers under binding.cuda. */
export interface SwigluBinding<B extends Buffers = HostBuffers> {
  swigluForward(out: B["f32"], gate: B["f32"], up: B["f32"], n: number): void;
  swigluBackward(dgate: B["f32"], dup: B["f32"], dout: B["f32"], gate: B["f32"], up: B["f32"], n: number): void;
}

function same(op: string, name: string, t: Tensor, shape: readonly number[]): void {
  expectShape(op, name, t, "float32", dimNames(shape), shape);
}

/**
 * SwiGLU forward.
 * @param gate gate_proj output, e.g. [B, T, I]
 * @param up up_proj output, the shape of gate
 * @param out optional output, the shape of gate
 * @returns silu(gate) · up
 */
export function swigluForward(gate: Tensor, up: Tensor, out?: Tensor): Tensor<"float32"> {
  const op = "swigluForward";
  same(op, "gate", gate, gate.shape);
  same(op, "up", up, gate.shape);
  const result = output(op, "out", out, "float32", dimNames(gate.shape), gate.shape);
  binding.swigluForward(result.data as Float32Array, gate.data as Float32Array, up.data as Float32Array, gate.numel);
  return result;
}

/**
 * SwiGLU backward: dgate = dout · up · σ(gate) · (1 + gate · (1 - σ(gate))), dup = dout · silu(gate),
 * both overwritten.
 * @param dout gradient of out, the shape of gate
 * @param gate, up the forward's inputs
 * @param dgate, dup optional outputs, the shape of gate
 */
export function swigluBackward(
  dout: Tensor,
  gate: Tensor,
  up: Tensor,
  dgate?: Tensor,
  dup?: Tensor,
): { dgate: Tensor<"float32">; dup: Tensor<"float32"> } {
  const op = "swigluBackward";
  same(op, "gate", gate, gate.shape);
  same(op, "dout", dout, gate.shape);
  same(op, "up", up, gate.shape);
  const g = output(op, "dgate", dgate, "float32", dimNames(gate.shape), gate.shape);
  const u = output(op, "dup", dup, "float32", dimNames(gate.shape), gate.shape);
  binding.swigluBackward(
    g.data as Float32Array,
    u.data as Float32Array,
    dout.data as Float32Array,
    gate.data as Float32Array,
    up.data as Float32Array,
    gate.numel,
  );
  return { dgate: g, dup: u };
}
