/** growlm diff: what changed between two checkpoints, per tensor, layer and module type (src/continual/drift.ts). */
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";

import { type DriftMeasures, type DriftReport, copiesHeatmap, diffCheckpoints, driftHeatmap, driftJson } from "../continual/drift.js";
import { GrowlmError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import type { Command } from "./command.js";
import { required } from "./flags.js";

const num = (v: number): string => (Number.isFinite(v) ? v.toExponential(3) : Number.isNaN(v) ? "–" : "inf");

function row(label: string, m: DriftMeasures): string {
  return `  ${label.padEnd(28)} ${num(m.relL2).padStart(10)} ${(Number.isFinite(m.cosine) ? m.cosine.toFixed(6) : "–").padStart(10)} ${num(m.maxAbs).padStart(10)}`;
}

function printReport(r: DriftReport): void {
  const header = `  ${"".padEnd(28)} ${"rel. L2".padStart(10)} ${"cosine".padStart(10)} ${"max |Δ|".padStart(10)}`;
  console.log(`B = ${r.b} against ${r.reference === "grown-a" ? "A grown by the growth record" : "A"} = ${r.a}${r.growthRecord ? ` (layers mapped by ${r.growthRecord})` : ""}`);
  console.log(header);
  console.log(row("overall", r.overall));
  console.log("per module type:");
  for (const m of r.modules) console.log(row(m.module, m));
  console.log("per layer:");
  for (const l of r.layers) console.log(row(r.layerSources ? `layer ${l.layer} ← ${l.sourceLayer ?? "new"}` : `layer ${l.layer}`, l));
  if (r.copies.length > 0) {
    console.log("copies of the same source layer (layer j against layer i; in B, then in the reference):");
    for (const c of r.copies) {
      console.log(row(`${c.layers[0]} vs ${c.layers[1]} (← ${c.sourceLayer}) B`, c.b));
      console.log(row(`${c.layers[0]} vs ${c.layers[1]} (← ${c.sourceLayer}) ref`, c.reference));
    }
  }
}

export const diff: Command = {
  name: "diff",
  summary: "compare two checkpoints tensor by tensor: relative L2 change, cosine, max change per tensor, layer and module type",
  usage:
    "growlm diff --a DIR --b DIR [--out FILE.json] [--growth_record FILE] [--json]\n\n" +
    "  For every tensor of B against A: relative L2 change ||B - A|| / ||A||, cosine similarity and max |B - A|,\n" +
    "  aggregated per decoder layer, per module type and overall. --out writes the JSON to FILE and heat maps\n" +
    "  (layers x module types) beside it (FILE.svg; FILE-copies.svg for a grown model); --json prints the JSON.\n" +
    "  A grown model (growth.json in B or A, or --growth_record) has each layer mapped to its source layer: when A\n" +
    "  is the source model B is compared with A grown by the same plan, and the copies of each source layer are\n" +
    "  compared with each other. Checkpoints are read tensor by tensor.",
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: { a: { type: "string" }, b: { type: "string" }, out: { type: "string" }, growth_record: { type: "string" }, json: { type: "boolean" } },
    });
    const a = required("diff", "a", values.a);
    const b = required("diff", "b", values.b);
    for (const [flag, dir] of [["a", a], ["b", b]] as const) {
      if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new GrowlmError("growlm diff", `--${flag} ${dir} is not a folder`);
    }
    const report = diffCheckpoints(a, b, values.growth_record !== undefined ? { growthRecord: values.growth_record } : {});
    if (values.out !== undefined) {
      const out = values.out;
      fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
      writeFileAtomic("growlm diff", out, driftJson(report));
      const stem = out.replace(/\.json$/i, "");
      const title = `relative L2 change of ${path.basename(b)} from ${path.basename(a)}`;
      writeFileAtomic("growlm diff", `${stem}.svg`, driftHeatmap(report, title));
      const written = [out, `${stem}.svg`];
      if (report.copies.length > 0) {
        writeFileAtomic("growlm diff", `${stem}-copies.svg`, copiesHeatmap(report, `relative L2 between copies of a source layer in ${path.basename(b)}`));
        written.push(`${stem}-copies.svg`);
      }
      if (!values.json) console.error(`growlm diff: wrote ${written.join(", ")}`);
    }
    if (values.json) process.stdout.write(driftJson(report));
    else printReport(report);
  },
};
