/**
 * Benchmark harness shared by every suite (bench/<family>.bench.ts).
 *
 * Timing uses benchmark.js per (round, contender). Contenders of one case are measured
 * alternately, round after round (default 5), and compared by their medians: on a shared
 * 2-core machine runs vary by ±15 %, and alternation keeps slow phases from favouring one
 * side. Machine baselines (register-only FMA peak, plain copy bandwidth) are measured in
 * the same run, with the same thread count and code path, and re-measured alternately with
 * the contenders of every case that is compared with them.
 */
import Benchmark from "benchmark";

import { binding } from "../src/native.js";
import { loadOpenBlas, type OpenBlas } from "../src/kernels/baseline.js";

export type { OpenBlas };
export type Unit = "GFLOP/s" | "GB/s" | "tokens/s" | "MiB";

/** A function timed by benchmark.js. */
export interface Contender {
  name: string;
  fn: () => void;
}

/**
 * A contender that times itself (e.g. another process): `measure` returns its throughput in
 * the unit (GFLOP/s, GB/s, or plain tokens per second for "tokens/s").
 */
export interface MeasuredContender {
  name: string;
  warm(): void;
  measure(): number;
}

/** One result: `value` of the case against one baseline, ratio = value / baseline_value. */
export interface BenchRecord {
  suite: string;
  case: string;
  value: number;
  unit: Unit;
  baseline: string;
  baseline_value: number;
  ratio: number;
}

export interface BenchContext {
  /** Prints and records a value measured elsewhere against named baselines (ratio = value / baseline). */
  report(caseName: string, unit: Unit, value: number, baselines: readonly (readonly [string, number])[]): void;
  /** fp32 FMA peak of the active code path, all threads, measured at the start of this run (GFLOP/s). */
  readonly peakGflops: number;
  /** Plain multithreaded copy bandwidth, bytes read + written, at the start of this run (GB/s). */
  readonly copyGBs: number;
  /** OpenBLAS sgemm when Debian's libopenblas0 is installed, else null. */
  readonly openblas: OpenBlas | null;
  /**
   * Times the contenders alternately, prints a row and records value and ratios:
   * contenders[0] is growlm's, each other contender is a named baseline, and `machine`
   * adds a ratio against the measured peak ("peak") or copy bandwidth ("copy").
   * `workPerCall` is flops (GFLOP/s) or bytes read + written (GB/s) per call; pass an array
   * to give each contender its own work (e.g. attention against a GEMM). Returns the
   * contenders' median throughputs.
   */
  compare(
    caseName: string,
    unit: Unit,
    workPerCall: number | readonly number[],
    contenders: readonly (Contender | MeasuredContender)[],
    machine?: "peak" | "copy",
  ): number[];
}

export interface BenchSuite {
  name: string;
  run(ctx: BenchContext): void;
}

export interface HarnessOptions {
  rounds: number;
  /** Seconds benchmark.js spends on one (round, contender). */
  maxTime: number;
  threads: number;
}

/** n floats in native, 64-byte-aligned memory, uniform in [-1, 1) from growlm's Philox stream. */
export function uniformBuffer(n: number, seed: number): Float32Array {
  const a = new Float32Array(binding.alloc(n * 4, false));
  binding.rngUniform(a, n, seed, 0, -1, 1);
  return a;
}

/** n floats in native, 64-byte-aligned memory, a[i] = value(i). */
export function filledBuffer(n: number, value: (i: number) => number): Float32Array {
  const a = new Float32Array(binding.alloc(n * 4, false));
  for (let i = 0; i < n; i++) a[i] = value(i);
  return a;
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * A contender that times whole steps itself (training steps: too long for benchmark.js's
 * repetitions): each measurement runs one untimed step, then three timed ones, and returns
 * `work` per second of their median.
 */
export function stepContender(name: string, work: number, step: () => void): MeasuredContender {
  return {
    name,
    warm: step,
    measure: () => {
      step();
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t0 = process.hrtime.bigint();
        step();
        times.push(Number(process.hrtime.bigint() - t0) / 1e9);
      }
      return work / median(times);
    },
  };
}

/** Mean seconds per call of fn, by benchmark.js. */
function secondsPerCall(name: string, fn: () => void, maxTime: number): number {
  const bench = new Benchmark(name, fn, { maxTime, minSamples: 3, initCount: 1 });
  bench.run();
  if (bench.error) throw bench.error;
  return bench.stats.mean;
}

