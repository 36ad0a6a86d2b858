/**
 * The launcher half of torchrun: starts one worker process per rank of this machine with the
 * rendezvous variables set (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK,
 * LOCAL_WORLD_SIZE, GROUP_RANK), then watches them. When one fails, the others get half a
 * second to fail too if they depended on it, then are stopped (SIGTERM, then SIGKILL after a
 * grace period), and the launch fails with a message naming every rank that failed, as
 * torchrun's ChildFailedError does.
 *
 * Rank 0 inherits the launcher's terminal (its logs and progress bar are the job's); the other
 * ranks' output goes through with a "[rank r] " prefix on every line.
 */
import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import { createInterface } from "node:readline";

import { GrowlmError } from "../errors.js";

export interface LaunchOptions {
  /** Processes on this machine (torchrun's --nproc_per_node). */
  nprocPerNode: number;
  /** Machines in the job (--nnodes, default 1) and this machine's index among them (--node_rank, default 0). */
  nnodes?: number;
  nodeRank?: number;
  /** Where rank 0 serves the rendezvous (--master_addr, --master_port). */
  masterAddr: string;
  masterPort: number;
  /** The program each worker runs and its arguments (the same for every rank). */
  command: string;
  args: readonly string[];
  /** The workers' environment before the rendezvous variables are added (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** How long a stopped worker gets between SIGTERM and SIGKILL, in ms (default 10 000). */
  killGraceMs?: number;
  /** Names the launching command in errors (default "launch"). */
  op?: string;
}

/** The rendezvous variables of worker `localRank` of this machine. */
export function workerEnv(options: Pick<LaunchOptions, "nprocPerNode" | "nnodes" | "nodeRank" | "masterAddr" | "masterPort">, localRank: number): Record<string, string> {
  const nnodes = options.nnodes ?? 1;
  const nodeRank = options.nodeRank ?? 0;
  return {
    MASTER_ADDR: options.masterAddr,
    MASTER_PORT: String(options.masterPort),
    RANK: String(nodeRank * options.nprocPerNode + localRank),
    WORLD_SIZE: String(nnodes * options.nprocPerNode),
    LOCAL_RANK: String(localRank),
    LOCAL_WORLD_SIZE: String(options.nprocPerNode),
    GROUP_RANK: String(nodeRank),
  };
}

/** A TCP port nobody listens on right now, for a job on one machine (torchrun --standalone picks one the same way). */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function prefixLines(stream: NodeJS.ReadableStream, prefix: string, out: NodeJS.WritableStream): void {
  createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => out.write(`${prefix}${line}\n`));
}

/**
 * How long the launcher lets the other workers go on after one fails before stopping them: a
 * rank that fails because another did (its connection to it dropped) exits on its own within
 * milliseconds, with a message saying so, and is reported as failed rather than stopped.
 */
const FAILURE_SETTLE_MS = 500;

/**
 * Runs the workers of this machine to completion. Resolves when every worker exited with 0;
 * otherwise stops the others once one has failed and rejects with a GrowlmError listing the
 * ranks that failed, in the order they were seen to (each one's own error is in its output).
 */
export function launchWorkers(options: LaunchOptions): Promise<void> {
  const op = options.op ?? "launch";
  const nnodes = options.nnodes ?? 1;
  const nodeRank = options.nodeRank ?? 0;
  const checks: [string, number, number, number][] = [
    ["nproc_per_node", options.nprocPerNode, 1, 1024],
    ["nnodes", nnodes, 1, 65536],
    ["node_rank", nodeRank, 0, nnodes - 1],
    ["master_port", options.masterPort, 1, 65535],
  ];
  for (const [name, value, min, max] of checks) {
    if (!Number.isSafeInteger(value) || value < min || value > max) throw new GrowlmError(op, `--${name} must be an integer in [${min}, ${max}] but is ${value}`);
  }
  const grace = options.killGraceMs ?? 10_000;
  const base = options.env ?? process.env;
  return new Promise((resolve, reject) => {
    const children: ChildProcess[] = [];
    const exited: boolean[] = [];
    /** Workers this launcher signalled: their death by that signal is no failure of theirs. */
    const stopped = new Set<number>();
    const failures: string[] = [];
    let interrupted: string | null = null;
    const timers: NodeJS.Timeout[] = [];
    const signalAll = (signal: NodeJS.Signals): void => {
      for (const [i, child] of children.entries()) {
        if (exited[i]) continue;
        stopped.add(i);
        child.kill(signal);
      }
    };
    const stopOthers = (): void => {
      timers.push(setTimeout(() => signalAll("SIGTERM"), FAILURE_SETTLE_MS));
      timers.push(setTimeout(() => signalAll("SIGKILL"), FAILURE_SETTLE_MS + grace));
    };
    const forward = (signal: NodeJS.Signals): void => {
      interrupted ??= `the launcher received ${signal}`;
      signalAll(signal);
    };
    const onSigint = (): void => forward("SIGINT");
    const onSigterm = (): void => forward("SIGTERM");
    process.on("SIGINT", onSigint);
    process.on("SIGTERM", onSigterm);
    const finish = (): void => {
      if (exited.some((e) => !e)) return;
      for (const timer of timers) clearTimeout(timer);
      process.off("SIGINT", onSigint);
      process.off("SIGTERM", onSigterm);
      if (failures.length === 0 && interrupted === null) {
        resolve();
        return;
      }
      const parts = [...(interrupted ? [interrupted] : []), ...failures];
      const others = stopped.size > 0 ? `; ${stopped.size === 1 ? "one other rank was" : `${stopped.size} other ranks were`} stopped` : "";
      reject(new GrowlmError(op, `${parts.join("; ")}${others}`));
    };
    for (let localRank = 0; localRank < options.nprocPerNode; localRank++) {
      const env = { ...base, ...workerEnv(options, localRank) };
      const rank = Number(env.RANK);
      const child = spawn(options.command, options.args, { env, stdio: localRank === 0 && nodeRank === 0 ? "inherit" : ["ignore", "pipe", "pipe"] });
      children.push(child);
      exited.push(false);
      if (child.stdout) prefixLines(child.stdout, `[rank ${rank}] `, process.stdout);
      if (child.stderr) prefixLines(child.stderr, `[rank ${rank}] `, process.stderr);
      const settle = (why: string | null, signal: NodeJS.Signals | null): void => {
        if (exited[localRank]) return;
        exited[localRank] = true;
        if (stopped.has(localRank) && signal !== null) {
          // Stopped by this launcher, not a failure of its own.
        } else if (why !== null) {
          stopped.delete(localRank);
          if (failures.length === 0 && interrupted === null) stopOthers();
          failures.push(`rank ${rank} (local rank ${localRank}, pid ${child.pid ?? "none"}) ${why}`);
        }
        finish();
      };
      child.once("error", (err) => settle(`could not start: ${err.message}`, null));
      // "close" rather than "exit": the worker's output has all been passed on by then.
      child.once("close", (code, signal) => settle(code === 0 ? null : signal ? `was killed by ${signal}` : `exited with code ${code}`, signal));
    }
  });
}
