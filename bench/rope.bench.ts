/**
 * RoPE forward and backward in GB/s (bytes of x read + written) against the machine's copy
 * bandwidth, at a LLaMA-small shape (hidden 1024 = 16 heads of 64).
 */
import { binding } from "../src/native.js";
import type { BenchSuite } from "./common.js";

export const suite: BenchSuite = {
  name: "rope",
  run(ctx) {
    const [B, T, H, D] = [8, 1024, 16, 64];
    const n = B * T * H * D;
    const x = new Float32Array(binding.alloc(n * 4, false));
    for (let i = 0; i < n; i++) x[i] = Math.sin(i);
    const out = new Float32Array(binding.alloc(n * 4, true));
    // Every row at 0..T-1 (one cos/sin table for the batch), and packed documents whose
    // positions run past B·T (cos/sin computed for each (b, t) row).
    const arange = Int32Array.from({ length: B * T }, (_, i) => i % T);
    const offset = Int32Array.from({ length: B * T }, (_, i) => 100_000 + i);
    const shape = `[${B}, ${T}, ${H}, ${D}]`;
    const bytes = 8 * n;
    ctx.compare(`rope forward ${shape}`, "GB/s", bytes, [
      { name: "growlm ropeForward", fn: () => binding.ropeForward(out, x, arange, B, T, H, D, 10000) },
    ], "copy");
    ctx.compare(`rope forward in place ${shape}`, "GB/s", bytes, [
      { name: "growlm ropeForward", fn: () => binding.ropeForward(out, out, arange, B, T, H, D, 10000) },
    ], "copy");
    ctx.compare(`rope backward ${shape}`, "GB/s", bytes, [
      { name: "growlm ropeBackward", fn: () => binding.ropeBackward(out, x, arange, B, T, H, D, 10000) },
    ], "copy");
    ctx.compare(`rope forward, row cos/sin ${shape}`, "GB/s", bytes, [
      { name: "growlm ropeForward", fn: () => binding.ropeForward(out, x, offset, B, T, H, D, 10000) },
    ], "copy");
  },
};
