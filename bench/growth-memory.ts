/**
 * `node --import tsx bench/growth-memory.ts disk|memory SRC OUT`: grows the checkpoint SRC by
 * stack ×2 into OUT in this fresh process and prints its peak resident set in bytes (VmHWM):
 * "disk" with growCheckpoint (tensor by tensor), "memory" by loading the whole model, growing it
 * in memory and saving it (what growth without streaming costs).
 */
import { readFileSync } from "node:fs";

import { growCheckpoint } from "../src/growth/checkpoint.js";
import { planGrowth } from "../src/growth/plan.js";
import { growModel } from "../src/growth/schedule.js";
import { loadPretrained, savePretrained } from "../src/model/pretrained.js";

const [mode, src, out] = process.argv.slice(2);
if ((mode !== "disk" && mode !== "memory") || !src || !out) throw new Error("usage: growth-memory.ts disk|memory SRC OUT");
const growth = { depth: { operator: "stack" as const, factor: 2 } };
if (mode === "disk") {
  growCheckpoint(src, out, growth);
} else {
  const model = loadPretrained(src);
  const grown = growModel(model, planGrowth(model.config, growth));
  savePretrained(grown, out);
}
const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
console.log(hwm ? Number(hwm[1]) * 1024 : process.resourceUsage().maxRSS * 1024);
