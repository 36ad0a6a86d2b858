/** Random fills in GB/s of output (4 B per float32 sample). */
import { binding } from "../src/native.js";
import type { BenchSuite } from "./common.js";

export const suite: BenchSuite = {
  name: "rng",
  run(ctx) {
    const n = 1 << 24;
    const out = new Float32Array(binding.alloc(n * 4, true));
    let offset = 0;
    ctx.compare(`normal fill n=${n}`, "GB/s", n * 4, [{ name: "growlm rngNormal", fn: () => binding.rngNormal(out, n, 1234n, (offset += n), 0, 0.02) }], "copy");
    ctx.compare(`uniform fill n=${n}`, "GB/s", n * 4, [{ name: "growlm rngUniform", fn: () => binding.rngUniform(out, n, 1234n, (offset += n), -1, 1) }], "copy");
  },
};
