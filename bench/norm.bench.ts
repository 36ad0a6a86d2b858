/** RMSNorm forward and backward in GB/s (bytes read + written) against the machine's copy bandwidth. */
import { binding } from "../src/native.js";
import type { BenchSuite } from "./common.js";

function filled(n: number, value: (i: number) => number): Float32Array {
  const a = new Float32Array(binding.alloc(n * 4, false));
  for (let i = 0; i < n; i++) a[i] = value(i);
  return a;
}

export const suite: BenchSuite = {
  name: "norm",
  run(ctx) {
    const [N, C] = [4096, 4096];
    const inp = filled(N * C, (i) => Math.sin(i));
    const dout = filled(N * C, (i) => Math.cos(i));
    const weight = filled(C, (i) => 1 + (i % 7) / 10);
    const out = filled(N * C, () => 0);
    const dinp = filled(N * C, () => 0);
    const rstd = filled(N, () => 0);
    const dweight = filled(C, () => 0);
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
