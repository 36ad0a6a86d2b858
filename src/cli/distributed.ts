/**
 * Data parallelism for the training commands (growlm finetune, growlm pretrain), torchrun
 * style: `--nproc_per_node N` makes the command a launcher that runs N copies of itself with
 * the rendezvous variables set (src/train/launch.ts); each copy sees RANK and WORLD_SIZE in its
 * environment, joins the process group and trains on its shard. A command started by torchrun
 * (or by hand with those variables) joins the same way. Several machines: run the same command
 * on each with --nnodes, --node_rank and the same --master_addr and --master_port.
 *
 * Flags: torchrun's launcher flags, and Hugging Face TrainingArguments' ddp_backend,
 * ddp_timeout and ddp_bucket_cap_mb.
 */
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

import { GrowlmError } from "../errors.js";
import { setThreads } from "../runtime.js";
import { COMM_BACKENDS, type CommBackend, DEFAULT_COMM_TIMEOUT_SECONDS, distributedEnv, initProcessGroup } from "../train/comm.js";
import { isLoopback } from "../train/comm-store.js";
import { DEFAULT_BUCKET_CAP_MB, type DistributedTraining } from "../train/data-parallel.js";
import { freePort, launchWorkers } from "../train/launch.js";
import type { FlagSpec, FlagValue } from "./hf-args.js";

/** torchrun's flags: they make the command a launcher and are not passed on to the workers. */
export const LAUNCH_FLAGS: Record<string, FlagSpec> = {
  nproc_per_node: { kind: "int" },
  nnodes: { kind: "int" },
  node_rank: { kind: "int" },
  master_addr: { kind: "string" },
  master_port: { kind: "int" },
};

/** Launcher flags and TrainingArguments' data-parallel flags, as the training commands accept them. */
export const DISTRIBUTED_FLAGS: Record<string, FlagSpec> = {
  ...LAUNCH_FLAGS,
  ddp_backend: { kind: "string", choices: COMM_BACKENDS },
  ddp_timeout: { kind: "int" },
  ddp_bucket_cap_mb: { kind: "float" },
};

export const DISTRIBUTED_USAGE =
  "  data parallel: --nproc_per_node N [--nnodes M --node_rank I --master_addr HOST --master_port PORT]\n" +
  `                 [--ddp_backend tcp|nccl] [--ddp_timeout ${DEFAULT_COMM_TIMEOUT_SECONDS}] [--ddp_bucket_cap_mb ${DEFAULT_BUCKET_CAP_MB}]\n` +
  "  N processes per machine (torchrun's flags); per_device_train_batch_size is per process, so the global batch is\n" +
  "  nnodes × N × per_device_train_batch_size × gradient_accumulation_steps; only rank 0 logs and writes.";

export type DistributedStart =
  /** This process was the launcher; its workers have finished. */
  | { launched: true }
  /** This process trains: alone (distributed null) or as `rank` of a process group. */
  | { launched: false; rank: number; distributed: DistributedTraining | null };

/** `argv` without the flags in `names` and their values (tokenized as parseHfArgs does). */
export function withoutFlags(argv: readonly string[], names: ReadonlySet<string>): string[] {
  const kept: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    const eq = token.indexOf("=");
    const name = (eq >= 0 ? token.slice(2, eq) : token.slice(2)).replaceAll("-", "_");
    if (token.startsWith("--") && names.has(name)) {
      if (eq < 0 && i + 1 < argv.length && !argv[i + 1]!.startsWith("--")) i++;
      continue;
    }
    kept.push(token);
  }
  return kept;
}

/**
 * How to run this CLI in a new process: its entry module and the Node flags it needs (tsx's
 * loader when growlm runs from TypeScript source, the launcher's own flags otherwise).
 */
function cliEntry(): { file: string; execArgv: string[] } {
  const extension = path.extname(fileURLToPath(import.meta.url));
  const file = fileURLToPath(new URL(`./index${extension}`, import.meta.url));
  if (extension !== ".ts") return { file, execArgv: [...process.execArgv] };
  return { file, execArgv: ["--import", pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href] };
}

/**
 * What a training command does about data parallelism (see the module comment): launch its
 * workers, join a process group, or run alone.
 * @param command the growlm command ("finetune"), which the workers run too
 * @param argv the command's arguments as given
 * @param values the parsed flags (DISTRIBUTED_FLAGS among them)
 */
export async function startDistributed(command: string, argv: readonly string[], values: ReadonlyMap<string, FlagValue>): Promise<DistributedStart> {
  const op = `growlm ${command}`;
  const get = <T extends FlagValue>(name: string, fallback: T): T => (values.has(name) ? (values.get(name) as T) : fallback);
  const env = distributedEnv();
  const nproc = get("nproc_per_node", 1);
  const nnodes = get("nnodes", 1);
  if (env === null && (nproc > 1 || nnodes > 1)) {
    if (nnodes > 1 && !(values.has("master_addr") && values.has("master_port"))) {
      throw new GrowlmError(op, "--nnodes > 1 needs --master_addr and --master_port, the same on every machine (rank 0's machine serves the rendezvous there)");
    }
    const masterAddr = get("master_addr", "127.0.0.1");
    const masterPort = values.has("master_port") ? get("master_port", 0) : await freePort(isLoopback(masterAddr) ? masterAddr : "0.0.0.0");
    const entry = cliEntry();
    await launchWorkers({
      nprocPerNode: nproc,
      nnodes,
      nodeRank: get("node_rank", 0),
      masterAddr,
      masterPort,
      command: process.execPath,
      args: [...entry.execArgv, entry.file, command, ...withoutFlags(argv, new Set(Object.keys(LAUNCH_FLAGS)))],
      op,
    });
    return { launched: true };
  }
  if (env === null) return { launched: false, rank: 0, distributed: null };
  // The processes of one machine share its cores (as torchrun sets OMP_NUM_THREADS), unless GROWLM_NUM_THREADS says otherwise.
  if (env.localWorldSize !== null && env.localWorldSize > 1 && !process.env.GROWLM_NUM_THREADS) setThreads(Math.max(1, Math.floor(os.availableParallelism() / env.localWorldSize)));
  const bucketCapMb = get("ddp_bucket_cap_mb", DEFAULT_BUCKET_CAP_MB);
  if (!(bucketCapMb > 0)) throw new GrowlmError(op, `--ddp_bucket_cap_mb must be > 0 but is ${bucketCapMb}`);
  const communicator = await initProcessGroup(env, {
    backend: get<CommBackend>("ddp_backend", "tcp"),
    timeoutSeconds: get("ddp_timeout", DEFAULT_COMM_TIMEOUT_SECONDS),
  });
  return { launched: false, rank: env.rank, distributed: { communicator, bucketCapMb } };
}
