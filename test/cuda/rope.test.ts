import { expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { BASE_SEED, expectBitwiseEqual, expectClose, randomF32, randomInts } from "../helpers/reference.js";
import { describeCuda, downloadF32, poisoned, upload } from "../helpers/cuda.js";

// Both backends take cos/sin of the same fp32 angles, evaluated in double and rounded to
// fp32 (equal but for rare near-ties, 1 ulp); the rotation a·c − b·s may be fused into an FMA
// on the GPU: a few ulp of the pair's magnitude, measured normwise.
const RTOL = 2 ** -21;
const THETA = 10000;
// [B, T, H, D]: odd sizes, D/2 odd, and D/2 > 256 (the kernel's cos/sin tile) once.
const SHAPES: [number, number, number, number][] = [
  [1, 1, 1, 2],
  [2, 3, 5, 6],
  [1, 17, 3, 64],
  [2, 9, 2, 130],
  [1, 3, 2, 520],
];

describeCuda("rope (cuda)", () => {
  it.each(SHAPES)("forward and backward agree with the CPU backend for [B, T, H, D] = [%i, %i, %i, %i]", (B, T, H, D) => {
    const n = B * T * H * D;
    const seed = BASE_SEED + n;
    const x = randomF32(n, seed);
    const dy = randomF32(n, seed + 1);
    // Positions far beyond the context length too: large angles test the range reduction.
    const positions = randomInts(B * T, seed + 2, 200_000);
    positions[0] = 0;
    for (const theta of [THETA, 500_000]) {
      const out = new Float32Array(n), dx = new Float32Array(n);
      binding.ropeForward(out, x, positions, B, T, H, D, theta);
      binding.ropeBackward(dx, dy, positions, B, T, H, D, theta);
      const gp = upload(positions);
      const gout = poisoned(n * 4), gdx = poisoned(n * 4);
      binding.cuda.ropeForward(gout, upload(x), gp, B, T, H, D, theta);
      binding.cuda.ropeBackward(gdx, upload(dy), gp, B, T, H, D, theta);
      expectClose(downloadF32(gout), out, RTOL, `out theta=${theta}`);
      expectClose(downloadF32(gdx), dx, RTOL, `dinp theta=${theta}`);
    }
  });

  it("works in place and the backward undoes the forward", () => {
    const [B, T, H, D] = [2, 7, 3, 18];
    const n = B * T * H * D;
    const x = randomF32(n, BASE_SEED + 21);
    const positions = randomInts(B * T, BASE_SEED + 22, 4096);
    const gp = upload(positions);
    const separate = poisoned(n * 4);
    binding.cuda.ropeForward(separate, upload(x), gp, B, T, H, D, THETA);
    const inPlace = upload(x);
    binding.cuda.ropeForward(inPlace, inPlace, gp, B, T, H, D, THETA);
    expectBitwiseEqual(downloadF32(inPlace), downloadF32(separate), "in place vs separate output");
    binding.cuda.ropeBackward(inPlace, inPlace, gp, B, T, H, D, THETA);
    // A rotation and its inverse in fp32: a few roundings of |x|.
    expectClose(downloadF32(inPlace), x, 2 ** -21, "backward(forward(x))");
  });

  it("rotates by a negative angle for a negative position (device positions are not range-checked)", () => {
    const [B, T, H, D] = [1, 5, 2, 8];
    const n = B * T * H * D;
    const x = upload(randomF32(n, BASE_SEED + 31));
    const positions = Int32Array.from([3, 0, 17, 1000, 5]);
    const negated = positions.map((p) => -p);
    const forwardNegative = poisoned(n * 4), backward = poisoned(n * 4);
    binding.cuda.ropeForward(forwardNegative, x, upload(negated), B, T, H, D, THETA);
    binding.cuda.ropeBackward(backward, x, upload(positions), B, T, H, D, THETA);
    // cos is even and sin odd, exactly, in double: the same bits.
    expectBitwiseEqual(downloadF32(forwardNegative), downloadF32(backward), "forward(-p) vs backward(p)");
  });

  it("refuses an odd head size and a bad theta, naming them", () => {
    const x = upload(new Float32Array(12).fill(1));
    const p = upload(new Int32Array(2));
    expect(() => binding.cuda.ropeForward(poisoned(48), x, p, 1, 2, 2, 3, THETA)).toThrow(/ropeForward: expected an even head size "D"/);
    expect(() => binding.cuda.ropeForward(poisoned(48), x, p, 1, 2, 3, 2, 0)).toThrow(/ropeForward: expected "theta" > 0/);
  });
});
