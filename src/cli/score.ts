/** growlm score: per-token log-probabilities and mean NLL of token sequences. */
import fs from "node:fs";
import { parseArgs } from "node:util";

import { GrowlmError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { loadPretrained } from "../model/pretrained.js";
import { scoreSequences } from "../model/score.js";
import type { Command } from "./command.js";
import { integerFlag, required } from "./flags.js";

export const score: Command = {
  name: "score",
  summary: "log-probability of every next token of token-id sequences under a model",
  usage:
    "growlm score --model DIR --ids IDS.json --out OUT.json [--max_batch_tokens 8192] [--bf16] [--device cpu|cuda|cuda:N]\n\n" +
    '  IDS.json: a JSON list of token-id lists. OUT.json: {"loss": [mean next-token NLL per sequence,\n' +
    '  null when shorter than 2 tokens], "token_logprobs": [[log p of each actual next token]]}.',
  run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: "string" },
        ids: { type: "string" },
        out: { type: "string" },
        max_batch_tokens: { type: "string", default: "8192" },
        bf16: { type: "boolean", default: false },
        device: { type: "string", default: "cpu" },
      },
    });
    const op = "growlm score";
    const dir = required("score", "model", values.model);
    const idsFile = required("score", "ids", values.ids);
    const out = required("score", "out", values.out);
    const maxBatchTokens = integerFlag("score", "max_batch_tokens", values.max_batch_tokens!, 1);
    let sequences: unknown;
    try {
      sequences = JSON.parse(fs.readFileSync(idsFile, "utf8"));
    } catch (err) {
      throw new GrowlmError(op, `cannot read ${idsFile}: ${(err as Error).message}`, { cause: err });
    }
    if (!Array.isArray(sequences) || !sequences.every((s) => Array.isArray(s))) {
      throw new GrowlmError(op, `${idsFile} must hold a JSON list of token-id lists`);
    }
    const model = loadPretrained(dir, { matmul: values.bf16 ? "bfloat16" : "float32", device: values.device });
    try {
      const result = scoreSequences(model, sequences as number[][], { maxBatchTokens });
      const json = JSON.stringify({ loss: result.loss.map((l) => (Number.isNaN(l) ? null : l)), token_logprobs: result.tokenLogprobs });
      writeFileAtomic(op, out, `${json}\n`);
    } finally {
      model.dispose();
    }
  },
};
