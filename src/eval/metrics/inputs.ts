/**
 * The texts a metric run scores, read from the three layouts `growlm metrics` accepts: one
 * sentence a line (predictions, reference files, sources), JSONL objects
 * `{"prediction", "references", "source"}`, and the prediction files of the original study.
 */
import fs from "node:fs";

import { GrowlmError } from "../../errors.js";

/** Column-wise texts to score; `references[i]` holds one or more references of prediction i. */
export interface MetricInputs {
  predictions: string[];
  references: string[][];
  /** The sources (inputs) of the predictions, for SARI; null when there are none. */
  sources: string[] | null;
  /**
   * References for SARI when they differ from the BLEU/ROUGE ones (the original study scored
   * SARI against `src_info.simple_sentence`); null means use `references`.
   */
  sariReferences: string[][] | null;
}

const OP = "growlm metrics";

function readText(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (err) {
    throw new GrowlmError(OP, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** The lines of a text file without their "\n" or "\r\n"; a final newline ends the last line. */
export function readLines(file: string): string[] {
  const text = readText(file);
  if (text === "") return [];
  const lines = text.split("\n").map((line) => (line.endsWith("\r") ? line.slice(0, -1) : line));
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/**
 * One sentence a line: `predictionsFile`, one or more reference files (line i of each is a
 * reference of prediction i) and optionally the sources. Every file must have as many lines.
 */
export function readTextInputs(predictionsFile: string, referenceFiles: readonly string[], sourcesFile?: string): MetricInputs {
  if (referenceFiles.length === 0) throw new GrowlmError(OP, "--references is required with a predictions text file");
  const predictions = readLines(predictionsFile);
  const check = (file: string, lines: string[]): string[] => {
    if (lines.length !== predictions.length) {
      throw new GrowlmError(OP, `${file} has ${lines.length} lines but ${predictionsFile} has ${predictions.length}`);
    }
    return lines;
  };
  const columns = referenceFiles.map((file) => check(file, readLines(file)));
  const sources = sourcesFile === undefined ? null : check(sourcesFile, readLines(sourcesFile));
  return { predictions, references: predictions.map((_, i) => columns.map((c) => c[i]!)), sources, sariReferences: null };
}

function parseJsonLines(file: string, hint = ""): { line: number; value: Record<string, unknown> }[] {
  const out: { line: number; value: Record<string, unknown> }[] = [];
  readText(file)
    .split("\n")
    .forEach((text, i) => {
      if (text.trim() === "") return;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        throw new GrowlmError(OP, `${file} line ${i + 1} is not JSON${hint}: ${(err as Error).message}`, { cause: err });
      }
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        throw new GrowlmError(OP, `${file} line ${i + 1} must be a JSON object`);
      }
      out.push({ line: i + 1, value: value as Record<string, unknown> });
    });
  if (out.length === 0) throw new GrowlmError(OP, `${file} holds no examples`);
  return out;
}

function stringField(file: string, line: number, obj: Record<string, unknown>, field: string): string {
  const value = obj[field];
  if (typeof value !== "string") throw new GrowlmError(OP, `${file} line ${line}: "${field}" must be a string`);
  return value;
}

/** A string, or a non-empty list of strings, as a list. */
function referenceList(file: string, line: number, obj: Record<string, unknown>, field: string): string[] {
  const value = obj[field];
  if (typeof value === "string") return [value];
  if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === "string")) return value as string[];
  throw new GrowlmError(OP, `${file} line ${line}: "${field}" must be a string or a non-empty list of strings`);
}

/**
 * JSONL, one object a line: `{"prediction": str, "references": [str, ...] | str,
 * "source"?: str}`. Sources are used only when every line has one.
 */
export function readJsonlInputs(file: string): MetricInputs {
  const rows = parseJsonLines(file);
  const predictions = rows.map(({ line, value }) => stringField(file, line, value, "prediction"));
  const references = rows.map(({ line, value }) => referenceList(file, line, value, "references"));
  const withSource = rows.filter(({ value }) => value.source !== undefined && value.source !== null);
  const sources = withSource.length === rows.length ? rows.map(({ line, value }) => stringField(file, line, value, "source")) : null;
  if (withSource.length > 0 && sources === null) {
    throw new GrowlmError(OP, `${file}: ${withSource.length} of ${rows.length} lines have a "source"; give one on every line or on none`);
  }
  return { predictions, references, sources, sariReferences: null };
}

function srcInfoString(obj: Record<string, unknown>, field: string): string | null {
  const info = obj.src_info;
  if (typeof info !== "object" || info === null) return null;
  const value = (info as Record<string, unknown>)[field];
  return typeof value === "string" ? value : null;
}

/**
 * A `predictions.jsonl` as the original study's finetune.py writes it: each line is the test
 * example (`input`, `output`, `src_info`, `index`) plus `prediction_with_input` and
 * `prediction`. The prediction is scored against `output` (a string or a list of
 * references). Where every line's `src_info` has `normal_sentence` (the simplification task),
 * that is the SARI source and `src_info.simple_sentence` the single SARI reference, as the
 * study computed SARI.
 */
export function readStudyPredictions(file: string): MetricInputs {
  const rows = parseJsonLines(file, " (a predictions file of one sentence a line needs --references)");
  const predictions = rows.map(({ line, value }) => stringField(file, line, value, "prediction"));
  const references = rows.map(({ line, value }) => referenceList(file, line, value, "output"));
  const normal = rows.map(({ value }) => srcInfoString(value, "normal_sentence"));
  const simple = rows.map(({ value }) => srcInfoString(value, "simple_sentence"));
  const sources = normal.every((s) => s !== null) ? (normal as string[]) : null;
  const sariReferences = sources !== null && simple.every((s) => s !== null) ? (simple as string[]).map((s) => [s]) : null;
  return { predictions, references, sources, sariReferences };
}
