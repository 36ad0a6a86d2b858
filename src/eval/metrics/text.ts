/**
 * Python string semantics the reference metrics depend on, and the 13a tokenizer that BLEU
 * and SARI share.
 *
 * The references are Python, so "whitespace" means what `str.split()` / `str.strip()` treat
 * as whitespace: it differs from JavaScript's `\s` (Python adds U+001C–U+001F and U+0085;
 * JavaScript adds U+FEFF). Using `\s` would silently change token counts on such inputs.
 */

/** The code points Python 3's `str.isspace()` accepts (what `str.split()` splits on). */
const PY_WHITESPACE_CLASS = "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_WHITESPACE_RUN = new RegExp(`[${PY_WHITESPACE_CLASS}]+`, "u");
const PY_LEADING_WHITESPACE = new RegExp(`^[${PY_WHITESPACE_CLASS}]+`, "u");
const PY_TRAILING_WHITESPACE = new RegExp(`[${PY_WHITESPACE_CLASS}]+$`, "u");

/** Python's `s.split()` with no separator: runs of Python whitespace, no empty pieces. */
export function pythonSplit(s: string): string[] {
  return s.split(PY_WHITESPACE_RUN).filter((piece) => piece.length > 0);
}

/**
 * Python's `s.lower()`. Both languages apply Unicode's full, locale-independent lowercase
 * mapping with the final-sigma rule; they differ only on letters newer than the Python's
 * Unicode tables (Python 3.11 has Unicode 14, Node 20's ICU 17: 55 code points, none in
 * common scripts).
 */
export function pythonLower(s: string): string {
  return s.toLowerCase();
}

/** Python's `s.rstrip()` with no argument. */
export function pythonRstrip(s: string): string {
  return s.replace(PY_TRAILING_WHITESPACE, "");
}

/** Python's `s.strip()` with no argument. */
export function pythonStrip(s: string): string {
  return pythonRstrip(s).replace(PY_LEADING_WHITESPACE, "");
}

// mteval-v13a's language-dependent rules as sacrebleu's TokenizerRegexp applies them, in order.
// The first class is ASCII only: {|}~ [\]^_` space!"#$%& ()*+ :;<=>?@ / (not ' - . ,). The `u`
// flag makes `[^0-9]` match whole code points, as Python's `re` does on str.
const RULES_13A: readonly (readonly [RegExp, string])[] = [
  [/([\x7B-\x7E\x5B-\x60\x20-\x26\x28-\x2B\x3A-\x40\x2F])/gu, " $1 "],
  // a period or comma is split off unless a digit precedes it ...
  [/([^0-9])([.,])/gu, "$1 $2 "],
  // ... or unless a digit follows it; so 3.50 and 4,000.25 stay whole
  [/([.,])([^0-9])/gu, " $1 $2"],
  // a dash after a digit: 2021-2022 -> 2021 - 2022
  [/([0-9])(-)/gu, "$1 $2 "],
];

/**
 * sacrebleu's `Tokenizer13a` (mteval-v13a): drops `<skipped>`, joins `-\n` line breaks,
 * unescapes four HTML entities, splits punctuation; returns the tokens joined by single spaces
 * (`' '.join(line.split())`). Never lowercases.
 */
export function tokenize13a(line: string): string {
  let s = line.replaceAll("<skipped>", "").replaceAll("-\n", "").replaceAll("\n", " ");
  if (s.includes("&")) {
    s = s.replaceAll("&quot;", '"').replaceAll("&amp;", "&").replaceAll("&lt;", "<").replaceAll("&gt;", ">");
  }
  s = ` ${s} `;
  for (const [pattern, replacement] of RULES_13A) s = s.replace(pattern, replacement);
  return pythonSplit(s).join(" ");
}

/** The tokenizers sacrebleu and EASSE accept that growlm implements. */
export type SacreTokenizerName = "13a" | "none";

/** Applies a sacrebleu tokenizer by name: `none` returns the line unchanged. */
export function applySacreTokenizer(name: SacreTokenizerName, line: string): string {
  return name === "13a" ? tokenize13a(line) : line;
}
