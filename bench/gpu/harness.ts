/**
 * The GPU benchmark harness (bench/gpu/*.bench.ts, run by bench/gpu/run.ts): bench/common.ts's
 * method on a GPU. Contenders of one case are measured alternately, round after round, and
 * compared by their medians; growlm's contenders run in this process, PyTorch's in
 * tools/torch_gpu_bench.py on the same GPU (bench/gpu/torch.ts), and the device-to-device copy
 * bandwidth is measured in the same run, alternately with the cases compared with it.
 *
 * Every measurement is wall-clock time around `calls` calls with a device synchronisation
 * before and after, inside the timed region (PyTorch's side does the same); `calls` is chosen
 * once per contender so that a region lasts about `targetSeconds`, which makes launch and
 * synchronisation overheads small next to kernels of a millisecond and keeps them in for
 * short ones (as a user's loop pays them).
 */
import { binding } from "../../src/native.js";
import type { TorchServer } from "./torch.js";

export type GpuUnit = "TFLOP/s" | "GB/s" | "tokens/s";

/** One result: `value` of the case against one baseline, ratio = value / baseline_value (> 1: growlm faster). */
export interface GpuBenchRecord {
  suite: string;
  case: string;
  value: number;
  unit: GpuUnit;
  baseline: string;
  baseline_value: number;
  ratio: number;
}

/** A performance target of the issue: `ratio` against `baseline` must be at least `min_ratio`. */
export interface GpuTarget {
  suite: string;
  case: string;
  baseline: string;
  min_ratio: number;
  ratio: number;
  met: boolean;
}

/** What one suite process writes with --json. */
export interface GpuBenchOutput {
  suites: string[];
  smoke: boolean;
  rounds: number;
  device: string;
  torch: string;
  records: GpuBenchRecord[];
  targets: GpuTarget[];
  /** Contenders, baselines and sizes, as one line each. */
  notes: string[];
  /** Cases that failed, with the error. */
  failures: string[];
}

/** Something timed: `secondsPerCall` is one measurement (one synchronised region). */
export interface Timed {
  name: string;
  warm(): Promise<void>;
  secondsPerCall(): Promise<number>;
}

export interface HarnessOptions {
  rounds: number;
  /** Seconds each synchronised region lasts (0: one call per region). */
  targetSeconds: number;
  device: number;
  /** Small sizes (emulator, or --smoke): checks that every case runs, its numbers mean nothing. */
  smoke: boolean;
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function format(value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value >= 1 ? value.toFixed(2) : value.toPrecision(3);
}

/** growlm work queued on the device by `fn` (its ops are asynchronous on the device's stream). */
export function growlmContender(name: string, fn: () => void, options: HarnessOptions): Timed {
  const sync = (): void => binding.cuda.synchronize(options.device);
  let calls = 0;
  return {
    name,
    async warm() {
      fn();
      sync();
      const t0 = process.hrtime.bigint();
      fn();
      sync();
      const once = Number(process.hrtime.bigint() - t0) / 1e9;
      calls = Math.max(1, Math.min(1000, Math.ceil(options.targetSeconds / Math.max(once, 1e-6))));
    },
    async secondsPerCall() {
      sync();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < calls; i++) fn();
      sync();
      return Number(process.hrtime.bigint() - t0) / 1e9 / calls;
    },
  };
}

/** A PyTorch baseline of tools/torch_gpu_bench.py's `kind` with `args`; set up by warm(). */
export function torchContender(server: TorchServer, id: string, kind: string, args: Record<string, unknown>, options: HarnessOptions, notes: string[]): Timed {
  const timed: Timed = {
    name: `PyTorch ${kind}`,
    async warm() {
      const reply = await server.request({ op: "setup", case: id, kind, args });
      timed.name = String(reply.name);
      notes.push(`${reply.name}: ${String(reply.detail)}`);
    },
    async secondsPerCall() {
      const reply = await server.request({ op: "measure", case: id, target_seconds: options.targetSeconds });
      return Number(reply.seconds_per_call);
    },
  };
  return timed;
}

export interface CompareOptions {
  /** The issue's target: growlm at least `minRatio` × the contender at index `against`. */
  target?: { against: number; minRatio: number };
}

