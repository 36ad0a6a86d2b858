/**
 * node --import tsx bench/gpu/report.ts WORK_FOLDER LOG FAILED
 *
 * The GPU check's results (bench/gpu/check.sh): reads the stage outputs in WORK_FOLDER
 * (stages.tsv, info.json, tests.json, train.json, bench-*.json) and the LOG, and writes
 * bench/results/gpu-<device>.json (all of them, structured) and .txt (the whole log, then a
 * summary: stages, tests, training, every benchmark row with its ratios, the issue's targets),
 * and copies both to $OUT when OUT is set (check.sh writes the log there as it goes). <device> is cuda:0's name in lower
 * case ("nvidia-h100-80gb-hbm3"), "emulated" on the emulator. FAILED is check.sh's verdict
 * so far (1: a stage failed).
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";

import type { CudaInfo } from "../../src/device.js";
import type { GpuBenchOutput } from "./harness.js";
import type { VitestReport } from "./verify.js";

const [work, logPath, failedArg] = process.argv.slice(2);
if (!work || !existsSync(work) || !logPath) {
  console.error("usage: node --import tsx bench/gpu/report.ts WORK_FOLDER LOG FAILED");
  process.exit(2);
}

function readJson<T>(name: string): T | null {
  const path = join(work!, name);
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return null;
  }
}

interface TrainResult {
  matmul: string;
  maxLossRelDiff?: number;
  maxGradNormRelDiff?: number;
  lossTolerance?: number;
  gradNormTolerance?: number;
  cuda?: { losses: number[]; secondsPerStep: number };
  cpu?: { losses: number[]; secondsPerStep: number };
  problems: string[];
  pass: boolean;
}

const stages = readFileSync(join(work, "stages.tsv"), "utf8")
  .split("\n")
  .filter(Boolean)
  .map((line) => {
    const [name, status, seconds, box] = line.split("\t");
    return { name: name!, status: status!, seconds: Number(seconds), box: Number(box) };
  });
const info = readJson<{ version: string; cuda: CudaInfo }>("info.json");
const tests = readJson<VitestReport>("tests.json");
const train = readJson<{ setup: string; steps: number; results: TrainResult[]; pass: boolean }>("train.json");
const benches = readdirSync(work)
  .filter((f) => /^bench-.*\.json$/.test(f))
  .sort()
  .map((f) => readJson<GpuBenchOutput>(f))
  .filter((b): b is GpuBenchOutput => b !== null);

const emulated = process.env.GROWLM_CUDA_EMULATE === "1";
const deviceName = info?.cuda.devices[0]?.name ?? "unknown device";
const slug = emulated ? "emulated" : deviceName.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "unknown";
const failed = failedArg === "1" || stages.some((s) => s.status.startsWith("failed"));

const format = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toPrecision(3));
const lines: string[] = [];
lines.push(`growlm GPU check summary: ${deviceName}${emulated ? " [EMULATED: a dry run of the check, no GPU result]" : ""}: ${failed ? "FAILED" : "passed"}`);
lines.push("", "stages:");
for (const s of stages) lines.push(`  ${s.name.padEnd(16)} ${s.status}${s.box ? ` (${s.seconds}s of ${s.box}s)` : ""}`);
if (tests) {
  lines.push("", `tests (test/cuda, every CUDA kernel against the CPU backend): ${tests.numPassedTests} passed, ${tests.numFailedTests} failed, ${tests.numPendingTests + tests.numTodoTests} skipped`);
  for (const file of tests.testResults) {
    for (const a of file.assertionResults.filter((a) => a.status === "failed")) {
      lines.push(`  FAILED ${basename(file.name)}: ${a.fullName}: ${(a.failureMessages[0] ?? "").split("\n")[0]}`);
    }
  }
}
if (train) {
  lines.push("", `training (${train.setup}, ${train.steps} steps, cuda vs cpu): ${train.pass ? "passed" : "FAILED"}`);
  for (const r of train.results) {
    if (r.cuda && r.cpu) {
      lines.push(`  ${r.matmul.padEnd(8)} loss ${r.cuda.losses[0]!.toFixed(4)} → ${r.cuda.losses.at(-1)!.toFixed(4)} on cuda; max relative difference loss ${r.maxLossRelDiff!.toExponential(2)} (≤ ${r.lossTolerance}), gradient norm ${r.maxGradNormRelDiff!.toExponential(2)} (≤ ${r.gradNormTolerance}); ${(r.cuda.secondsPerStep * 1e3).toFixed(1)} vs ${(r.cpu.secondsPerStep * 1e3).toFixed(1)} ms/step`);
    }
    for (const p of r.problems) lines.push(`  ${r.matmul}: ${p.split("\n")[0]}`);
  }
}
for (const b of benches) {
  lines.push("", `timings [${b.suites.join(", ")}] on ${b.device}${b.smoke ? " (SMOKE sizes: numbers mean nothing)" : ""}; PyTorch ${b.torch}`);
  for (const r of b.records) {
    lines.push(`  ${r.case.padEnd(52)} ${format(r.value).padStart(7)} ${r.unit}  ${r.baseline === "none" ? "" : `${format(r.ratio)}× ${r.baseline} (${format(r.baseline_value)})`}`);
  }
  for (const t of b.targets) lines.push(`  target: ${t.case}: at least ${t.min_ratio}× ${t.baseline}: ${t.met ? "met" : "MISSED"} (${format(t.ratio)}×)${b.smoke ? " [smoke sizes: meaningless]" : ""}`);
  for (const f of b.failures) lines.push(`  FAILED ${f.split("\n")[0]}`);
}
const summary = lines.join("\n") + "\n";

const results = join("bench", "results");
mkdirSync(results, { recursive: true });
const base = join(results, `gpu-${slug}`);
const json = {
  date: new Date().toISOString(),
  device: deviceName,
  emulated,
  failed,
  stages,
  info,
  tests: tests && { passed: tests.numPassedTests, failed: tests.numFailedTests, skipped: tests.numPendingTests + tests.numTodoTests },
  train,
  bench: benches,
};
const write = (path: string, text: string): void => {
  writeFileSync(`${path}.tmp-${process.pid}`, text);
  renameSync(`${path}.tmp-${process.pid}`, path);
};
const log = existsSync(logPath) ? readFileSync(logPath, "utf8") : "";
write(`${base}.json`, JSON.stringify(json, null, 2) + "\n");
write(`${base}.txt`, `${log}\n${summary}`);
console.log(summary);
console.log(`wrote ${base}.txt and ${base}.json`);
const out = process.env.OUT;
if (out) {
  for (const path of [`${base}.txt`, `${base}.json`]) copyFileSync(path, join(out, basename(path)));
  console.log(`copied them to ${out}`);
}
