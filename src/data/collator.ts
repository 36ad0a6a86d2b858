/**
 * Causal-LM batches for fine-tuning, as the study's collator (qlora's DataCollatorForCausalLM)
 * builds them: source = BOS + prompt, truncated to source_max_len tokens; target = output +
 * EOS, truncated to target_max_len tokens (so a long target loses its EOS, as there);
 * input_ids = source + target, labels = -100 over the source (unless train_on_source) and the
 * target tokens after it; right padding with labels -100. Grouping by length follows
 * transformers' LengthGroupedSampler.
 */
import { GrowlmError } from "../errors.js";
import type { Tokenizer } from "../io/tokenizer.js";
import { Tensor } from "../tensor.js";
import type { RandomStream } from "../train/random.js";
import type { Batch } from "../train/trainer.js";
import { type PromptFormat, formatPrompt } from "./prompts.js";
import type { Example } from "./seed.js";

export interface CollatorOptions {
  format: PromptFormat;
  sourceMaxLen: number;
  targetMaxLen: number;
  /** Compute the loss on the source tokens too (default false: they are -100). */
  trainOnSource?: boolean;
}

/** One tokenized example: its ids and labels (same length). */
export interface TokenizedExample {
  ids: number[];
  labels: number[];
}

/** The ids of a text without special tokens, then the first `max` of them. */
function encodeTruncated(tokenizer: Tokenizer, text: string, max: number): number[] {
  return tokenizer.encode(text, { addBos: false, addEos: false }).slice(0, max);
}

/** Tokenizes one example for training. */
export function tokenizeExample(tokenizer: Tokenizer, example: Example, options: CollatorOptions): TokenizedExample {
  const op = "tokenizeExample";
  if (tokenizer.bosId === null || tokenizer.eosId === null) {
    throw new GrowlmError(op, `${tokenizer.source} needs BOS and EOS tokens for causal-LM fine-tuning`);
  }
  const target = Array.isArray(example.output) ? example.output[0]! : example.output;
  const source = [tokenizer.bosId, ...encodeTruncated(tokenizer, formatPrompt(example.input, options.format), options.sourceMaxLen - 1)];
  const targetIds = [...tokenizer.encode(target, { addBos: false, addEos: false }), tokenizer.eosId].slice(0, options.targetMaxLen);
  const ids = [...source, ...targetIds];
  const labels = options.trainOnSource ? [...ids] : [...source.map(() => -100), ...targetIds];
  return { ids, labels };
}

/** The prompt ids generation starts from (BOS + formatted input, truncated to sourceMaxLen). */
export function promptIds(tokenizer: Tokenizer, input: string, format: PromptFormat, sourceMaxLen: number): number[] {
  if (tokenizer.bosId === null) throw new GrowlmError("promptIds", `${tokenizer.source} has no BOS token`);
  return [tokenizer.bosId, ...encodeTruncated(tokenizer, formatPrompt(input, format), sourceMaxLen - 1)];
}

/** Pads tokenized examples on the right into one batch (labels -100 on the padding). */
export function collate(examples: readonly TokenizedExample[], padId: number): Batch {
  if (examples.length === 0) throw new GrowlmError("collate", "no example to collate");
  const B = examples.length;
  const T = Math.max(...examples.map((e) => e.ids.length));
  const ids = Tensor.empty([B, T], "int32");
  const labels = Tensor.empty([B, T], "int32");
  const idData = ids.data as Int32Array;
  const labelData = labels.data as Int32Array;
  idData.fill(padId);
  labelData.fill(-100);
  examples.forEach((e, b) => {
    idData.set(e.ids, b * T);
    labelData.set(e.labels, b * T);
  });
  return { ids, labels };
}

/**
 * The order of one epoch: a seeded permutation, or with `groupByLength` transformers'
 * LengthGroupedSampler (mega-batches of up to 50 batches sorted by length, longest first, and
 * the longest example of all moved to the very front so an out-of-memory shows at once).
 */
export function epochOrder(lengths: readonly number[], batchSize: number, rng: RandomStream, groupByLength: boolean): number[] {
  const order = rng.permutation(lengths.length);
  if (!groupByLength) return order;
  const mult = Math.max(1, Math.min(Math.floor(lengths.length / (batchSize * 4)), 50));
  const size = mult * batchSize;
  const megabatches: number[][] = [];
  for (let i = 0; i < order.length; i += size) {
    megabatches.push(order.slice(i, i + size).sort((a, b) => lengths[b]! - lengths[a]!));
  }
  let longest = 0;
  megabatches.forEach((m, i) => {
    if (lengths[m[0]!]! > lengths[megabatches[longest]![0]!]!) longest = i;
  });
  const first = megabatches[0]!;
  const top = megabatches[longest]!;
  [first[0], top[0]] = [top[0]!, first[0]!];
  return megabatches.flat();
}
