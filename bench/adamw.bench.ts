/**
 * AdamW over 50M parameters in GB/s against the machine's copy bandwidth. Bytes per
 * parameter: read p, g, m, v and write p, m, v (28 B), plus 2 B for the bf16 working copy.
 * The global gradient norm reads 4 B per parameter. A 50M-float copy (8 B per element) is
 * also timed alternately with AdamW, since the harness measures its copy baseline once,
 * before the suites, and this machine's load changes from minute to minute.
 */
import { binding } from "../src/native.js";
import type { BenchSuite } from "./common.js";

export const suite: BenchSuite = {
  name: "adamw",
  run(ctx) {
    const n = 50_000_000;
    const f32 = (fill: number) => new Float32Array(binding.alloc(n * 4, true)).fill(fill);
    const params = f32(0.02);
    const grads = f32(1e-3);
    const m = f32(0);
    const v = f32(0);
    const bf16 = new Uint16Array(binding.alloc(n * 2, true));
    // Two segments: the decaying matrices and a non-decaying tail (norm weights).
    const segBegin = BigInt64Array.from([0n, BigInt(n - 4096), BigInt(n)]);
    const segDecay = Uint8Array.from([1, 0]);
    let step = 0;
    const adamw = (paramsBf16: Uint16Array | null) => () =>
      binding.adamwStep(params, m, v, paramsBf16, grads, n, segBegin, segDecay, 1e-4, 0.9, 0.999, 1e-8, 0.1, ++step, 1);
    const copyDst = f32(0);
    const copy = { name: "copy n=50M", fn: () => binding.copy(copyDst, grads, n) };
    ctx.compare(`adamw fp32 n=50M`, "GB/s", [n * 28, n * 8], [{ name: "growlm adamw", fn: adamw(null) }, copy], "copy");
    ctx.compare(`adamw fp32 + bf16 copy n=50M`, "GB/s", n * 30, [{ name: "growlm adamw+bf16", fn: adamw(bf16) }], "copy");
    ctx.compare(`global grad norm n=50M`, "GB/s", n * 4, [{ name: "growlm globalGradNorm", fn: () => binding.globalGradNorm(grads, n) }], "copy");
  },
};
