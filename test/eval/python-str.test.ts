/** Python str semantics against CPython 3.11 (fixture from tools/make_harness_fixtures.py). */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { expect, test } from "vitest";

import { isPythonSpace, pythonCapitalize, pythonLen, pythonRstrip, pythonStrip } from "../../src/eval/python-str.js";

const FIXTURE = JSON.parse(fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/harness/python_str.json"), "utf8")) as {
  text: string;
  strip: string;
  rstrip: string;
  capitalize: string;
  len: number;
}[];

test.each(FIXTURE)("strip, rstrip, capitalize and len of $text", ({ text, strip, rstrip, capitalize, len }) => {
  expect(pythonStrip(text)).toBe(strip);
  expect(pythonRstrip(text)).toBe(rstrip);
  expect(pythonCapitalize(text)).toBe(capitalize);
  expect(pythonLen(text)).toBe(len);
});

test("isspace: U+001C..U+001F and U+0085 are whitespace, U+FEFF and U+200B are not", () => {
  for (const c of ["\u001c", "\u001f", "\u0085", "\u00a0", "\u3000", " ", "\t"]) expect(isPythonSpace(c)).toBe(true);
  for (const c of ["\ufeff", "\u200b", "x", ""]) expect(isPythonSpace(c)).toBe(false);
});
