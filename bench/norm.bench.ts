/** RMSNorm forward and backward in GB/s (bytes read + written) against the machine's copy bandwidth. */
import { binding } from "../src/native.js";
import { filledBuffer, type BenchSuite } from "./common.js";

export const suite: BenchSuite = {
  name: "norm",
  run(ctx) {
    const [N, C] = [4096, 4096];
    const inp = filledBuffer(N * C, (i) => Math.sin(i));
    const dout = filledBuffer(N * C, (i) => Math.cos(i));
    const weight = filledBuffer(C, (i) => 1 + (i % 7) / 10);
    const out = filledBuffer(N * C, () => 0);
    const dinp = filledBuffer(N * C, () => 0);
    const rstd = filledBuffer(N, () => 0);
    const dweight = filledBuffer(C, () => 0);
    const shape = `N=${N} C=${C}`;
    // Forward: reads inp and weight, writes out and rstd.
    ctx.compare(`rmsnorm forward ${shape}`, "GB/s", 4 * (2 * N * C + C + N), [
      { name: "growlm rmsnormForward", fn: () => binding.rmsnormForward(out, rstd, inp, weight, N, C, 1e-5) },
    ], "copy");
    // Backward: reads dout, inp, weight, rstd and dweight, writes dinp and dweight.
    ctx.compare(`rmsnorm backward ${shape}`, "GB/s", 4 * (3 * N * C + 3 * C + N), [
      { name: "growlm rmsnormBackward", fn: () => binding.rmsnormBackward(dinp, dweight, dout, inp, weight, rstd, N, C) },
    ], "copy");
  },
};
