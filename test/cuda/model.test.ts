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
import { CUDA_KERNEL_RTOL as RTOL, modelCases } from "./model-cases.js";

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
