/** Experience replay: the buffer's policies (deterministic for a seed, balanced as promised) and the replay schedule. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test } from "vitest";

import type { TokenizedExample } from "../../src/data/collator.js";
import { ReplayBuffer, ReplaySchedule, balancedShares } from "../../src/continual/replay.js";

/** n distinct examples of a task (the first id says which). */
function examples(tag: number, n: number): TokenizedExample[] {
  return Array.from({ length: n }, (_, i) => ({ ids: [tag, i, 1], labels: [-100, i, 1] }));
}

const key = (e: { ids: number[] }): string => e.ids.join(",");

describe("replay buffer", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-replay-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("water-filling shares: equal within one, small tasks keep all, the rest spread over the others", () => {
    expect(balancedShares(10, [50, 50, 50])).toEqual([4, 3, 3]);
    expect(balancedShares(8, [4, 4, 1])).toEqual([4, 3, 1]);
    expect(balancedShares(9, [2, 100, 100])).toEqual([2, 4, 3]);
    expect(balancedShares(5, [1, 1])).toEqual([1, 1]);
  });

  test("balanced: every task gets an equal share (within one), shrinking as tasks arrive", () => {
    const buffer = ReplayBuffer.empty("balanced", 10, 7);
    buffer.addTask("a", examples(1, 40));
    expect([...buffer.counts()]).toEqual([["a", 10]]);
    buffer.addTask("b", examples(2, 40));
    expect([...buffer.counts()]).toEqual([["a", 5], ["b", 5]]);
    const aBefore = buffer.examples.filter((e) => e.task === "a").map(key);
    buffer.addTask("c", examples(3, 40));
    expect([...buffer.counts()]).toEqual([["a", 4], ["b", 3], ["c", 3]]);
    // An older task keeps a prefix of its subset: nothing it keeps is new.
    expect(buffer.examples.filter((e) => e.task === "a").map(key)).toEqual(aBefore.slice(0, 4));
    // A revisit adds nothing.
    buffer.addTask("a", examples(1, 40));
    expect([...buffer.counts()]).toEqual([["a", 4], ["b", 3], ["c", 3]]);
    // A task smaller than its share keeps all of its examples.
    buffer.addTask("d", examples(4, 1));
    expect([...buffer.counts()]).toEqual([["a", 3], ["b", 3], ["c", 3], ["d", 1]]);
    expect(new Set(buffer.examples.map(key)).size).toBe(buffer.examples.length);
  });

  test("both policies are deterministic for a seed and differ between seeds", () => {
    for (const policy of ["balanced", "reservoir"] as const) {
      const fill = (seed: number) => {
        const b = ReplayBuffer.empty(policy, 12, seed);
        b.addTask("a", examples(1, 30));
        b.addTask("b", examples(2, 30));
        return b.examples.map((e) => `${e.task}:${key(e)}`);
      };
      expect(fill(3)).toEqual(fill(3));
      expect(fill(3)).not.toEqual(fill(4));
    }
  });

  test("reservoir: every example streamed is kept with probability capacity / seen", () => {
    // 400 seeds, 5 of 20 examples kept: each inclusion frequency is 0.25 with a standard
    // deviation of 0.022; 0.1 is over 4 of them.
    const counts = new Array<number>(20).fill(0);
    const seeds = 400;
    for (let seed = 0; seed < seeds; seed++) {
      const b = ReplayBuffer.empty("reservoir", 5, seed);
      b.addTask("a", examples(1, 8));
      b.addTask("b", examples(2, 12));
      expect(b.examples).toHaveLength(5);
      for (const e of b.examples) counts[(e.ids[0] === 1 ? 0 : 8) + e.ids[1]!]!++;
    }
    for (const c of counts) expect(Math.abs(c / seeds - 0.25)).toBeLessThan(0.1);
  });

  test("round-trips through replay_buffer.json and refuses a file that is not one", () => {
    const b = ReplayBuffer.empty("reservoir", 4, 9);
    b.addTask("a", examples(1, 6));
    const file = path.join(dir, "replay_buffer.json");
    b.write(file);
    const back = ReplayBuffer.read(file)!;
    expect(back.toJson()).toEqual(b.toJson());
    expect(ReplayBuffer.read(path.join(dir, "none.json"))).toBeNull();
    fs.writeFileSync(file, JSON.stringify({ format: "growlm-replay-buffer", policy: "reservoir", capacity: 4, seed: 9, seen: [], examples: [{ task: "a", ids: [1], labels: [] }] }));
    expect(() => ReplayBuffer.read(file)).toThrow(/replay_buffer\.json is not a growlm replay buffer/);
    fs.writeFileSync(file, JSON.stringify({ ...b.toJson(), capacity: 2 }));
    expect(() => ReplayBuffer.read(file)).toThrow(/replay_buffer\.json: ReplayBuffer: 4 examples exceed the capacity 2/);
  });

  test("refuses bad settings by name", () => {
    expect(() => ReplayBuffer.empty("fifo" as "balanced", 4, 1)).toThrow(/policy must be one of reservoir, balanced but is "fifo"/);
    expect(() => ReplayBuffer.empty("balanced", 0, 1)).toThrow(/capacity must be a positive integer but is 0/);
    expect(() => ReplayBuffer.empty("balanced", 4, 2 ** 32)).toThrow(/seed must be an integer in \[0, 2\^32\)/);
  });
});

describe("replay schedule", () => {
  test("fractional ratios average out exactly and every entry is replayed once per pass", () => {
    const s = new ReplaySchedule(7, 0.75 * 3, 5); // 2.25 rows per micro-batch
    const perBatch = Array.from({ length: 28 }, (_, g) => s.rows(g));
    expect(perBatch.map((r) => r.length)).toEqual(Array.from({ length: 28 }, (_, g) => Math.floor((g + 1) * 2.25) - Math.floor(g * 2.25)));
    const flat = perBatch.flat(); // 63 rows = 9 passes over 7 entries
    for (let pass = 0; pass < 9; pass++) expect(flat.slice(pass * 7, pass * 7 + 7).sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    // A pure function of the micro-batch index (a resumed run asks for later batches first).
    const fresh = new ReplaySchedule(7, 2.25, 5);
    expect(fresh.rows(20)).toEqual(perBatch[20]);
    expect(fresh.rows(3)).toEqual(perBatch[3]);
    expect(new ReplaySchedule(7, 2.25, 6).rows(0).concat(new ReplaySchedule(7, 2.25, 6).rows(1))).not.toEqual(perBatch[0]!.concat(perBatch[1]!));
    expect(new ReplaySchedule(0, 2, 5).rows(3)).toEqual([]);
  });
});
