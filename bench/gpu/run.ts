/**
 * node --import tsx bench/gpu/run.ts [--json FILE] [--rounds N] [--target-seconds S] [--smoke] [suite ...]
 *
 * Runs the GPU benchmark suites (bench/gpu/*.bench.ts: attention, adamw, train, kernels; all
 * by default) on cuda:0 against PyTorch on the same GPU (tools/torch_gpu_bench.py) and the
 * device-to-device copy, prints a table and, with --json, writes a GpuBenchOutput (records
 * with ratios against each named baseline, the issue's targets, notes, failures). On the
 * emulator (GROWLM_CUDA_EMULATE=1) or with --smoke, sizes are tiny and one round is run: that
 * checks that every case runs, and its numbers mean nothing; PyTorch is skipped on the
 * emulator and wherever torch.cuda is unavailable, saying why. Exit status 1 when a case failed.
 */
import { renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { cudaInfo } from "../../src/device.js";
import { createContext, type GpuBenchOutput, type GpuBenchSuite, type HarnessOptions } from "./harness.js";
import { findTorchPython, TorchServer } from "./torch.js";
import { loadSuites } from "../suites.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    json: { type: "string" },
    rounds: { type: "string" },
    "target-seconds": { type: "string" },
    smoke: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log("usage: node --import tsx bench/gpu/run.ts [--json FILE] [--rounds N] [--target-seconds S] [--smoke] [attention|adamw|train|kernels ...]");
  process.exit(0);
}

const info = cudaInfo();
if (info.devices.length === 0) {
  console.error(`bench/gpu: no CUDA device is usable: ${info.unavailableReason}`);
  process.exit(1);
}
const smoke = values.smoke || info.emulated;
const options: HarnessOptions = {
  rounds: Number(values.rounds ?? (smoke ? 1 : 7)),
  targetSeconds: Number(values["target-seconds"] ?? (smoke ? 0 : 0.1)),
  device: 0,
  smoke,
};
if (!Number.isInteger(options.rounds) || options.rounds < 1) throw new RangeError("bench/gpu: --rounds must be a positive integer");
if (!(options.targetSeconds >= 0)) throw new RangeError("bench/gpu: --target-seconds must be >= 0");

const here = dirname(fileURLToPath(import.meta.url));
const suites = await loadSuites<GpuBenchSuite>(here, positionals, "bench/gpu");

const device = info.devices[0]!;
const deviceText = `cuda:0 ${device.name} (sm ${device.computeCapability}, ${device.multiprocessors} SMs)${info.emulated ? " [emulated]" : ""}`;
let torch: TorchServer | null = null;
let torchText: string;
if (info.emulated) {
  torchText = "skipped: on the emulator, timings against PyTorch mean nothing";
} else {
  const python = findTorchPython();
  if (python === null) {
    torchText = "skipped: no python3 with torch (set GROWLM_TORCH_PYTHON)";
  } else {
    const started = await TorchServer.start(python);
    if (started.info.cuda) {
      torch = started.server;
      torchText = `torch ${started.info.torch} (${python}) on ${started.info.device}`;
    } else {
      started.server.close();
      torchText = `skipped: ${started.info.reason}`;
    }
  }
}

console.log(`growlm GPU bench: ${deviceText}; ${options.rounds} rounds, ${options.targetSeconds} s per timed region${smoke ? "; SMOKE sizes (numbers mean nothing)" : ""}`);
console.log(`PyTorch: ${torchText}`);
const output: GpuBenchOutput = {
  suites: suites.map((s) => s.name),
  smoke,
  rounds: options.rounds,
  device: deviceText,
  torch: torchText,
  records: [],
  targets: [],
  notes: [],
  failures: [],
};
let current = "";
const ctx = createContext(() => current, options, torch, output);
for (const suite of suites) {
  current = suite.name;
  console.log(`\n[${suite.name}]`);
  await suite.run(ctx);
}
torch?.close();
if (output.notes.length) console.log(`\nnotes:\n${[...new Set(output.notes)].map((n) => `  ${n}`).join("\n")}`);
output.notes = [...new Set(output.notes)];

if (values.json) {
  const tmp = `${values.json}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(output, null, 2) + "\n");
  renameSync(tmp, values.json);
}
if (output.failures.length) {
  console.log(`\n${output.failures.length} case(s) failed`);
  process.exitCode = 1;
}
