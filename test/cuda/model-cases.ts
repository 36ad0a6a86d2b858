/**
 * The cases of "a model on cuda runs like the model on the CPU", shared by
 * test/cuda/model.test.ts and test/cuda/model-probabilistic.test.ts (the CUDA kernels: within
 * the tolerances of CUDA_KERNEL_RTOL) and test/cuda/model-movement.test.ts (CPU kernels behind
 * device buffers: bitwise). A tiny GQA
 * config with odd sizes (the emulator is slow): C = 32, 2 layers, 4 heads over 2 kv heads,
 * V = 61, T = 7, B = 2, a pad token.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect, it } from "vitest";

import type { Device, DeviceBuffer } from "../../src/device.js";
import { binding } from "../../src/native.js";
import { generate } from "../../src/eval/generate.js";
import { KvCache } from "../../src/model/kv-cache.js";
import { parseLlamaConfig } from "../../src/model/config.js";
import { LlamaModel, type LlamaModelOptions } from "../../src/model/llama.js";
import { loadPretrained, savePretrained } from "../../src/model/pretrained.js";
import { Tensor } from "../../src/tensor.js";
import { Trainer } from "../../src/train/trainer.js";
import { loadTrainingCheckpoint, saveTrainingCheckpoint } from "../../src/train/checkpoint.js";
import { DataParallel } from "../../src/train/data-parallel.js";
import { FilmEnsemble, initializeFilm } from "../../src/probabilistic/film.js";
import { RandomStream } from "../../src/train/random.js";
import type { Communicator } from "../../src/train/comm.js";
import { BASE_SEED, expectClose, randomInts, rng } from "../helpers/reference.js";

/**
 * Data-parallel vs one process: the same sums in another order (normwise relative error). AdamW's
 * first step moves each weight by about lr·g/(|g| + eps), which turns the last bits of near-zero
 * gradients into whole steps, hence more than a few fp32 roundings.
 */
const DP_RTOL = 1e-4;

/** Asserts `actual` (the cuda model's) agrees with `expected` (the CPU model's) at tolerance class `what`. */
export type Compare = (actual: ArrayLike<number>, expected: ArrayLike<number>, what: Tolerance, label: string) => void;
/** fp32 forward values, fp32 gradients, bf16-product values, values after optimizer steps (fp32, bf16 products). */
export type Tolerance = "forward" | "gradient" | "bf16" | "trained" | "bf16Trained";

/** The CUDA kernels against the CPU's: normwise relative error bounds (test/helpers/reference.ts relError) per kind of value. */
export const CUDA_KERNEL_RTOL: Record<Tolerance, number> = {
  // Two layers of reordered fp32 sums (GEMM, attention, norms): a few hundred ulps of the largest value.
  forward: 2e-5,
  // The backward compounds the forward's differences through every op once more.
  gradient: 1e-4,
  // bf16 products: a value a rounding apart in fp32 may round to the neighbouring bf16 (2^-8).
  bf16: 2e-2,
  // Three AdamW steps divide by sqrt(v): tiny gradients' relative differences show in the update.
  trained: 1e-3,
  // The same amplification on bf16-product gradients (seen up to 2.9e-2 over random seeds).
  bf16Trained: 5e-2,
};

export const CONFIG = parseLlamaConfig({
  vocab_size: 61,
  hidden_size: 32,
  intermediate_size: 44,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 24,
  pad_token_id: 0,
});
const B = 2;
const T = 7;

/** The same random model on `device`: seeded init, norm weights away from 1 (written through the host view). */
export function makeModel(device: string, options: LlamaModelOptions = {}): LlamaModel {
  const model = new LlamaModel(CONFIG, { ...options, device });
  model.initialize(BASE_SEED);
  const r = rng(BASE_SEED + 1);
  const params = model.params.data;
  for (const e of model.layout.entries) {
    if (e.kind.endsWith("norm")) for (let i = 0; i < e.numel; i++) params[e.offset + i] = 0.5 + r();
  }
  model.markParamsChanged();
  return model;
}

