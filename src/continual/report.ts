/**
 * The report of a continual scenario: for each model, each evaluated task and each metric,
 * the matrix R[stage][task] and its continual-learning metrics (cl-metrics.ts); written as
 * JSON, CSV (one row per model, metric, stage and task), SVG plots (each task's metric over
 * the stages, one line per model; a forgetting heat map per model and metric; the parameter
 * drift from the base over the stages, per model and module type) and a Markdown report
 * comparing the models and their continual-learning strategies side by side.
 */
import fs from "node:fs";
import path from "node:path";

import { writeFileAtomic } from "../io/atomic.js";
import { LAYER_KINDS, type ModuleKind } from "../model/params.js";
import { heatmap, lineChart } from "../plot/svg.js";
import { type ClMetrics, continualMetrics } from "./cl-metrics.js";
import type { DriftSummary } from "./drift.js";

/** What one metric means for the report. */
export interface MetricInfo {
  /** Higher scores are better (false for NLL, pct_stereotype, ...). */
  higherIsBetter: boolean;
  /** A calibration or uncertainty measure: the report also tabulates it per task (base and final). */
  calibration?: boolean;
}

export interface ScenarioResults {
  /** The task trained at each stage 1..S. */
  stages: string[];
  /** The evaluated tasks (columns of every R). */
  tasks: string[];
  metrics: Record<string, MetricInfo>;
  /** model → task → metric → score after each stage 0..S (NaN: not measured). */
  scores: Record<string, Record<string, Record<string, number[]>>>;
  /** model → training FLOPs and tokens spent in each stage 1..S (optional). */
  compute?: Record<string, { flops: number[]; tokens: number[]; strategyFlops?: number[] }>;
  /** model → its continual-learning strategy ("naive", "ewc (λ=…)", …) (optional). */
  strategies?: Record<string, string>;
  /** model → drift from its base after each stage 1..S (optional). */
  drift?: Record<string, (DriftSummary | null)[]>;
}

export interface MetricReport {
  metric: string;
  /** Tasks that have this metric. */
  tasks: string[];
  /** R[s][j] over those tasks. */
  R: number[][];
  cl: ClMetrics;
}

/** R and the CL metrics of every model and metric. */
export function analyseScenario(results: ScenarioResults): Record<string, MetricReport[]> {
  const out: Record<string, MetricReport[]> = {};
  for (const [model, byTask] of Object.entries(results.scores)) {
    out[model] = Object.entries(results.metrics).flatMap(([metric, info]) => {
      const tasks = results.tasks.filter((t) => byTask[t]?.[metric] !== undefined);
      if (tasks.length === 0) return [];
      const R = Array.from({ length: results.stages.length + 1 }, (_, s) => tasks.map((t) => byTask[t]![metric]![s] ?? Number.NaN));
      return [{ metric, tasks, R, cl: continualMetrics(results.stages, tasks, R, info.higherIsBetter) }];
    });
  }
  return out;
}

export function stageLabels(stages: readonly string[]): string[] {
  return ["base", ...stages.map((t, i) => `${i + 1}: ${t}`)];
}

const num = (v: number, digits = 4): string => (Number.isFinite(v) ? v.toFixed(digits) : "–");

/** CSV rows: model, metric, stage, stage_task, task, value. */
export function scenarioCsv(results: ScenarioResults): string {
  const rows = ["model,metric,stage,stage_task,task,value"];
  for (const [model, byTask] of Object.entries(results.scores)) {
    for (const task of results.tasks) {
      for (const [metric, values] of Object.entries(byTask[task] ?? {})) {
        values.forEach((v, s) => rows.push([model, metric, s, s === 0 ? "base" : results.stages[s - 1], task, Number.isFinite(v) ? v : ""].join(",")));
      }
    }
  }
  return `${rows.join("\n")}\n`;
}

