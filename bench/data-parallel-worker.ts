/**
 * `node --import tsx bench/data-parallel-worker.ts allreduce|step WORLD [MIB ...]`: started
 * without RANK, it launches WORLD copies of itself (src/train/launch.ts); each copy joins the
 * process group and rank 0 prints one JSON object.
 *
 * allreduce: float32 all-reduces of each size in MiB from native memory (the gradients' path:
 * staged through shared memory), median of 5 after a warm-up, each after a barrier:
 * {results: [{mib, seconds, algbw_gbs}]}. step: data-parallel training steps of config S
 * (bench/train.bench.ts) with B / WORLD rows per rank, median of 3 after a warm-up:
 * {tokens_per_second} of the global batch, wait_ms: how long a step waits for the gradient
 * all-reduce once its backward is done (the part that did not overlap), and allreduce_ms: the
 * same buckets all-reduced with nothing to overlap (medians).
 */
import { parseLlamaConfig } from "../src/model/config.js";
import { LlamaModel } from "../src/model/llama.js";
import { Tensor } from "../src/tensor.js";
import { distributedEnv, initProcessGroup } from "../src/train/comm.js";
import { freePort, launchWorkers } from "../src/train/launch.js";
import { Trainer } from "../src/train/trainer.js";
import { median } from "./common.js";
import { TRAIN_CONFIGS } from "./train.bench.js";

const [mode, worldText, ...sizes] = process.argv.slice(2);
const world = Number(worldText);
if ((mode !== "allreduce" && mode !== "step") || !(world >= 1)) throw new Error("usage: data-parallel-worker.ts allreduce|step WORLD [MIB ...]");
const env = distributedEnv();
if (env === null) {
  await launchWorkers({ nprocPerNode: world, masterAddr: "127.0.0.1", masterPort: await freePort(), command: process.execPath, args: [...process.execArgv, process.argv[1]!, ...process.argv.slice(2)] });
} else {
  const comm = await initProcessGroup(env);
  const time = (fn: () => void, runs: number): number => {
    fn();
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      comm.barrier().wait();
      const t0 = process.hrtime.bigint();
      fn();
      times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    return median(times);
  };
  let result: unknown;
  if (mode === "allreduce") {
    result = {
      results: sizes.map(Number).map((mib) => {
        const x = Tensor.empty([Math.round((mib * 2 ** 20) / 4)]);
        (x.data as Float32Array).fill(env.rank + 1);
        const seconds = time(() => comm.allReduce(x.data as Float32Array).wait(), 5);
        x.dispose();
        return { mib, seconds, algbw_gbs: (mib * 2 ** 20) / seconds / 1e9 };
      }),
    };
  } else {
    const S = TRAIN_CONFIGS[0]!;
    const model = new LlamaModel(parseLlamaConfig({ ...S.config, max_position_embeddings: S.T }));
    model.initialize(1234);
    const trainer = new Trainer(model, { schedule: { type: "constant", learningRate: 1e-4, totalSteps: 1 << 30 }, optimizer: { weightDecay: 0.1, maxGradNorm: 1 } });
    trainer.distribute(comm);
    const rows = S.B / world;
    const ids = Tensor.empty([rows, S.T], "int32");
    const data = ids.data as Int32Array;
    for (let i = 0; i < data.length; i++) data[i] = ((i + env.rank * data.length) * 2654435761) % model.config.vocab_size >>> 0;
    const dp = trainer.dataParallel!;
    const finish = dp.finishBackward.bind(dp);
    const waits: number[] = [];
    dp.finishBackward = () => {
      const t0 = process.hrtime.bigint();
      finish();
      waits.push(Number(process.hrtime.bigint() - t0) / 1e6);
    };
    const tokensPerSecond = (S.B * S.T) / time(() => void trainer.trainStep([{ ids, labels: ids }]), 3);
    const waitMs = median(waits.slice(1));
    const allreduceMs =
      time(() => {
        dp.startBackward();
        finish();
      }, 3) * 1e3;
    result = { tokens_per_second: tokensPerSecond, wait_ms: waitMs, allreduce_ms: allreduceMs };
    trainer.dispose();
    model.dispose();
    ids.dispose();
  }
  await comm.close();
  if (env.rank === 0) console.log(JSON.stringify(result));
}
