import { expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { BASE_SEED, expectBitwiseEqual, randomF32 } from "../helpers/reference.js";
import { describeCuda, downloadF32, poisoned, upload } from "../helpers/cuda.js";

// Both ops are bitwise the CPU's (ewc.cu: every op rounded on its own, the penalty's sum in
// the CPU's canonical order), so the comparisons are exact.
// Both ops accumulate into their output (grads +=, F +=), so instead of poison the outputs
// start from random values: an element the device does not update differs from the CPU's.
// Sizes: one element, a partial warp, odd ones, one whole block of the canonical sum (2^16)
// plus a partial one, and three blocks.
const SIZES = [1, 37, 4099, 65536 + 1031, 3 * 65536 - 5];

/** θ, θ*, F (>= 0, some exactly 0) and a gradient, none all zeros. */
function inputs(n: number, seed: number) {
  const params = randomF32(n, seed, -2, 2);
  const anchor = randomF32(n, seed + 1, -2, 2);
  const fisher = randomF32(n, seed + 2, 0, 3);
  for (let i = 0; i < n; i += 7) fisher[i] = 0;
  const grads = randomF32(n, seed + 3, -1, 1);
  return { params, anchor, fisher, grads };
}

describeCuda("EWC (cuda)", () => {
  it.each(SIZES)("penalty and gradient are bitwise the CPU's for n=%i", (n) => {
    const x = inputs(n, BASE_SEED + n);
    const lambda = 0.37;
    const cpuGrads = Float32Array.from(x.grads);
    const cpu = binding.ewcPenalty(cpuGrads, x.params, x.anchor, x.fisher, n, lambda);
    const cpuValueOnly = binding.ewcPenalty(null, x.params, x.anchor, x.fisher, n, lambda);

    const p = upload(x.params), a = upload(x.anchor), f = upload(x.fisher);
    const g = upload(x.grads);
    const got = binding.cuda.ewcPenalty(g, p, a, f, n, lambda);
    expect(got).toBe(cpu);
    expectBitwiseEqual(downloadF32(g), cpuGrads, `grads, n=${n}`);
    expect(binding.cuda.ewcPenalty(null, p, a, f, n, lambda)).toBe(cpuValueOnly);
    // Run to run: the same bits.
    expect(binding.cuda.ewcPenalty(null, p, a, f, n, lambda)).toBe(cpuValueOnly);
  });

  it.each(SIZES)("Fisher accumulation is bitwise the CPU's for n=%i", (n) => {
    const x = inputs(n, BASE_SEED + 5 * n);
    const scale = 1 / 3;
    const cpu = Float32Array.from(x.fisher);
    binding.ewcFisherAccumulate(cpu, x.grads, n, scale);
    const f = upload(x.fisher);
    binding.cuda.ewcFisherAccumulate(f, upload(x.grads), n, scale);
    expectBitwiseEqual(downloadF32(f), cpu, `fisher, n=${n}`);
  });

  it("checks lengths, scalars and overlap as the CPU binding does", () => {
    const n = 10;
    const a = () => upload(randomF32(n, BASE_SEED + 7, 0, 1));
    expect(() => binding.cuda.ewcPenalty(null, a(), upload(new Float32Array(n - 1)), a(), n, 1)).toThrow(/ewcPenalty: .*"anchor"/);
    expect(() => binding.cuda.ewcPenalty(a(), a(), a(), a(), n, -2)).toThrow(/ewcPenalty: "lambda" must be >= 0/);
    const shared = a();
    expect(() => binding.cuda.ewcPenalty(shared, shared, a(), a(), n, 1)).toThrow(/ewcPenalty: "grads" and "params" share memory/);
    const fisher = a();
    expect(() => binding.cuda.ewcFisherAccumulate(fisher, fisher, n, 1)).toThrow(/ewcFisherAccumulate: "fisher" and "grads" share memory/);
    expect(() => binding.cuda.ewcFisherAccumulate(a(), a(), n, -1)).toThrow(/ewcFisherAccumulate: "scale" must be >= 0/);
    expect(binding.cuda.ewcPenalty(null, a().view(0, 0), a().view(0, 0), a().view(0, 0), 0, 1)).toBe(0);
  });
});
