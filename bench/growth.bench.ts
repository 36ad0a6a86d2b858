/**
 * Growth of a checkpoint on disk (stack ×2 of a 117M-parameter fp32 checkpoint in 200 MB
 * shards, written as 168M parameters): throughput in bytes read + written against copying the
 * same bytes with fs.copyFileSync (read the source twice, write twice its size), and the peak
 * resident memory of a fresh process against the checkpoint's size and against growing the
 * loaded model in memory. Everything runs on the machine's page cache and disk, so the numbers
 * vary with both.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { growCheckpoint } from "../src/growth/checkpoint.js";
import { parseLlamaConfig } from "../src/model/config.js";
import { LlamaModel } from "../src/model/llama.js";
import { savePretrained } from "../src/model/pretrained.js";
import type { BenchSuite, MeasuredContender } from "./common.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const MEMORY_SCRIPT = path.join(here, "growth-memory.ts");

const CONFIG = { vocab_size: 32000, hidden_size: 1024, intermediate_size: 2816, num_hidden_layers: 4, num_attention_heads: 16, num_key_value_heads: 16 };

function directoryBytes(dir: string): number {
  return fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
}

/** Runs fn once and returns GB/s for `bytes` bytes read + written. */
function gbPerSecond(bytes: number, fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return bytes / Number(process.hrtime.bigint() - t0);
}

function peakMiB(mode: "disk" | "memory", src: string, out: string): number {
  const r = spawnSync(process.execPath, ["--import", "tsx", MEMORY_SCRIPT, mode, src, out], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`bench growth: ${MEMORY_SCRIPT} failed: ${r.stderr}`);
  return Number(r.stdout.trim()) / 2 ** 20;
}

export const suite: BenchSuite = {
  name: "growth",
  run(ctx) {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-bench-growth-"));
    try {
      const src = path.join(root, "src");
      const model = new LlamaModel(parseLlamaConfig(CONFIG));
      model.initialize(0);
      savePretrained(model, src, { maxShardSize: "200MB" });
      model.dispose();
      const sourceBytes = directoryBytes(src);
      const bytes = 4 * sourceBytes; // stack ×2 reads every source tensor twice and writes twice the source
      const out = path.join(root, "out");
      const copies = path.join(root, "copies");
      fs.mkdirSync(copies);
      const grow = (): void => void growCheckpoint(src, out, { depth: { operator: "stack", factor: 2 } });
      const copy = (): void => {
        for (const f of fs.readdirSync(src)) for (const k of [0, 1]) fs.copyFileSync(path.join(src, f), path.join(copies, `${k}-${f}`));
      };
      const contenders: MeasuredContender[] = [
        { name: "growlm", warm: grow, measure: () => gbPerSecond(bytes, grow) },
        { name: "fs.copyFileSync of the same bytes", warm: copy, measure: () => gbPerSecond(bytes, copy) },
      ];
      ctx.compare(`grow stack x2 on disk, ${(sourceBytes / 1e6).toFixed(0)} MB fp32 source`, "GB/s", bytes, contenders);
      const disk = peakMiB("disk", src, out);
      const memory = peakMiB("memory", src, out);
      ctx.report("peak RSS, grow on disk (tensor by tensor)", "MiB", disk, [
        ["source checkpoint size", sourceBytes / 2 ** 20],
        ["load + growModel + save peak RSS", memory],
      ]);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  },
};
