/**
 * Predictions for a dataset split, as the study's finetune.py writes them with
 * predict_with_generate: each example's prompt (BOS + its input in the prompt format,
 * truncated to source_max_len tokens, as the qlora collator builds it) is continued by
 * generate(), and each line of predictions.jsonl is the example with `input` replaced by the
 * formatted prompt, plus `prediction_with_input` (prompt and continuation decoded without
 * special tokens, clean_up_tokenization_spaces as the study decoded, stripped) and
 * `prediction` (the continuation alone, decoded the same way, stripped).
 *
 * The study took its prediction from the decoded text by string surgery (what follows the
 * first "### Response:", or the text with the input removed); decoding the generated tokens
 * alone gives that text without depending on the input decoding back to itself.
 *
 * Examples are batched by prompt length (little padding); a result does not depend on its
 * batch, and sampling draws from a stream keyed by the example's index, so the predictions
 * are the same for every batch size.
 */
import { promptIds } from "../data/collator.js";
import { type PromptFormat, formatPrompt } from "../data/prompts.js";
import type { Example } from "../data/seed.js";
import { GrowlmError } from "../errors.js";
import type { Tokenizer } from "../io/tokenizer.js";
import type { LlamaModel } from "../model/llama.js";
import { type GenerateOptions, type GeneratedSequence, generate } from "./generate.js";

export interface PredictOptions {
  /** Generation settings (streamIds are the examples' indices). */
  generation: Omit<GenerateOptions, "streamIds">;
  /** How an input becomes the prompt text (default "none": as it is). */
  format?: PromptFormat;
  /** Prompt tokens kept, BOS included (default 1024, the study's source_max_len). */
  sourceMaxLen?: number;
  /** Prompts per generate() call (default 8, the study's per_device_eval_batch_size). */
  batchSize?: number;
  /** Called after each batch with the examples done so far and the total. */
  progress?: (done: number, total: number) => void;
}

export interface Prediction {
  /** The continuation's text, stripped. */
  prediction: string;
  /** Prompt and continuation decoded together, stripped. */
  predictionWithInput: string;
  /** The generated token ids (with the EOS that ended them, if any). */
  tokens: number[];
  finishReason: GeneratedSequence["finishReason"];
  /** Prompt tokens given to the model (after truncation). */
  promptTokens: number;
}

/**
 * Generates a prediction for every example, in order.
 * @param examples e.g. a test split read by readDataset
 */
export function predictExamples(model: LlamaModel, tokenizer: Tokenizer, examples: readonly Example[], options: PredictOptions): Prediction[] {
  const op = "predictExamples";
  const format = options.format ?? "none";
  const sourceMaxLen = options.sourceMaxLen ?? 1024;
  const batchSize = options.batchSize ?? 8;
  if (!Number.isSafeInteger(sourceMaxLen) || sourceMaxLen < 1) throw new GrowlmError(op, `"sourceMaxLen" must be a positive integer but is ${sourceMaxLen}`);
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new GrowlmError(op, `"batchSize" must be a positive integer but is ${batchSize}`);
  if (tokenizer.vocabSize > model.config.vocab_size) {
    throw new GrowlmError(op, `${tokenizer.source} has ${tokenizer.vocabSize} ids but the model's vocab_size is ${model.config.vocab_size}`);
  }
  const prompts = examples.map((e) => promptIds(tokenizer, e.input, format, sourceMaxLen));
  // Longest first, so each batch holds prompts of similar lengths.
  const order = prompts.map((_, i) => i).sort((a, b) => prompts[b]!.length - prompts[a]!.length || a - b);
  const results: GeneratedSequence[] = new Array<GeneratedSequence>(examples.length);
  for (let start = 0; start < order.length; start += batchSize) {
    const batch = order.slice(start, start + batchSize);
    const out = generate(model, batch.map((i) => prompts[i]!), { ...options.generation, streamIds: batch });
    batch.forEach((i, j) => (results[i] = out[j]!));
    options.progress?.(Math.min(start + batchSize, order.length), order.length);
  }
  const decode = (ids: readonly number[]) => tokenizer.decode(ids, { skipSpecialTokens: true, cleanUpTokenizationSpaces: true }).trim();
  return results.map((r, i) => ({
    prediction: decode(r.tokens),
    predictionWithInput: decode([...prompts[i]!, ...r.tokens]),
    tokens: r.tokens,
    finishReason: r.finishReason,
    promptTokens: prompts[i]!.length,
  }));
}

/**
 * One predictions.jsonl line: the example's fields in their order, `input` replaced by the
 * formatted prompt (as the study's mapped dataset held it), then prediction_with_input and
 * prediction.
 */
export function predictionRecord(example: Example, format: PromptFormat, p: Prediction): Record<string, unknown> {
  return { ...example, input: formatPrompt(example.input, format), prediction_with_input: p.predictionWithInput, prediction: p.prediction };
}
