/** Elementwise kernels in GB/s (bytes read + written) against the machine's copy bandwidth. */
import { binding } from "../src/native.js";
import type { BenchSuite } from "./common.js";

export const suite: BenchSuite = {
  name: "elementwise",
  run(ctx) {
    const n = 1 << 24;
    const a = new Float32Array(binding.alloc(n * 4, true)).fill(1.5);
    const b = new Float32Array(binding.alloc(n * 4, true)).fill(-0.5);
    const out = new Float32Array(binding.alloc(n * 4, true));
    const h = new Uint16Array(binding.alloc(n * 2, true));
    ctx.compare(`residual add n=${n}`, "GB/s", n * 12, [{ name: "growlm add", fn: () => binding.add(out, a, b, n) }], "copy");
    ctx.compare(`fp32 -> bf16 n=${n}`, "GB/s", n * 6, [{ name: "growlm f32ToBf16", fn: () => binding.f32ToBf16(h, a, n) }], "copy");
    // Arguments a softmax sees (x − max in [-20, 0]): the vector fast path throughout.
    const x = new Float32Array(binding.alloc(n * 4, true));
    for (let i = 0; i < n; i++) x[i] = -20 * ((i * 0.618034) % 1);
    ctx.compare(`e^x n=${n}`, "GB/s", n * 8, [{ name: "growlm expF32", fn: () => binding.expF32(out, x, n) }], "copy");
    ctx.compare(`2^x n=${n}`, "GB/s", n * 8, [{ name: "growlm exp2F32", fn: () => binding.exp2F32(out, x, n) }], "copy");
  },
};
