/**
 * A config-M training step (forward, loss, backward, clipping, AdamW) with bf16 matrix products
 * on the GPU in tokens/s, against PyTorch eager on the same GPU (target: at least 1×):
 * tools/torch_llama.py's model (transformers' eager attention) in bf16 autocast over fp32
 * weights, the closest PyTorch twin of growlm's "bfloat16" matmul mode (bf16 products with
 * fp32 accumulation, fp32 master weights, fp32 norms and loss), with clip_grad_norm_ and fused
 * AdamW. The same model with scaled_dot_product_attention is reported for information.
 * growlm's step reads the loss and gradient norm back to the host (the Trainer's result), so
 * it waits for the device every step; PyTorch's does not.
 */
import { cudaOrdinal, parseDevice } from "../../src/device.js";
import { type GpuBenchSuite, growlmContender, type Timed, torchContender } from "./harness.js";
import { makeTraining, randomBatches, trainingSetup } from "./training.js";

export const suite: GpuBenchSuite = {
  name: "train",
  async run(ctx) {
    const o = ctx.options;
    const setup = trainingSetup(o.smoke);
    const label = `train step ${setup.label} bf16 matmul`;
    await ctx.run(label, async () => {
      const device = parseDevice(`cuda:${o.device}`);
      const { trainer, dispose } = makeTraining(setup, "bfloat16", device, 1e-4);
      const [batch] = randomBatches(setup, 1, 7);
      const { bench } = setup;
      const shape = { ...bench.config, num_key_value_heads: bench.config.num_attention_heads, batch: bench.B, seq_len: bench.T };
      const contenders: Timed[] = [growlmContender("growlm", () => void trainer.trainStep([batch!]), { ...o, device: cudaOrdinal(device) })];
      if (ctx.torch) {
        for (const attention of ["eager", "sdpa"]) {
          contenders.push(torchContender(ctx.torch, `train-${attention}`, "train", { config: "M", shape, attention }, o, ctx.notes));
        }
      }
      try {
        await ctx.compare(label, "tokens/s", setup.tokensPerStep, contenders, ctx.torch ? { target: { against: 1, minRatio: 1 } } : {});
      } finally {
        dispose();
        batch!.ids.dispose();
        await ctx.torch?.release("train-eager");
        await ctx.torch?.release("train-sdpa");
      }
    });
  },
};
