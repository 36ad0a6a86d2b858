/**
 * FiLM-Ensembles, dropout and MC dropout of a model on "cuda" with the CUDA kernels (the
 * emulator here, a GPU under bench/gpu/check.sh) against the same model on the CPU: the
 * probabilisticCases of test/cuda/model-cases.ts, in a file of their own so that each emulated
 * run stays short; test/cuda/model.test.ts runs the rest. Kernels this build lacks run as CPU
 * round trips (test/helpers/cuda-shim.ts), as there.
 */
import { describe } from "vitest";

import { cudaAvailable } from "../../src/device.js";
import { MODEL_OPS } from "../../src/model/backend.js";
import { binding } from "../../src/native.js";
import { expectClose } from "../helpers/reference.js";
import { installCpuShim } from "../helpers/cuda-shim.js";
import { CUDA_KERNEL_RTOL, probabilisticCases } from "./model-cases.js";

const missing = MODEL_OPS.filter((name) => typeof (binding.cuda as unknown as Record<string, unknown>)[name] !== "function");

describe.runIf(cudaAvailable())("FiLM-Ensembles, dropout and MC dropout of LlamaModel on cuda with the CUDA kernels", () => {
  installCpuShim(missing);
  probabilisticCases("cuda:0", (actual, expected, what, label) => expectClose(actual, expected, CUDA_KERNEL_RTOL[what], `${label} (${what})`));
});
