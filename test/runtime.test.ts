import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";

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

  it("growlm info --json prints the same facts", () => {
    const out = execFileSync(process.execPath, ["--import", "tsx", "src/cli/index.ts", "info", "--json"], {
      encoding: "utf8",
      env: { ...process.env, GROWLM_NUM_THREADS: "1", GROWLM_ISA: "portable" },
    });
    const parsed = JSON.parse(out) as { threads: number; isa: string; backends: string[] };
    expect(parsed.threads).toBe(1);
    expect(parsed.isa).toBe("portable");
    expect(parsed.backends).toContain("cpu");
  });
});
