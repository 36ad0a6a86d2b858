/**
 * SwiGLU forward and backward in GB/s (bytes read + written) against the machine's copy
 * bandwidth, at a LLaMA-small MLP (4 × 1024 tokens, intermediate size 2816).
 */
import { binding } from "../src/native.js";
import { filledBuffer, type BenchSuite } from "./common.js";

export const suite: BenchSuite = {
  name: "swiglu",
  run(ctx) {
    const n = 4 * 1024 * 2816;
    const gate = filledBuffer(n, (i) => 4 * Math.sin(i));
    const up = filledBuffer(n, (i) => Math.cos(i));
    const dout = filledBuffer(n, (i) => Math.sin(3 * i));
    const out = filledBuffer(n, () => 0);
    const dgate = filledBuffer(n, () => 0);
    const dup = filledBuffer(n, () => 0);
    ctx.compare(`swiglu forward n=${n}`, "GB/s", 12 * n, [
      { name: "growlm swigluForward", fn: () => binding.swigluForward(out, gate, up, n) },
    ], "copy");
    ctx.compare(`swiglu backward n=${n}`, "GB/s", 20 * n, [
      { name: "growlm swigluBackward", fn: () => binding.swigluBackward(dgate, dup, dout, gate, up, n) },
    ], "copy");
  },
};
