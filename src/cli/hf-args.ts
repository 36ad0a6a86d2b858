/**
 * Command lines in Hugging Face's HfArgumentParser style, so the study's scripts translate
 * line by line: `--name value`, `--name=value`, and booleans written `--flag`, `--flag true`
 * or `--flag false`. Each command declares its flags; flags that mean nothing here (DeepSpeed,
 * dataloader workers, reporting) are accepted and listed once as ignored; anything else
 * unknown is an error naming it.
 */
import { GrowlmError } from "../errors.js";

export type FlagKind = "string" | "int" | "float" | "bool";

export interface FlagSpec {
  kind: FlagKind;
  /** Other spellings (e.g. eval_strategy for evaluation_strategy). */
  aliases?: readonly string[];
  /** Allowed values of a string flag. */
  choices?: readonly string[];
}

export type FlagValue = string | number | boolean;

const TRUE = new Set(["true", "True", "1", "yes"]);
const FALSE = new Set(["false", "False", "0", "no"]);

export interface ParsedFlags {
  values: Map<string, FlagValue>;
  /** Flags accepted but without meaning here, in the order given. */
  ignored: string[];
}

/**
 * Parses `argv` against `specs` (keyed by canonical name) and the names in `ignorable`.
 * @param command names the command in errors ("growlm finetune")
 */
export function parseHfArgs(command: string, argv: readonly string[], specs: Readonly<Record<string, FlagSpec>>, ignorable: ReadonlySet<string>): ParsedFlags {
  const canonical = new Map<string, string>();
  for (const [name, spec] of Object.entries(specs)) {
    canonical.set(name, name);
    for (const alias of spec.aliases ?? []) canonical.set(alias, name);
  }
  const values = new Map<string, FlagValue>();
  const ignored: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (!token.startsWith("--")) throw new GrowlmError(command, `unexpected argument ${JSON.stringify(token)} (flags look like --name value)`);
    const eq = token.indexOf("=");
    const raw = eq >= 0 ? token.slice(2, eq) : token.slice(2);
    const name = raw.replaceAll("-", "_");
    let value: string | undefined = eq >= 0 ? token.slice(eq + 1) : undefined;
    if (value === undefined && i + 1 < argv.length && !argv[i + 1]!.startsWith("--")) value = argv[++i]!;
    if (ignorable.has(name)) {
      if (!ignored.includes(name)) ignored.push(name);
      continue;
    }
    const key = canonical.get(name);
    if (!key) throw new GrowlmError(command, `unknown flag --${raw}`);
    const spec = specs[key]!;
    values.set(key, convert(command, key, spec, value));
  }
  return { values, ignored };
}

function convert(command: string, name: string, spec: FlagSpec, value: string | undefined): FlagValue {
  if (spec.kind === "bool") {
    if (value === undefined || TRUE.has(value)) return true;
    if (FALSE.has(value)) return false;
    throw new GrowlmError(command, `--${name} takes true or false but received ${JSON.stringify(value)}`);
  }
  if (value === undefined) throw new GrowlmError(command, `--${name} needs a value`);
  if (spec.kind === "string") {
    if (spec.choices && !spec.choices.includes(value)) {
      throw new GrowlmError(command, `--${name} must be one of ${spec.choices.join(", ")} but is ${JSON.stringify(value)}`);
    }
    return value;
  }
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || (spec.kind === "int" && !Number.isSafeInteger(n))) {
    throw new GrowlmError(command, `--${name} must be ${spec.kind === "int" ? "an integer" : "a number"} but is ${JSON.stringify(value)}`);
  }
  return n;
}
