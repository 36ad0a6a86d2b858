import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Native code under worker threads can take the runner down with it; forks isolate it.
    pool: "forks",
    testTimeout: 120_000,
    // test/cuda/ runs the CUDA code paths: on the CPU emulator unless the caller chose
    // (bench/gpu/check.sh sets GROWLM_CUDA_EMULATE=0 to test a real GPU).
    env: { GROWLM_CUDA_EMULATE: process.env.GROWLM_CUDA_EMULATE ?? "1" },
  },
});
