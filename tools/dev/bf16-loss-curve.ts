/**
 * `npx tsx tools/dev/bf16-loss-curve.ts [steps]`: trains config S (bench/train.bench.ts) from the
 * same initialisation on the same batches with fp32 and with bf16 matrix products, and prints
 * both loss curves and their largest relative gap over windows of 10 steps. The data are a
 * seeded random bigram chain (each token has 4 likely successors), so the loss has somewhere
 * to go. The target: within 1 % over 200 steps.
 */
import { parseLlamaConfig } from "../../src/model/config.js";
import { LlamaModel } from "../../src/model/llama.js";
import { Tensor } from "../../src/tensor.js";
import { RandomStream } from "../../src/train/random.js";
import { Trainer } from "../../src/train/trainer.js";
import { TRAIN_CONFIGS } from "../../bench/train.bench.js";

const steps = Number(process.argv[2] ?? 200);
const S = TRAIN_CONFIGS[0]!;
const config = parseLlamaConfig({ ...S.config, max_position_embeddings: S.T });
const V = config.vocab_size;

function batches(): Tensor[] {
  const rng = new RandomStream(2024);
  const successors = Array.from({ length: V }, () => Array.from(rng.uniform(4), (u) => Math.floor(u * V)));
  return Array.from({ length: steps }, () => {
    const u = rng.uniform(S.B * S.T * 2);
    const ids = new Int32Array(S.B * S.T);
    for (let b = 0; b < S.B; b++) {
      let tok = Math.floor(u[b * S.T]! * V);
      for (let t = 0; t < S.T; t++) {
        ids[b * S.T + t] = tok;
        const r = u[S.B * S.T + b * S.T + t]!;
        tok = r < 0.9 ? successors[tok]![Math.floor((r / 0.9) * 4)]! : Math.floor(((r - 0.9) / 0.1) * V);
      }
    }
    return Tensor.from(ids, [S.B, S.T], "int32");
  });
}

const data = batches();
const curves = (["float32", "bfloat16"] as const).map((matmul) => {
  const model = new LlamaModel(config, { matmul });
  model.initialize(7);
  const trainer = new Trainer(model, {
    schedule: { type: "cosine", learningRate: 1e-3, totalSteps: steps, warmupRatio: 0.05 },
    optimizer: { weightDecay: 0.1, maxGradNorm: 1 },
  });
  const losses = data.map((ids) => trainer.trainStep([{ ids, labels: ids }]).loss);
  trainer.dispose();
  model.dispose();
  return losses;
});
const [fp32, bf16] = curves as [number[], number[]];
let worst = 0;
for (let s = 0; s < steps; s += 10) {
  const mean = (c: number[]) => c.slice(s, s + 10).reduce((a, b) => a + b, 0) / c.slice(s, s + 10).length;
  const gap = Math.abs(mean(bf16) - mean(fp32)) / mean(fp32);
  worst = Math.max(worst, gap);
  console.log(`steps ${String(s).padStart(3)}-${String(Math.min(steps, s + 10) - 1).padStart(3)}: fp32 ${mean(fp32).toFixed(4)}  bf16 ${mean(bf16).toFixed(4)}  gap ${(100 * gap).toFixed(3)} %`);
}
console.log(`largest gap over windows of 10 steps: ${(100 * worst).toFixed(3)} % (fp32 ${fp32[0]!.toFixed(3)} -> ${fp32[steps - 1]!.toFixed(3)})`);
