import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";

import { binding } from "../src/native.js";
import { runtimeInfo, setIsa, setThreads } from "../src/runtime.js";

describe("runtime", () => {
  it("reports version, backends, code path and threads", () => {
    const info = runtimeInfo();
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.backends).toContain("cpu");
    expect(info.availableIsas).toContain("portable");
    expect(info.availableIsas).toContain(info.isa);
    expect(info.threads).toBeGreaterThanOrEqual(1);
  });

  it("changes threads and code path, and refuses what it cannot do", () => {
    const before = runtimeInfo();
    setThreads(1);
    expect(runtimeInfo().threads).toBe(1);
    setIsa("portable");
    expect(runtimeInfo().isa).toBe("portable");
    expect(runtimeInfo().bf16Dot).toBe(false);
    setThreads(before.threads);
    setIsa(before.isa);
    expect(() => setThreads(0)).toThrow(/setThreads: expected an integer in \[1, 1024\]/);
    expect(() => setIsa("sse9" as "avx2")).toThrow(/setIsa: "sse9" is not a code path/);
  });

  it("survives thousands of thread-count changes between kernel calls", () => {
    // Regression: a worker started by a resize once took the last finished job for a new
    // one, and the next job waited forever.
    const a = new Float32Array(1 << 17).fill(1);
    for (let i = 0; i < 5000; i++) {
      setThreads(1 + (i % 2));
      binding.add(a, a, a, a.length);
    }
    setThreads(runtimeInfo().threads);
    expect(a[0]).toBe(Infinity); // 2^5000 overflows float32
  });

  it("growlm info --json prints the same facts", () => {
    const out = execFileSync(process.execPath, ["--import", "tsx", "src/cli/index.ts", "info", "--json"], {
      encoding: "utf8",
      env: { ...process.env, GROWLM_NUM_THREADS: "1", GROWLM_ISA: "portable" },
    });
    const parsed = JSON.parse(out) as { threads: number; isa: string; backends: string[]; cuda: { devices: unknown[] } };
    expect(parsed.threads).toBe(1);
    expect(parsed.isa).toBe("portable");
    expect(parsed.backends).toContain("cpu");
    expect(parsed.backends).toContain("cuda-emulated");
    expect(Array.isArray(parsed.cuda.devices)).toBe(true);
    // cuBLAS and NCCL: where they load from, or what was tried.
    const libraries = (parsed.cuda as unknown as { libraries: Record<string, { path?: string; error?: string }> }).libraries;
    for (const name of ["cublas", "nccl"]) expect(libraries[name]!.path ?? libraries[name]!.error).toBeTruthy();
  });

  it("growlm info --json lists the emulated CUDA device under GROWLM_CUDA_EMULATE=1, and none without a GPU otherwise", () => {
    const run = (emulate: string): { cuda: { emulated: boolean; devices: { name: string }[]; unavailableReason: string } } =>
      JSON.parse(
        execFileSync(process.execPath, ["--import", "tsx", "src/cli/index.ts", "info", "--json"], {
          encoding: "utf8",
          env: { ...process.env, GROWLM_CUDA_EMULATE: emulate },
        }),
      );
    const emulated = run("1").cuda;
    expect(emulated.emulated).toBe(true);
    expect(emulated.devices.map((d) => d.name)).toEqual(["growlm CUDA emulator (CPU)"]);
    const real = run("0").cuda;
    expect(real.emulated).toBe(false);
    if (real.devices.length === 0) expect(real.unavailableReason).not.toBe("");
  });
});
