/**
 * Generation settings by transformers' GenerationConfig names (max_new_tokens, num_beams,
 * length_penalty, do_sample, ...), as `growlm finetune --do_predict` flags and a scenario's
 * per-task "generation" objects give them, mapped onto GenerateOptions.
 */
import { GrowlmError } from "../errors.js";
import type { EarlyStopping } from "./beam-search.js";
import type { GenerateOptions } from "./generate.js";

type GenerationField = Exclude<keyof GenerateOptions, "streamIds" | "eosTokenId" | "padTokenId" | "earlyStopping">;

const FIELDS: Record<string, { field: GenerationField; kind: "int" | "float" | "bool" }> = {
  max_new_tokens: { field: "maxNewTokens", kind: "int" },
  min_new_tokens: { field: "minNewTokens", kind: "int" },
  num_beams: { field: "numBeams", kind: "int" },
  length_penalty: { field: "lengthPenalty", kind: "float" },
  do_sample: { field: "doSample", kind: "bool" },
  temperature: { field: "temperature", kind: "float" },
  top_k: { field: "topK", kind: "int" },
  top_p: { field: "topP", kind: "float" },
  repetition_penalty: { field: "repetitionPenalty", kind: "float" },
  no_repeat_ngram_size: { field: "noRepeatNgramSize", kind: "int" },
  seed: { field: "seed", kind: "int" },
};

/** The names generationOptions understands (early_stopping included). */
export const GENERATION_ARGUMENTS: readonly string[] = [...Object.keys(FIELDS), "early_stopping"];

/**
 * GenerateOptions from transformers-named values; max_new_tokens defaults to `maxNewTokens`.
 * Unknown names and values of the wrong kind are refused by name.
 */
export function generationOptions(op: string, values: Readonly<Record<string, unknown>>, maxNewTokens = 256): Omit<GenerateOptions, "streamIds"> {
  const out: Omit<GenerateOptions, "streamIds"> = { maxNewTokens };
  for (const [name, value] of Object.entries(values)) {
    if (name === "early_stopping") {
      const v = value === "true" ? true : value === "false" ? false : value;
      if (v !== true && v !== false && v !== "never") throw new GrowlmError(op, `"early_stopping" must be true, false or "never" but is ${JSON.stringify(value)}`);
      out.earlyStopping = v as EarlyStopping;
      continue;
    }
    const spec = FIELDS[name];
    if (!spec) throw new GrowlmError(op, `unknown generation setting "${name}" (known: ${GENERATION_ARGUMENTS.join(", ")})`);
    const ok = spec.kind === "bool" ? typeof value === "boolean" : spec.kind === "int" ? Number.isSafeInteger(value) : typeof value === "number" && Number.isFinite(value);
    if (!ok) throw new GrowlmError(op, `"${name}" must be ${spec.kind === "bool" ? "a boolean" : spec.kind === "int" ? "an integer" : "a number"} but is ${JSON.stringify(value)}`);
    (out as Record<string, unknown>)[spec.field] = value;
  }
  return out;
}