/** The Markdown report: per metric, the models' CL metrics side by side, then each model's R. */
export function scenarioMarkdown(results: ScenarioResults, analysis: Record<string, MetricReport[]>, title: string, plots: readonly string[] = []): string {
  const models = Object.keys(analysis);
  const labels = stageLabels(results.stages);
  const lines = [`# ${title}`, "", `Stages: ${labels.join(" → ")}.`, ""];
  if (results.compute) {
    lines.push("## Compute", "", "| model | training tokens | training FLOPs |", "|---|---|---|");
    for (const [model, c] of Object.entries(results.compute)) {
      lines.push(`| ${model} | ${c.tokens.reduce((a, b) => a + b, 0).toLocaleString("en-US")} | ${c.flops.reduce((a, b) => a + b, 0).toExponential(3)} |`);
    }
    lines.push("");
  }
  lines.push(...strategiesMarkdown(results, analysis), ...driftMarkdown(results));
  lines.push(
    "## Summary",
    "",
    "ACC: mean final score; LA: mean score right after a task's first training; BWT: mean change from a task's last training to the end (< 0: forgetting);",
    "FWT: mean gain on a task before training on it, over the base model; F: mean drop from a task's best to its final score (> 0: forgetting);",
    "FG: the study's relative drop from the base model, mean over the stages and tasks, in % (> 0: below the base).",
    "For lower-is-better metrics the signs are flipped so that these readings hold.",
    "",
  );
  const metrics = Object.keys(results.metrics);
  for (const metric of metrics) {
    const have = models.filter((m) => analysis[m]!.some((r) => r.metric === metric));
    if (have.length === 0) continue;
    lines.push(`### ${metric}${results.metrics[metric]!.higherIsBetter ? "" : " (lower is better)"}`, "", "| model | ACC | LA | BWT | FWT | F | FG (%) |", "|---|---|---|---|---|---|---|");
    for (const m of have) {
      const { cl } = analysis[m]!.find((r) => r.metric === metric)!;
      const drops = Object.values(cl.relativeDrop).filter(Number.isFinite);
      const fg = drops.length ? drops.reduce((a, b) => a + b, 0) / drops.length : Number.NaN;
      lines.push(`| ${m} | ${num(cl.acc)} | ${num(cl.learningAccuracy)} | ${num(cl.bwt)} | ${num(cl.fwt)} | ${num(cl.forgetting)} | ${num(fg, 1)} |`);
    }
    lines.push("");
    for (const m of have) {
      const r = analysis[m]!.find((x) => x.metric === metric)!;
      lines.push(`${m}: R[stage][task]`, "", `| stage | ${r.tasks.join(" | ")} |`, `|---|${r.tasks.map(() => "---").join("|")}|`);
      r.R.forEach((row, s) => lines.push(`| ${labels[s]} | ${row.map((v) => num(v)).join(" | ")} |`));
      lines.push("");
    }
  }
  lines.push(...calibrationMarkdown(results, labels));
  if (plots.length > 0) {
    lines.push("## Plots", "");
    for (const p of plots) lines.push(`![${path.basename(p, ".svg")}](${p})`, "");
  }
  return `${lines.join("\n")}\n`;
}

const sum = (values: readonly number[] | undefined): number => (values ?? []).reduce((a, b) => a + b, 0);

/**
 * The strategies side by side: each model's strategy and compute (training FLOPs, the
 * strategy's own FLOPs outside the steps, their total, and the final drift from the base),
 * then per metric ACC, BWT and F of every model (signs as in the summary).
 */
export function strategiesMarkdown(results: ScenarioResults, analysis: Record<string, MetricReport[]>): string[] {
  if (!results.strategies) return [];
  const models = Object.keys(analysis);
  const lines = [
    "## Strategies side by side",
    "",
    "| model | strategy | training tokens | training FLOPs | strategy FLOPs | total FLOPs | final drift (rel. L2) |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const m of models) {
    const c = results.compute?.[m];
    const train = sum(c?.flops);
    const extra = sum(c?.strategyFlops);
    const drift = results.drift?.[m]?.at(-1)?.overall.relL2 ?? Number.NaN;
    lines.push(
      `| ${m} | ${results.strategies[m] ?? "naive"} | ${c ? sum(c.tokens).toLocaleString("en-US") : "–"} | ${c ? train.toExponential(3) : "–"} | ${c ? extra.toExponential(3) : "–"} | ${c ? (train + extra).toExponential(3) : "–"} | ${num(drift)} |`,
    );
  }
  lines.push("");
  for (const metric of Object.keys(results.metrics)) {
    const have = models.filter((m) => analysis[m]!.some((r) => r.metric === metric));
    if (have.length === 0) continue;
    lines.push(`${metric}${results.metrics[metric]!.higherIsBetter ? "" : " (lower is better)"}:`, "", "| model | strategy | ACC | BWT | F |", "|---|---|---|---|---|");
    for (const m of have) {
      const { cl } = analysis[m]!.find((r) => r.metric === metric)!;
      lines.push(`| ${m} | ${results.strategies[m] ?? "naive"} | ${num(cl.acc)} | ${num(cl.bwt)} | ${num(cl.forgetting)} |`);
    }
    lines.push("");
  }
  return lines;
}

