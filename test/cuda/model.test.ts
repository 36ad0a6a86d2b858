/**
 * LlamaModel, AdamW and generation on "cuda" with the CUDA kernels (the emulator here, a GPU
 * under bench/gpu/check.sh) against the same model on the CPU. The data movement around the
 * kernels is checked bitwise by test/cuda/model-movement.test.ts; what differs here is the
 * kernels' summation order (and, on a GPU, fast intrinsics), hence the tolerances. Until
 * every kernel the model needs is in this build, the missing ones run as CPU round trips
 * (test/helpers/cuda-shim.ts) and the rest are the CUDA kernels.
 */
import { describe, expect, it } from "vitest";

import { cudaAvailable } from "../../src/device.js";
import { MODEL_OPS, backendFor } from "../../src/model/backend.js";
import { binding } from "../../src/native.js";
import { expectClose } from "../helpers/reference.js";
import { describeCuda } from "../helpers/cuda.js";
import { installCpuShim } from "../helpers/cuda-shim.js";
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

// Whether the build's own binding.cuda makes a backend, taken before any stand-in is installed.
let refusal: unknown = null;
if (cudaAvailable()) {
  try {
    backendFor("cuda:0");
  } catch (err) {
    refusal = err;
  }
}

describeCuda("the model's CUDA backend", () => {
  it("is usable, or names the kernels this build lacks", () => {
    if (missing.length === 0) expect(refusal).toBeNull();
    else expect(String(refusal)).toMatch(new RegExp(`this build's CUDA backend lacks ${missing.join(", ")}`));
  });
});

const title = missing.length === 0 ? "with the CUDA kernels" : `with the CUDA kernels this build has (CPU round trips for ${missing.join(", ")})`;
describe.runIf(cudaAvailable())(`LlamaModel on cuda ${title}`, () => {
  installCpuShim(missing);
  modelCases("cuda:0", (actual, expected, what, label) => expectClose(actual, expected, RTOL[what], `${label} (${what})`));
});
