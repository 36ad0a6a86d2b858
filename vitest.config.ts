import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Native code under worker threads can take the runner down with it; forks isolate it.
    pool: "forks",
    testTimeout: 120_000,
  },
});
