/** Flag values of the growlm commands, checked with messages that name the command and flag. */
import { GrowlmError } from "../errors.js";

/** The value of a required string flag. */
export function required(command: string, name: string, value: string | undefined): string {
  if (value === undefined || value === "") throw new GrowlmError(`growlm ${command}`, `--${name} is required`);
  return value;
}

/** An integer flag in [min, max]. */
export function integerFlag(command: string, name: string, value: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new GrowlmError(`growlm ${command}`, `--${name} must be an integer in [${min}, ${max}] but is ${JSON.stringify(value)}`);
  }
  return n;
}

/** One of `choices`. */
export function choiceFlag<C extends string>(command: string, name: string, value: string, choices: readonly C[]): C {
  if (!(choices as readonly string[]).includes(value)) {
    throw new GrowlmError(`growlm ${command}`, `--${name} must be one of ${choices.join(", ")} but is ${JSON.stringify(value)}`);
  }
  return value as C;
}
