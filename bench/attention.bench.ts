/**
 * Causal GQA attention in GFLOP/s, FlashAttention's count: forward 4·B·H·T²·D / 2 (Q·Kᵀ
 * and P·V, halved for causality), backward 2.5 × forward, fwd+bwd 3.5 × forward. The
 * fwd+bwd cases run beside growlm's sgemm 2048³ (each contender measured with its own
 * flops), the target being at least half of its GFLOP/s; every case also reports
 * the fraction of the machine's FMA peak.
 *
 * On a GPU (not the emulator) the bf16 flash attention of the CUDA backend runs forward +
 * backward at the shape (B=4, T=2048, H=16, D=128) beside PyTorch's
 * scaled_dot_product_attention (flash backend, tools/torch_attention.py) on the same GPU, the
 * target being at least 0.7× PyTorch.
 */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { cudaAvailable, cudaInfo, toDevice } from "../src/device.js";
import { binding } from "../src/native.js";
import { uniformBuffer, type BenchContext, type BenchSuite, type Contender, type MeasuredContender } from "./common.js";

const TORCH_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "..", "tools", "torch_attention.py");
/** The first Python with torch: Debian's python3-torch lives in /usr/bin/python3, which a pyenv python3 on PATH may hide. */
const PYTHON = ["/usr/bin/python3", "python3"].find((python) => spawnSync(python, ["-c", "import torch"], { stdio: "ignore" }).status === 0) ?? null;

/** bf16 bits of n values uniform in [-1, 1) (truncated: inputs only). */
function bf16Buffer(n: number, seed: number): Uint16Array {
  const f = uniformBuffer(n, seed);
  const u = new Uint32Array(f.buffer, f.byteOffset, n);
  return Uint16Array.from(u, (x) => x >>> 16);
}

/** PyTorch SDPA (flash) fwd+bwd on the GPU, timed by the script itself (CUDA events). */
function torchAttention(args: string[]): MeasuredContender {
  const run = (): number => {
    const r = spawnSync(PYTHON!, [TORCH_SCRIPT, ...args, "--json"], { encoding: "utf8", maxBuffer: 1 << 20 });
    if (r.status !== 0) throw new Error(`bench attention: ${TORCH_SCRIPT} failed: ${r.stderr}`);
    const { seconds, flops } = JSON.parse(r.stdout) as { seconds: number; flops: number };
    return flops / seconds / 1e9;
  };
  return { name: "PyTorch SDPA flash (bf16)", warm: () => void run(), measure: run };
}

function cudaCases(ctx: BenchContext): void {
  const B = 4, T = 2048, H = 16, Hkv = 16, D = 128;
  const scale = 1 / Math.sqrt(D);
  const nq = B * T * H * D, nkv = B * T * Hkv * D;
  const q = toDevice(bf16Buffer(nq, 11), 0), k = toDevice(bf16Buffer(nkv, 12), 0), v = toDevice(bf16Buffer(nkv, 13), 0);
  const dout = toDevice(bf16Buffer(nq, 14), 0);
  const out = binding.cuda.alloc(0, nq * 2), lse = binding.cuda.alloc(0, B * H * T * 4);
  const dq = binding.cuda.alloc(0, nq * 2), dk = binding.cuda.alloc(0, nkv * 2), dv = binding.cuda.alloc(0, nkv * 2);
  const both = () => {
    binding.cuda.attentionForwardBf16(out, lse, q, k, v, B, T, H, Hkv, D, scale);
    binding.cuda.attentionBackwardBf16(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, Hkv, D, scale);
    binding.cuda.synchronize(0);
  };
  const contenders: (Contender | MeasuredContender)[] = [{ name: "growlm bf16 flash", fn: both }];
  if (PYTHON !== null) contenders.push(torchAttention(["--B", `${B}`, "--T", `${T}`, "--H", `${H}`, "--D", `${D}`]));
  else console.log("  (PyTorch baseline skipped: no python3 with torch)");
  const flops = 3.5 * 4 * B * H * T * T * D * 0.5;
  ctx.compare(`cuda bf16 attention fwd+bwd B=${B} T=${T} H=${H} D=${D} Hkv=${Hkv}`, "GFLOP/s", flops, contenders);
  for (const buffer of [q, k, v, dout, out, lse, dq, dk, dv]) buffer.free();
}

