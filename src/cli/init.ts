/** growlm init: a randomly initialised LLaMA model written as a Hugging Face directory. */
import fs from "node:fs";
import { parseArgs } from "node:util";

import { GrowlmError } from "../errors.js";
import { byteLevelTokenizer, loadTokenizer, saveTokenizer } from "../io/tokenizer.js";
import { parseLlamaConfig } from "../model/config.js";
import { LlamaModel } from "../model/llama.js";
import { savePretrained } from "../model/pretrained.js";
import type { Command } from "./command.js";
import { choiceFlag, integerFlag, required } from "./flags.js";

export const init: Command = {
  name: "init",
  summary: "write a randomly initialised model (normal(0, initializer_range), norms 1) as a Hugging Face directory",
  usage:
    "growlm init --config CFG.json --out DIR [--seed S] [--dtype float32|bfloat16] [--max_shard_size 5GB]\n" +
    "                   [--tokenizer byte|DIR]\n\n" +
    "  CFG.json holds LlamaConfig fields (config.json names; missing ones take transformers' defaults).\n" +
    "  --tokenizer byte writes growlm's byte-level tokenizer (259 ids: vocab_size must be >= 259);\n" +
    "  --tokenizer DIR copies the tokenizer of a Hugging Face directory.",
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        config: { type: "string" },
        out: { type: "string" },
        seed: { type: "string", default: "42" },
        dtype: { type: "string", default: "float32" },
        max_shard_size: { type: "string", default: "5GB" },
        tokenizer: { type: "string" },
      },
    });
    const op = "growlm init";
    const configFile = required("init", "config", values.config);
    const out = required("init", "out", values.out);
    const seed = integerFlag("init", "seed", values.seed!);
    const dtype = choiceFlag("init", "dtype", values.dtype!, ["float32", "bfloat16"] as const);
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(configFile, "utf8"));
    } catch (err) {
      throw new GrowlmError(op, `cannot read ${configFile}: ${(err as Error).message}`, { cause: err });
    }
    const tokenizer = values.tokenizer === undefined ? null : values.tokenizer === "byte" ? byteLevelTokenizer() : await loadTokenizer(values.tokenizer);
    const vocabSize = parseLlamaConfig(raw, configFile).vocab_size;
    if (tokenizer && tokenizer.vocabSize > vocabSize) {
      throw new GrowlmError(op, `the tokenizer has ${tokenizer.vocabSize} ids but vocab_size is ${vocabSize}`);
    }
    if (tokenizer) {
      // The special-token ids come from the tokenizer; a config that names others is a mistake.
      const fields = raw as Record<string, unknown>; // an object: parseLlamaConfig accepted it
      for (const [key, id] of [["bos_token_id", tokenizer.bosId], ["eos_token_id", tokenizer.eosId], ["pad_token_id", tokenizer.padId]] as const) {
        if (key in fields && fields[key] !== id) {
          throw new GrowlmError(op, `${configFile} sets ${key} = ${JSON.stringify(fields[key])} but the tokenizer's is ${JSON.stringify(id)}`);
        }
        fields[key] = id;
      }
    }
    const config = parseLlamaConfig(raw, configFile);
    const model = new LlamaModel(config);
    try {
      model.initialize(seed);
      const saved = savePretrained(model, out, { dtype, maxShardSize: values.max_shard_size! });
      if (tokenizer) await saveTokenizer(out, tokenizer);
      console.log(
        `wrote ${out}: ${model.layout.parameterCount.toLocaleString("en-US")} parameters, ${saved.weightFiles.length} weight file(s), ${dtype}, seed ${seed}`,
      );
    } finally {
      model.dispose();
    }
  },
};
