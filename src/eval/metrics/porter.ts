/**
 * The Porter stemmer exactly as NLTK's `PorterStemmer()` runs it in its default mode,
 * NLTK_EXTENSIONS — the stemmer rouge_score builds for `use_stemmer=True`. Checked word for
 * word against NLTK 3.8 (test/eval/metrics/porter.test.ts).
 *
 * NLTK_EXTENSIONS differs from Porter's 1980 paper in ways that change stems: a table of
 * irregular forms (dying -> die, skies -> sky, ...); words of one or two letters are left
 * alone; `ies`/`ied` on four-letter words keep `ie` (dies -> die, spied -> spi); y -> i only
 * after a consonant that is not the first letter (enjoy stays, happy -> happi); `alli` is
 * rewritten first and step 2 re-run; `bli` -> `ble` instead of `abli` -> `able`; `fulli` and
 * `logi` rules; and *o also holds for a two-letter vowel-consonant stem.
 */

import { pythonLower } from "./text.js";

const IRREGULAR_FORMS: ReadonlyMap<string, string> = new Map([
  ["sky", "sky"],
  ["skies", "sky"],
  ["dying", "die"],
  ["lying", "lie"],
  ["tying", "tie"],
  ["news", "news"],
  ["innings", "inning"],
  ["inning", "inning"],
  ["outings", "outing"],
  ["outing", "outing"],
  ["cannings", "canning"],
  ["canning", "canning"],
  ["howe", "howe"],
  ["proceed", "proceed"],
  ["exceed", "exceed"],
  ["succeed", "succeed"],
]);

const VOWELS = new Set(["a", "e", "i", "o", "u"]);

/** Porter's consonant: not a vowel, and y only when it starts the word or follows a vowel. */
function isConsonant(word: string, i: number): boolean {
  const ch = word[i]!;
  if (VOWELS.has(ch)) return false;
  if (ch === "y") return i === 0 ? true : !isConsonant(word, i - 1);
  return true;
}

/** Porter's measure m: the number of vowel-consonant transitions ("vc" pairs). */
function measure(stem: string): number {
  let m = 0;
  let previousVowel = false;
  for (let i = 0; i < stem.length; i++) {
    const consonant = isConsonant(stem, i);
    if (consonant && previousVowel) m++;
    previousVowel = !consonant;
  }
  return m;
}

function containsVowel(stem: string): boolean {
  for (let i = 0; i < stem.length; i++) if (!isConsonant(stem, i)) return true;
  return false;
}

/** *d: ends with a double consonant. */
function endsDoubleConsonant(word: string): boolean {
  const n = word.length;
  return n >= 2 && word[n - 1] === word[n - 2] && isConsonant(word, n - 1);
}

/** *o: ends consonant-vowel-consonant, the last not w, x or y (NLTK adds two-letter vc). */
function endsCvc(word: string): boolean {
  const n = word.length;
  if (n >= 3 && isConsonant(word, n - 3) && !isConsonant(word, n - 2) && isConsonant(word, n - 1) && !"wxy".includes(word[n - 1]!)) {
    return true;
  }
  return n === 2 && !isConsonant(word, 0) && isConsonant(word, 1);
}

/**
 * One suffix rule: `suffix` ("*d" = any double consonant, "" = always matches), its
 * replacement, and the condition on the stem left after removing the suffix.
 */
type Rule = readonly [suffix: string, replacement: string, condition: ((stem: string) => boolean) | null];

/**
 * NLTK's `_apply_rule_list`: the first rule whose suffix matches decides. If its condition
 * fails, the word is returned unchanged and no later rule is tried.
 */
function applyRuleList(word: string, rules: readonly Rule[]): string {
  for (const [suffix, replacement, condition] of rules) {
    if (suffix === "*d" && endsDoubleConsonant(word)) {
      const stem = word.slice(0, -2);
      return condition === null || condition(stem) ? stem + replacement : word;
    }
    if (word.endsWith(suffix)) {
      const stem = word.slice(0, word.length - suffix.length);
      return condition === null || condition(stem) ? stem + replacement : word;
    }
  }
  return word;
}

const positiveMeasure = (stem: string): boolean => measure(stem) > 0;
const measureAbove1 = (stem: string): boolean => measure(stem) > 1;

function step1a(word: string): string {
  if (word.endsWith("ies") && word.length === 4) return `${word.slice(0, -3)}ie`;
  return applyRuleList(word, [
    ["sses", "ss", null],
    ["ies", "i", null],
    ["ss", "ss", null],
    ["s", "", null],
  ]);
}

