// Dev A/B: one decode step's products (config M: 8 layers and the head, cold weights) through
// the few-row path (A·Bᵀ, B = weights [N, K]) against the packed path (the same product as A·B
// with the weights stored [K, N]), alternated; medians per row count.
//   npx tsx tools/dev/decode-gemm-paths.ts [rows,rows,... = 8,16,24,32]    (MATMUL=bfloat16: bf16 products)
import { TRAIN_CONFIGS } from "../../bench/train.bench.js";
import { parseLlamaConfig } from "../../src/model/config.js";
import { binding } from "../../src/native.js";

const { hidden_size: C, intermediate_size: I, vocab_size: V, num_hidden_layers: L } = parseLlamaConfig(TRAIN_CONFIGS.find((c) => c.name === "M")!.config);
const shapes: [number, number][] = [];
for (let l = 0; l < L; l++) shapes.push([3 * C, C], [C, C], [2 * I, C], [C, I]);
shapes.push([V, C]);
const alloc = (n: number): Float32Array => new Float32Array(binding.alloc(4 * n, false), 0, n);
const nt = shapes.map(([N, K]) => { const w = alloc(N * K); for (let i = 0; i < w.length; i++) w[i] = ((i * 7919) % 1000) * 1e-4; return w; });
const nn = shapes.map(([N, K], s) => { const w = alloc(N * K); for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) w[k * N + n] = nt[s]![n * K + k]!; return w; });
const x = alloc(64 * 2 * I), y = alloc(64 * V);
for (let i = 0; i < x.length; i++) x[i] = Math.sin(i);
const bf16 = process.env.MATMUL === "bfloat16";
if (process.env.BF16DOT === "0") binding.setBf16Dot(false);
// bf16: the high halves of the fp32 values (any bits do for timing).
const half = (a: Float32Array): Uint16Array => new Uint16Array(a.buffer, a.byteOffset, a.length * 2).filter((_, i) => i % 2 === 1);
const [ntH, nnH, xH] = bf16 ? [nt.map(half), nn.map(half), half(x)] : [[], [], new Uint16Array(0)];
const bytes = shapes.reduce((s, [N, K]) => s + (bf16 ? 2 : 4) * N * K, 0);
const step = (M: number, rows: boolean): number => {
  const t0 = process.hrtime.bigint();
  shapes.forEach(([N, K], s) => {
    const [ldb, w] = rows ? [K, bf16 ? ntH[s]! : nt[s]!] : [N, bf16 ? nnH[s]! : nn[s]!];
    if (bf16) binding.gemmBf16(false, rows, M, N, K, 1, xH, K, w as Uint16Array, ldb, 0, y, N);
    else binding.sgemm(false, rows, M, N, K, 1, x, K, w as Float32Array, ldb, 0, y, N);
  });
  return Number(process.hrtime.bigint() - t0) / 1e6;
};
const med = (t: number[]): number => t.sort((a, b) => a - b)[t.length >> 1]!;
for (const M of (process.argv[2] ?? "8,16,24,32").split(",").map(Number)) {
  const a: number[] = [], b: number[] = [];
  for (let r = 0; r < 25; r++) { a.push(step(M, true)); b.push(step(M, false)); }
  console.log(`M=${M}: A·Bᵀ (few-row path up to its limit) ${med(a).toFixed(2)} ms (${(bytes / med(a) / 1e6).toFixed(1)} GB/s), A·B packed ${med(b).toFixed(2)} ms`);
}
