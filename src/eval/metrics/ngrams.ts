/**
 * Multisets of n-grams with Python `collections.Counter` semantics, which every reference
 * metric is written in: `&` keeps min counts, `|` max counts, `-` positive differences, and a
 * count that reaches zero is dropped (so `size` is Python's `len(counter)`).
 *
 * An n-gram is its tokens joined by one space. Every caller's tokens are free of spaces (they
 * come from whitespace splits, or from HF SARI's `split(" ")`, whose n-grams are those joined
 * strings themselves), so joined keys compare exactly as Python's tuples or strings do.
 */
export type NgramCounts = Map<string, number>;

/** Counts of the n-grams of one order: `tokens[i..i+n)` for i = 0 .. tokens.length - n. */
export function countNgrams(tokens: readonly string[], n: number): NgramCounts {
  const counts: NgramCounts = new Map();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join(" ");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** Counter `a & b`: min of the counts, keys of `a` in `a`'s order. */
export function intersectCounts(a: NgramCounts, b: NgramCounts): NgramCounts {
  const out: NgramCounts = new Map();
  for (const [key, count] of a) {
    const m = Math.min(count, b.get(key) ?? 0);
    if (m > 0) out.set(key, m);
  }
  return out;
}

/** Counter `a - b`: the positive part of the difference. */
export function subtractCounts(a: NgramCounts, b: NgramCounts): NgramCounts {
  const out: NgramCounts = new Map();
  for (const [key, count] of a) {
    const d = count - (b.get(key) ?? 0);
    if (d > 0) out.set(key, d);
  }
  return out;
}

/** Counter `a |= b` in place: the max of the counts. */
export function maxCountsInto(a: NgramCounts, b: NgramCounts): void {
  for (const [key, count] of b) if (count > (a.get(key) ?? 0)) a.set(key, count);
}

/** Counter `a += b` in place: the sum of the counts. */
export function addCountsInto(a: NgramCounts, b: NgramCounts): void {
  for (const [key, count] of b) a.set(key, (a.get(key) ?? 0) + count);
}

/** Every count multiplied by `factor` (EASSE's `multiply_counter`; HF SARI's `_rep` counters). */
export function scaleCounts(a: NgramCounts, factor: number): NgramCounts {
  const out: NgramCounts = new Map();
  for (const [key, count] of a) out.set(key, count * factor);
  return out;
}

/** The sum of the counts (Python `sum(counter.values())`). */
export function totalCount(a: NgramCounts): number {
  let total = 0;
  for (const count of a.values()) total += count;
  return total;
}
