/**
 * One binary, three code paths: the addon must run on CPUs without AVX-512 (or AVX2),
 * taking the path chosen at run time and nothing wider.
 *
 * 1. Static: no function outside the avx2/avx512 compilations may use ymm/zmm registers.
 *    (An inline function or template instantiated in several objects is kept from one of
 *    them; CMakeLists.txt orders the link so the portable copy wins.)
 * 2. Dynamic, when Debian's qemu-user is installed: every kernel runs on emulated CPUs
 *    without AVX-512 (Haswell) and without AVX (qemu64), and gives bitwise the results the
 *    same code path gives natively.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";

const ADDON = "build/Release/growlm.node";
const FIXTURE = "test/fixtures/every-kernel.ts";
const x86 = process.arch === "x64";

function which(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`]).status === 0;
}

interface KernelHashes {
  isa: string;
  hashes: Record<string, string>;
}

function runFixture(prefix: string[], env: Record<string, string>): KernelHashes {
  const [command, ...args] = [...prefix, process.execPath, "--import", "tsx", FIXTURE];
  const out = execFileSync(command!, args, {
    encoding: "utf8",
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "ignore"],
    timeout: 240_000,
  });
  return JSON.parse(out.trim().split("\n").at(-1)!) as KernelHashes;
}

describe.runIf(x86 && which("objdump") && existsSync(ADDON))("code paths in the binary", () => {
  it("keeps AVX and AVX-512 registers inside their own compilations", () => {
    const listing = execFileSync("objdump", ["-d", "--no-show-raw-insn", "-C", ADDON], {
      encoding: "utf8",
      maxBuffer: 1 << 30,
    });
    const offenders = new Set<string>();
    let fn = "";
    for (const line of listing.split("\n")) {
      const header = /^[0-9a-f]+ <(.*)>:$/.exec(line);
      if (header) {
        fn = header[1]!;
        continue;
      }
      const zmm = line.includes("%zmm");
      const ymm = line.includes("%ymm");
      if (!zmm && !ymm) continue;
      const allowed = fn.includes("isa_avx512") || fn.includes("bf16dot") || (ymm && !zmm && fn.includes("isa_avx2"));
      if (!allowed) offenders.add(fn);
    }
    expect([...offenders]).toEqual([]);
  });
});

describe.runIf(x86 && which("qemu-x86_64"))("every kernel on CPUs without AVX-512 (qemu-user)", () => {
  it.each([
    ["Haswell-v4", "avx2"],
    ["qemu64", "portable"],
  ])("on an emulated %s CPU it picks %s and matches the native results bitwise", (cpu, isa) => {
    const native = runFixture([], { GROWLM_ISA: isa });
    const emulated = runFixture(["qemu-x86_64", "-cpu", cpu], {});
    expect(emulated.isa).toBe(isa);
    expect(emulated.hashes).toEqual(native.hashes);
  });
});