/** One thing timed in a comparison: returns its throughput each time it is measured. */
interface Measurable {
  warm(): void;
  measure(): number;
}

/** Median throughput of each measurable, measured alternately over `rounds`. */
function medianAlternating(items: readonly Measurable[], rounds: number): number[] {
  const samples: number[][] = items.map(() => []);
  for (const item of items) item.warm(); // caches, page faults, library loading
  for (let r = 0; r < rounds; r++) items.forEach((item, i) => samples[i]!.push(item.measure()));
  return samples.map(median);
}

/** Throughput of a contender by benchmark.js: 1e9 `work` per second (GFLOP/s, GB/s) or work per second (tokens/s). */
function timed(c: Contender, work: number, maxTime: number, unit: Unit = "GFLOP/s"): Measurable {
  const per = unit === "tokens/s" ? 1 : 1e9;
  return { warm: c.fn, measure: () => work / secondsPerCall(c.name, c.fn, maxTime) / per };
}

function format(value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

/** Measures the machine baselines and returns the context suites run in. */
export function createContext(suite: () => string, options: HarnessOptions, records: BenchRecord[]): BenchContext {
  const isa = binding.info().isa;

  const copyN = 1 << 25; // 128 MiB each way: far beyond the caches
  // Written once: large blocks are fresh mappings, whose pages read as the kernel's shared
  // zero page (from the caches) until they are written.
  const src = new Float32Array(binding.alloc(copyN * 4, false)).fill(1);
  const dst = new Float32Array(binding.alloc(copyN * 4, true));
  // The machine baselines, re-measured alternately inside every comparison that uses them
  // (a 2-core machine's speed drifts during a run) and once up front for the header.
  const peak: Measurable = { warm: () => binding.measurePeakGflops(0.05), measure: () => binding.measurePeakGflops(0.15) };
  const copy = timed({ name: "copy", fn: () => binding.copy(dst, src, copyN) }, copyN * 8, options.maxTime);
  const [peakGflops, copyGBs] = medianAlternating([peak, copy], options.rounds) as [number, number];
  const openblas = loadOpenBlas(options.threads);

  const peakName = `machine fp32 FMA peak (${isa}, ${options.threads} threads)`;
  const copyName = `machine copy bandwidth (${options.threads} threads)`;
  console.log(`${peakName}: ${format(peakGflops)} GFLOP/s`);
  console.log(`${copyName}: ${format(copyGBs)} GB/s`);
  console.log(`OpenBLAS: ${openblas ? openblas.path : "not installed (apt-get install libopenblas0)"}`);

  const report = (caseName: string, unit: Unit, value: number, baselines: readonly (readonly [string, number])[]): void => {
    const ratios = baselines.map(([name, v]) => `${format(value / v)}× ${name} (${format(v)})`);
    console.log(`  ${caseName.padEnd(44)} ${format(value).padStart(7)} ${unit}  ${ratios.join(", ")}`);
    if (baselines.length === 0) {
      records.push({ suite: suite(), case: caseName, value, unit, baseline: "none", baseline_value: NaN, ratio: NaN });
    }
    for (const [name, v] of baselines) {
      records.push({ suite: suite(), case: caseName, value, unit, baseline: name, baseline_value: v, ratio: value / v });
    }
  };

  return {
    peakGflops,
    copyGBs,
    openblas,
    report,
    compare(caseName, unit, workPerCall, contenders, machine) {
      if (contenders.length === 0) throw new Error(`bench ${caseName}: no contenders`);
      const works = typeof workPerCall === "number" ? contenders.map(() => workPerCall) : workPerCall;
      if (works.length !== contenders.length) throw new Error(`bench ${caseName}: one work per contender`);
      const items = contenders.map((c, i) => ("fn" in c ? timed(c, works[i]!, options.maxTime, unit) : c));
      if (machine === "peak") items.push(peak);
      if (machine === "copy") items.push(copy);
      const values = medianAlternating(items, options.rounds);
      const value = values[0]!;
      const baselines: [string, number][] = contenders.slice(1).map((c, i) => [c.name, values[i + 1]!]);
      if (machine === "peak") baselines.push([peakName, values.at(-1)!]);
      if (machine === "copy") baselines.push([copyName, values.at(-1)!]);
      report(caseName, unit, value, baselines);
      return values.slice(0, contenders.length);
    },
  };
}
