import { expect, it } from "vitest";

import { binding } from "../../src/native.js";
import { BASE_SEED, expectBitwiseEqual, expectClose, randomF32 } from "../helpers/reference.js";
import { describeCuda, downloadF32, poisoned, upload } from "../helpers/cuda.js";

// The CPU backend's own error is ≤ 2^-21 against float64 (test/kernels/norm.test.ts); the GPU
// sums the mean square in another order, so the two agree to a few fp32 roundings of the sum.
const FORWARD_RTOL = 2 ** -19;
// The backward's row dot product and dweight's column sums also run in another order.
const BACKWARD_RTOL = 2 ** -17;
const EPS = 1e-5;
const SHAPES: [number, number][] = [[1, 1], [3, 17], [37, 129], [130, 256], [5, 1000]];

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
    // dinp = r·w·dy − x·r³·mean(w·dy·x) may cancel (fully at C = 1): measure the error
    // against the size of its two terms (the row sum's by the sum of its terms' magnitudes,
    // since the two backends sum them in different orders).
    const gotDinp = downloadF32(gdinp);
    for (let n = 0; n < N; n++) {
      const r = rstd[n]!;
      let dotSum = 0;
      for (let c = 0; c < C; c++) dotSum += Math.abs(dy[n * C + c]! * w[c]! * x[n * C + c]!);
      const k = (r * r * r * dotSum) / C;
      for (let c = 0; c < C; c++) {
        const i = n * C + c;
        const scale = Math.abs(r * w[c]! * dy[i]!) + Math.abs(x[i]!) * k;
        expect(Math.abs(gotDinp[i]! - dinp[i]!), `dinp[${i}]`).toBeLessThanOrEqual(BACKWARD_RTOL * scale);
      }
    }
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

  it("names the op and the shape when a buffer has the wrong length", () => {
    const x = upload(new Float32Array(12).fill(1));
    const w = upload(new Float32Array(4).fill(1));
    expect(() => binding.cuda.rmsnormForward(poisoned(40), poisoned(12), x, w, 3, 4, EPS)).toThrow(
      /rmsnormForward: expected float32 DeviceBuffer of length 12 \(\[N, C\] = \[3, 4\]\) for "out" but received length 10/,
    );
    expect(() => binding.cuda.rmsnormForward(new Float32Array(12) as never, poisoned(12), x, w, 3, 4, EPS)).toThrow(
      /rmsnormForward: expected a DeviceBuffer \(float32\) for "out"/,
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
