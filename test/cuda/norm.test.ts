import { expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { BASE_SEED, expectBitwiseEqual, expectClose, randomF32 } from "../helpers/reference.js";
import type { DeviceBuffer } from "../../src/device.js";
import { describeCuda, downloadF32, poisoned, upload } from "../helpers/cuda.js";

// The CPU backend's own error is ≤ 2^-21 against float64 (test/kernels/norm.test.ts); the GPU
// sums the mean square in another order, so the two agree to a few fp32 roundings of the sum.
const FORWARD_RTOL = 2 ** -19;
// The backward's row dot product and dweight's column sums also run in another order.
const BACKWARD_RTOL = 2 ** -17;
const EPS = 1e-5;
const SHAPES: [number, number][] = [[1, 1], [3, 17], [37, 129], [130, 256], [5, 1000]];
// dbeta sums the same fp32 values in float64 on both backends, in another order: within one
// fp32 rounding of each element.
const DBETA_RTOL = 2 ** -23;
// FiLM (N, C, group, M): runs of one member, a partial last run, members with several
// 64-row chunks of rows, odd channel counts.
const FILM_SHAPES: [number, number, number, number][] = [[1, 1, 1, 1], [7, 17, 7, 1], [14, 129, 7, 2], [30, 33, 5, 3], [9, 40, 2, 4], [150, 65, 3, 2]];

/**
 * dinp = r·w·dy − x·r³·mean(w·dy·x) may cancel (fully at C = 1): the error is measured against
 * the size of its two terms (the row sum's by the sum of its terms' magnitudes, since the two
 * backends sum them in different orders). dy is the gradient the norm sees (dout·γ with FiLM).
 */
function expectDinpClose(got: Float32Array, want: Float32Array, x: Float32Array, w: Float32Array, dy: Float32Array, rstd: Float32Array, N: number, C: number): void {
  for (let n = 0; n < N; n++) {
    const r = rstd[n]!;
    let dotSum = 0;
    for (let c = 0; c < C; c++) dotSum += Math.abs(dy[n * C + c]! * w[c]! * x[n * C + c]!);
    const k = (r * r * r * dotSum) / C;
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      const scale = Math.abs(r * w[c]! * dy[i]!) + Math.abs(x[i]!) * k;
      expect(Math.abs(got[i]! - want[i]!), `dinp[${i}]`).toBeLessThanOrEqual(BACKWARD_RTOL * scale);
    }
  }
}

