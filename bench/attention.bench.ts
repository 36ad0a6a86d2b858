/**
 * Causal GQA attention in GFLOP/s, FlashAttention's count: forward 4·B·H·T²·D / 2 (Q·Kᵀ
 * and P·V, halved for causality), backward 2.5 × forward, fwd+bwd 3.5 × forward. The
 * fwd+bwd cases run beside growlm's sgemm 2048³ (each contender measured with its own
 * flops), the target being at least half of its GFLOP/s; every case also reports
 * the fraction of the machine's FMA peak.
 */
import { binding } from "../src/native.js";
import { uniformBuffer, type BenchSuite, type Contender } from "./common.js";

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
  },
};