function batch(seed: number): { ids: Tensor; labels: Tensor } {
  const ids = Tensor.from(randomInts(B * T, seed, CONFIG.vocab_size), [B, T], "int32");
  const labels = ids.clone();
  const r = rng(seed + 7);
  const data = labels.data as Int32Array;
  for (let i = 0; i < data.length; i++) if (r() < 0.2) data[i] = -100;
  // The pad token appears, so the pad row's gradient rule is exercised.
  (ids.data as Int32Array)[3] = 0;
  return { ids, labels };
}

function compareGrads(compare: Compare, gpu: LlamaModel, cpu: LlamaModel, what: Tolerance, label: string): void {
  for (const e of cpu.layout.entries) compare(gpu.grad(e.name).data, cpu.grad(e.name).data, what, `${label}: gradient of ${e.name}`);
  if (cpu.film) compare(gpu.film!.grads.data, cpu.film.grads.data, what, `${label}: gradients of the FiLM γ, β`);
}

/** makeModel with a FiLM-Ensemble of M members drawn with gain 1 (members away from the plain model). */
function makeFilmModel(device: string, M: number, options: LlamaModelOptions = {}): LlamaModel {
  const model = makeModel(device, options);
  const film = new FilmEnsemble(CONFIG, M);
  initializeFilm(film, BASE_SEED + 3, 1);
  model.attachFilm(film);
  return model;
}

