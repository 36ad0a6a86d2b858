// Dev timing: config M generation (128-token prompts, 128 greedy tokens), the whole call
// against prefill plus one token, medians of rounds; decode per step is their difference.
//   npx tsx tools/dev/gen-phase.ts [batch = 8] [rounds = 5]    (MATMUL=bfloat16 for bf16 products)
import { TRAIN_CONFIGS } from "../../bench/train.bench.js";
import { parseLlamaConfig } from "../../src/model/config.js";
import { LlamaModel } from "../../src/model/llama.js";
import { generate } from "../../src/eval/generate.js";

const B = Number(process.argv[2] ?? 8);
const rounds = Number(process.argv[3] ?? 5);
const config = parseLlamaConfig({ ...TRAIN_CONFIGS.find((c) => c.name === "M")!.config, max_position_embeddings: 256, eos_token_id: null });
const model = new LlamaModel(config, { matmul: (process.env.MATMUL ?? "float32") as "float32" | "bfloat16" });
model.initialize(1234);
const prompts = Array.from({ length: B }, (_, b) => Array.from({ length: 128 }, (_, t) => ((b * 128 + t) * 2654435761) % config.vocab_size >>> 0));
const time = (n: number): number => { const t0 = process.hrtime.bigint(); generate(model, prompts, { maxNewTokens: n }); return Number(process.hrtime.bigint() - t0) / 1e9; };
const med = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
time(128);
const full: number[] = [], pre: number[] = [];
for (let r = 0; r < rounds; r++) { full.push(time(128)); pre.push(time(1)); }
const f = med(full), p = med(pre);
console.log(`B=${B} full ${f.toFixed(3)} s (${(B * 128 / f).toFixed(0)} tok/s)  prefill+1 ${p.toFixed(3)} s  decode ${(f - p).toFixed(3)} s = ${((f - p) / 127 * 1e3).toFixed(2)} ms/step`);
