/**
 * G_stack's guideline for when to grow (Du et al. 2024, the official README): train the small
 * model on d tokens, then stack it g = 4 times, with
 *
 *   log10(d) = 0.88·log10(N) + 163.27 / log10(C) − 5.74
 *
 * where N is the target model's parameter count and C its training compute in FLOPs (C ≈ 6·N·D
 * for D training tokens). With C = 6·N·D the formula reproduces the README's table exactly
 * (Llama2-7B, 2T tokens: d = 11.11B). It was fitted on the paper's IsoFLOP sweeps over small
 * target models (reportedly about 410M to 3B parameters; the reference notes flag this as not
 * checked against the paper), so applying it to larger models is an extrapolation. Note that
 * for a fixed N, d decreases as C grows.
 */
import { GrowlmError } from "../errors.js";

/** The fitted coefficients: log10(d) = a·log10(N) + b / log10(C) + c. */
export const GROWTH_TIMING_FIT = Object.freeze({ a: 0.88, b: 163.27, c: -5.74 });

/** The growth factor the README fixes ("we fix g = 4"); the paper reports its optimum between 2 and 4. */
export const G_STACK_FACTOR = 4;

/** Where the guideline comes from and how far to trust it, as printed by `growlm grow --suggest`. */
export const GROWTH_TIMING_NOTES: readonly string[] = [
  "Guideline of Du et al. 2024 (Stacking Your Transformers, arXiv:2405.15319; tongxuluo/prts README):",
  "  log10(d) = 0.88*log10(N) + 163.27/log10(C) - 5.74, d in tokens, N target parameters, C training FLOPs (C = 6*N*D).",
  "Fitted on the paper's IsoFLOP sweeps over small target models (reportedly about 410M-3B parameters; not",
  "checked against the paper): applying it to larger models is an extrapolation.",
  "With C = 6ND it reproduces the README's table (Llama2-7B on 2T tokens: d = 11.11B; Llama3-8B on 15T: 6.58B).",
  "For a fixed N, d decreases as C grows. The paper's runs grew at d = 10B tokens with g = 4",
  "(the paper puts the best g between 2 and 4; the README fixes g = 4).",
];

export interface GrowthTimingInput {
  /** Parameters of the target (grown) model, N. */
  params: number;
  /** Training compute of the target model in FLOPs, C; give this or tokens. */
  compute?: number;
  /** Training tokens of the target model, D (C = 6·N·D). */
  tokens?: number;
}

export interface GrowthTimingSuggestion {
  params: number;
  compute: number;
  /** Training tokens D of the target when given or implied (C / 6N). */
  tokens: number;
  /** d: tokens to train the small model on before growth. */
  growthTokens: number;
  /** g: the growth factor (layers of the target / layers of the small model). */
  factor: number;
  /** d / D: the share of the run spent on the small model (before growth, in tokens). */
  fraction: number;
}

/** The guideline's growth timing d for a target of `params` parameters trained with `compute` FLOPs (or on `tokens` tokens). */
export function suggestGrowthTiming(input: GrowthTimingInput): GrowthTimingSuggestion {
  const op = "suggestGrowthTiming";
  const N = input.params;
  if (!Number.isFinite(N) || N <= 0) throw new GrowlmError(op, `params must be a positive number but is ${N}`);
  if ((input.compute === undefined) === (input.tokens === undefined)) throw new GrowlmError(op, "give exactly one of compute (FLOPs) and tokens");
  const C = input.compute ?? 6 * N * input.tokens!;
  if (input.tokens !== undefined && !(Number.isFinite(input.tokens) && input.tokens > 0)) throw new GrowlmError(op, `tokens must be a positive number but is ${input.tokens}`);
  if (!Number.isFinite(C) || C <= 10) throw new GrowlmError(op, `compute must be a number of FLOPs above 10 (log10 C > 1) but is ${C}`);
  const { a, b, c } = GROWTH_TIMING_FIT;
  const growthTokens = 10 ** (a * Math.log10(N) + b / Math.log10(C) + c);
  const tokens = input.tokens ?? C / (6 * N);
  return { params: N, compute: C, tokens, growthTokens, factor: G_STACK_FACTOR, fraction: growthTokens / tokens };
}
