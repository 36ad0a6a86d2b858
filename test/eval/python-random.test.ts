/** PythonRandom against CPython 3.11's random.Random (fixture from tools/make_harness_fixtures.py). */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { describe, expect, test } from "vitest";

import { PythonRandom } from "../../src/eval/python-random.js";

interface Fixture {
  python: string;
  getrandbits: { seed: number; getrandbits32: number[] }[];
  sample: { seed: number; n: number; k: number; draws: number[][] }[];
}

const FIXTURE = JSON.parse(fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/harness/python_random.json"), "utf8")) as Fixture;
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe("PythonRandom", () => {
  test.each(FIXTURE.getrandbits)("Random($seed).getrandbits(32) (seeds past 2^32 use two key words)", ({ seed, getrandbits32 }) => {
    const r = new PythonRandom(seed);
    expect(getrandbits32.map(() => r.getrandbits(32))).toEqual(getrandbits32);
  });

  test.each(FIXTURE.sample)("Random($seed).sample(range($n), $k), three times (pool and set branches)", ({ seed, n, k, draws }) => {
    const r = new PythonRandom(seed);
    expect(draws.map(() => r.sample(range(n), k))).toEqual(draws);
  });

  test("a negative seed is its absolute value; bad arguments are refused", () => {
    expect(new PythonRandom(-1234).getrandbits(32)).toBe(new PythonRandom(1234).getrandbits(32));
    expect(() => new PythonRandom(1.5)).toThrow(/PythonRandom: the seed must be a safe integer but is 1.5/);
    expect(() => new PythonRandom(1).sample([1, 2], 3)).toThrow(/cannot draw 3 items from a population of 2/);
    expect(() => new PythonRandom(1).randbelow(0)).toThrow(/n must be an integer in \[1, 2\^32\)/);
    expect(() => new PythonRandom(1).getrandbits(33)).toThrow(/k must be an integer in \[1, 32\]/);
  });
});
