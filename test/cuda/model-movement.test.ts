/**
 * A model on "cuda" with the CPU kernels behind its device buffers (test/helpers/cuda-shim.ts)
 * gives the CPU model's bits: every upload, download, view, host mirror and cache copy the
 * model makes around its kernels is exact. The CUDA kernels themselves are
 * test/cuda/model.test.ts's subject.
 */
import { describe } from "vitest";

import { expectBitwiseEqual } from "../helpers/reference.js";
import { describeCuda } from "../helpers/cuda.js";
import { installCpuShim } from "../helpers/cuda-shim.js";
import { modelCases, probabilisticCases } from "./model-cases.js";

describeCuda("LlamaModel on cuda, CPU kernels behind device buffers", () => {
  installCpuShim();
  describe("bitwise the CPU model", () => {
    const bitwise = (actual: ArrayLike<number>, expected: ArrayLike<number>, _what: unknown, label: string): void =>
      expectBitwiseEqual(Float64Array.from(actual), Float64Array.from(expected), label);
    modelCases("cuda:0", bitwise);
    probabilisticCases("cuda:0", bitwise);
  });
});
