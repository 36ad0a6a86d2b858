/**
 * npm run bench -- [--json FILE] [--rounds N] [--max-time S] [--threads N] [--isa NAME] [suite ...]
 *
 * Runs every suite in bench/*.bench.ts (or the named ones), prints a table and, with
 * --json, writes an array of {suite, case, value, unit, baseline, baseline_value, ratio}.
 */
import { renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { binding, type Isa } from "../src/native.js";
import { createContext, type BenchRecord, type BenchSuite } from "./common.js";
import { loadSuites } from "./suites.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    json: { type: "string" },
    rounds: { type: "string", default: "5" },
    "max-time": { type: "string", default: "0.3" },
    threads: { type: "string" },
    isa: { type: "string" },
    help: { type: "boolean", default: false },
  },
});

if (values.help) {
  console.log("usage: npm run bench -- [--json FILE] [--rounds N] [--max-time S] [--threads N] [--isa portable|avx2|avx512] [suite ...]");
  process.exit(0);
}

const rounds = Number(values.rounds);
const maxTime = Number(values["max-time"]);
if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`bench: --rounds must be a positive integer`);
if (!(maxTime > 0)) throw new RangeError(`bench: --max-time must be positive`);
if (values.threads !== undefined) binding.setThreads(Number(values.threads));
if (values.isa !== undefined) binding.setIsa(values.isa as Isa);
const threads = binding.info().threads;

const here = dirname(fileURLToPath(import.meta.url));
const suites = await loadSuites<BenchSuite>(here, positionals, "bench");

const info = binding.info();
console.log(`growlm bench: code path ${info.isa}${info.bf16Dot ? " + avx512bf16" : ""}, ${threads} threads, ${rounds} rounds`);
const records: BenchRecord[] = [];
let current = "";
const ctx = createContext(() => current, { rounds, maxTime, threads }, records);
for (const suite of suites) {
  current = suite.name;
  console.log(`\n[${suite.name}]`);
  suite.run(ctx);
}

if (values.json) {
  const tmp = `${values.json}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(records, null, 2) + "\n");
  renameSync(tmp, values.json);
  console.log(`\nwrote ${records.length} records to ${values.json}`);
}