export interface GpuBenchContext {
  readonly options: HarnessOptions;
  /** PyTorch with CUDA, or null (run.ts prints why). */
  readonly torch: TorchServer | null;
  /** The device-to-device copy, to compare bandwidth-bound kernels with (bytes read + written). */
  readonly copy: Timed;
  /** Bytes read + written by one `copy` call. */
  readonly copyWork: number;
  readonly notes: string[];
  /**
   * Times the contenders alternately, prints a row and records value and ratios:
   * contenders[0] is growlm's, each other is a named baseline. `work` per call is FLOPs
   * (TFLOP/s), bytes read + written (GB/s) or tokens (tokens/s), one number for all or one per
   * contender. A baseline that fails is dropped (and the case counted as failed); growlm's
   * failure fails the case. Returns the median throughputs (NaN for dropped baselines).
   */
  compare(caseName: string, unit: GpuUnit, work: number | readonly number[], contenders: readonly Timed[], options?: CompareOptions): Promise<number[]>;
  /** Runs one case: an error is printed and recorded, and the suite goes on. */
  run(caseName: string, body: () => Promise<void>): Promise<void>;
}

export interface GpuBenchSuite {
  name: string;
  run(ctx: GpuBenchContext): Promise<void>;
}

const SCALE: Record<GpuUnit, number> = { "TFLOP/s": 1e12, "GB/s": 1e9, "tokens/s": 1 };

/** The context suites run in; `suite()` names the suite now running (for the records). */
export function createContext(suite: () => string, options: HarnessOptions, torch: TorchServer | null, output: GpuBenchOutput): GpuBenchContext {
  const copyBytes = options.smoke ? 1 << 20 : 1 << 29; // 512 MiB each way: far beyond the 50 MB L2
  const src = binding.cuda.alloc(options.device, copyBytes);
  const dst = binding.cuda.alloc(options.device, copyBytes);
  binding.cuda.fillBytes(src, 0x3f);
  const copy = growlmContender(`device-to-device copy (${copyBytes >> 20} MiB)`, () => binding.cuda.copyOnDevice(dst, src), options);

  const ctx: GpuBenchContext = {
    options,
    torch,
    copy,
    copyWork: 2 * copyBytes,
    notes: output.notes,
    async compare(caseName, unit, work, contenders, compareOptions = {}) {
      const works = typeof work === "number" ? contenders.map(() => work) : work;
      if (works.length !== contenders.length) throw new Error(`bench ${caseName}: one work per contender`);
      const usable = contenders.map(() => true);
      const failures: string[] = [];
      for (const [i, c] of contenders.entries()) {
        try {
          await c.warm();
        } catch (e) {
          if (i === 0) throw e;
          usable[i] = false;
          failures.push(`${c.name}: ${(e as Error).message}`);
        }
      }
      const samples: number[][] = contenders.map(() => []);
      for (let r = 0; r < options.rounds; r++) {
        for (const [i, c] of contenders.entries()) {
          if (!usable[i]) continue;
          try {
            samples[i]!.push(works[i]! / (await c.secondsPerCall()) / SCALE[unit]);
          } catch (e) {
            if (i === 0) throw e;
            usable[i] = false;
            failures.push(`${c.name}: ${(e as Error).message}`);
          }
        }
      }
      const values = samples.map((s, i) => (usable[i] ? median(s) : NaN));
      const value = values[0]!;
      const baselines = contenders.slice(1).flatMap((c, i) => (usable[i + 1] ? [[c.name, values[i + 1]!] as const] : []));
      const ratios = baselines.map(([name, v]) => `${format(value / v)}× ${name} (${format(v)})`);
      console.log(`  ${caseName.padEnd(52)} ${format(value).padStart(7)} ${unit}  ${ratios.join(", ")}`);
      const current = suite();
      if (baselines.length === 0) output.records.push({ suite: current, case: caseName, value, unit, baseline: "none", baseline_value: NaN, ratio: NaN });
      for (const [name, v] of baselines) {
        output.records.push({ suite: current, case: caseName, value, unit, baseline: name, baseline_value: v, ratio: value / v });
      }
      const target = compareOptions.target;
      if (target && usable[target.against]) {
        const ratio = value / values[target.against]!;
        const baseline = contenders[target.against]!.name;
        const met = ratio >= target.minRatio;
        output.targets.push({ suite: current, case: caseName, baseline, min_ratio: target.minRatio, ratio, met });
        console.log(`    target: at least ${target.minRatio}× ${baseline}: ${met ? "met" : "MISSED"} (${format(ratio)}×)${options.smoke ? " [smoke sizes: meaningless]" : ""}`);
      }
      if (failures.length > 0) throw new Error(`baseline(s) failed, growlm measured alone:\n${failures.join("\n")}`);
      return values;
    },
    async run(caseName, body) {
      try {
        await body();
      } catch (e) {
        const message = (e as Error).stack ?? String(e);
        console.log(`  ${caseName}: FAILED: ${message}`);
        output.failures.push(`${suite()}: ${caseName}: ${message}`);
      }
    },
  };
  return ctx;
}

