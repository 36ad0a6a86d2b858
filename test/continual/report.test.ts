/** The scenario report: analysis, CSV, Markdown and the files it writes. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test } from "vitest";

import { analyseScenario, scenarioCsv, type ScenarioResults, writeScenarioReport } from "../../src/continual/report.js";

const RESULTS: ScenarioResults = {
  stages: ["simp", "empd", "simp"],
  tasks: ["simp", "empd", "probes"],
  metrics: { sari: { higherIsBetter: true }, eval_loss: { higherIsBetter: false }, acc: { higherIsBetter: true } },
  scores: {
    grown: {
      simp: { sari: [30, 40, 35, 42], eval_loss: [3, 2, 2.5, 1.9] },
      empd: { eval_loss: [3.5, 3.4, 2.0, 2.6] },
      probes: { acc: [0.8, 0.7, 0.65, 0.6] },
    },
    scratch: {
      simp: { sari: [28, 39, 30, 41], eval_loss: [3.1, 2.1, 2.8, 2.0] },
      empd: { eval_loss: [3.6, 3.5, 2.1, 2.9] },
      probes: { acc: [0.7, 0.5, 0.45, 0.4] },
    },
  },
  compute: { grown: { flops: [1e12, 2e12, 1e12], tokens: [1000, 2000, 1000] }, scratch: { flops: [1e12, 2e12, 1e12], tokens: [1000, 2000, 1000] } },
};

describe("scenario report", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-report-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("analysis gathers R per metric over the tasks that have it", () => {
    const a = analyseScenario(RESULTS);
    const loss = a.grown!.find((r) => r.metric === "eval_loss")!;
    expect(loss.tasks).toEqual(["simp", "empd"]);
    expect(loss.R).toEqual([[3, 3.5], [2, 3.4], [2.5, 2.0], [1.9, 2.6]]);
    // empd trained at stage 2 only: forgetting = best (lowest) 2.0 → 2.6, flipped to +0.6.
    expect(loss.cl.taskForgetting.empd).toBeCloseTo(0.6, 12);
    const acc = a.scratch!.find((r) => r.metric === "acc")!;
    expect(acc.cl.relativeDrop.probes).toBeCloseTo(((0.2 + 0.25 + 0.3) / 3 / 0.7) * 100, 9);
  });

  test("CSV has one row per model, metric, stage and task", () => {
    const rows = scenarioCsv(RESULTS).trim().split("\n");
    expect(rows[0]).toBe("model,metric,stage,stage_task,task,value");
    expect(rows).toHaveLength(1 + 2 * 4 * 4);
    expect(rows).toContain("grown,sari,2,empd,simp,35");
  });

  test("writes JSON, CSV, plots and a Markdown report linking them", () => {
    const files = writeScenarioReport(dir, RESULTS, "Grown vs scratch");
    const md = fs.readFileSync(path.join(dir, "report.md"), "utf8");
    expect(md).toContain("# Grown vs scratch");
    expect(md).toContain("| grown |");
    expect(md).toContain("### eval_loss (lower is better)");
    expect(md).toContain("![simp-sari](plots/simp-sari.svg)");
    for (const f of files) expect(fs.existsSync(f)).toBe(true);
    expect(files.filter((f) => f.endsWith(".svg")).length).toBe(4 + 6);
    const json = JSON.parse(fs.readFileSync(path.join(dir, "results.json"), "utf8"));
    expect(json.analysis.grown[0].metric).toBe("sari");
    expect(json.analysis.grown[0].cl.taskForgetting.empd).toBeUndefined();
  });
});
