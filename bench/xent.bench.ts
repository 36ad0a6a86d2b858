/**
 * Fused cross-entropy at N = 2048 tokens, V = 32000 in GB/s: the forward reads the logits
 * once (N·V·4 B); the backward reads them and writes dlogits (N·V·8 B), here in place.
 */
import { binding } from "../src/native.js";
import type { BenchSuite } from "./common.js";

export const suite: BenchSuite = {
  name: "xent",
  run(ctx) {
    const N = 2048;
    const V = 32000;
    const logits = new Float32Array(binding.alloc(N * V * 4, true));
    for (let i = 0; i < logits.length; i++) logits[i] = ((i * 2654435761) % 1000) / 100 - 5;
    const targets = Int32Array.from({ length: N }, (_, n) => (n % 7 === 0 ? -100 : (n * 31) % V));
    const lse = new Float32Array(N);
    const losses = new Float32Array(N);
    binding.crossEntropyForward(losses, lse, logits, targets, N, V, -100);
    // Every row counted, so the forward reads every logit.
    const counted = Int32Array.from({ length: N }, (_, n) => (n * 31) % V);
    ctx.compare(
      `cross-entropy forward N=${N} V=${V}`,
      "GB/s",
      N * V * 4,
      [{ name: "growlm crossEntropyForward", fn: () => binding.crossEntropyForward(losses, lse, logits, counted, N, V, -100) }],
      "copy",
    );
    // In place: the gradient overwrites the logits (exp of a gradient stays finite, so the
    // repeated calls time the same work).
    ctx.compare(
      `cross-entropy backward in place N=${N} V=${V}`,
      "GB/s",
      N * V * 8,
      [{ name: "growlm crossEntropyBackward", fn: () => binding.crossEntropyBackward(logits, logits, lse, targets, N, V, -100, 1 / N) }],
      "copy",
    );
  },
};