function step1b(word: string): string {
  if (word.endsWith("ied")) return word.length === 4 ? `${word.slice(0, -3)}ie` : `${word.slice(0, -3)}i`;
  if (word.endsWith("eed")) {
    const stem = word.slice(0, -3);
    return measure(stem) > 0 ? `${stem}ee` : word;
  }
  let intermediate: string | null = null;
  for (const suffix of ["ed", "ing"]) {
    if (word.endsWith(suffix)) {
      const stem = word.slice(0, -suffix.length);
      if (containsVowel(stem)) {
        intermediate = stem;
        break;
      }
    }
  }
  if (intermediate === null) return word;
  const last = intermediate[intermediate.length - 1] ?? "";
  return applyRuleList(intermediate, [
    ["at", "ate", null],
    ["bl", "ble", null],
    ["iz", "ize", null],
    ["*d", last, () => !"lsz".includes(last)],
    ["", "e", (stem) => measure(stem) === 1 && endsCvc(stem)],
  ]);
}

function step1c(word: string): string {
  return applyRuleList(word, [["y", "i", (stem) => stem.length > 1 && isConsonant(stem, stem.length - 1)]]);
}

function step2(word: string): string {
  if (word.endsWith("alli") && positiveMeasure(word.slice(0, -4))) return step2(`${word.slice(0, -4)}al`);
  return applyRuleList(word, [
    ["ational", "ate", positiveMeasure],
    ["tional", "tion", positiveMeasure],
    ["enci", "ence", positiveMeasure],
    ["anci", "ance", positiveMeasure],
    ["izer", "ize", positiveMeasure],
    ["bli", "ble", positiveMeasure],
    ["alli", "al", positiveMeasure],
    ["entli", "ent", positiveMeasure],
    ["eli", "e", positiveMeasure],
    ["ousli", "ous", positiveMeasure],
    ["ization", "ize", positiveMeasure],
    ["ation", "ate", positiveMeasure],
    ["ator", "ate", positiveMeasure],
    ["alism", "al", positiveMeasure],
    ["iveness", "ive", positiveMeasure],
    ["fulness", "ful", positiveMeasure],
    ["ousness", "ous", positiveMeasure],
    ["aliti", "al", positiveMeasure],
    ["iviti", "ive", positiveMeasure],
    ["biliti", "ble", positiveMeasure],
    ["fulli", "ful", positiveMeasure],
    // NLTK keeps the l of "logi" with the stem, so geo-logi and theo-logi qualify.
    ["logi", "log", () => positiveMeasure(word.slice(0, -3))],
  ]);
}

function step3(word: string): string {
  return applyRuleList(word, [
    ["icate", "ic", positiveMeasure],
    ["ative", "", positiveMeasure],
    ["alize", "al", positiveMeasure],
    ["iciti", "ic", positiveMeasure],
    ["ical", "ic", positiveMeasure],
    ["ful", "", positiveMeasure],
    ["ness", "", positiveMeasure],
  ]);
}

function step4(word: string): string {
  return applyRuleList(word, [
    ["al", "", measureAbove1],
    ["ance", "", measureAbove1],
    ["ence", "", measureAbove1],
    ["er", "", measureAbove1],
    ["ic", "", measureAbove1],
    ["able", "", measureAbove1],
    ["ible", "", measureAbove1],
    ["ant", "", measureAbove1],
    ["ement", "", measureAbove1],
    ["ment", "", measureAbove1],
    ["ent", "", measureAbove1],
    ["ion", "", (stem) => measure(stem) > 1 && (stem.endsWith("s") || stem.endsWith("t"))],
    ["ou", "", measureAbove1],
    ["ism", "", measureAbove1],
    ["ate", "", measureAbove1],
    ["iti", "", measureAbove1],
    ["ous", "", measureAbove1],
    ["ive", "", measureAbove1],
    ["ize", "", measureAbove1],
  ]);
}

/** Step 5a tries both of its rules (unlike the rule lists): m > 1, or m = 1 and not *o. */
function step5a(word: string): string {
  if (word.endsWith("e")) {
    const stem = word.slice(0, -1);
    const m = measure(stem);
    if (m > 1 || (m === 1 && !endsCvc(stem))) return stem;
  }
  return word;
}

function step5b(word: string): string {
  // NLTK measures the word less its last letter here, not the stem less "ll".
  return applyRuleList(word, [["ll", "l", () => measure(word.slice(0, -1)) > 1]]);
}

/**
 * The NLTK_EXTENSIONS Porter stem of `word` (lowercased first, as NLTK's `stem()` does by
 * default).
 */
export function porterStem(word: string): string {
  const lower = pythonLower(word);
  const irregular = IRREGULAR_FORMS.get(word);
  if (irregular !== undefined) return irregular;
  if (word.length <= 2) return lower;
  return step5b(step5a(step4(step3(step2(step1c(step1b(step1a(lower))))))));
}
