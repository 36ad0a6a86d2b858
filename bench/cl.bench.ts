/**
 * Costs of the continual-learning strategies: the fused EWC pass over 50M parameters in GB/s
 * against the copy bandwidth and an AdamW step over the same buffer (read θ, θ*, F, g, write g:
 * 20 B per parameter); the Fisher accumulation (12 B); training steps of config S with the EWC
 * term and with LwF's distillation term (top-32 targets; the per-row KL is TypeScript) against
 * the naive step in tokens/s; and the peak resident memory of each in a fresh process, with
 * LwF's precomputed targets against a second model kept as the teacher.
 */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { binding } from "../src/native.js";
import { type ClMode, makeClStep } from "./cl-setup.js";
import { stepContender, type BenchSuite, type MeasuredContender } from "./common.js";

const here = dirname(fileURLToPath(import.meta.url));
const MEMORY_SCRIPT = join(here, "cl-memory.ts");

function selfTimed(name: string, mode: ClMode): MeasuredContender & { dispose(): void } {
  const s = makeClStep(mode);
  return { ...stepContender(name, s.tokens, s.step), dispose: s.dispose };
}

function peakMiB(mode: ClMode, threads: number): { peak: number; state: number } {
  const r = spawnSync(process.execPath, ["--import", "tsx", MEMORY_SCRIPT, mode], { encoding: "utf8", env: { ...process.env, GROWLM_NUM_THREADS: String(threads) } });
  if (r.status !== 0) throw new Error(`bench cl: ${MEMORY_SCRIPT} failed: ${r.stderr}`);
  const { peak, state } = JSON.parse(r.stdout.trim()) as { peak: number; state: number };
  return { peak: peak / 2 ** 20, state: state / 2 ** 20 };
}

export const suite: BenchSuite = {
  name: "cl",
  run(ctx) {
    const n = 50_000_000;
    const f32 = (fill: number) => new Float32Array(binding.alloc(n * 4, true)).fill(fill);
    const params = f32(0.02);
    const anchor = f32(0.019);
    const fisher = f32(1e-4);
    const grads = f32(1e-3);
    const m = f32(0);
    const v = f32(0);
    const segBegin = BigInt64Array.from([0n, BigInt(n)]);
    const segDecay = Uint8Array.from([1]);
    let step = 0;
    const copyDst = f32(0);
    ctx.compare(
      "ewc penalty + gradient n=50M",
      "GB/s",
      [n * 20, n * 28, n * 8],
      [
        { name: "growlm ewcPenalty", fn: () => void binding.ewcPenalty(grads, params, anchor, fisher, n, 1e-3) },
        { name: "adamw step", fn: () => binding.adamwStep(params, m, v, null, grads, n, segBegin, segDecay, 1e-6, 0.9, 0.999, 1e-8, 0, ++step, 1) },
        { name: "copy n=50M", fn: () => binding.copy(copyDst, grads, n) },
      ],
      "copy",
    );
    ctx.compare("ewc Fisher accumulation n=50M", "GB/s", n * 12, [{ name: "growlm ewcFisherAccumulate", fn: () => binding.ewcFisherAccumulate(fisher, grads, n, 1e-9) }], "copy");

    const threads = binding.info().threads;
    for (const mode of ["ewc", "lwf"] as const) {
      const ours = selfTimed(`growlm + ${mode}`, mode);
      const naive = selfTimed("naive step", "naive");
      ctx.compare(`train step S (B=8 T=256) with ${mode === "ewc" ? "EWC" : "LwF top-32"}`, "tokens/s", 8 * 256, [ours, naive]);
      ours.dispose();
      naive.dispose();
    }
    const naive = peakMiB("naive", threads);
    for (const mode of ["ewc", "lwf", "lwf-teacher-model"] as const) {
      const r = peakMiB(mode, threads);
      ctx.report(`peak memory, train step S with ${mode} (its state ${r.state.toFixed(1)} MiB)`, "MiB", r.peak, [["naive step", naive.peak]]);
    }
  },
};
