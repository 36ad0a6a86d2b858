/**
 * `npx tsx tools/transformers-check/prepare.ts OUT`: the growlm side of the transformers
 * check (check.py runs on a machine with transformers, here the device machine). Writes
 * into OUT three growlm-saved models (float32 single file; bfloat16 in several shards;
 * tied GQA with the byte-level tokenizer) with growlm's logits for fixed token ids, and
 * growlm's encodings of test strings with the byte-level and the fixture tokenizers.
 */
import fs from "node:fs";
import path from "node:path";

import { parseLlamaConfig } from "../../src/model/config.js";
import { LlamaModel } from "../../src/model/llama.js";
import { savePretrained } from "../../src/model/pretrained.js";
import { byteLevelTokenizer, loadTokenizer, saveTokenizer } from "../../src/io/tokenizer.js";
import { Tensor } from "../../src/tensor.js";

const out = process.argv[2];
if (!out) throw new Error("usage: prepare.ts OUT");
fs.mkdirSync(out, { recursive: true });

const TEXTS = ["Hello world", " leading space", "multiple   spaces\nand\ttabs", "unicode: café, 日本語, 🙂", "", "<s> literal", "numbers 12345 and punctuation!?"];

const models = [
  { name: "f32", dtype: "float32" as const, shard: "5GB", config: { vocab_size: 97, hidden_size: 64, intermediate_size: 112, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 4, max_position_embeddings: 64 } },
  { name: "bf16_sharded", dtype: "bfloat16" as const, shard: "20KB", config: { vocab_size: 97, hidden_size: 64, intermediate_size: 112, num_hidden_layers: 3, num_attention_heads: 8, num_key_value_heads: 2, max_position_embeddings: 64, rope_theta: 500000, rms_norm_eps: 1e-5 } },
  { name: "tied_byte", dtype: "float32" as const, shard: "5GB", config: { vocab_size: 259, hidden_size: 48, intermediate_size: 80, num_hidden_layers: 2, num_attention_heads: 6, num_key_value_heads: 2, max_position_embeddings: 64, tie_word_embeddings: true, bos_token_id: 256, eos_token_id: 257, pad_token_id: 258 } },
];

const expected: Record<string, unknown> = {};
for (const m of models) {
  const model = new LlamaModel(parseLlamaConfig(m.config));
  model.initialize(11);
  // Norm weights away from 1 so that their use is checked.
  for (const e of model.layout.entries) {
    if (e.kind.endsWith("norm")) for (let i = 0; i < e.numel; i++) model.params.data[e.offset + i] = 1 + 0.25 * Math.sin(i + e.offset);
  }
  if (m.dtype === "bfloat16") {
    // What transformers will hold: the weights rounded to bf16, computed in float32.
    const bits = new Uint16Array(model.params.numel);
    for (let i = 0; i < bits.length; i++) {
      const u = new Uint32Array(new Float32Array([model.params.data[i]!]).buffer)[0]!;
      bits[i] = (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
    }
    for (let i = 0; i < bits.length; i++) model.params.data[i] = new Float32Array(new Uint32Array([bits[i]! << 16]).buffer)[0]!;
  }
  model.markParamsChanged();
  const dir = path.join(out, m.name);
  savePretrained(model, dir, { dtype: m.dtype, maxShardSize: m.shard });
  if (m.name === "tied_byte") await saveTokenizer(dir, byteLevelTokenizer());
  const V = m.config.vocab_size;
  const ids = Array.from({ length: 2 * 10 }, (_, i) => (i * 37 + 5) % V);
  const r = model.forward(Tensor.from(ids, [2, 10], "int32"), { returnLogits: true });
  expected[m.name] = { ids: [ids.slice(0, 10), ids.slice(10)], logits: Array.from(r.logits!.data) };
  model.dispose();
}

const tokenizers: Record<string, { dir: string; encodings: number[][]; decodings: string[] }> = {};
const here = path.dirname(new URL(import.meta.url).pathname);
for (const [name, dir] of [
  ["tied_byte", path.join(out, "tied_byte")],
  ["llama-legacy", path.join(here, "..", "..", "test", "fixtures", "tokenizers", "llama-legacy")],
  ["gpt2", path.join(here, "..", "..", "test", "fixtures", "tokenizers", "gpt2")],
] as const) {
  const tokenizer = await loadTokenizer(dir);
  const copy = path.join(out, `tokenizer-${name}`);
  fs.cpSync(dir, copy, { recursive: true });
  const encodings = TEXTS.map((t) => tokenizer.encode(t));
  tokenizers[name] = { dir: path.basename(copy), encodings, decodings: encodings.map((ids) => tokenizer.decode(ids, { skipSpecialTokens: true })) };
}
fs.writeFileSync(path.join(out, "expected.json"), JSON.stringify({ texts: TEXTS, models: expected, tokenizers }));
console.log(`wrote ${out}`);
