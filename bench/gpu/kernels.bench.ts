/**
 * Per-kernel timings against PyTorch on the same GPU: GEMMs (cuBLAS through growlm's binding vs
 * torch.matmul, fp32 / TF32 / bf16 with fp32 accumulation, at 4096³ and at config M's shapes),
 * RMSNorm forward and forward + backward, and cross-entropy forward + backward over fp32
 * logits. Bandwidth-bound kernels are also compared with the device-to-device copy.
 * Bytes counted (read + written): RMSNorm forward 8·N·C, forward + backward 20·N·C;
 * cross-entropy forward + backward 12·N·V (growlm's forward returns the loss sum to the host,
 * so its timing includes that wait; PyTorch's leaves the loss on the device).
 */
import type { DeviceBuffer } from "../../src/device.js";
import { type GpuBenchSuite, growlmContender, type Timed, torchContender } from "./harness.js";
import { deviceEmpty, deviceInts, deviceUniform, deviceUniformBf16 } from "./inputs.js";
import { gpuOps } from "./ops.js";

type Precision = "fp32" | "tf32" | "bf16";

export const suite: GpuBenchSuite = {
  name: "kernels",
  async run(ctx) {
    const o = ctx.options;
    const gemms: [number, number, number, Precision][] = o.smoke
      ? [[33, 65, 47, "fp32"], [33, 65, 47, "tf32"], [33, 65, 48, "bf16"]]
      : [
          [4096, 4096, 4096, "fp32"],
          [4096, 4096, 4096, "tf32"],
          [4096, 4096, 4096, "bf16"],
          // config M (B·T = 2048 rows, C = 512, I = 1376, V = 8192): MLP up/gate and the LM head
          [2048, 1376, 512, "bf16"],
          [2048, 8192, 512, "bf16"],
        ];
    for (const [M, N, K, precision] of gemms) {
      const label = `gemm ${precision} ${M}x${N}x${K}`;
      await ctx.run(label, async () => {
        const ops = gpuOps("sgemm", "sgemmTf32", "gemmBf16");
        const make = precision === "bf16" ? deviceUniformBf16 : deviceUniform;
        const a = make(o.device, M * K, 21);
        const b = make(o.device, K * N, 22);
        const c = deviceEmpty(o.device, M * N * 4);
        const gemm = precision === "bf16" ? ops.gemmBf16 : precision === "tf32" ? ops.sgemmTf32 : ops.sgemm;
        const id = `gemm-${label}`;
        const contenders: Timed[] = [growlmContender("growlm", () => gemm(false, false, M, N, K, 1, a, K, b, N, 0, c, N), o)];
        if (ctx.torch) contenders.push(torchContender(ctx.torch, id, "matmul", { M, N, K, precision }, o, ctx.notes));
        try {
          await ctx.compare(label, "TFLOP/s", 2 * M * N * K, contenders);
        } finally {
          for (const x of [a, b, c]) x.free();
          await ctx.torch?.release(id);
        }
      });
    }

    const [N, C] = o.smoke ? [37, 129] : [8192, 4096];
    for (const backward of [false, true]) {
      const label = `rmsnorm ${backward ? "fwd+bwd" : "fwd"} fp32 N=${N} C=${C}`;
      await ctx.run(label, async () => {
        const ops = gpuOps("rmsnormForward", "rmsnormBackward");
        const x = deviceUniform(o.device, N * C, 31);
        const w = deviceUniform(o.device, C, 32, 0.5, 1.5);
        const dy = deviceUniform(o.device, N * C, 33);
        const out = deviceEmpty(o.device, N * C * 4);
        const rstd = deviceEmpty(o.device, N * 4);
        const dx = deviceEmpty(o.device, N * C * 4);
        const dw = deviceEmpty(o.device, C * 4);
        const id = `rmsnorm-${backward}`;
        const contenders: Timed[] = [
          growlmContender("growlm", () => {
            ops.rmsnormForward(out, rstd, x, w, N, C, 1e-5);
            if (backward) ops.rmsnormBackward(dx, dw, dy, x, w, rstd, N, C);
          }, o),
          ctx.copy,
        ];
        if (ctx.torch) contenders.push(torchContender(ctx.torch, id, "rmsnorm", { N, C, backward }, o, ctx.notes));
        const bytes = (backward ? 20 : 8) * N * C;
        try {
          await ctx.compare(label, "GB/s", [bytes, ctx.copyWork, bytes].slice(0, contenders.length), contenders);
        } finally {
          for (const b of [x, w, dy, out, rstd, dx, dw]) b.free();
          await ctx.torch?.release(id);
        }
      });
    }

    const [rows, V] = o.smoke ? [17, 1000] : [8192, 32768];
    const label = `cross-entropy fwd+bwd fp32 N=${rows} V=${V}`;
    await ctx.run(label, async () => {
      const ops = gpuOps("crossEntropyForward", "crossEntropyBackward");
      const logits = deviceUniform(o.device, rows * V, 41, -4, 4);
      const targets = deviceInts(o.device, rows, 42, V);
      const lse = deviceEmpty(o.device, rows * 4);
      const dlogits = deviceEmpty(o.device, rows * V * 4);
      const buffers: DeviceBuffer[] = [logits, targets, lse, dlogits];
      const contenders: Timed[] = [
        growlmContender("growlm", () => {
          ops.crossEntropyForward(null, lse, logits, targets, rows, V, -100);
          ops.crossEntropyBackward(dlogits, logits, lse, targets, rows, V, -100, 1);
        }, o),
        ctx.copy,
      ];
      if (ctx.torch) contenders.push(torchContender(ctx.torch, "xent", "xent", { N: rows, V }, o, ctx.notes));
      const bytes = 12 * rows * V;
      try {
        await ctx.compare(label, "GB/s", [bytes, ctx.copyWork, bytes].slice(0, contenders.length), contenders);
      } finally {
        for (const b of buffers) b.free();
        await ctx.torch?.release("xent");
      }
    });
  },
};
