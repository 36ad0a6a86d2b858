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
  },
};
