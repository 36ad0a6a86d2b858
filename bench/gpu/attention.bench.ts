/**
 * Causal flash attention forward + backward in bf16 at the size (B=4, T=2048, H=16,
 * D=128) against PyTorch's scaled_dot_product_attention with the flash backend, forward and
 * backward, on the same GPU. Target: at least 0.7× PyTorch. FLOPs as FlashAttention counts them:
 * 4·B·H·T²·D for the forward's two products, halved for the causal mask, and 2.5× that for the
 * backward's five, so 7·B·H·T²·D per forward + backward. Each side uses its own layout
 * (growlm [B, T, H, D], PyTorch [B, H, T, D]: what each model hands its kernel).
 */
import { type GpuBenchSuite, growlmContender, type Timed, torchContender } from "./harness.js";
import { deviceEmpty, deviceUniformBf16 } from "./inputs.js";
import { gpuOps } from "./ops.js";

export const suite: GpuBenchSuite = {
  name: "attention",
  async run(ctx) {
    const o = ctx.options;
    const [B, T, H, D] = o.smoke ? [1, 64, 2, 64] : [4, 2048, 16, 128];
    await ctx.run("attention", async () => {
      const ops = gpuOps("attentionForwardBf16", "attentionBackwardBf16");
      const n = B * T * H * D;
      const q = deviceUniformBf16(o.device, n, 1);
      const k = deviceUniformBf16(o.device, n, 2);
      const v = deviceUniformBf16(o.device, n, 3);
      const dout = deviceUniformBf16(o.device, n, 4);
      const out = deviceEmpty(o.device, n * 2);
      const dq = deviceEmpty(o.device, n * 2);
      const dk = deviceEmpty(o.device, n * 2);
      const dv = deviceEmpty(o.device, n * 2);
      const lse = deviceEmpty(o.device, B * H * T * 4);
      const scale = 1 / Math.sqrt(D);
      const contenders: Timed[] = [
        growlmContender("growlm", () => {
          ops.attentionForwardBf16(out, lse, q, k, v, B, T, H, H, D, scale);
          ops.attentionBackwardBf16(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, H, D, scale);
        }, o),
      ];
      if (ctx.torch) contenders.push(torchContender(ctx.torch, "attention", "attention", { B, T, H, D }, o, ctx.notes));
      ctx.notes.push(`attention: causal, bf16 inputs, fp32 softmax statistics, B=${B} T=${T} H=${H} (no GQA) D=${D}; FLOPs 7·B·H·T²·D per forward + backward`);
      try {
        const target = ctx.torch ? { target: { against: 1, minRatio: 0.7 } } : {};
        await ctx.compare(`attention fwd+bwd bf16 B=${B} T=${T} H=${H} D=${D}`, "TFLOP/s", 7 * B * H * T * T * D, contenders, target);
      } finally {
        for (const b of [q, k, v, dout, out, dq, dk, dv, lse]) b.free();
        await ctx.torch?.release("attention");
      }
    });
  },
};
