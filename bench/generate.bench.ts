/**
 * Generation throughput of config M (bench/train.bench.ts): greedy decoding of 128 new
 * tokens after a 128-token prompt, batch 1, 8 and 16, in new tokens per second of the whole
 * generate() call (prefill included), side by side with PyTorch doing the same with a KV
 * cache (tools/torch_generate.py: tools/torch_llama.py's cached path, float32, under
 * inference_mode, the same thread count) when Debian's python3-torch is installed. PyTorch
 * runs with each OpenBLAS build (OpenMP, the train benchmark's choice, and pthreads), as
 * their ranking changes with the batch size (at batch 16 only the OpenMP build, the faster
 * one from batch 8 on: the pthreads build takes half a minute a round there). growlm runs
 * with fp32 and with bf16 matrix products; both are compared with PyTorch's fp32. Each
 * round times one generation of every contender in turn; PyTorch runs in a child process per
 * round, timed inside it after one warm-up generation.
 */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { generate } from "../src/eval/generate.js";
import { parseLlamaConfig } from "../src/model/config.js";
import { LlamaModel, type MatmulPrecision } from "../src/model/llama.js";
import { binding } from "../src/native.js";
import type { BenchSuite, MeasuredContender } from "./common.js";
import { TRAIN_CONFIGS } from "./train.bench.js";

const here = dirname(fileURLToPath(import.meta.url));
const TORCH_SCRIPT = join(here, "..", "tools", "torch_generate.py");
const PROMPT = 128;
const NEW_TOKENS = 128;
const BATCHES = [1, 8, 16];

/** The first Python with torch: Debian's python3-torch lives in /usr/bin/python3, which a pyenv python3 on PATH may hide. */
const PYTHON = ["/usr/bin/python3", "python3"].find((python) => spawnSync(python, ["-c", "import torch"], { stdio: "ignore" }).status === 0) ?? null;

function growlmContender(name: string, matmul: MatmulPrecision, B: number): { contender: MeasuredContender; dispose: () => void } {
  const bench = TRAIN_CONFIGS.find((c) => c.name === "M")!;
  const config = parseLlamaConfig({ ...bench.config, max_position_embeddings: PROMPT + NEW_TOKENS, eos_token_id: null });
  const model = new LlamaModel(config, { matmul });
  model.initialize(1234);
  const prompts = Array.from({ length: B }, (_, b) => Array.from({ length: PROMPT }, (_, t) => ((b * PROMPT + t) * 2654435761) % config.vocab_size >>> 0));
  const run = (): number => {
    const t0 = process.hrtime.bigint();
    const out = generate(model, prompts, { maxNewTokens: NEW_TOKENS });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const tokens = out.reduce((n, s) => n + s.tokens.length, 0);
    if (tokens !== B * NEW_TOKENS) throw new Error(`bench generate: ${tokens} tokens instead of ${B * NEW_TOKENS}`);
    return tokens / seconds;
  };
  return { contender: { name, warm: () => void run(), measure: run }, dispose: () => model.dispose() };
}

function torchContender(B: number, threads: number, blas: "openmp" | "system"): MeasuredContender {
  const args = [TORCH_SCRIPT, "--config", "M", "--batch", String(B), "--prompt_len", String(PROMPT), "--new_tokens", String(NEW_TOKENS), "--threads", String(threads), "--blas", blas, "--warmup", "1", "--rounds", "1", "--json"];
  const run = (): number => {
    const r = spawnSync(PYTHON!, args, { encoding: "utf8", maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`bench generate: ${TORCH_SCRIPT} failed: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { tokens_per_second: number }).tokens_per_second;
  };
  return { name: `PyTorch fp32 KV cache (${blas === "openmp" ? "OpenBLAS OpenMP" : "OpenBLAS pthreads"}, ${threads} threads)`, warm: () => void run(), measure: run };
}

export const suite: BenchSuite = {
  name: "generate",
  run(ctx) {
    const threads = binding.info().threads;
    const openmp = spawnSync("sh", ["-c", "ls -d /usr/lib/*/openblas-openmp"], { stdio: "ignore" }).status === 0;
    if (PYTHON === null) console.log("  (PyTorch baseline skipped: python3-torch is not installed)");
    for (const B of BATCHES) {
      const fp32 = growlmContender("growlm fp32", "float32", B);
      const bf16 = growlmContender("growlm bf16 products", "bfloat16", B);
      const torch: MeasuredContender[] =
        PYTHON === null ? [] : [...(openmp ? [torchContender(B, threads, "openmp")] : []), ...(B <= 8 || !openmp ? [torchContender(B, threads, "system")] : [])];
      const label = `generate config M B=${B} prompt ${PROMPT} +${NEW_TOKENS} greedy`;
      const values = ctx.compare(`${label} fp32`, "tokens/s", 1, [fp32.contender, bf16.contender, ...torch]);
      ctx.report(`${label} bf16 products`, "tokens/s", values[1]!, torch.map((t, i) => [t.name, values[2 + i]!] as const));
      fp32.dispose();
      bf16.dispose();
    }
  },
};
