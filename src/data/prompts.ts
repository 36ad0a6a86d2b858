/**
 * Prompt formats of fine-tuning (`--dataset_format`), as the study's finetune.py (built on
 * qlora) applies them to an example's input:
 * - "none": the input as it is;
 * - "prompt": the study's general instruction prompt, input then "### Response:";
 * - "alpaca": Alpaca's instruction prompt, the input as the instruction.
 * A generated text's prediction is what follows the last "### Response:" (trimmed).
 */
import { GrowlmError } from "../errors.js";

export type PromptFormat = "none" | "prompt" | "alpaca";
export const PROMPT_FORMATS: readonly PromptFormat[] = ["none", "prompt", "alpaca"];

export const RESPONSE_MARKER = "### Response:";

const GENERAL_PROMPT =
  "Below is an instruction that describes a task, paired with an input that provides further context. " +
  "Write a response that appropriately completes the request.\n\n";
const ALPACA_NO_INPUT =
  "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n";

/** The prompt the model sees for `input` in `format`. */
export function formatPrompt(input: string, format: PromptFormat): string {
  switch (format) {
    case "none":
      return input;
    case "prompt":
      return `${GENERAL_PROMPT}${input}\n\n${RESPONSE_MARKER}`;
    case "alpaca":
      return `${ALPACA_NO_INPUT}${input}\n\n${RESPONSE_MARKER} `;
    default:
      throw new GrowlmError("formatPrompt", `unknown dataset_format ${JSON.stringify(format)}; expected one of ${PROMPT_FORMATS.join(", ")}`);
  }
}

/** The prediction inside a generated text: after the last response marker when there is one. */
export function extractPrediction(text: string): string {
  const at = text.lastIndexOf(RESPONSE_MARKER);
  return (at >= 0 ? text.slice(at + RESPONSE_MARKER.length) : text).trim();
}
