/**
 * Training steps (forward, loss, backward, clipping, AdamW) of the configs S and M in
 * tokens/s, side by side with the same step in PyTorch (tools/torch_train_step.py, float32,
 * the same thread count) when Debian's python3-torch is installed. Each round times one
 * warm-up and three steps of every contender in turn; PyTorch runs in a child process per
 * round (its warm-up covers its start). Also: model-FLOPs utilisation against the measured
 * fp32 FMA peak (6 FLOPs per matrix parameter per token plus FlashAttention's count; bf16
 * products count the same FLOPs) and peak resident memory of config M training, each
 * measured in a fresh process.
 */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { parseLlamaConfig } from "../src/model/config.js";
import { trainFlopsPerToken } from "../src/model/flops.js";
import { LlamaModel, type MatmulPrecision } from "../src/model/llama.js";
import { binding } from "../src/native.js";
import { Tensor } from "../src/tensor.js";
import { Trainer } from "../src/train/trainer.js";
import { median, stepContender, type BenchSuite, type MeasuredContender } from "./common.js";

const here = dirname(fileURLToPath(import.meta.url));
const TORCH_SCRIPT = join(here, "..", "tools", "torch_train_step.py");
const MEMORY_SCRIPT = join(here, "train-memory.ts");

export interface TrainBenchConfig {
  name: "S" | "M";
  config: Record<string, number>;
  B: number;
  T: number;
}

export const TRAIN_CONFIGS: readonly TrainBenchConfig[] = [
  { name: "S", config: { hidden_size: 256, num_hidden_layers: 4, num_attention_heads: 4, intermediate_size: 688, vocab_size: 4096 }, B: 8, T: 256 },
  { name: "M", config: { hidden_size: 512, num_hidden_layers: 8, num_attention_heads: 8, intermediate_size: 1376, vocab_size: 8192 }, B: 4, T: 512 },
];


/** A model, trainer and fixed random batch for one config and precision. */
export function makeTrainStep(bench: TrainBenchConfig, matmul: MatmulPrecision): { step: () => void; dispose: () => void } {
  const config = parseLlamaConfig({ ...bench.config, max_position_embeddings: bench.T });
  const model = new LlamaModel(config, { matmul });
  model.initialize(1234);
  const trainer = new Trainer(model, {
    schedule: { type: "constant", learningRate: 1e-4, totalSteps: 1 << 30 },
    optimizer: { weightDecay: 0.1, maxGradNorm: 1 },
  });
  const ids = Tensor.empty([bench.B, bench.T], "int32");
  const data = ids.data as Int32Array;
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) % config.vocab_size >>> 0;
  const batch = { ids, labels: ids };
  return {
    step: () => void trainer.trainStep([batch]),
    dispose: () => {
      trainer.dispose();
      model.dispose();
      ids.dispose();
    },
  };
}


/** The first Python with torch: Debian's python3-torch lives in /usr/bin/python3, which a pyenv python3 on PATH may hide. */
const PYTHON = ["/usr/bin/python3", "python3"].find((python) => spawnSync(python, ["-c", "import torch"], { stdio: "ignore" }).status === 0) ?? null;

function runTorch(args: string[]): { step_seconds: number[]; tokens_per_step: number; peak_rss_bytes: number } {
  const r = spawnSync(PYTHON!, [TORCH_SCRIPT, ...args, "--json"], { encoding: "utf8", maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`bench train: ${TORCH_SCRIPT} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { step_seconds: number[]; tokens_per_step: number; peak_rss_bytes: number };
}

function torchContender(bench: TrainBenchConfig, threads: number): MeasuredContender {
  const args = ["--config", bench.name, "--threads", String(threads), "--warmup", "1", "--steps", "3"];
  return {
    name: `PyTorch fp32 (${threads} threads)`,
    warm: () => void runTorch(args),
    measure: () => {
      const r = runTorch(args);
      return r.tokens_per_step / median(r.step_seconds);
    },
  };
}

/** Peak RSS in MiB of a fresh process training config `name` for a few steps. */
function growlmPeakMiB(name: string, matmul: MatmulPrecision, threads: number): number {
  const r = spawnSync(process.execPath, ["--import", "tsx", MEMORY_SCRIPT, name, matmul], {
    encoding: "utf8",
    env: { ...process.env, GROWLM_NUM_THREADS: String(threads) },
  });
  if (r.status !== 0) throw new Error(`bench train: ${MEMORY_SCRIPT} failed: ${r.stderr}`);
  return Number(r.stdout.trim()) / 2 ** 20;
}

export const suite: BenchSuite = {
  name: "train",
  run(ctx) {
    const threads = binding.info().threads;
    const torch = PYTHON !== null;
    if (!torch) console.log("  (PyTorch baseline skipped: python3-torch is not installed)");
    for (const bench of TRAIN_CONFIGS) {
      const config = parseLlamaConfig({ ...bench.config, max_position_embeddings: bench.T });
      const tokens = bench.B * bench.T;
      const flops = trainFlopsPerToken(config, bench.T);
      for (const matmul of ["float32", "bfloat16"] as const) {
        const { step, dispose } = makeTrainStep(bench, matmul);
        const label = `train step ${bench.name} (B=${bench.B} T=${bench.T}) ${matmul === "float32" ? "fp32" : "bf16 matmul"}`;
        const contenders = [stepContender("growlm", tokens, step)];
        if (torch) contenders.push(torchContender(bench, threads));
        const [value] = ctx.compare(label, "tokens/s", tokens, contenders) as [number];
        ctx.report(`${label} model FLOPs`, "GFLOP/s", (value * flops) / 1e9, [[`machine fp32 FMA peak`, ctx.peakGflops]]);
        dispose();
      }
    }
    const M = TRAIN_CONFIGS[1]!;
    for (const matmul of ["float32", "bfloat16"] as const) {
      const ours = growlmPeakMiB(M.name, matmul, threads);
      const baselines: [string, number][] = [];
      if (torch) {
        const r = runTorch(["--config", M.name, "--threads", String(threads), "--mode", "memory"]);
        baselines.push(["PyTorch fp32 peak RSS", r.peak_rss_bytes / 2 ** 20]);
      }
      ctx.report(`peak RSS, config M training, ${matmul === "float32" ? "fp32" : "bf16 matmul"}`, "MiB", ours, baselines);
    }
  },
};
