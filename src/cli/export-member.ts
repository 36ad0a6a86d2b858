/** growlm export-member: one FiLM-Ensemble member as a model directory (src/probabilistic/export.ts). */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import { writeFileAtomic } from "../io/atomic.js";
import { loadPretrained, savePretrained } from "../model/pretrained.js";
import { EXPORT_FORMATS, exportMember, maxAbsBeta, memberDeviation } from "../probabilistic/export.js";
import { Tensor } from "../tensor.js";
import { binding } from "../native.js";
import type { Command } from "./command.js";
import { choiceFlag, integerFlag, required } from "./flags.js";

/** Probe sequences of the deviation check: this many rows of at most this many random tokens. */
const PROBE_ROWS = 4;
const PROBE_TOKENS = 32;

export const exportMemberCommand: Command = {
  name: "export-member",
  summary: "write one member of a FiLM-Ensemble as a plain LLaMA checkpoint (or as a one-member ensemble)",
  usage:
    "growlm export-member --model DIR --member M --out DIR2 [--format llama|film] [--dtype float32|bfloat16]\n\n" +
    "  --format llama (default): a plain Hugging Face LLaMA directory; the member's γ is folded into the norm\n" +
    "  weights and its β is dropped (an RMSNorm has no bias: exact only where β = 0). OUT/export_member.json\n" +
    "  records the largest |β| and the measured deviation from the member (mean KL, largest log-prob difference)\n" +
    "  on random probe sequences.\n" +
    "  --format film: the member exactly, as a FiLM-Ensemble of size 1 (growlm reads it; transformers reads the\n" +
    "  shared weights only).",
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: "string" },
        member: { type: "string" },
        out: { type: "string" },
        format: { type: "string", default: "llama" },
        dtype: { type: "string", default: "float32" },
      },
    });
    const dir = required("export-member", "model", values.model);
    const out = required("export-member", "out", values.out);
    const member = integerFlag("export-member", "member", required("export-member", "member", values.member));
    const format = choiceFlag("export-member", "format", values.format!, EXPORT_FORMATS);
    const dtype = choiceFlag("export-member", "dtype", values.dtype!, ["float32", "bfloat16"] as const);
    const ensemble = loadPretrained(dir);
    try {
      const exported = exportMember(ensemble, member, format);
      try {
        const beta = maxAbsBeta(ensemble.film!, member);
        const T = Math.min(PROBE_TOKENS, ensemble.config.max_position_embeddings);
        const probe = new Float32Array(PROBE_ROWS * T);
        binding.rngUniform(probe, probe.length, 0, 0, 0, ensemble.config.vocab_size);
        const ids = Tensor.from(Array.from(probe, (u) => Math.min(ensemble.config.vocab_size - 1, Math.floor(u))), [PROBE_ROWS, T], "int32");
        const deviation = memberDeviation(ensemble, member, exported, ids);
        ids.dispose();
        savePretrained(exported, out, { dtype });
        for (const name of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]) {
          if (fs.existsSync(path.join(dir, name))) fs.copyFileSync(path.join(dir, name), path.join(out, name));
        }
        const record = {
          source: path.resolve(dir),
          member,
          ensemble_size: ensemble.film!.ensembleSize,
          format,
          gamma: format === "llama" ? "folded into the norm weights" : "kept (film.safetensors)",
          beta: format === "llama" ? (beta === 0 ? "zero: nothing dropped" : "dropped (an RMSNorm has no bias)") : "kept (film.safetensors)",
          max_abs_beta: beta,
          deviation: { probe_positions: deviation.positions, mean_kl: deviation.meanKl, max_abs_logprob_diff: deviation.maxAbsLogprobDiff },
        };
        writeFileAtomic("growlm export-member", path.join(out, "export_member.json"), `${JSON.stringify(record, null, 2)}\n`);
        console.log(`wrote member ${member} of ${dir} to ${out} (${format})`);
        console.log(`  largest |β| ${beta.toExponential(3)}${format === "llama" && beta > 0 ? " (dropped)" : ""}; mean KL to the member ${deviation.meanKl.toExponential(3)} nats over ${deviation.positions} probe positions`);
      } finally {
        exported.dispose();
      }
    } finally {
      ensemble.dispose();
    }
  },
};
