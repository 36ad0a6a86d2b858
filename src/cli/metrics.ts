/** growlm metrics: BLEU, sacreBLEU, ROUGE and SARI of predictions, as the Python references compute them. */
import path from "node:path";
import { parseArgs } from "node:util";

import { GrowlmError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { readJsonlInputs, readStudyPredictions, readTextInputs, type MetricInputs } from "../eval/metrics/inputs.js";
import type { SmoothMethod } from "../eval/metrics/sacrebleu.js";
import { computeMetrics, defaultMetrics, parseMetricNames } from "../eval/metrics/suite.js";
import type { Command } from "./command.js";
import { choiceFlag, integerFlag } from "./flags.js";

const OP = "growlm metrics";

export const metrics: Command = {
  name: "metrics",
  summary: "BLEU, sacreBLEU, ROUGE and SARI of predictions, agreeing with evaluate, sacrebleu, rouge_score and EASSE",
  usage:
    "growlm metrics [--metric bleu,sacrebleu,sentence_bleu,rouge,sari,easse_sari] INPUT [options] [--out metrics.json]\n\n" +
    "INPUT is one of:\n" +
    "  --predictions P.txt --references R.txt [--references R2.txt ...] [--sources S.txt]\n" +
    "      one sentence a line; line i of every references file is a reference of prediction i\n" +
    '  --input F.jsonl          one object a line: {"prediction": str, "references": [str, ...], "source": str}\n' +
    "  --predictions predictions.jsonl   (no --references) the original study's prediction file: scores\n" +
    "      `prediction` against `output`; SARI from src_info.normal_sentence / simple_sentence where present;\n" +
    "      writes metrics.json beside it unless --out is given\n\n" +
    "Without --metric: bleu, sacrebleu, rouge, and sari, easse_sari when there are sources.\n" +
    "Prints one JSON object keyed by metric name, with the keys the Python library returns:\n" +
    "  bleu (evaluate, 0-1): bleu, precisions, brevity_penalty, length_ratio, translation_length, reference_length\n" +
    "  sacrebleu (corpus, 0-100): score, counts, totals, precisions, bp, sys_len, ref_len, signature\n" +
    "  sentence_bleu (sacreBLEU, 0-100): scores, mean\n" +
    "  rouge (rouge_score via evaluate, 0-1): rouge1, rouge2, rougeL, rougeLsum (mean F-measure)\n" +
    "  sari (evaluate, 0-100): sari, variant        easse_sari (0-100): sari, add, keep, del, variant\n\n" +
    "options:\n" +
    "  --use_stemmer            Porter-stem ROUGE tokens (rouge_score's use_stemmer)\n" +
    "  --use_aggregator false   per-example ROUGE F-measures instead of means\n" +
    "  --max_order N            BLEU n-gram order (default 4; bleu and sacrebleu)\n" +
    "  --smooth                 evaluate bleu's Lin & Och smoothing\n" +
    "  --smooth_method M        sacreBLEU smoothing: exp (default), floor, add-k, none; --smooth_value V\n" +
    "  --lowercase              sacreBLEU on lowercased text\n" +
    "  --tokenize 13a|none      sacreBLEU and EASSE tokenizer (default 13a)",
  run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        metric: { type: "string" },
        predictions: { type: "string" },
        references: { type: "string", multiple: true },
        sources: { type: "string" },
        input: { type: "string" },
        use_stemmer: { type: "boolean", default: false },
        use_aggregator: { type: "string", default: "true" },
        max_order: { type: "string", default: "4" },
        smooth: { type: "boolean", default: false },
        smooth_method: { type: "string", default: "exp" },
        smooth_value: { type: "string" },
        lowercase: { type: "boolean", default: false },
        tokenize: { type: "string", default: "13a" },
        out: { type: "string" },
      },
    });
    const referenceFiles = values.references ?? [];
    let inputs: MetricInputs;
    let out = values.out;
    if (values.input !== undefined) {
      if (values.predictions !== undefined || referenceFiles.length > 0 || values.sources !== undefined) {
        throw new GrowlmError(OP, "--input replaces --predictions, --references and --sources; give one or the other");
      }
      inputs = readJsonlInputs(values.input);
    } else if (values.predictions !== undefined) {
      if (referenceFiles.length > 0) {
        inputs = readTextInputs(values.predictions, referenceFiles, values.sources);
      } else {
        if (values.sources !== undefined) throw new GrowlmError(OP, "--sources needs --references (a study predictions.jsonl carries its own sources)");
        inputs = readStudyPredictions(values.predictions);
        out ??= path.join(path.dirname(values.predictions), "metrics.json");
      }
    } else {
      throw new GrowlmError(OP, "give --predictions (with --references, or a study predictions.jsonl) or --input");
    }

    const names = values.metric === undefined ? defaultMetrics(inputs) : parseMetricNames(values.metric);
    const maxOrder = integerFlag("metrics", "max_order", values.max_order!, 1, 16);
    const tokenize = choiceFlag("metrics", "tokenize", values.tokenize!, ["13a", "none"] as const);
    const smoothMethod: SmoothMethod = choiceFlag("metrics", "smooth_method", values.smooth_method!, ["exp", "floor", "add-k", "none"] as const);
    let smoothValue: number | undefined;
    if (values.smooth_value !== undefined) {
      smoothValue = Number(values.smooth_value);
      if (!Number.isFinite(smoothValue) || smoothValue < 0) throw new GrowlmError(OP, `--smooth_value must be a non-negative number but is ${JSON.stringify(values.smooth_value)}`);
    }
    const useAggregator = choiceFlag("metrics", "use_aggregator", values.use_aggregator!, ["true", "false"] as const) === "true";

    const result = computeMetrics(names, inputs, {
      bleu: { maxOrder, smooth: values.smooth },
      sacrebleu: { maxNgramOrder: maxOrder, smoothMethod, smoothValue, lowercase: values.lowercase, tokenize },
      rouge: { useStemmer: values.use_stemmer, useAggregator },
      easseSari: { tokenizer: tokenize },
    });
    const json = JSON.stringify(result, null, 2);
    if (out !== undefined) writeFileAtomic(OP, out, `${json}\n`);
    console.log(json);
  },
};