/** Defines the cases (inside a describe of the caller's). */
export function modelCases(device: Device, compare: Compare): void {
  it.each([
    ["float32", false],
    ["float32", true],
    ["bfloat16", false],
  ] as const)("matmul %s (recompute %s): logits, loss, token losses and every gradient follow the CPU model", (matmul, recompute) => {
    const cpu = makeModel("cpu", { matmul, recompute, headChunkRows: 5 });
    const gpu = makeModel(device, { matmul, recompute, headChunkRows: 5 });
    const value: Tolerance = matmul === "bfloat16" ? "bf16" : "forward";
    const grad: Tolerance = matmul === "bfloat16" ? "bf16" : "gradient";
    const { ids, labels } = batch(BASE_SEED + 11);
    const positions = Tensor.from(Array.from({ length: B * T }, (_, i) => (i % T) + 2 * Math.floor(i / T)), [B, T], "int32");
    const a = cpu.forward(ids, { labels, returnLogits: true, positions });
    const b = gpu.forward(ids, { labels, returnLogits: true, positions });
    compare(b.logits!.data, a.logits!.data, value, "logits");
    compare([b.loss, b.lossSum], [a.loss, a.lossSum], value, "loss");
    expect(b.count).toBe(a.count);
    compare(b.tokenLosses!.data, a.tokenLosses!.data, value, "token losses");
    // backward() after forward() (the head recomputed), then forwardBackward accumulating on top.
    cpu.zeroGrad();
    gpu.zeroGrad();
    cpu.backward({ lossWeight: 0.25 });
    gpu.backward({ lossWeight: 0.25 });
    compareGrads(compare, gpu, cpu, grad, "backward()");
    const next = batch(BASE_SEED + 12);
    const c = cpu.forwardBackward(next.ids, next.labels);
    const d = gpu.forwardBackward(next.ids, next.labels);
    compare([d.loss], [c.loss], value, "forwardBackward loss");
    compareGrads(compare, gpu, cpu, grad, "accumulated forwardBackward");
    // nn.Embedding(padding_idx): the pad row gets no gradient, on the device too.
    expect(gpu.grad("model.embed_tokens.weight").data.subarray(0, CONFIG.hidden_size).every((x) => x === 0)).toBe(true);
    cpu.dispose();
    gpu.dispose();
  });

  it("3 AdamW steps with clipping (fp32 and bf16 products): losses, parameters and moments follow the CPU trainer", () => {
    for (const matmul of ["float32", "bfloat16"] as const) {
      const run = (dev: string): { losses: number[]; model: LlamaModel; trainer: Trainer } => {
        const model = makeModel(dev, { matmul });
        const trainer = new Trainer(model, { schedule: { type: "constant", learningRate: 1e-2, totalSteps: 3 }, optimizer: { weightDecay: 0.1, maxGradNorm: 0.5 } });
        const losses = [0, 1, 2].map((s) => trainer.trainStep([batch(BASE_SEED + 20 + s)]).loss);
        return { losses, model, trainer };
      };
      const cpu = run("cpu");
      const gpu = run(device);
      const what: Tolerance = matmul === "bfloat16" ? "bf16Trained" : "trained";
      compare(gpu.losses, cpu.losses, what, `${matmul} losses`);
      compare(gpu.model.params.data, cpu.model.params.data, what, `${matmul} parameters after 3 steps`);
      compare(gpu.trainer.optimizer.m.data, cpu.trainer.optimizer.m.data, what, `${matmul} exp_avg`);
      compare(gpu.trainer.optimizer.v.data, cpu.trainer.optimizer.v.data, what, `${matmul} exp_avg_sq`);
      for (const r of [cpu, gpu]) {
        r.trainer.dispose();
        r.model.dispose();
      }
    }
  });

  it("greedy generation gives the CPU's tokens; forwardCached's logits and a reordered cache follow", () => {
    const cpu = makeModel("cpu");
    const gpu = makeModel(device);
    const prompts = [[5, 9, 2], [7], [3, 3, 8, 1, 4]];
    const a = generate(cpu, prompts, { maxNewTokens: 6, eosTokenId: null });
    const b = generate(gpu, prompts, { maxNewTokens: 6, eosTokenId: null });
    expect(b).toEqual(a);
    // A cache on the device: prefill, select (reorder and repeat rows), one step.
    const step = (model: LlamaModel): Float32Array[] => {
      const cache = new KvCache(CONFIG, 3, 8, 2, 1, model.device);
      const out = [Float32Array.from(model.forwardCached(Tensor.from([4, 6, 1, 2, 9, 5], [2, 3], "int32"), cache).data as Float32Array)];
      cache.select([1, 0, 1]);
      out.push(Float32Array.from(model.forwardCached(Tensor.from([7, 8, 3], [3, 1], "int32"), cache).data as Float32Array));
      // The filled slots of every row (the rest of the storage is uninitialised on both).
      const keys = cache.keys(1).data;
      const span = cache.capacity * cache.slotSize;
      out.push(Float32Array.from({ length: 3 * cache.length * cache.slotSize }, (_, i) => keys[Math.floor(i / (cache.length * cache.slotSize)) * span + (i % (cache.length * cache.slotSize))]!));
      cache.dispose();
      return out;
    };
    const x = step(cpu);
    const y = step(gpu);
    compare(y[0]!, x[0]!, "forward", "prefill logits");
    compare(y[1]!, x[1]!, "forward", "logits after select");
    compare(y[2]!, x[2]!, "forward", "layer 1 keys");
    expect(() => cpu.forwardCached(Tensor.from([1], [1, 1], "int32"), new KvCache(CONFIG, 1, 4, 1, 1, device))).toThrow(
      new RegExp(`LlamaModel.forwardCached: the cache is on "${device}" but the model on "cpu"`),
    );
    cpu.dispose();
    gpu.dispose();
  });

  it("checkpoints: a CPU save loads on the device with the same logits; a device-trained model reloads on the CPU bitwise", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-cuda-model-"));
    try {
      const cpu = makeModel("cpu");
      savePretrained(cpu, path.join(dir, "cpu"));
      const loaded = loadPretrained(path.join(dir, "cpu"), { device });
      expect(loaded.device).toBe(device);
      const { ids } = batch(BASE_SEED + 30);
      compare(loaded.forward(ids, { returnLogits: true }).logits!.data, cpu.forward(ids, { returnLogits: true }).logits!.data, "forward", "logits of the loaded model");

      const trainer = new Trainer(loaded, { schedule: { type: "constant", learningRate: 1e-2, totalSteps: 3 } });
      for (let s = 0; s < 3; s++) trainer.trainStep([batch(BASE_SEED + 40 + s)]);
      // The mirror follows the device after the steps; a held-over Tensor is refreshed by the next access.
      const trained = Float32Array.from(loaded.params.data);
      expect(trained).not.toEqual(cpu.params.data);
      savePretrained(loaded, path.join(dir, "trained"));
      const back = loadPretrained(path.join(dir, "trained"));
      expect(back.device).toBe("cpu");
      expect(Buffer.from(back.params.data.buffer, back.params.data.byteOffset, back.params.data.byteLength).equals(Buffer.from(trained.buffer))).toBe(true);
      // Writing the host view and markParamsChanged() reach the device.
      const w = loaded.param("model.norm.weight").data;
      w.fill(2);
      back.param("model.norm.weight").data.fill(2);
      loaded.markParamsChanged();
      back.markParamsChanged();
      compare(loaded.forward(ids, { returnLogits: true }).logits!.data, back.forward(ids, { returnLogits: true }).logits!.data, "forward", "logits after a host write");
      for (const m of [cpu, loaded, back]) m.dispose();
      trainer.dispose();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("data-parallel on the device: rank 0 of 2 reduces device gradient buckets and ends where one process with the whole batch ends", () => {
    // The whole batch is two halves; rank 1 is played by a CPU model whose gradient of the
    // second half (weighted by the global token count) the stand-in communicator adds to every
    // bucket rank 0 all-reduces on the device, as NCCL's sum of two ranks would.
    const whole = batch(BASE_SEED + 60);
    const half = (t: Tensor, r: number): Tensor => Tensor.from((t.data as Int32Array).slice(r * T, (r + 1) * T), [1, T], "int32");
    const halves = [0, 1].map((r) => ({ ids: half(whole.ids, r), labels: half(whole.labels, r) }));
    const options = { schedule: { type: "constant" as const, learningRate: 1e-2, totalSteps: 1 }, optimizer: { weightDecay: 0.1, maxGradNorm: 0.5 } };
    const single = makeModel("cpu");
    const singleTrainer = new Trainer(single, options);
    const expected = singleTrainer.trainStep([whole]);

    const counted = (labels: Tensor): number => (labels.data as Int32Array).slice(1).filter((l) => l !== -100).length;
    const tokens = counted(halves[0]!.labels) + counted(halves[1]!.labels);
    const peer = makeModel("cpu");
    peer.zeroGrad();
    const peerLoss = peer.forwardBackward(halves[1]!.ids, halves[1]!.labels, { lossWeight: 1 / tokens }).lossSum;
    const peerGrads = Float32Array.from(peer.grads.data);
    const hostSums = [counted(halves[1]!.labels), peerLoss];
    const done = { wait: () => undefined };
    let buckets = 0;
    const standIn = {
      backend: "nccl" as const, rank: 0, worldSize: 2,
      allReduce(data: Float32Array | Float64Array) {
        data[0]! += hostSums.shift()!;
        return done;
      },
      broadcast: () => done,
      barrier: () => done,
      close: async () => undefined,
      allReduceDevice(buffer: DeviceBuffer, count: number) {
        const mine = new Float32Array(count);
        binding.cuda.copyToHost(mine, buffer);
        const begin = (buffer.byteOffset - (gpu.state.grads as DeviceBuffer).byteOffset) / 4;
        for (let i = 0; i < count; i++) mine[i]! += peerGrads[begin + i]!;
        binding.cuda.copyToDevice(buffer, mine);
        buckets++;
        return done;
      },
      broadcastDevice: () => done,
    };
    const gpu = makeModel(device);
    const trainer = new Trainer(gpu, options);
    trainer.distribute(standIn, 0.001);
    const got = trainer.trainStep([halves[0]!]);
    expect(buckets).toBe(trainer.dataParallel!.buckets.length);
    expect(buckets).toBeGreaterThan(1);
    expect(got.tokens).toBe(expected.tokens);
    // Two ranks sum the halves' losses and gradients in another order than one process: close,
    // not bitwise, on either backend (fp32 sums of a few terms, then one AdamW step).
    expectClose([got.loss], [expected.loss], DP_RTOL, "global loss");
    expectClose(gpu.params.data, single.params.data, DP_RTOL, "parameters after the data-parallel step");
    for (const m of [single, peer, gpu]) m.dispose();
    singleTrainer.dispose();
    trainer.dispose();
  });

  it("refuses the features not ported to cuda by name", () => {
    const gpu = makeModel(device);
    const tcpLike = { backend: "tcp", rank: 0, worldSize: 2 } as Communicator;
    expect(() => new DataParallel(gpu, tcpLike)).toThrow(/DataParallel: the model is on "cuda:0": its gradients are reduced on the GPU, which the "tcp" communicator cannot do; use the "nccl" backend/);
    gpu.dispose();
  });
}

/**
 * The cases of FiLM-Ensembles, dropout and MC dropout (inside a describe of the caller's; apart
 * from modelCases so that each file running them on the emulator stays short).
 */
export function probabilisticCases(device: Device, compare: Compare): void {
  it("FiLM-Ensemble: member logits, member and mixture token losses, every gradient with γ's and β's, and generation follow the CPU model", () => {
    const M = 2;
    const cpu = makeFilmModel("cpu", M, { headChunkRows: 5 });
    const gpu = makeFilmModel(device, M, { headChunkRows: 5 });
    expect(gpu.film!.device).toBe(device);
    const { ids, labels } = batch(BASE_SEED + 70);
    const a = cpu.forward(ids, { labels, returnLogits: true });
    const b = gpu.forward(ids, { labels, returnLogits: true });
    expect(b.members).toBe(M);
    compare(b.logits!.data, a.logits!.data, "forward", "FiLM member logits [B, M, T, V]");
    compare([b.loss, b.lossSum], [a.loss, a.lossSum], "forward", "FiLM loss");
    compare(b.memberTokenLosses!.data, a.memberTokenLosses!.data, "forward", "FiLM member token losses");
    compare(b.tokenLosses!.data, a.tokenLosses!.data, "forward", "FiLM mixture token losses");
    cpu.zeroGrad();
    gpu.zeroGrad();
    expect(gpu.film!.grads.data.every((g) => g === 0)).toBe(true);
    cpu.backward({ lossWeight: 0.25 });
    gpu.backward({ lossWeight: 0.25 });
    compareGrads(compare, gpu, cpu, "gradient", "FiLM backward()");
    const next = batch(BASE_SEED + 71);
    compare([gpu.forwardBackward(next.ids, next.labels).loss], [cpu.forwardBackward(next.ids, next.labels).loss], "forward", "FiLM forwardBackward loss");
    compareGrads(compare, gpu, cpu, "gradient", "FiLM accumulated forwardBackward");
    const prompts = [[5, 9, 2], [3, 3, 8, 1]];
    expect(generate(gpu, prompts, { maxNewTokens: 3, eosTokenId: null })).toEqual(generate(cpu, prompts, { maxNewTokens: 3, eosTokenId: null }));
    cpu.dispose();
    gpu.dispose();
  });

  it("2 AdamW steps of a FiLM-Ensemble with dropout: losses, parameters, γ and β, and their moments follow the CPU trainer; its checkpoint resumes on the device", () => {
    const run = (dev: string): { losses: number[]; model: LlamaModel; trainer: Trainer } => {
      const model = makeFilmModel(dev, 2);
      const trainer = new Trainer(model, { schedule: { type: "constant", learningRate: 1e-2, totalSteps: 3 }, optimizer: { weightDecay: 0.1, maxGradNorm: 0.5 } });
      model.setDropout(0.2, trainer.rng);
      const losses = [0, 1].map((s) => trainer.trainStep([batch(BASE_SEED + 80 + s)]).loss);
      return { losses, model, trainer };
    };
    const cpu = run("cpu");
    const gpu = run(device);
    expect(gpu.trainer.rng.offset).toBe(cpu.trainer.rng.offset);
    compare(gpu.losses, cpu.losses, "trained", "FiLM + dropout losses");
    compare(gpu.model.params.data, cpu.model.params.data, "trained", "parameters after 2 steps");
    compare(gpu.model.film!.params.data, cpu.model.film!.params.data, "trained", "FiLM γ, β after 2 steps");
    compare(gpu.trainer.optimizer.filmM!.data, cpu.trainer.optimizer.filmM!.data, "trained", "FiLM exp_avg");
    compare(gpu.trainer.optimizer.filmV!.data, cpu.trainer.optimizer.filmV!.data, "trained", "FiLM exp_avg_sq");
    // A training checkpoint of the device run resumes on the device: γ, β and their moments
    // come back bitwise, and the third step (same kernels, same masks) gives the same bits.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-cuda-film-"));
    try {
      saveTrainingCheckpoint(dir, gpu.trainer);
      const resumed = loadTrainingCheckpoint(dir, { device });
      const model = resumed.trainer.model;
      model.setDropout(model.dropout, resumed.trainer.rng);
      expect(model.film!.device).toBe(device);
      const bits = (t: Tensor): Buffer => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      expect(bits(model.film!.params).equals(bits(gpu.model.film!.params))).toBe(true);
      expect(bits(resumed.trainer.optimizer.filmV!).equals(bits(gpu.trainer.optimizer.filmV!))).toBe(true);
      const next = batch(BASE_SEED + 83);
      expect(resumed.trainer.trainStep([next]).loss).toBe(gpu.trainer.trainStep([next]).loss);
      expect(bits(model.film!.params).equals(bits(gpu.model.film!.params))).toBe(true);
      resumed.trainer.dispose();
      model.dispose();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    for (const r of [cpu, gpu]) {
      r.trainer.dispose();
      r.model.dispose();
    }
  });

  it("dropout in training (recomputed layers redraw the same masks): loss and every gradient follow the CPU model", () => {
    const cpu = makeModel("cpu", { recompute: true });
    const gpu = makeModel(device, { recompute: true });
    const streams = [new RandomStream(BASE_SEED + 90), new RandomStream(BASE_SEED + 90)];
    cpu.setDropout(0.25, streams[0]!);
    gpu.setDropout(0.25, streams[1]!);
    const { ids, labels } = batch(BASE_SEED + 91);
    cpu.zeroGrad();
    gpu.zeroGrad();
    const a = cpu.forwardBackward(ids, labels);
    const b = gpu.forwardBackward(ids, labels);
    compare([b.loss], [a.loss], "forward", "dropout loss");
    compare(b.tokenLosses!.data, a.tokenLosses!.data, "forward", "dropout token losses");
    compareGrads(compare, gpu, cpu, "gradient", "dropout forwardBackward");
    expect(streams[1]!.offset).toBe(streams[0]!.offset);
    cpu.dispose();
    gpu.dispose();
  });

  it("MC dropout: sampled logits, sample and mixture token losses, and generation follow the CPU model", () => {
    const S = 2;
    const models = [makeModel("cpu"), makeModel(device)];
    for (const m of models) {
      m.setDropout(0.2);
      m.setMcDropout({ samples: S, seed: 5 });
    }
    const [cpu, gpu] = models as [LlamaModel, LlamaModel];
    const { ids, labels } = batch(BASE_SEED + 100);
    const a = cpu.forward(ids, { labels, returnLogits: true, sampleKeys: [4, 11] });
    const b = gpu.forward(ids, { labels, returnLogits: true, sampleKeys: [4, 11] });
    expect(b.members).toBe(S);
    compare(b.logits!.data, a.logits!.data, "forward", "MC-dropout sample logits [B, S, T, V]");
    compare(b.memberTokenLosses!.data, a.memberTokenLosses!.data, "forward", "MC-dropout sample token losses");
    compare(b.tokenLosses!.data, a.tokenLosses!.data, "forward", "MC-dropout mixture token losses");
    const prompts = [[5, 9, 2], [3, 3, 8, 1, 4]];
    expect(generate(gpu, prompts, { maxNewTokens: 3, eosTokenId: null })).toEqual(generate(cpu, prompts, { maxNewTokens: 3, eosTokenId: null }));
    cpu.dispose();
    gpu.dispose();
  });
}
