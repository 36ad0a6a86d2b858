/**
 * `node --import tsx bench/train-memory.ts S|M float32|bfloat16`: trains a few steps of a
 * config of bench/train.bench.ts in this fresh process and prints its peak resident set in
 * bytes (the memory row of the train suite): VmHWM, because ru_maxrss (resourceUsage().maxRSS)
 * carries over the high-water mark of the process that spawned this one.
 */
import { readFileSync } from "node:fs";

import { TRAIN_CONFIGS, makeTrainStep } from "./train.bench.js";

const [name, matmul] = process.argv.slice(2);
const bench = TRAIN_CONFIGS.find((c) => c.name === name);
if (!bench || (matmul !== "float32" && matmul !== "bfloat16")) {
  throw new Error("usage: train-memory.ts S|M float32|bfloat16");
}
const { step } = makeTrainStep(bench, matmul);
for (let i = 0; i < 3; i++) step();
const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
console.log(hwm ? Number(hwm[1]) * 1024 : process.resourceUsage().maxRSS * 1024);
