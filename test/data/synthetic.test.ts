/** The embedded default data: deterministic, in the study's raw format, probes well-posed. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test } from "vitest";

import { preprocessFolder } from "../../src/data/seed.js";
import { SYNTHETIC_TASKS, syntheticCorpus, syntheticProbes, syntheticTask, writeSyntheticStudy } from "../../src/data/synthetic.js";

describe("synthetic study data", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-syn-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("the same seed gives the same data, another seed other data", () => {
    expect(syntheticCorpus(50, 4)).toEqual(syntheticCorpus(50, 4));
    expect(syntheticCorpus(50, 5)).not.toEqual(syntheticCorpus(50, 4));
    for (const task of SYNTHETIC_TASKS) expect(syntheticTask(task, 20, 9)).toEqual(syntheticTask(task, 20, 9));
  });

  test("task folders preprocess like the study's (brackets replaced, train/test by name)", () => {
    const files = writeSyntheticStudy(dir, { corpusParagraphs: 30, trainExamples: 40, testExamples: 7 });
    for (const task of SYNTHETIC_TASKS) {
      const ds = preprocessFolder(files.taskFolders[task], { evalDatasetSize: 0.1 });
      expect([ds.train.length, ds.eval.length, ds.test.length]).toEqual([36, 4, 7]);
      for (const e of [...ds.train, ...ds.test]) {
        expect(e.input).not.toMatch(/-LRB-|-RRB-/);
        expect(typeof e.output).toBe("string");
        expect(e.src_info?.prompt_name).toBeTypeOf("string");
      }
    }
    const simp = preprocessFolder(files.taskFolders.simplification, { evalDatasetSize: 0 });
    // The simple sentence is the normal one with its modifiers and clauses removed.
    for (const e of simp.train) {
      const words = (e.output as string).replace(".", "").split(" ");
      const normal = String(e.src_info!.normal_sentence).toLowerCase();
      for (const w of words) expect(normal).toContain(w.toLowerCase());
    }
    expect(fs.readFileSync(files.corpus, "utf8").trim().split("\n")).toHaveLength(30);
  });

  test("probes: four distinct choices, the gold one a fact the corpus states", () => {
    const probes = syntheticProbes();
    const corpus = syntheticCorpus(3000).join(" ");
    expect(probes.length).toBe(48);
    for (const p of probes) {
      expect(new Set(p.choices).size).toBe(4);
      expect(p.gold).toBeGreaterThanOrEqual(0);
      expect(p.gold).toBeLessThan(4);
      const fact = `${p.context} ${p.choices[p.gold]}`;
      const stated = fact.replace("works as", "is");
      expect(corpus.includes(fact) || corpus.includes(stated) || corpus.includes(fact.replace(".", " "))).toBe(true);
    }
  });
});