/** Per model and stage: the relative L2 change from the base, and how far copies of a grown model's layers moved apart. */
export function driftMarkdown(results: ScenarioResults): string[] {
  if (!results.drift) return [];
  const labels = stageLabels(results.stages).slice(1);
  const lines = [
    "## Drift from the base",
    "",
    "Relative L2 change ‖θ_s − θ_base‖ / ‖θ_base‖ of all parameters after each stage; for grown models, in brackets, the mean relative L2 between copies of the same source layer.",
    "",
    `| model | ${labels.join(" | ")} |`,
    `|---|${labels.map(() => "---").join("|")}|`,
  ];
  for (const [model, stages] of Object.entries(results.drift)) {
    const cells = labels.map((_, s) => {
      const d = stages[s];
      if (!d) return "–";
      const copies = d.copyDivergence;
      return `${num(d.overall.relL2)}${typeof copies === "number" && Number.isFinite(copies) ? ` (${num(copies)})` : ""}`;
    });
    lines.push(`| ${model} | ${cells.join(" | ")} |`);
  }
  lines.push("");
  return lines;
}

/** The module types a drift summary has values for, layer kinds first. */
function driftModules(stages: readonly (DriftSummary | null)[]): ModuleKind[] {
  const present = new Set(stages.flatMap((d) => (d ? (Object.keys(d.modules) as ModuleKind[]) : [])));
  const order: ModuleKind[] = ["embed_tokens", ...LAYER_KINDS, "norm", "lm_head"];
  return order.filter((k) => present.has(k));
}

/** Writes the drift plots of `results` through `write`; returns their names. */
function writeDriftPlots(results: ScenarioResults, write: (name: string, content: string) => void): string[] {
  if (!results.drift) return [];
  const plots: string[] = [];
  const labels = stageLabels(results.stages);
  const models = Object.keys(results.drift);
  const overall = models.map((m, k) => ({ name: m, y: [0, ...results.drift![m]!.map((d) => d?.overall.relL2 ?? Number.NaN)], dashed: k % 2 === 1, color: k }));
  write("plots/drift.svg", lineChart({ title: "parameter drift from the base after each stage", xLabel: "stage", yLabel: "relative L2 change", xCategories: labels, series: overall }));
  plots.push("plots/drift.svg");
  const copies = models.flatMap((m, k) => {
    const y = results.drift![m]!.map((d) => (typeof d?.copyDivergence === "number" ? d.copyDivergence : Number.NaN));
    return y.some(Number.isFinite) ? [{ name: m, y: [Number.NaN, ...y], dashed: k % 2 === 1, color: k }] : [];
  });
  if (copies.length > 0) {
    write("plots/copy-divergence.svg", lineChart({ title: "how far copies of the same source layer moved apart", xLabel: "stage", yLabel: "mean relative L2 between copies", xCategories: labels, series: copies }));
    plots.push("plots/copy-divergence.svg");
  }
  for (const m of models) {
    const stages = results.drift[m]!;
    const modules = driftModules(stages);
    const safe = m.replace(/[^\w.-]/g, "_");
    write(
      `plots/drift-modules-${safe}.svg`,
      heatmap({ title: `${m}: relative L2 change from the base per module type`, rows: modules, columns: labels.slice(1), values: modules.map((k) => stages.map((d) => d?.modules[k] ?? Number.NaN)) }),
    );
    plots.push(`plots/drift-modules-${safe}.svg`);
    const last = stages.at(-1);
    if (last && Array.isArray(last.grid)) {
      const sources = Array.isArray(last.layerSources) ? last.layerSources : null;
      write(
        `plots/drift-layers-${safe}.svg`,
        heatmap({
          title: `${m}: relative L2 change from the base after the last stage`,
          rows: last.grid.map((_, l) => (sources ? `layer ${l} ← ${Number.isFinite(sources[l]) ? sources[l] : "new"}` : `layer ${l}`)),
          columns: LAYER_KINDS.map((k) => k.replace("_proj", "").replace("post_attention_layernorm", "post_norm").replace("input_layernorm", "in_norm")),
          values: last.grid,
        }),
      );
      plots.push(`plots/drift-layers-${safe}.svg`);
    }
  }
  return plots;
}

