/**
 * node --import tsx bench/gpu/verify.ts info FILE | tests FILE
 *
 * The GPU check's verdicts on two stage outputs (bench/gpu/check.sh):
 *   info   growlm info --json: the CUDA backend was compiled (with nvcc; the emulator needs
 *          none), cuda.emulated matches GROWLM_CUDA_EMULATE, a device is usable, and on a GPU
 *          cuBLAS loads (NCCL is reported: one GPU needs none)
 *   tests  vitest's JSON report of test/cuda: prints the counts and the skipped tests; fails
 *          when a test failed or when most were skipped (describeCuda blocks skip where no
 *          device is usable, which vitest itself calls a success; on a GPU only tests that need
 *          what one machine lacks, such as a second GPU, may skip)
 */
import { readFileSync } from "node:fs";

import type { CudaInfo, LibraryStatus } from "../../src/device.js";

/** The fields of vitest's JSON reporter that the check reads. */
export interface VitestReport {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  testResults: { name: string; assertionResults: { fullName: string; status: string; failureMessages: string[] }[] }[];
}

const [what, file] = process.argv.slice(2);
if ((what !== "info" && what !== "tests") || !file) {
  console.error("usage: node --import tsx bench/gpu/verify.ts info|tests FILE");
  process.exit(2);
}
const problems: string[] = [];
if (what === "info") {
  const cuda = (JSON.parse(readFileSync(file, "utf8")) as { cuda: CudaInfo & { libraries?: Record<string, LibraryStatus> } }).cuda;
  const emulated = process.env.GROWLM_CUDA_EMULATE === "1";
  if (!cuda.compiled && !emulated) problems.push("the addon was built without nvcc: it has no CUDA backend");
  if (cuda.emulated !== emulated) problems.push(`cuda.emulated is ${cuda.emulated} but GROWLM_CUDA_EMULATE=${process.env.GROWLM_CUDA_EMULATE ?? ""}`);
  if (cuda.devices.length === 0) problems.push(`no CUDA device is usable: ${cuda.unavailableReason}`);
  else console.log(`cuda:0 is ${cuda.devices[0]!.name} (sm ${cuda.devices[0]!.computeCapability})${cuda.emulated ? " [emulated]" : ""}`);
  for (const [name, lib] of Object.entries(cuda.libraries ?? {})) {
    console.log(`${name}: ${lib.path ?? `not loadable: ${lib.error ?? "?"}`}`);
    if (name === "cublas" && !emulated && lib.path === undefined) problems.push("cuBLAS cannot be loaded: every GEMM on the GPU would fail");
  }
} else {
  const r = JSON.parse(readFileSync(file, "utf8")) as VitestReport;
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`test/cuda: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
  for (const file of r.testResults) {
    for (const a of file.assertionResults.filter((a) => a.status === "pending" || a.status === "skipped" || a.status === "todo")) {
      console.log(`  skipped: ${a.fullName}`);
    }
  }
  if (skipped >= r.numPassedTests) problems.push(`${skipped} of ${skipped + r.numPassedTests + r.numFailedTests} CUDA tests were skipped: is the device usable?`);
  if (r.numFailedTests > 0) problems.push(`${r.numFailedTests} CUDA test(s) failed`);
}
for (const p of problems) console.error(p);
process.exitCode = problems.length > 0 ? 1 : 0;
