/**
 * Embedding lookup and its scatter-add backward in GB/s (bytes read + written) against the
 * machine's copy bandwidth: LLaMA's 32000-token vocabulary, width 1024, 8 × 1024 tokens.
 */
import { binding } from "../src/native.js";
import type { BenchSuite } from "./common.js";

export const suite: BenchSuite = {
  name: "embedding",
  run(ctx) {
    const [N, V, C] = [8 * 1024, 32000, 1024];
    const table = new Float32Array(binding.alloc(V * C * 4, false));
    for (let i = 0; i < V * C; i++) table[i] = Math.sin(i);
    const dtable = new Float32Array(binding.alloc(V * C * 4, true));
    const out = new Float32Array(binding.alloc(N * C * 4, true));
    const dout = out;
    // Zipf-like ids, as in text: frequent tokens repeat, so dtable rows are revisited.
    let s = 1;
    const ids = Int32Array.from({ length: N }, () => {
      s = (s * 48271) % 2147483647;
      return Math.floor(V ** (s / 2147483647)) - 1;
    });
    const shape = `N=${N} V=${V} C=${C}`;
    // Forward: reads N table rows and writes N output rows (ids are negligible).
    ctx.compare(`embedding forward ${shape}`, "GB/s", 8 * N * C, [
      { name: "growlm embeddingForward", fn: () => binding.embeddingForward(out, ids, table, N, V, C) },
    ], "copy");
    // Backward: reads dout and, per token, reads and writes a dtable row.
    ctx.compare(`embedding backward ${shape}`, "GB/s", 12 * N * C, [
      { name: "growlm embeddingBackward", fn: () => binding.embeddingBackward(dtable, dout, ids, N, V, C, -1) },
    ], "copy");
  },
};
