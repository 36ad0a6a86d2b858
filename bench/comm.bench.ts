/**
 * The CPU communicator across processes on this machine's loopback interface: all-reduce
 * bandwidth of 2 ranks (bytes of the array / seconds, NCCL-tests' "algbw") against PyTorch's
 * gloo backend in the same setup (tools/torch_allreduce.py) and the machine's copy bandwidth,
 * and config S training steps data-parallel over 2 ranks (one kernel thread each) against one
 * process with the whole batch (all threads). Every number comes from fresh processes
 * (bench/data-parallel-worker.ts), each round alternating growlm and its baseline.
 */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { binding } from "../src/native.js";
import { type BenchSuite, type MeasuredContender, median } from "./common.js";
import { TRAIN_CONFIGS, makeTrainStep } from "./train.bench.js";

const here = dirname(fileURLToPath(import.meta.url));
const WORKER = join(here, "data-parallel-worker.ts");
const TORCH_SCRIPT = join(here, "..", "tools", "torch_allreduce.py");
const SIZES_MIB = [1, 25, 100];
const WORLD = 2;

const PYTHON = ["/usr/bin/python3", "python3"].find((python) => spawnSync(python, ["-c", "import torch.distributed"], { stdio: "ignore" }).status === 0) ?? null;

function runJson<T>(command: string, args: string[]): T {
  const r = spawnSync(command, args, { encoding: "utf8", maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`bench comm: ${args.join(" ")} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as T;
}

type AllReduceResults = { results: { mib: number; algbw_gbs: number }[] };

function allReduceContender(name: string, run: () => AllReduceResults, mib: number): MeasuredContender {
  return { name, warm: () => {}, measure: () => run().results.find((r) => r.mib === mib)!.algbw_gbs };
}

export const suite: BenchSuite = {
  name: "comm",
  run(ctx) {
    if (PYTHON === null) console.log("  (gloo baseline skipped: python3-torch is not installed)");
    for (const mib of SIZES_MIB) {
      const ours = (): AllReduceResults => runJson(process.execPath, ["--import", "tsx", WORKER, "allreduce", String(WORLD), String(mib)]);
      const gloo = (): AllReduceResults => runJson(PYTHON!, [TORCH_SCRIPT, "--world", String(WORLD), "--mib", String(mib), "--json"]);
      const contenders = [allReduceContender("growlm tcp", ours, mib)];
      if (PYTHON !== null) contenders.push(allReduceContender("PyTorch gloo", gloo, mib));
      const [value] = ctx.compare(`allReduce float32 ${mib} MiB, ${WORLD} processes`, "GB/s", mib * 2 ** 20, contenders);
      ctx.report(`allReduce float32 ${mib} MiB, ${WORLD} processes, against copy bandwidth`, "GB/s", value!, [["machine copy", ctx.copyGBs]]);
    }
    const S = TRAIN_CONFIGS[0]!;
    const threads = binding.info().threads;
    const { step, dispose } = makeTrainStep(S, "float32");
    const single: MeasuredContender = {
      name: `1 process, ${threads} threads`,
      warm: step,
      measure: () => {
        const t0 = process.hrtime.bigint();
        step();
        return (S.B * S.T) / (Number(process.hrtime.bigint() - t0) / 1e9);
      },
    };
    const overlap: { wait_ms: number; allreduce_ms: number }[] = [];
    const parallel: MeasuredContender = {
      name: `${WORLD} ranks`,
      warm: () => {},
      measure: () => {
        const r = runJson<{ tokens_per_second: number; wait_ms: number; allreduce_ms: number }>(process.execPath, ["--import", "tsx", WORKER, "step", String(WORLD)]);
        overlap.push(r);
        return r.tokens_per_second;
      },
    };
    ctx.compare(`train step S (B=${S.B} T=${S.T}) fp32, data-parallel over ${WORLD} ranks`, "tokens/s", S.B * S.T, [parallel, single]);
    const waited = overlap.map((o) => o.wait_ms);
    const alone = overlap.map((o) => o.allreduce_ms);
    console.log(
      `  gradient all-reduce of config S (default buckets): ${median(alone).toFixed(1)} ms alone; a step waits ${median(waited).toFixed(1)} ms for it after its backward (medians)`,
    );
    dispose();
  },
};