describeCuda("rmsnorm (cuda)", () => {
  it.each(SHAPES)("forward and backward agree with the CPU backend for N=%i, C=%i", (N, C) => {
    const seed = BASE_SEED + N * 1000 + C;
    const x = randomF32(N * C, seed);
    const w = randomF32(C, seed + 1, 0.5, 1.5);
    const dy = randomF32(N * C, seed + 2);
    const dw0 = randomF32(C, seed + 3);

    const out = new Float32Array(N * C);
    const rstd = new Float32Array(N);
    binding.rmsnormForward(out, rstd, x, w, N, C, EPS);
    const dinp = new Float32Array(N * C);
    const dweight = dw0.slice();
    binding.rmsnormBackward(dinp, dweight, dy, x, w, rstd, N, C);

    const gx = upload(x), gw = upload(w), gdy = upload(dy);
    const gout = poisoned(N * C * 4), grstd = poisoned(N * 4), gdinp = poisoned(N * C * 4);
    const gdw = upload(dw0);
    binding.cuda.rmsnormForward(gout, grstd, gx, gw, N, C, EPS);
    binding.cuda.rmsnormBackward(gdinp, gdw, gdy, gx, gw, grstd, N, C);
    expectClose(downloadF32(gout), out, FORWARD_RTOL, "out");
    expectClose(downloadF32(grstd), rstd, FORWARD_RTOL, "rstd");
    expectDinpClose(downloadF32(gdinp), dinp, x, w, dy, rstd, N, C);
    expectClose(downloadF32(gdw), dweight, BACKWARD_RTOL, "dweight (accumulated)");
  });

  it("gives the same bits on every run (fixed-order reductions)", () => {
    const N = 200, C = 96;
    const x = upload(randomF32(N * C, BASE_SEED + 7)), w = upload(randomF32(C, BASE_SEED + 8));
    const dy = upload(randomF32(N * C, BASE_SEED + 9));
    const run = (): Float32Array[] => {
      const out = poisoned(N * C * 4), rstd = poisoned(N * 4), dinp = poisoned(N * C * 4), dw = poisoned(C * 4);
      binding.cuda.fillBytes(dw, 0);
      binding.cuda.rmsnormForward(out, rstd, x, w, N, C, EPS);
      binding.cuda.rmsnormBackward(dinp, dw, dy, x, w, rstd, N, C);
      return [downloadF32(out), downloadF32(dinp), downloadF32(dw)];
    };
    const a = run(), b = run();
    a.forEach((t, i) => expectBitwiseEqual(t, b[i]!, `output ${i}`));
  });

  it.each(FILM_SHAPES)("FiLM forward and backward agree with the CPU backend for N=%i, C=%i, group=%i, M=%i", (N, C, group, M) => {
    const seed = BASE_SEED + 50_000 + N * 1000 + C;
    const x = randomF32(N * C, seed);
    const w = randomF32(C, seed + 1, 0.5, 1.5);
    const gamma = randomF32(M * C, seed + 2, 0.5, 1.5);
    const beta = randomF32(M * C, seed + 3, -0.5, 0.5);
    const dy = randomF32(N * C, seed + 4);
    const [dw0, dg0, db0] = [randomF32(C, seed + 5), randomF32(M * C, seed + 6), randomF32(M * C, seed + 7)];

    const out = new Float32Array(N * C);
    const rstd = new Float32Array(N);
    binding.rmsnormFilmForward(out, rstd, x, w, gamma, beta, N, C, group, M, EPS);
    const dinp = new Float32Array(N * C);
    const [dweight, dgamma, dbeta] = [dw0.slice(), dg0.slice(), db0.slice()];
    binding.rmsnormFilmBackward(dinp, dweight, dgamma, dbeta, dy, x, w, gamma, rstd, N, C, group, M);

    const [gx, gw, gg, gb, gdy] = [x, w, gamma, beta, dy].map(upload) as [DeviceBuffer, DeviceBuffer, DeviceBuffer, DeviceBuffer, DeviceBuffer];
    const gout = poisoned(N * C * 4), grstd = poisoned(N * 4), gdinp = poisoned(N * C * 4);
    const [gdw, gdg, gdb] = [dw0, dg0, db0].map(upload) as [DeviceBuffer, DeviceBuffer, DeviceBuffer];
    binding.cuda.rmsnormFilmForward(gout, grstd, gx, gw, gg, gb, N, C, group, M, EPS);
    binding.cuda.rmsnormFilmBackward(gdinp, gdw, gdg, gdb, gdy, gx, gw, gg, grstd, N, C, group, M);
    expectClose(downloadF32(gout), out, FORWARD_RTOL, "out");
    expectClose(downloadF32(grstd), rstd, FORWARD_RTOL, "rstd");
    const dyFilm = Float32Array.from(dy, (d, i) => d * gamma[(Math.floor(Math.floor(i / C) / group) % M) * C + (i % C)]!);
    expectDinpClose(downloadF32(gdinp), dinp, x, w, dyFilm, rstd, N, C);
    expectClose(downloadF32(gdw), dweight, BACKWARD_RTOL, "dweight (accumulated)");
    expectClose(downloadF32(gdg), dgamma, BACKWARD_RTOL, "dgamma (accumulated)");
    expectClose(downloadF32(gdb), dbeta, DBETA_RTOL, "dbeta (accumulated)");
  });

  it("FiLM with one member at γ = 1, β = 0 gives plain rmsnorm's bits; FiLM gives the same bits on every run", () => {
    const N = 45, C = 70;
    const x = upload(randomF32(N * C, BASE_SEED + 60)), w = upload(randomF32(C, BASE_SEED + 61, 0.5, 1.5));
    const dy = upload(randomF32(N * C, BASE_SEED + 62));
    const ones = upload(new Float32Array(C).fill(1)), zeros = upload(new Float32Array(C));
    const run = (film: boolean): Float32Array[] => {
      const out = poisoned(N * C * 4), rstd = poisoned(N * 4), dinp = poisoned(N * C * 4), dw = upload(new Float32Array(C));
      if (film) {
        binding.cuda.rmsnormFilmForward(out, rstd, x, w, ones, zeros, N, C, 7, 1, EPS);
        binding.cuda.rmsnormFilmBackward(dinp, dw, upload(new Float32Array(C)), upload(new Float32Array(C)), dy, x, w, ones, rstd, N, C, 7, 1);
      } else {
        binding.cuda.rmsnormForward(out, rstd, x, w, N, C, EPS);
        binding.cuda.rmsnormBackward(dinp, dw, dy, x, w, rstd, N, C);
      }
      return [downloadF32(out), downloadF32(rstd), downloadF32(dinp), downloadF32(dw)];
    };
    const plain = run(false);
    run(true).forEach((t, i) => expectBitwiseEqual(t, plain[i]!, `M = 1 output ${i}`));

    const M = 3, group = 4;
    const gamma = upload(randomF32(M * C, BASE_SEED + 63, 0.5, 1.5)), beta = upload(randomF32(M * C, BASE_SEED + 64));
    const film = (): Float32Array[] => {
      const out = poisoned(N * C * 4), rstd = poisoned(N * 4), dinp = poisoned(N * C * 4);
      const [dw, dg, db] = [C, M * C, M * C].map((n) => upload(new Float32Array(n)));
      binding.cuda.rmsnormFilmForward(out, rstd, x, w, gamma, beta, N, C, group, M, EPS);
      binding.cuda.rmsnormFilmBackward(dinp, dw!, dg!, db!, dy, x, w, gamma, rstd, N, C, group, M);
      return [out, dinp, dw!, dg!, db!].map(downloadF32);
    };
    const a = film(), b = film();
    a.forEach((t, i) => expectBitwiseEqual(t, b[i]!, `FiLM output ${i}`));
  });

  it("names the op and the shape when a buffer has the wrong length", () => {
    const x = upload(new Float32Array(12).fill(1));
    const w = upload(new Float32Array(4).fill(1));
    expect(() => binding.cuda.rmsnormForward(poisoned(40), poisoned(12), x, w, 3, 4, EPS)).toThrow(
      /rmsnormForward: expected float32 DeviceBuffer of length 12 \(\[N, C\] = \[3, 4\]\) for "out" but received length 10/,
    );
    expect(() => binding.cuda.rmsnormForward(new Float32Array(12) as never, poisoned(12), x, w, 3, 4, EPS)).toThrow(
      /rmsnormForward: expected a DeviceBuffer \(float32\) for "out"/,
    );
    expect(() => binding.cuda.rmsnormFilmForward(poisoned(48), poisoned(12), x, w, w, upload(new Float32Array(8)), 3, 4, 3, 2, EPS)).toThrow(
      /rmsnormFilmForward: expected float32 DeviceBuffer of length 8 \(\[M, C\] = \[2, 4\]\) for "gamma" but received length 4/,
    );
  });

  it("refuses a freed buffer", () => {
    const x = upload(new Float32Array(12).fill(1));
    const view = x.view(0, 48);
    x.free();
    expect(view.freed).toBe(true);
    expect(() => binding.cuda.rmsnormForward(poisoned(48), poisoned(12), view, upload(new Float32Array(4)), 3, 4, EPS)).toThrow(/"inp" was freed/);
  });
});
