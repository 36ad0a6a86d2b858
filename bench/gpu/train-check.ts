/**
 * node --import tsx bench/gpu/train-check.ts [--steps N] [--json FILE] [--smoke]
 *
 * The GPU check's training stage: trains config M (bench/train.bench.ts, B=4, T=512) for N
 * steps (default 5) on cuda:0 and on the CPU from the same initialisation on the same batch,
 * once with fp32 matrix products and once with bf16 ones, and compares each step's loss and
 * gradient norm between the devices. One fixed batch (memorised, so the loss falls fast)
 * and a constant learning rate of 1e-3 make every step move the parameters. Exit status 1
 * when a comparison is outside its tolerance, a loss is not finite, or the loss did not fall.
 * On the emulator (or with --smoke) a tiny config runs instead.
 */
import { renameSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { binding } from "../../src/native.js";
import { cudaInfo } from "../../src/device.js";
import type { MatmulPrecision } from "../../src/model/llama.js";
import { makeTraining, randomBatches, trainingSetup } from "./training.js";

// fp32 on both devices: the same math summed in other orders (cuBLAS, the kernels' block
// reductions, fast exp on the GPU), about 1e-6 relative per op, grown over a few AdamW steps.
const FP32_LOSS_RTOL = 1e-4;
const FP32_GRAD_NORM_RTOL = 1e-3;
// bf16 products: both devices round the same fp32 values to bf16, but those values differ by
// fp32 roundoff, so an element near a rounding boundary moves by 2^-8 on one device only.
const BF16_LOSS_RTOL = 2e-3;
const BF16_GRAD_NORM_RTOL = 2e-2;
const LEARNING_RATE = 1e-3;

const { values } = parseArgs({
  options: {
    steps: { type: "string", default: "5" },
    json: { type: "string" },
    smoke: { type: "boolean", default: false },
  },
});
const steps = Number(values.steps);
if (!Number.isInteger(steps) || steps < 2) throw new RangeError("train-check: --steps must be an integer >= 2");
const info = cudaInfo();
if (info.devices.length === 0) {
  console.error(`train-check: no CUDA device is usable: ${info.unavailableReason}`);
  process.exit(1);
}
const setup = trainingSetup(values.smoke || info.emulated);
const [batch] = randomBatches(setup, 1, 3);

interface Run {
  losses: number[];
  gradNorms: number[];
  secondsPerStep: number;
}

function train(matmul: MatmulPrecision, device: string): Run {
  const { trainer, dispose } = makeTraining(setup, matmul, device, LEARNING_RATE);
  try {
    const losses: number[] = [];
    const gradNorms: number[] = [];
    const t0 = process.hrtime.bigint();
    for (let s = 0; s < steps; s++) {
      const r = trainer.trainStep([batch!]);
      losses.push(r.loss);
      gradNorms.push(r.gradNorm);
    }
    if (device !== "cpu") binding.cuda.synchronize(0);
    return { losses, gradNorms, secondsPerStep: Number(process.hrtime.bigint() - t0) / 1e9 / steps };
  } finally {
    dispose();
  }
}

const maxRelDiff = (a: readonly number[], b: readonly number[]): number => Math.max(...a.map((x, i) => Math.abs(x - b[i]!) / Math.abs(b[i]!)));

console.log(`train-check: ${setup.label}, ${steps} steps on one batch, lr ${LEARNING_RATE}, cuda:0 ${info.devices[0]!.name}${info.emulated ? " [emulated]" : ""} vs cpu`);
const results = [];
let pass = true;
for (const matmul of ["float32", "bfloat16"] as const) {
  const [lossTol, normTol] = matmul === "float32" ? [FP32_LOSS_RTOL, FP32_GRAD_NORM_RTOL] : [BF16_LOSS_RTOL, BF16_GRAD_NORM_RTOL];
  let result: Record<string, unknown>;
  try {
    const cuda = train(matmul, "cuda:0");
    const cpu = train(matmul, "cpu");
    const lossDiff = maxRelDiff(cuda.losses, cpu.losses);
    const normDiff = maxRelDiff(cuda.gradNorms, cpu.gradNorms);
    const problems: string[] = [];
    if (![...cuda.losses, ...cpu.losses].every(Number.isFinite)) problems.push("a loss is not finite");
    if (!(lossDiff <= lossTol)) problems.push(`losses differ by ${lossDiff.toExponential(2)} relative (tolerance ${lossTol})`);
    if (!(normDiff <= normTol)) problems.push(`gradient norms differ by ${normDiff.toExponential(2)} relative (tolerance ${normTol})`);
    for (const [name, run] of [["cuda", cuda], ["cpu", cpu]] as const) {
      if (!(run.losses.at(-1)! < run.losses[0]!)) problems.push(`the ${name} loss did not fall (${run.losses[0]} → ${run.losses.at(-1)})`);
    }
    result = { matmul, cuda, cpu, maxLossRelDiff: lossDiff, maxGradNormRelDiff: normDiff, lossTolerance: lossTol, gradNormTolerance: normTol, problems, pass: problems.length === 0 };
    console.log(`  ${matmul} matmul: losses cuda ${cuda.losses.map((l) => l.toFixed(5)).join(" ")}`);
    console.log(`  ${" ".repeat(matmul.length)}                cpu  ${cpu.losses.map((l) => l.toFixed(5)).join(" ")}`);
    console.log(`    max relative difference: loss ${lossDiff.toExponential(2)} (tolerance ${lossTol}), gradient norm ${normDiff.toExponential(2)} (tolerance ${normTol}); ` +
      `${(cuda.secondsPerStep * 1e3).toFixed(1)} ms/step on cuda, ${(cpu.secondsPerStep * 1e3).toFixed(1)} ms/step on cpu: ${problems.length ? `FAILED: ${problems.join("; ")}` : "ok"}`);
  } catch (e) {
    const message = (e as Error).stack ?? String(e);
    result = { matmul, problems: [message], pass: false };
    console.log(`  ${matmul} matmul: FAILED: ${message}`);
  }
  pass &&= result.pass === true;
  results.push(result);
}

if (values.json) {
  const tmp = `${values.json}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify({ setup: setup.label, steps, learningRate: LEARNING_RATE, device: info.devices[0]!.name, emulated: info.emulated, results, pass }, null, 2) + "\n");
  renameSync(tmp, values.json);
}
process.exitCode = pass ? 0 : 1;
