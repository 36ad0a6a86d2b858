/**
 * LlamaModel, AdamW and generation on "cuda" with the CUDA kernels (the emulator here, a GPU
 * under bench/gpu/check.sh) against the same model on the CPU. The data movement around the
 * kernels is checked bitwise by test/cuda/model-movement.test.ts; what differs here is the
 * kernels' summation order (and, on a GPU, fast intrinsics), hence the tolerances.
 */
import { describe, expect, it } from "vitest";

import { cudaAvailable } from "../../src/device.js";
import { MODEL_OPS, backendFor } from "../../src/model/backend.js";
import { binding } from "../../src/native.js";
import { expectClose } from "../helpers/reference.js";
import { describeCuda } from "../helpers/cuda.js";
import { type Tolerance, modelCases } from "./model-cases.js";

/** Normwise relative error bounds (test/helpers/reference.ts relError) per kind of value. */
const RTOL: Record<Tolerance, number> = {
  // Two layers of reordered fp32 sums (GEMM, attention, norms): a few hundred ulps of the largest value.
  forward: 2e-5,
  // The backward compounds the forward's differences through every op once more.
  gradient: 1e-4,
  // bf16 products: a value a rounding apart in fp32 may round to the neighbouring bf16 (2^-8).
  bf16: 2e-2,
  // Three AdamW steps divide by sqrt(v): tiny gradients' relative differences show in the update.
  trained: 1e-3,
};

const missing = MODEL_OPS.filter((name) => typeof (binding.cuda as unknown as Record<string, unknown>)[name] !== "function");

describeCuda("the model's CUDA backend", () => {
  it("is usable, or names the kernels this build lacks", () => {
    if (missing.length === 0) expect(backendFor("cuda:0").device).toBe("cuda:0");
    else expect(() => backendFor("cuda:0")).toThrow(new RegExp(`this build's CUDA backend lacks ${missing.join(", ")}`));
  });
});

describe.runIf(cudaAvailable() && missing.length === 0)("LlamaModel on cuda with the CUDA kernels", () => {
  modelCases("cuda:0", (actual, expected, what, label) => expectClose(actual, expected, RTOL[what], `${label} (${what})`));
});
