/**
 * RMSNorm as Hugging Face's LlamaRMSNorm computes it in float32:
 * out = (inp · rstd) · weight with rstd = 1 / sqrt(mean(inp²) + eps) per row of C values.
 * The forward returns rstd, which the backward takes back.
 *
 * The FiLM-fused variant follows the norm with FiLM-Ensemble's per-member affine map:
 * out = ((inp · rstd) · weight) · gamma[m] + beta[m] for the rows of member m.
 */
import type { Buffers, HostBuffers } from "../device.js";
import { binding } from "../native.js";
import { Tensor } from "../tensor.js";
import { dimsOf, expectShape, finite, formatShape, output } from "./check.js";

export interface NormBinding<B extends Buffers = HostBuffers> {
  rmsnormForward(out: B["f32"], rstd: B["f32"], inp: B["f32"], weight: B["f32"], N: number, C: number, eps: number): void;
  rmsnormBackward(
    dinp: B["f32"],
    dweight: B["f32"],
    dout: B["f32"],
    inp: B["f32"],
    weight: B["f32"],
    rstd: B["f32"],
    N: number,
    C: number,
  ): void;
  rmsnormFilmForward(
    out: B["f32"],
    rstd: B["f32"],
    inp: B["f32"],
    weight: B["f32"],
    gamma: B["f32"],
    beta: B["f32"],
    N: number,
    C: number,
    group: number,
    M: number,
    eps: number,
  ): void;
  rmsnormFilmBackward(
    dinp: B["f32"],
    dweight: B["f32"],
    dgamma: B["f32"],
    dbeta: B["f32"],
    dout: B["f32"],
    inp: B["f32"],
    weight: B["f32"],
    gamma: B["f32"],
    rstd: B["f32"],
    N: number,
    C: number,
    group: number,
    M: number,
  ): void;
}

/** A finite number > 0 (hyperparameters that divide or are raised to a power). */
function positive(op: string, name: string, value: number): void {
  finite(op, name, value);
  if (!(value > 0)) throw new RangeError(`${op}: expected "${name}" > 0 but received ${value}`);
}

/** Rows of an activation [..., C]: its float32 shape, N (product of the leading dims) and C. */
function rowsOf(op: string, name: string, t: Tensor): { shape: readonly number[]; N: number; C: number } {
  if (t.ndim === 0) {
    throw new RangeError(`${op}: expected "${name}" of shape [..., C] but received ${formatShape(t.shape)}`);
  }
  const shape = dimsOf(op, name, t, "float32", t.ndim);
  const C = shape[shape.length - 1]!;
  if (C === 0) throw new RangeError(`${op}: expected "${name}" with C >= 1 but received ${formatShape(shape)}`);
  return { shape, N: t.numel / C, C };
}

function rowNames(rank: number): string {
  return [...Array.from({ length: rank - 1 }, (_, i) => `d${i}`), "C"].join(", ");
}

/**
 * RMSNorm forward.
 * @param inp activations [N, C] or [..., C]
 * @param weight scale [C]
 * @param eps added to the mean square (> 0; HF's rms_norm_eps, typically 1e-5 or 1e-6)
 * @param out optional output, the shape of inp
 * @returns out (the shape of inp) and rstd (inp's shape without C: [N] or [...]), the
 *   reciprocal root mean square of each row, saved for the backward
 */
export function rmsnormForward(
  inp: Tensor,
  weight: Tensor,
  eps: number,
  out?: Tensor,
): { out: Tensor<"float32">; rstd: Tensor<"float32"> } {
  const op = "rmsnormForward";
  const { shape, N, C } = rowsOf(op, "inp", inp);
  expectShape(op, "weight", weight, "float32", "C", [C]);
  positive(op, "eps", eps);
  const result = output(op, "out", out, "float32", rowNames(shape.length), shape);
  const rstd = Tensor.empty(shape.slice(0, -1));
  binding.rmsnormForward(
    result.data as Float32Array,
    rstd.data as Float32Array,
    inp.data as Float32Array,
    weight.data as Float32Array,
    N,
    C,
    eps,
  );
  return { out: result as Tensor<"float32">, rstd: rstd as Tensor<"float32"> };
}

/**
 * RMSNorm backward. dinp is overwritten; dweight accumulates (+=) the gradient of weight,
 * summed over the rows in a fixed order (the same bits for any thread count).
 * @param dout gradient of out, the shape of inp
 * @param inp the forward's input [..., C]
 * @param weight scale [C]
 * @param rstd the forward's rstd (inp's shape without C)
 * @param dweight gradient of weight [C], accumulated into
 * @param dinp optional output, the shape of inp
 * @returns dinp, the gradient of inp
 */
export function rmsnormBackward(
  dout: Tensor,
  inp: Tensor,
  weight: Tensor,
  rstd: Tensor,
  dweight: Tensor,
  dinp?: Tensor,
): Tensor<"float32"> {
  const op = "rmsnormBackward";
  const { shape, N, C } = rowsOf(op, "inp", inp);
  const names = rowNames(shape.length);
  expectShape(op, "dout", dout, "float32", names, shape);
  expectShape(op, "weight", weight, "float32", "C", [C]);
  expectShape(op, "rstd", rstd, "float32", names.split(", ").slice(0, -1).join(", "), shape.slice(0, -1));
  expectShape(op, "dweight", dweight, "float32", "C", [C]);
  const result = output(op, "dinp", dinp, "float32", names, shape);
  binding.rmsnormBackward(
    result.data as Float32Array,
    dweight.data as Float32Array,
    dout.data as Float32Array,
    inp.data as Float32Array,
    weight.data as Float32Array,
    rstd.data as Float32Array,
    N,
    C,
  );
  return result as Tensor<"float32">;
}

