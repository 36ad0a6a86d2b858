/**
 * Python `str` semantics that the lm-evaluation-harness prompts depend on and that differ
 * from JavaScript's: `isspace` (Python counts U+001C–U+001F and U+0085 as whitespace, JS's
 * `\s` does not, and JS counts U+FEFF, Python does not), `strip`/`rstrip`, `capitalize`
 * (titlecase, not uppercase, for the first character) and `len` (code points, not UTF-16
 * units). The tables come from CPython 3.11 (Unicode 14).
 */

/** Python's `str.isspace()` characters. */
const PY_SPACE = "\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const TRAILING_SPACE = new RegExp(`[${PY_SPACE}]+$`);
const LEADING_SPACE = new RegExp(`^[${PY_SPACE}]+`);
const ONE_SPACE = new RegExp(`^[${PY_SPACE}]$`);

/** Whether `char` (one character) is whitespace to Python's `str.isspace()`. */
export function isPythonSpace(char: string): boolean {
  return ONE_SPACE.test(char);
}

/** Python's `s.rstrip()`. */
export function pythonRstrip(s: string): string {
  return s.replace(TRAILING_SPACE, "");
}

/** Python's `s.strip()`. */
export function pythonStrip(s: string): string {
  return s.replace(TRAILING_SPACE, "").replace(LEADING_SPACE, "");
}

/** Python's `len(s)`: the number of code points. */
export function pythonLen(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * Characters whose Unicode titlecase differs from their uppercase and is not covered by the
 * two ranges in `titlecase` (CPython: `c.title() != c.upper()`).
 */
const TITLECASE: ReadonlyMap<string, string> = new Map(
  [
    [0x00df, [0x53, 0x73]],
    [0x01c4, [0x1c5]], [0x01c5, [0x1c5]], [0x01c6, [0x1c5]],
    [0x01c7, [0x1c8]], [0x01c8, [0x1c8]], [0x01c9, [0x1c8]],
    [0x01ca, [0x1cb]], [0x01cb, [0x1cb]], [0x01cc, [0x1cb]],
    [0x01f1, [0x1f2]], [0x01f2, [0x1f2]], [0x01f3, [0x1f2]],
    [0x0587, [0x535, 0x582]],
    [0x1fb2, [0x1fba, 0x345]], [0x1fb3, [0x1fbc]], [0x1fb4, [0x386, 0x345]], [0x1fb7, [0x391, 0x342, 0x345]], [0x1fbc, [0x1fbc]],
    [0x1fc2, [0x1fca, 0x345]], [0x1fc3, [0x1fcc]], [0x1fc4, [0x389, 0x345]], [0x1fc7, [0x397, 0x342, 0x345]], [0x1fcc, [0x1fcc]],
    [0x1ff2, [0x1ffa, 0x345]], [0x1ff3, [0x1ffc]], [0x1ff4, [0x38f, 0x345]], [0x1ff7, [0x3a9, 0x342, 0x345]], [0x1ffc, [0x1ffc]],
    [0xfb00, [0x46, 0x66]], [0xfb01, [0x46, 0x69]], [0xfb02, [0x46, 0x6c]], [0xfb03, [0x46, 0x66, 0x69]], [0xfb04, [0x46, 0x66, 0x6c]],
    [0xfb05, [0x53, 0x74]], [0xfb06, [0x53, 0x74]],
    [0xfb13, [0x544, 0x576]], [0xfb14, [0x544, 0x565]], [0xfb15, [0x544, 0x56b]], [0xfb16, [0x54e, 0x576]], [0xfb17, [0x544, 0x56d]],
  ].map(([cp, title]) => [String.fromCodePoint(cp as number), String.fromCodePoint(...(title as number[]))]),
);

/** The titlecase of one character (Python's `c.title()`). */
function titlecase(char: string): string {
  const cp = char.codePointAt(0)!;
  // Georgian Mkhedruli letters are their own titlecase (their uppercase is Mtavruli).
  if ((cp >= 0x10d0 && cp <= 0x10fa) || (cp >= 0x10fd && cp <= 0x10ff)) return char;
  // Greek with ypogegrammeni: titlecase is the prosgegrammeni form, U+1F88-style.
  if (cp >= 0x1f80 && cp <= 0x1faf) return String.fromCodePoint(cp | 0x8);
  return TITLECASE.get(char) ?? char.toUpperCase();
}

/**
 * Python's `s.capitalize()` (3.8+): the first character in titlecase, the rest lowercased.
 * The rest is lowercased in the context of the whole string, as CPython does, so a final
 * sigma after a cased first letter becomes ς.
 */
export function pythonCapitalize(s: string): string {
  if (s.length === 0) return s;
  const first = String.fromCodePoint(s.codePointAt(0)!);
  const rest = s.toLowerCase().slice(first.toLowerCase().length);
  return titlecase(first) + rest;
}