/**
 * Calibration beside forgetting: per task, each model's calibration measures before any
 * fine-tuning and after the last stage (their CL summaries are in the sections above).
 */
function calibrationMarkdown(results: ScenarioResults, labels: readonly string[]): string[] {
  const metrics = Object.entries(results.metrics).filter(([, info]) => info.calibration).map(([m]) => m);
  const lines: string[] = [];
  for (const task of results.tasks) {
    const have = metrics.filter((m) => Object.values(results.scores).some((byTask) => byTask[task]?.[m] !== undefined));
    if (have.length === 0) continue;
    if (lines.length === 0) {
      lines.push("## Calibration", "", `Each cell: after the last stage (${labels.at(-1)}), and in brackets before fine-tuning (base).`, "");
    }
    lines.push(`### ${task}`, "", `| model | ${have.join(" | ")} |`, `|---|${have.map(() => "---").join("|")}|`);
    for (const [model, byTask] of Object.entries(results.scores)) {
      const cells = have.map((m) => {
        const values = byTask[task]?.[m];
        return values ? `${num(values.at(-1)!)} (${num(values[0]!)})` : "–";
      });
      lines.push(`| ${model} | ${cells.join(" | ")} |`);
    }
    lines.push("");
  }
  return lines;
}

/** f^s_j = max_{l<s} R[l][j] − R[s][j] (sign-adjusted), stages 1..S: where each task lost ground. */
function forgettingByStage(r: MetricReport, higherIsBetter: boolean): number[][] {
  const sign = higherIsBetter ? 1 : -1;
  return r.tasks.map((_, j) =>
    r.R.slice(1).map((row, k) => {
      const best = Math.max(...r.R.slice(0, k + 1).map((prev) => sign * prev[j]!));
      return best - sign * row[j]!;
    }),
  );
}

/**
 * Writes results.json, results.csv, the SVG plots and report.md into `dir`.
 * @returns the files written
 */
export function writeScenarioReport(dir: string, results: ScenarioResults, title: string): string[] {
  const op = "writeScenarioReport";
  fs.mkdirSync(path.join(dir, "plots"), { recursive: true });
  const analysis = analyseScenario(results);
  const written: string[] = [];
  const write = (name: string, content: string): void => {
    writeFileAtomic(op, path.join(dir, name), content);
    written.push(path.join(dir, name));
  };
  const labels = stageLabels(results.stages);
  const models = Object.keys(results.scores);
  const plots: string[] = [];
  for (const task of results.tasks) {
    for (const metric of Object.keys(results.metrics)) {
      const series = models.flatMap((m, k) => {
        const y = results.scores[m]?.[task]?.[metric];
        return y ? [{ name: m, y, dashed: k % 2 === 1, color: k }] : [];
      });
      if (series.length === 0) continue;
      const name = `plots/${task}-${metric}.svg`.replace(/[^\w./-]/g, "_");
      write(name, lineChart({ title: `${task}: ${metric} after each stage`, xLabel: "stage", yLabel: metric, xCategories: labels, series }));
      plots.push(name);
    }
  }
  for (const m of models) {
    for (const r of analysis[m]!) {
      const name = `plots/forgetting-${m}-${r.metric}.svg`.replace(/[^\w./-]/g, "_");
      write(name, heatmap({ title: `${m}: forgetting of ${r.metric} (best so far − now)`, rows: r.tasks, columns: labels.slice(1), values: forgettingByStage(r, results.metrics[r.metric]!.higherIsBetter) }));
      plots.push(name);
    }
  }
  plots.push(...writeDriftPlots(results, write));
  write("results.json", `${JSON.stringify({ ...results, analysis }, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2)}\n`);
  write("results.csv", scenarioCsv(results));
  write("report.md", scenarioMarkdown(results, analysis, title, plots));
  return written;
}
