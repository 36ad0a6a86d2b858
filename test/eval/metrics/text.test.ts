/** Python whitespace and sacrebleu's 13a tokenizer, on hand-derived vectors. */
import { describe, expect, test } from "vitest";

import { pythonRstrip, pythonSplit, pythonStrip, tokenize13a } from "../../../src/eval/metrics/text.js";

describe("Python str.split() whitespace", () => {
  test("splits on what Python calls whitespace, not on JavaScript's \\s", () => {
    // Python splits on U+001C..U+001F and U+0085; JavaScript's \s also matches U+FEFF, Python does not.
    expect(pythonSplit("a\u001cb\u001fc\u0085d")).toEqual(["a", "b", "c", "d"]);
    expect(pythonSplit("a\ufeffb")).toEqual(["a\ufeffb"]);
    expect(pythonSplit("  a\u00a0b\u3000c\t\n")).toEqual(["a", "b", "c"]);
    expect(pythonSplit("")).toEqual([]);
    expect(pythonSplit(" \u2028 ")).toEqual([]);
    expect(pythonRstrip("a b \u0085\n")).toBe("a b");
    expect(pythonStrip("\u001f a b \ufeff")).toBe("a b \ufeff");
  });
});

describe("tokenize13a", () => {
  test("punctuation, prices and year ranges", () => {
    // " Hello, world! It costs $3.50 (approx.) in 2021-2022. "
    // rule 1 pads ! $ ( ) (not , . - '); rule 2 splits "o," and "x." (no digit before);
    // rule 3 splits ". " and ", " (no digit after), so 3.50 stays whole; rule 4 splits "1-".
    expect(tokenize13a("Hello, world! It costs $3.50 (approx.) in 2021-2022.")).toBe(
      "Hello , world ! It costs $ 3.50 ( approx . ) in 2021 - 2022 .",
    );
  });

  test("digits keep their separators; apostrophes and inner hyphens stay; case is kept", () => {
    expect(tokenize13a("4,000.25 and 1.a")).toBe("4,000.25 and 1 . a");
    expect(tokenize13a("Don't re-use e.g. this")).toBe("Don't re-use e . g . this");
    expect(tokenize13a("a-b 3-")).toBe("a-b 3 -");
  });

  test("line breaks, <skipped> and HTML entities", () => {
    // "-\n" joins words; other "\n" become spaces; entities unescape in order, so &amp;lt; -> &lt; -> <.
    expect(tokenize13a("state-\nment\nnext<skipped> &quot;q&quot; &amp;lt; &gt;")).toBe('statement next " q " < >');
    expect(tokenize13a("AT&T")).toBe("AT & T");
  });

  test("non-ASCII text passes through; astral characters stay whole", () => {
    expect(tokenize13a("北京欢迎你。")).toBe("北京欢迎你。");
    expect(tokenize13a("café, 😀.")).toBe("café , 😀 .");
    expect(tokenize13a("")).toBe("");
    expect(tokenize13a("  \t ")).toBe("");
  });
});
