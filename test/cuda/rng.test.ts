import { expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { withSettings } from "../helpers/native.js";
import { BASE_SEED, expectBitwiseEqual, randomF32 } from "../helpers/reference.js";
import { describeCuda, downloadF32, poisoned, upload } from "../helpers/cuda.js";

// The device fills round every op as the CPU's portable path does (no FMA contraction, the
// same ln and sin/cos polynomials), so they are compared bitwise with it: no tolerance.
const SEED = 0x1234_5678_9abc_def0n ^ BigInt(BASE_SEED);
const U64_MAX = (1n << 64n) - 1n;

// Every start mod 4, short and long fills, a carry into the counter's high word (block 2^32
// at element 2^34), and the wrap from element 2^64 - 1 to 0 (block 2^62 - 1 to 0).
const FILLS: [bigint, number][] = [
  [0n, 1],
  [1n, 2],
  [2n, 3],
  [3n, 5],
  [4n * 1_000_003n + 1n, 1027],
  [2n ** 34n - 4003n, 3001],
  [2n ** 64n - 6n, 13],
  [2n ** 64n - 67n, 600],
];

function cpuFill(kind: "uniform" | "normal", n: number, seed: bigint, offset: bigint, a: number, b: number): Float32Array {
  const out = new Float32Array(n);
  withSettings("portable", 1, () => {
    if (kind === "uniform") binding.rngUniform(out, n, seed, offset, a, b);
    else binding.rngNormal(out, n, seed, offset, a, b);
  });
  return out;
}

function deviceFill(kind: "uniform" | "normal", n: number, seed: bigint, offset: bigint, a: number, b: number): Float32Array {
  const out = poisoned(4 * n);
  if (kind === "uniform") binding.cuda.rngUniform(out, n, seed, offset, a, b);
  else binding.cuda.rngNormal(out, n, seed, offset, a, b);
  return downloadF32(out);
}

describeCuda("rng (cuda)", () => {
  it.each(FILLS)("uniform and normal fills at offset %s (n = %i) are bitwise the CPU's", (offset, n) => {
    for (const [kind, a, b] of [
      ["uniform", 0, 2 ** 24], // exactly the top 24 bits of each Philox word
      ["uniform", -1, 3],
      ["normal", 0, 1],
      ["normal", 0.25, 1.5],
    ] as const) {
      expectBitwiseEqual(deviceFill(kind, n, SEED, offset, a, b), cpuFill(kind, n, SEED, offset, a, b), `${kind}(${a}, ${b}) at ${offset}, n ${n}`);
    }
  });

  it("a seed with only the high key word set, and seed 2^64 - 1, give the CPU's bits", () => {
    for (const seed of [1n << 32n, U64_MAX]) {
      expectBitwiseEqual(deviceFill("normal", 257, seed, 7n, 0, 1), cpuFill("normal", 257, seed, 7n, 0, 1), `normal, seed ${seed}`);
    }
  });

  it("dropout masks are bitwise the CPU's, out of place and in place, rows at any stream offset", () => {
    const rows = 7, C = 45, p = 0.3;
    const inp = randomF32(rows * C, BASE_SEED + 11);
    inp[3] = -0; // kept as -0·scale or dropped as -0·0: signs show
    const offsets = BigInt64Array.from([0n, 1n, 2n, 3n, 4n * 999n + 2n, BigInt.asIntN(64, U64_MAX - 20n), 123_456_789_012n]);
    const seed = 77n + BigInt(BASE_SEED);
    const cpu = new Float32Array(rows * C);
    binding.rngDropout(cpu, inp, rows, C, p, seed, offsets);

    const dOffsets = upload(offsets);
    const out = poisoned(4 * rows * C);
    const dInp = upload(inp);
    binding.cuda.rngDropout(out, dInp, rows, C, p, seed, dOffsets);
    expectBitwiseEqual(downloadF32(out), cpu, "dropout");
    binding.cuda.rngDropout(dInp, dInp, rows, C, p, seed, dOffsets);
    expectBitwiseEqual(downloadF32(dInp), cpu, "dropout in place");
    const kept = cpu.filter((x) => x !== 0).length;
    expect(kept).toBeGreaterThan(0.5 * rows * C);
    expect(kept).toBeLessThan(0.9 * rows * C);
  });

  it("checks buffers as the CPU binding does", () => {
    expect(() => binding.cuda.rngNormal(poisoned(16), 5, 1, 0, 0, 1)).toThrow(/rngNormal: expected float32 DeviceBuffer of length 5/);
    expect(() => binding.cuda.rngUniform(poisoned(16), 4, 1, 0, 1, 0)).toThrow(/rngUniform: expected low <= high/);
    expect(() => binding.cuda.rngDropout(poisoned(16), poisoned(16), 2, 2, 0.5, 1, upload(new BigInt64Array(1)))).toThrow(
      /rngDropout: expected int64 DeviceBuffer of length 2 .* for "rowOffsets" but received length 1/,
    );
    expect(() => binding.cuda.rngUniform(poisoned(4), 0, 1, U64_MAX, 0, 1)).toThrow(/rngUniform: expected float32 DeviceBuffer of length 0/);
  });
});
