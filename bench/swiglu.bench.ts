/**
 * SwiGLU forward and backward in GB/s (bytes read + written) against the machine's copy
 * bandwidth, at a LLaMA-small MLP (4 × 1024 tokens, intermediate size 2816).
 */
import { binding } from "../src/native.js";
import type { BenchSuite } from "./common.js";

function filled(n: number, value: (i: number) => number): Float32Array {
  const a = new Float32Array(binding.alloc(n * 4, false));
  for (let i = 0; i < n; i++) a[i] = value(i);
  return a;
}

export const suite: BenchSuite = {
  name: "swiglu",
  run(ctx) {
    const n = 4 * 1024 * 2816;
    const gate = filled(n, (i) => 4 * Math.sin(i));
    const up = filled(n, (i) => Math.cos(i));
    const dout = filled(n, (i) => Math.sin(3 * i));
    const out = filled(n, () => 0);
    const dgate = filled(n, () => 0);
    const dup = filled(n, () => 0);
    ctx.compare(`swiglu forward n=${n}`, "GB/s", 12 * n, [
      { name: "growlm swigluForward", fn: () => binding.swigluForward(out, gate, up, n) },
    ], "copy");
    ctx.compare(`swiglu backward n=${n}`, "GB/s", 20 * n, [
      { name: "growlm swigluBackward", fn: () => binding.swigluBackward(dgate, dup, dout, gate, up, n) },
    ], "copy");
  },
};
