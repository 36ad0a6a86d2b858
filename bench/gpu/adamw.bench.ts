/**
 * The fused AdamW step against the device-to-device copy bandwidth measured in the same run
 * (target: at least 0.8×) and PyTorch's fused AdamW (torch.optim.AdamW(fused=True)) on one
 * flat fp32 buffer of n = 2^26 parameters, as growlm's optimizer steps its flat parameter
 * buffer. Bytes per element: read params, grads, m, v and write params, m, v = 28 (fp32
 * throughout); + 2 for the bf16 working copy in master-weights mode. The copy's bytes are
 * read + written too, so the ratio is the fraction of the memory system's bandwidth reached.
 */
import { toDevice } from "../../src/device.js";
import { type GpuBenchSuite, growlmContender, type Timed, torchContender } from "./harness.js";
import { deviceEmpty, deviceUniform } from "./inputs.js";
import { gpuOps } from "./ops.js";

export const suite: GpuBenchSuite = {
  name: "adamw",
  async run(ctx) {
    const o = ctx.options;
    const n = o.smoke ? 4099 : 1 << 26;
    for (const bf16Copy of [false, true]) {
      const label = `fused AdamW n=${n} ${bf16Copy ? "fp32 master + bf16 copy" : "fp32"}`;
      await ctx.run(label, async () => {
        const ops = gpuOps("adamwStep");
        const params = deviceUniform(o.device, n, 11);
        const grads = deviceUniform(o.device, n, 12);
        const m = deviceUniform(o.device, n, 13, -0.01, 0.01);
        const v = deviceUniform(o.device, n, 14, 0, 1e-4);
        const copy = bf16Copy ? deviceEmpty(o.device, n * 2) : null;
        const segBegin = toDevice(BigInt64Array.from([0n, BigInt(n)]), o.device);
        const segDecay = toDevice(Uint8Array.from([1]), o.device);
        let step = 0;
        const id = `adamw-${bf16Copy}`;
        const contenders: Timed[] = [
          growlmContender("growlm", () => ops.adamwStep(params, m, v, copy, grads, n, segBegin, segDecay, 1e-4, 0.9, 0.95, 1e-8, 0.1, ++step, 1), o),
          ctx.copy,
        ];
        if (ctx.torch) contenders.push(torchContender(ctx.torch, id, "adamw", { n, bf16_copy: bf16Copy }, o, ctx.notes));
        const bytes = n * (bf16Copy ? 30 : 28);
        try {
          await ctx.compare(label, "GB/s", [bytes, ctx.copyWork, bytes].slice(0, contenders.length), contenders, { target: { against: 1, minRatio: 0.8 } });
        } finally {
          for (const b of [params, grads, m, v, segBegin, segDecay]) b.free();
          copy?.free();
          await ctx.torch?.release(id);
        }
      });
    }
  },
};
