/**
 * Typed reads of the fields of one dataset document (a JSONL line), with errors that name the
 * task, the file and line, the field and what it holds. The adapters of src/eval/tasks/ use
 * these where lm-evaluation-harness's Jinja templates would raise on a missing field
 * (StrictUndefined) or render a value of the wrong kind.
 */
import { GrowlmError } from "../../errors.js";
import type { Doc } from "../harness.js";

function describe(value: unknown): string {
  return value === undefined ? "missing" : JSON.stringify(value);
}

/** The error of a document that does not have the shape its task expects. */
export function badDoc(task: string, where: string, message: string): GrowlmError {
  return new GrowlmError(`harness ${task}`, `${where}: ${message}`);
}

/** `doc[key]` as a string. */
export function stringField(task: string, doc: Doc, key: string, where: string): string {
  const value = doc[key];
  if (typeof value !== "string") throw badDoc(task, where, `field "${key}" must be a string but is ${describe(value)}`);
  return value;
}

/** `doc[key]` as an integer (a JSON number without a fraction). */
export function integerField(task: string, doc: Doc, key: string, where: string): number {
  const value = doc[key];
  if (typeof value !== "number" || !Number.isInteger(value)) throw badDoc(task, where, `field "${key}" must be an integer but is ${describe(value)}`);
  return value;
}

/** `doc[key]` as a list of strings. */
export function stringListField(task: string, doc: Doc, key: string, where: string): string[] {
  const value = doc[key];
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    throw badDoc(task, where, `field "${key}" must be a list of strings but is ${describe(value)}`);
  }
  return value as string[];
}

/** `doc[key]` as an object (another document nested in this one). */
export function objectField(task: string, doc: Doc, key: string, where: string): Doc {
  const value = doc[key];
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw badDoc(task, where, `field "${key}" must be an object but is ${describe(value)}`);
  }
  return value as Doc;
}
