// Dev profile: wall time per binding function (sgemm split by M) during one config M
// generation, and the time spent outside the binding (JS, copies, sampling).
//   npx tsx tools/dev/gen-ops.ts [batch = 8]    (BEAMS=n: beam search)
import { binding } from "../../src/native.js";
import { TRAIN_CONFIGS } from "../../bench/train.bench.js";
import { parseLlamaConfig } from "../../src/model/config.js";
import { LlamaModel } from "../../src/model/llama.js";
import { generate } from "../../src/eval/generate.js";

const B = Number(process.argv[2] ?? 8);
const config = parseLlamaConfig({ ...TRAIN_CONFIGS.find((c) => c.name === "M")!.config, max_position_embeddings: 256, eos_token_id: null });
const model = new LlamaModel(config, { matmul: "float32" });
model.initialize(1234);
const prompts = Array.from({ length: B }, (_, b) => Array.from({ length: 128 }, (_, t) => ((b * 128 + t) * 2654435761) % config.vocab_size >>> 0));
const acc = new Map<string, { t: number; n: number }>();
let on = false;
const b = binding as unknown as Record<string, unknown>;
for (const name of Object.keys(b)) {
  const f = b[name];
  if (typeof f !== "function" || name === "info") continue;
  b[name] = (...args: unknown[]) => {
    if (!on) return (f as (...a: unknown[]) => unknown)(...args);
    const t0 = process.hrtime.bigint();
    const r = (f as (...a: unknown[]) => unknown)(...args);
    const key = name === "sgemm" ? `sgemm M=${args[2]}` : name;
    const e = acc.get(key) ?? { t: 0, n: 0 };
    e.t += Number(process.hrtime.bigint() - t0) / 1e6; e.n++;
    acc.set(key, e);
    return r;
  };
}
generate(model, prompts, { maxNewTokens: 128, numBeams: Number(process.env.BEAMS ?? 1) });
on = true;
const t0 = process.hrtime.bigint();
generate(model, prompts, { maxNewTokens: 128, numBeams: Number(process.env.BEAMS ?? 1) });
const total = Number(process.hrtime.bigint() - t0) / 1e6;
let sum = 0;
for (const [k, v] of [...acc].sort((x, y) => y[1].t - x[1].t)) { sum += v.t; console.log(`${k.padEnd(28)} ${v.t.toFixed(1).padStart(8)} ms  ${String(v.n).padStart(6)} calls  ${(v.t / v.n * 1e3).toFixed(1)} us/call`); }
console.log(`total ${total.toFixed(1)} ms, in binding ${sum.toFixed(1)} ms, outside ${(total - sum).toFixed(1)} ms`);
