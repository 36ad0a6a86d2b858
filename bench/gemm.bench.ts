/**
 * GEMM in GFLOP/s (2·M·N·K per call) in the three layouts of a training step — NN (input
 * gradient), NT (forward), TN (weight gradient) — against OpenBLAS sgemm on the same shape
 * and thread count, and against the machine's fp32 FMA peak. The bf16 cases are compared
 * with OpenBLAS's fp32 sgemm: the question is how much a bf16 GEMM gains over the best fp32
 * one (vdpbf16ps does two products per lane and instruction). The decode cases (a few rows
 * times a weight matrix from memory) are in GB/s of weights read, against the machine's copy
 * bandwidth.
 */
import { binding } from "../src/native.js";
import { uniformBuffer, type BenchSuite, type Contender } from "./common.js";

const LAYOUTS = [
  ["NN", false, false],
  ["NT", false, true],
  ["TN", true, false],
] as const;

export const suite: BenchSuite = {
  name: "gemm",
  run(ctx) {
    const largest = 2048;
    const A = uniformBuffer(largest * largest, 1);
    const B = uniformBuffer(largest * largest, 2);
    const C = new Float32Array(binding.alloc(largest * largest * 4, true));
    const Ah = new Uint16Array(binding.alloc(largest * largest * 2, false));
    const Bh = new Uint16Array(binding.alloc(largest * largest * 2, false));
    binding.f32ToBf16(Ah, A, A.length);
    binding.f32ToBf16(Bh, B, B.length);
    const openblas = ctx.openblas;
    const bf16 = binding.info().bf16Dot ? "bf16 (vdpbf16ps)" : "bf16 (widened to fp32)";

    for (const n of [1024, 2048]) {
      for (const [layout, ta, tb] of LAYOUTS) {
        const contenders: Contender[] = [{ name: "growlm sgemm", fn: () => binding.sgemm(ta, tb, n, n, n, 1, A, n, B, n, 0, C, n) }];
        if (openblas) contenders.push({ name: "OpenBLAS sgemm", fn: () => openblas.sgemm(ta, tb, n, n, n, 1, A, n, B, n, 0, C, n) });
        ctx.compare(`sgemm ${layout} ${n}x${n}x${n}`, "GFLOP/s", 2 * n ** 3, contenders, "peak");
      }
    }
    const n = largest;
    for (const [layout, ta, tb] of LAYOUTS) {
      const contenders: Contender[] = [{ name: `growlm ${bf16}`, fn: () => binding.gemmBf16(ta, tb, n, n, n, 1, Ah, n, Bh, n, 0, C, n) }];
      if (openblas) contenders.push({ name: "OpenBLAS sgemm (fp32)", fn: () => openblas.sgemm(ta, tb, n, n, n, 1, A, n, B, n, 0, C, n) });
      ctx.compare(`bf16 GEMM ${layout} ${n}x${n}x${n}`, "GFLOP/s", 2 * n ** 3, contenders, "peak");
    }
    // A linear layer at decode time, C[M, N] = A[M, K]·Wᵀ with W [N, K] (config M's MLP):
    // few rows, so the weights' traffic is the cost. Eight weight matrices in turn (46 MB),
    // so they come from memory as a decoding model's do; GB/s counts the weights' bytes.
    const [N, K] = [1376, 512];
    const weights = Array.from({ length: 8 }, (_, i) => uniformBuffer(N * K, 10 + i));
    const weightsBf16 = weights.map((w) => {
      const h = new Uint16Array(binding.alloc(N * K * 2, false));
      binding.f32ToBf16(h, w, N * K);
      return h;
    });
    let next = 0;
    for (const M of [1, 8]) {
      const x = A.subarray(0, M * K);
      const xh = Ah.subarray(0, M * K);
      const y = C.subarray(0, M * N);
      const contenders: Contender[] = [{ name: "growlm sgemm", fn: () => binding.sgemm(false, true, M, N, K, 1, x, K, weights[next++ % 8]!, K, 0, y, N) }];
      if (openblas) contenders.push({ name: "OpenBLAS sgemm", fn: () => openblas.sgemm(false, true, M, N, K, 1, x, K, weights[next++ % 8]!, K, 0, y, N) });
      ctx.compare(`decode sgemm NT M=${M} N=${N} K=${K}`, "GB/s", 4 * N * K, contenders, "copy");
      ctx.compare(`decode ${bf16} NT M=${M} N=${N} K=${K}`, "GB/s", 2 * N * K, [{ name: `growlm ${bf16}`, fn: () => binding.gemmBf16(false, true, M, N, K, 1, xh, K, weightsBf16[next++ % 8]!, K, 0, y, N) }], "copy");
    }
    for (const buffer of [A, B, C, Ah, Bh, ...weights, ...weightsBf16]) binding.free(buffer.buffer as ArrayBuffer);
  },
};