/**
 * One decoding step's cached attention (attentionCachedForward, one query per row) at the
 * generate benchmark's shape, in GB/s of K and V read: each call reads the next of 8 layers'
 * caches, 8 × 8 MiB at S = 256, more than the L3, so the cache streams from memory as it
 * does in generation.
 */
function decodeCase(ctx: BenchContext): void {
  const B = 8, H = 8, Hkv = 8, D = 64, S = 256, layers = 8, Tk = 192;
  const out = new Float32Array(binding.alloc(B * H * D * 4, true));
  const q = uniformBuffer(B * H * D, 7);
  const caches = Array.from({ length: layers }, (_, l) => ({ k: uniformBuffer(B * S * Hkv * D, 20 + 2 * l), v: uniformBuffer(B * S * Hkv * D, 21 + 2 * l) }));
  const begin = Int32Array.from({ length: B }, (_, b) => 3 * b); // left padding of a mixed-length batch
  let layer = 0;
  const step = () => {
    const { k, v } = caches[layer]!;
    layer = (layer + 1) % layers;
    binding.attentionCachedForward(out, q, k, v, begin, B, 1, Tk, S, H, Hkv, D, 1 / Math.sqrt(D));
  };
  let bytes = 0;
  for (let b = 0; b < B; b++) bytes += 2 * (Tk - begin[b]!) * Hkv * D * 4;
  ctx.compare(`attention cached decode step B=${B} Tk=${Tk} H=${H} D=${D} Hkv=${Hkv}`, "GB/s", bytes, [{ name: "growlm", fn: step }], "copy");
}

export const suite: BenchSuite = {
  name: "attention",
  run(ctx) {
    const B = 4;
    const T = 512;
    const H = 8;
    const D = 64;
    const scale = 1 / Math.sqrt(D);
    const forwardFlops = 4 * B * H * T * T * D * 0.5;

    const n = 2048;
    const A = uniformBuffer(n * n, 1);
    const Bm = uniformBuffer(n * n, 2);
    const C = new Float32Array(binding.alloc(n * n * 4, true));
    const gemmFlops = 2 * n * n * n;
    const gemms: { contender: Contender; flops: number }[] = [
      { contender: { name: "growlm sgemm 2048³", fn: () => binding.sgemm(false, false, n, n, n, 1, A, n, Bm, n, 0, C, n) }, flops: gemmFlops },
    ];
    const openblas = ctx.openblas;
    if (openblas) {
      gemms.push({
        contender: { name: "OpenBLAS sgemm 2048³", fn: () => openblas.sgemm(false, false, n, n, n, 1, A, n, Bm, n, 0, C, n) },
        flops: gemmFlops,
      });
    }

    for (const Hkv of [8, 2]) {
      const q = uniformBuffer(B * T * H * D, 3);
      const k = uniformBuffer(B * T * Hkv * D, 4);
      const v = uniformBuffer(B * T * Hkv * D, 5);
      const dout = uniformBuffer(B * T * H * D, 6);
      const out = new Float32Array(binding.alloc(q.length * 4, true));
      const lse = new Float32Array(binding.alloc(B * H * T * 4, true));
      const dq = new Float32Array(binding.alloc(q.length * 4, true));
      const dk = new Float32Array(binding.alloc(k.length * 4, true));
      const dv = new Float32Array(binding.alloc(v.length * 4, true));
      const forward = () => binding.attentionForward(out, lse, q, k, v, B, T, H, Hkv, D, scale);
      const both = () => {
        forward();
        binding.attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, Hkv, D, scale);
      };
      const shape = `B=${B} T=${T} H=${H} D=${D} Hkv=${Hkv}`;
      ctx.compare(
        `attention fwd+bwd ${shape}`,
        "GFLOP/s",
        [3.5 * forwardFlops, ...gemms.map((g) => g.flops)],
        [{ name: "growlm", fn: both }, ...gemms.map((g) => g.contender)],
        "peak",
      );
      ctx.compare(`attention fwd ${shape}`, "GFLOP/s", forwardFlops, [{ name: "growlm", fn: forward }], "peak");
    }
    decodeCase(ctx);
    if (cudaAvailable() && !cudaInfo().emulated) cudaCases(ctx);
  },
};
