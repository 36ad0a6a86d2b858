// Dev A/B: one decode step's products (config M: 8 layers and the head) with the weights in
// binding.alloc memory (2 MiB pages where the system grants them) against plain Float32Arrays
// (4 KiB pages), alternated; medians.
//   npx tsx tools/dev/decode-gemm-ab.ts [rows = 8]
import { TRAIN_CONFIGS } from "../../bench/train.bench.js";
import { parseLlamaConfig } from "../../src/model/config.js";
import { binding } from "../../src/native.js";

const M = Number(process.argv[2] ?? 8);
const { hidden_size: C, intermediate_size: I, vocab_size: V, num_hidden_layers: L } = parseLlamaConfig(TRAIN_CONFIGS.find((c) => c.name === "M")!.config);
const shapes: [number, number][] = [];
for (let l = 0; l < L; l++) shapes.push([3 * C, C], [C, C], [2 * I, C], [C, I]);
shapes.push([V, C]);
const init = (a: Float32Array): Float32Array => { for (let i = 0; i < a.length; i++) a[i] = Math.sin(i * 0.37) * 0.1; return a; };
const huge = shapes.map(([N, K]) => init(new Float32Array(binding.alloc(4 * N * K, false), 0, N * K)));
const plain = shapes.map(([N, K]) => init(new Float32Array(N * K)));
const x = init(new Float32Array(M * 2 * I)), y = new Float32Array(M * V);
const bytes = shapes.reduce((s, [N, K]) => s + 4 * N * K, 0);
const step = (w: Float32Array[]): number => { const t0 = process.hrtime.bigint(); shapes.forEach(([N, K], i) => binding.sgemm(false, true, M, N, K, 1, x, K, w[i]!, K, 0, y, N)); return Number(process.hrtime.bigint() - t0) / 1e6; };
for (let r = 0; r < 10; r++) { step(huge); step(plain); }
const th: number[] = [], tp: number[] = [];
for (let r = 0; r < 60; r++) { th.push(step(huge)); tp.push(step(plain)); }
const med = (t: number[]): number => t.sort((a, b) => a - b)[t.length >> 1]!;
console.log(`M=${M}: huge pages ${med(th).toFixed(2)} ms (${(bytes / med(th) / 1e6).toFixed(1)} GB/s), 4K pages ${med(tp).toFixed(2)} ms (${(bytes / med(tp) / 1e6).toFixed(1)} GB/s)`);