/** Checks the member layout of a FiLM call: group >= 1 rows per run, M >= 1 members. */
function memberLayout(op: string, group: number, M: number): void {
  for (const [name, value] of [["group", group], ["M", M]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${op}: expected "${name}" a positive integer but received ${value}`);
  }
}

/**
 * RMSNorm followed by FiLM-Ensemble's per-member affine map (Turkoglu et al., NeurIPS 2022):
 *   out[n] = ((inp[n] · rstd[n]) · weight) · gamma[m] + beta[m],  m = floor(n / group) mod M
 * over the rows n of inp [N, C]: runs of `group` rows (one sequence's tokens) alternate
 * between the M members, so a batch whose row b·M + m is sample b for member m maps onto
 * the members with group = T. M = 1, gamma = 1, beta = 0 gives rmsnormForward's bits.
 * @param inp activations [N, C] or [..., C]
 * @param weight the norm's scale [C]
 * @param gamma per-member scale [M, C]
 * @param beta per-member shift [M, C]
 * @param group rows per run (>= 1)
 * @param eps added to the mean square (> 0)
 * @returns out (the shape of inp) and rstd (inp's shape without C)
 */
export function rmsnormFilmForward(
  inp: Tensor,
  weight: Tensor,
  gamma: Tensor,
  beta: Tensor,
  group: number,
  eps: number,
  out?: Tensor,
): { out: Tensor<"float32">; rstd: Tensor<"float32"> } {
  const op = "rmsnormFilmForward";
  const { shape, N, C } = rowsOf(op, "inp", inp);
  expectShape(op, "weight", weight, "float32", "C", [C]);
  const M = dimsOf(op, "gamma", gamma, "float32", 2)[0]!;
  expectShape(op, "gamma", gamma, "float32", "M, C", [M, C]);
  expectShape(op, "beta", beta, "float32", "M, C", [M, C]);
  memberLayout(op, group, M);
  positive(op, "eps", eps);
  const result = output(op, "out", out, "float32", rowNames(shape.length), shape);
  const rstd = Tensor.empty(shape.slice(0, -1));
  binding.rmsnormFilmForward(
    result.data as Float32Array,
    rstd.data as Float32Array,
    inp.data as Float32Array,
    weight.data as Float32Array,
    gamma.data as Float32Array,
    beta.data as Float32Array,
    N,
    C,
    group,
    M,
    eps,
  );
  return { out: result as Tensor<"float32">, rstd: rstd as Tensor<"float32"> };
}

/**
 * Backward of rmsnormFilmForward. dinp is overwritten; dweight, dgamma and dbeta accumulate
 * (+=), each summed over rows in a fixed order (the same bits for any thread count):
 *   dgamma[m] += Σ_{n of m} dout[n] · (inp[n] · rstd[n]) · weight,  dbeta[m] += Σ_{n of m} dout[n]
 * and dinp, dweight are rmsnormBackward's with dout[n] · gamma[m] in place of dout[n].
 * @param dout gradient of out, the shape of inp
 * @param inp the forward's input [..., C]
 * @param weight the norm's scale [C]
 * @param gamma per-member scale [M, C]
 * @param rstd the forward's rstd
 * @param group rows per run, as in the forward
 * @param grads dweight [C], dgamma [M, C], dbeta [M, C], accumulated into
 * @returns dinp, the gradient of inp
 */
export function rmsnormFilmBackward(
  dout: Tensor,
  inp: Tensor,
  weight: Tensor,
  gamma: Tensor,
  rstd: Tensor,
  group: number,
  grads: { dweight: Tensor; dgamma: Tensor; dbeta: Tensor },
  dinp?: Tensor,
): Tensor<"float32"> {
  const op = "rmsnormFilmBackward";
  const { shape, N, C } = rowsOf(op, "inp", inp);
  const names = rowNames(shape.length);
  expectShape(op, "dout", dout, "float32", names, shape);
  expectShape(op, "weight", weight, "float32", "C", [C]);
  const M = dimsOf(op, "gamma", gamma, "float32", 2)[0]!;
  expectShape(op, "gamma", gamma, "float32", "M, C", [M, C]);
  expectShape(op, "rstd", rstd, "float32", names.split(", ").slice(0, -1).join(", "), shape.slice(0, -1));
  expectShape(op, "dweight", grads.dweight, "float32", "C", [C]);
  expectShape(op, "dgamma", grads.dgamma, "float32", "M, C", [M, C]);
  expectShape(op, "dbeta", grads.dbeta, "float32", "M, C", [M, C]);
  memberLayout(op, group, M);
  const result = output(op, "dinp", dinp, "float32", names, shape);
  binding.rmsnormFilmBackward(
    result.data as Float32Array,
    grads.dweight.data as Float32Array,
    grads.dgamma.data as Float32Array,
    grads.dbeta.data as Float32Array,
    dout.data as Float32Array,
    inp.data as Float32Array,
    weight.data as Float32Array,
    gamma.data as Float32Array,
    rstd.data as Float32Array,
    N,
    C,
    group,
    M,
  );
  return result as Tensor<"float32">;
}
