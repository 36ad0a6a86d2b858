/**
 * Several metrics over one set of inputs, keyed by name, as `growlm metrics` prints them.
 * Each value holds the keys its Python reference returns.
 */
import { GrowlmError } from "../../errors.js";
import { bleu, type BleuOptions, type BleuResult } from "./bleu.js";
import type { MetricInputs } from "./inputs.js";
import { rouge, rougePerExample, type RougeOptions } from "./rouge.js";
import { corpusBleu, sentenceBleu, type SacreBleuOptions, type SacreBleuResult } from "./sacrebleu.js";
import { easseCorpusSari, sari, type EasseSariOptions, type EasseSariResult, type SariResult } from "./sari.js";

/**
 * The metrics by name: `bleu` (evaluate "bleu", 0–1), `sacrebleu` (sacreBLEU corpus BLEU,
 * 0–100), `sentence_bleu` (sacreBLEU sentence BLEU of each prediction), `rouge` (rouge_score
 * via evaluate, 0–1), `sari` (evaluate "sari", 0–100), `easse_sari` (EASSE corpus_sari, 0–100).
 */
export const METRIC_NAMES = ["bleu", "sacrebleu", "sentence_bleu", "rouge", "sari", "easse_sari"] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** sacreBLEU sentence BLEU of every prediction and their mean, 0–100. */
export interface SentenceBleuResult {
  scores: number[];
  mean: number;
}

/** One metric's output. */
export type MetricResult = BleuResult | SacreBleuResult | SentenceBleuResult | Record<string, number> | Record<string, number[]> | SariResult | EasseSariResult;

/** Options passed through to each metric. */
export interface MetricSuiteOptions {
  bleu?: BleuOptions;
  sacrebleu?: SacreBleuOptions;
  rouge?: RougeOptions & {
    /** false: per-example F-measures (evaluate's use_aggregator=False); default true: means. */
    useAggregator?: boolean;
  };
  easseSari?: EasseSariOptions;
}

/** bleu, sacrebleu and rouge, plus both SARIs when the inputs have sources. */
export function defaultMetrics(inputs: MetricInputs): MetricName[] {
  const names: MetricName[] = ["bleu", "sacrebleu", "rouge"];
  if (inputs.sources !== null) names.push("sari", "easse_sari");
  return names;
}

/** Parses `--metric`: one name or a comma-separated list, each once. */
export function parseMetricNames(list: string): MetricName[] {
  const names = list.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length === 0) throw new GrowlmError("growlm metrics", "--metric names no metric");
  for (const name of names) {
    if (!(METRIC_NAMES as readonly string[]).includes(name)) {
      throw new GrowlmError("growlm metrics", `unknown metric ${JSON.stringify(name)}: expected ${METRIC_NAMES.join(", ")}`);
    }
  }
  return [...new Set(names)] as MetricName[];
}

/** Computes each named metric on `inputs`; SARI metrics need `inputs.sources`. */
export function computeMetrics(names: readonly MetricName[], inputs: MetricInputs, options: MetricSuiteOptions = {}): Record<string, MetricResult> {
  const { predictions, references } = inputs;
  if (predictions.length === 0) throw new GrowlmError("growlm metrics", "no predictions to score");
  const out: Record<string, MetricResult> = {};
  for (const name of names) {
    switch (name) {
      case "bleu":
        out[name] = bleu(predictions, references, options.bleu);
        break;
      case "sacrebleu":
        out[name] = corpusBleu(predictions, references, options.sacrebleu);
        break;
      case "sentence_bleu": {
        const scores = predictions.map((p, i) => sentenceBleu(p, references[i]!, options.sacrebleu).score);
        out[name] = { scores, mean: scores.reduce((a, b) => a + b, 0) / scores.length };
        break;
      }
      case "rouge": {
        const { useAggregator = true, ...rougeOptions } = options.rouge ?? {};
        out[name] = useAggregator ? rouge(predictions, references, rougeOptions) : rougePerExample(predictions, references, rougeOptions);
        break;
      }
      case "sari":
      case "easse_sari": {
        if (inputs.sources === null) throw new GrowlmError("growlm metrics", `${name} needs the sources of the predictions (--sources, or "source" in --input)`);
        const refs = inputs.sariReferences ?? references;
        out[name] = name === "sari" ? sari(inputs.sources, predictions, refs) : easseCorpusSari(inputs.sources, predictions, refs, options.easseSari);
        break;
      }
    }
  }
  return out;
}
