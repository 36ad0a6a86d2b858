import { describe, expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { ewcFisherAccumulate, ewcPenalty } from "../../src/kernels/ewc.js";
import { Tensor } from "../../src/tensor.js";
import { expectBitwiseEqual, expectClose, finiteDifferences, randomF32 } from "../helpers/reference.js";
import { ISAS, withSettings } from "../helpers/native.js";

// The kernel's difference θ − θ* is rounded to float32 once (relative error 2^-24 per term,
// twice in the square); the float64 reference uses the exact difference.
const PENALTY_RTOL = 2e-7;
// The penalty is quadratic: central differences are exact up to float64 rounding of the
// sums (h = 1e-3 on values of order 1), far below the float32 gradient's own rounding.
const FD_RTOL = 1e-6;
const SIZES = [1, 17, 257, 100_003, 300_007];

const f = Math.fround;

interface Inputs {
  params: Float32Array;
  anchor: Float32Array;
  fisher: Float32Array;
  grads: Float32Array;
}

function inputs(n: number, seed: number): Inputs {
  const params = randomF32(n, seed, -1, 1);
  const shift = randomF32(n, seed + 1, -0.05, 0.05);
  return {
    params,
    anchor: Float32Array.from(params, (p, i) => p + shift[i]!),
    fisher: randomF32(n, seed + 2, 0, 3),
    grads: randomF32(n, seed + 3, -0.1, 0.1),
  };
}

/** The kernel's per-element float32 op sequence: g + fl(fl(λ·F)·fl(θ − θ*)). */
function emulateGradient(x: Inputs, lambda: number): Float32Array {
  const l = f(lambda);
  return Float32Array.from(x.grads, (g, i) => f(g + f(f(l * x.fisher[i]!) * f(x.params[i]! - x.anchor[i]!))));
}

/** (λ/2)·Σ F·(θ − θ*)² in float64 with exact differences. */
function penalty64(params: ArrayLike<number>, anchor: Float32Array, fisher: Float32Array, lambda: number): number {
  let s = 0;
  for (let i = 0; i < fisher.length; i++) {
    const d = params[i]! - anchor[i]!;
    s += fisher[i]! * d * d;
  }
  return 0.5 * lambda * s;
}

function run(isa: (typeof ISAS)[number], threads: number, x: Inputs, lambda: number, withGrads = true): { value: number; grads: Float32Array } {
  const grads = Tensor.from(x.grads);
  const value = withSettings(isa, threads, () =>
    ewcPenalty({ params: Tensor.from(x.params), anchor: Tensor.from(x.anchor), fisher: Tensor.from(x.fisher), ...(withGrads ? { grads } : {}) }, lambda),
  );
  return { value, grads: grads.data as Float32Array };
}

describe.each(ISAS)("ewc (%s)", (isa) => {
  it.each(SIZES)("n=%i: the gradient is bitwise the float32 op sequence, the value close to float64", (n) => {
    const x = inputs(n, 11);
    for (const lambda of [0.37, 250]) {
      const { value, grads } = run(isa, 2, x, lambda);
      expectBitwiseEqual(grads, emulateGradient(x, lambda), `grads n=${n} λ=${lambda}`);
      expectClose([value], [penalty64(x.params, x.anchor, x.fisher, f(lambda))], PENALTY_RTOL, `penalty n=${n} λ=${lambda}`);
    }
  });

  it("is bitwise the same for 1 and 2 threads, on every code path, with and without gradients", () => {
    const x = inputs(300_007, 21);
    const one = run(isa, 1, x, 4.5);
    const two = run(isa, 2, x, 4.5);
    expectBitwiseEqual(one.grads, two.grads, "grads 1 vs 2 threads");
    expect(two.value).toBe(one.value);
    expect(run("portable", 2, x, 4.5).value).toBe(one.value);
    const valueOnly = run(isa, 2, x, 4.5, false);
    expect(valueOnly.value).toBe(one.value);
    expectBitwiseEqual(valueOnly.grads, x.grads, "grads untouched without a grads buffer");
  });

  it("its gradient matches central finite differences of the float64 penalty", () => {
    const n = 64;
    const x = inputs(n, 31);
    x.grads.fill(0);
    const lambda = 3;
    const { grads } = run(isa, 1, x, lambda);
    const fd = finiteDifferences((theta) => penalty64(theta, x.anchor, x.fisher, lambda), Float64Array.from(x.params), 1e-3);
    expectClose(grads, fd, FD_RTOL, "∂penalty/∂θ vs finite differences");
  });

  it("λ = 0 leaves the gradients bitwise unchanged and the penalty 0", () => {
    const x = inputs(100_003, 41);
    const { value, grads } = run(isa, 2, x, 0);
    expect(value).toBe(0);
    expectBitwiseEqual(grads, x.grads, "grads with λ = 0");
  });

  it("accumulates scale·g² into the Fisher bitwise as the float32 op sequence, the same for 1 and 2 threads", () => {
    const n = 300_007;
    const g = randomF32(n, 51, -2, 2);
    const f0 = randomF32(n, 52, 0, 1);
    const scale = 1 / 7;
    const expected = Float32Array.from(f0, (v, i) => f(v + f(f(scale) * f(g[i]! * g[i]!))));
    for (const threads of [1, 2]) {
      const fisher = Tensor.from(f0);
      withSettings(isa, threads, () => ewcFisherAccumulate(fisher, Tensor.from(g), scale));
      expectBitwiseEqual(fisher.data, expected, `Fisher on ${threads} thread(s)`);
    }
  });
});

describe("ewc errors", () => {
  const n = 10;
  const z = () => Tensor.from(randomF32(n, 61));
  it("refuses bad shapes, dtypes and λ by name", () => {
    expect(() => ewcPenalty({ params: z(), anchor: Tensor.zeros([n + 1]), fisher: z() }, 1)).toThrow(/ewcPenalty: expected "anchor" of shape \[d0\] = \[10\] but received \[11\]/);
    expect(() => ewcPenalty({ params: z(), anchor: z(), fisher: Tensor.zeros([n], "int32") }, 1)).toThrow(/ewcPenalty: expected "fisher" of dtype float32/);
    expect(() => ewcPenalty({ params: z(), anchor: z(), fisher: z() }, -1)).toThrow(/ewcPenalty: expected "lambda" in \[0, /);
    expect(() => ewcPenalty({ params: z(), anchor: z(), fisher: z() }, Number.NaN)).toThrow(/ewcPenalty: expected a finite number for "lambda"/);
    expect(() => ewcFisherAccumulate(z(), Tensor.zeros([3]), 1)).toThrow(/ewcFisherAccumulate: expected "grads" of shape/);
    expect(() => ewcFisherAccumulate(z(), z(), -0.5)).toThrow(/ewcFisherAccumulate: expected "scale" in \[0, /);
  });

  it("refuses bad binding arguments before touching memory", () => {
    const a = () => new Float32Array(n);
    expect(() => binding.ewcPenalty(null, a(), a(), a(), n, 1)).not.toThrow();
    expect(() => binding.ewcPenalty(a(), a(), new Float32Array(n - 1), a(), n, 1)).toThrow(/ewcPenalty: expected Float32Array of length 10 .* for "anchor"/);
    const shared = a();
    expect(() => binding.ewcPenalty(shared, shared, a(), a(), n, 1)).toThrow(/ewcPenalty: "grads" and "params" share memory/);
    expect(() => binding.ewcPenalty(a(), a(), a(), a(), n, -2)).toThrow(/ewcPenalty: "lambda" must be >= 0/);
    expect(() => binding.ewcPenalty(a(), a(), a(), a(), n, 1e39)).toThrow(/"lambda" does not fit in float32/);
    const fisher = a();
    expect(() => binding.ewcFisherAccumulate(fisher, fisher, n, 1)).toThrow(/ewcFisherAccumulate: "fisher" and "grads" share memory/);
  });
});
