/**
 * The training run the GPU check and benchmark share: config M of bench/train.bench.ts
 * (TRAIN_CONFIGS, B=4, T=512) or, at smoke sizes (the emulator), a tiny config; one model,
 * Trainer and random batches per device.
 */
import { parseLlamaConfig, type LlamaConfig } from "../../src/model/config.js";
import type { LlamaModel, MatmulPrecision } from "../../src/model/llama.js";
import { binding } from "../../src/native.js";
import { Tensor } from "../../src/tensor.js";
import { type Batch, Trainer } from "../../src/train/trainer.js";
import { TRAIN_CONFIGS, type TrainBenchConfig } from "../train.bench.js";
import { modelOn } from "./inputs.js";

/** A tiny config the emulator trains in seconds (smoke runs check the code path only). */
const SMOKE: TrainBenchConfig = {
  name: "S",
  config: { hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 96, vocab_size: 256 },
  B: 2,
  T: 32,
};

export interface TrainingSetup {
  label: string;
  bench: TrainBenchConfig;
  config: LlamaConfig;
  tokensPerStep: number;
}

export function trainingSetup(smoke: boolean): TrainingSetup {
  const bench = smoke ? SMOKE : TRAIN_CONFIGS.find((c) => c.name === "M")!;
  const config = parseLlamaConfig({ ...bench.config, max_position_embeddings: bench.T });
  const label = smoke ? `smoke config (C=64, L=2, V=256) B=${bench.B} T=${bench.T}` : `config M B=${bench.B} T=${bench.T}`;
  return { label, bench, config, tokensPerStep: bench.B * bench.T };
}

/** `count` batches of uniform random token ids (labels = ids), the same for every device. */
export function randomBatches(setup: TrainingSetup, count: number, seed: number): Batch[] {
  const { B, T } = setup.bench;
  return Array.from({ length: count }, (_, s) => {
    const u = new Float32Array(B * T);
    binding.rngUniform(u, u.length, seed, s * B * T, 0, 1);
    const ids = Tensor.empty([B, T], "int32");
    const data = ids.data as Int32Array;
    for (let i = 0; i < data.length; i++) data[i] = Math.min(setup.config.vocab_size - 1, Math.floor(u[i]! * setup.config.vocab_size));
    return { ids, labels: ids };
  });
}

/**
 * A model initialised with seed 1234 on `device` and its Trainer: constant learning rate `lr`,
 * AdamW weight decay 0.1, gradient clipping at norm 1 (bench/train.bench.ts's step).
 */
export function makeTraining(setup: TrainingSetup, matmul: MatmulPrecision, device: string, lr: number): { model: LlamaModel; trainer: Trainer; dispose(): void } {
  const model = modelOn(setup.config, matmul, device);
  model.initialize(1234);
  const trainer = new Trainer(model, {
    schedule: { type: "constant", learningRate: lr, totalSteps: 1 << 30 },
    optimizer: { weightDecay: 0.1, maxGradNorm: 1 },
  });
  return {
    model,
    trainer,
    dispose() {
      trainer.dispose();
      model.dispose();
    },
  };
}
