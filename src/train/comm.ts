/**
 * Collective communication between the processes of a data-parallel job, the way
 * torch.distributed has it: one process per rank, a rendezvous through the MASTER_ADDR,
 * MASTER_PORT, RANK, WORLD_SIZE and LOCAL_RANK variables that torchrun (and growlm's own
 * launcher, src/train/launch.ts) sets, and collectives that every rank calls in the same
 * order with the same sizes.
 *
 * A collective starts when it is called and returns a CommWork; `wait()` blocks until it has
 * completed (torch's `async_op=True` then `work.wait()`). The training step is synchronous
 * code calling native kernels, so the communication makes progress elsewhere while the
 * step computes: on a thread of its own for the CPU backend ("tcp", src/train/comm-tcp.ts), on
 * a CUDA stream for NCCL. That is what lets gradient buckets be reduced during the backward
 * (src/train/data-parallel.ts).
 *
 * Backends: "tcp" runs on any machine (processes on one or several hosts, rank-ordered sums,
 * so results are reproducible run to run); "nccl" (src/train/comm-nccl.ts) runs between GPUs
 * with the CUDA backend, and fails before any rendezvous with a message naming libnccl.so.2
 * where NCCL is not installed (or naming the missing CUDA backend or device). Both share the rendezvous store
 * (src/train/comm-store.ts), which is where NCCL's unique id travels from rank 0 to the others.
 */
import { GrowlmError } from "../errors.js";
import { NcclCommunicator } from "./comm-nccl.js";
import { TcpCommunicator } from "./comm-tcp.js";

/** What an all-reduce computes: the element-wise sum over ranks, or that sum divided by the world size. */
export type ReduceOp = "sum" | "mean";

/** Element types the collectives move (float32 gradients and parameters, float64 counters and sums). */
export type CommArray = Float32Array | Float64Array;

/**
 * "tcp": the CPU implementation (sockets between the ranks, a thread per process);
 * "nccl": NVIDIA's collectives, provided by growlm's CUDA backend.
 */
export type CommBackend = "tcp" | "nccl";

export const COMM_BACKENDS: readonly CommBackend[] = ["tcp", "nccl"];

/** A started collective. */
export interface CommWork {
  /**
   * Blocks until the collective has completed on this rank, then its result is in the array
   * it was given. Until then that array must be neither read nor written. Throws a
   * GrowlmError naming the rank, the collective and the cause when it failed or timed out;
   * after a failure every later collective of the communicator fails the same way.
   */
  wait(): void;
}

/** The collectives of one process group; every rank calls the same ones in the same order. */
export interface Communicator {
  readonly backend: CommBackend;
  /** This process's rank in [0, worldSize). */
  readonly rank: number;
  readonly worldSize: number;
  /**
   * Reduces `data` over all ranks, in place: every rank ends with the same bits. The sum is
   * taken in rank order (((x₀ + x₁) + x₂) + …) for every element, whatever the world's layout.
   */
  allReduce(data: CommArray, op?: ReduceOp): CommWork;
  /** Copies `root`'s `data` into every other rank's `data` (same length and type everywhere). */
  broadcast(data: CommArray, root?: number): CommWork;
  /** Completes once every rank has called it. */
  barrier(): CommWork;
  /**
   * Leaves the group: the other ranks see an orderly departure, not a failure. Every started
   * collective must have been waited for. Idempotent.
   */
  close(): Promise<void>;
}

/** The rendezvous variables of a process, as torchrun sets them. */
export interface DistributedEnv {
  /** RANK: the process's rank among all processes of the job. */
  rank: number;
  /** WORLD_SIZE: processes in the job. */
  worldSize: number;
  /** LOCAL_RANK: the rank among the processes of this machine (selects the GPU). */
  localRank: number;
  /** LOCAL_WORLD_SIZE: processes on this machine (null where the launcher did not say). */
  localWorldSize: number | null;
  /** MASTER_ADDR and MASTER_PORT: where rank 0 runs the rendezvous store. */
  masterAddr: string;
  masterPort: number;
}

const REQUIRED_VARIABLES = ["MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"] as const;

function integerVariable(env: Readonly<Record<string, string | undefined>>, name: string, min: number, max: number, why: string): number {
  const raw = env[name]!;
  const value = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new GrowlmError("distributedEnv", `${name}=${JSON.stringify(raw)} must be an integer in [${min}, ${max}]${why}`);
  }
  return value;
}

/**
 * The rendezvous variables of `env`, or null when the process runs alone (none of RANK and
 * WORLD_SIZE is set). When one is set, MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE and
 * LOCAL_RANK must all be, and hold sensible values; errors name the variable.
 */
export function distributedEnv(env: Readonly<Record<string, string | undefined>> = process.env): DistributedEnv | null {
  const op = "distributedEnv";
  if (env.RANK === undefined && env.WORLD_SIZE === undefined) return null;
  const missing = REQUIRED_VARIABLES.filter((name) => env[name] === undefined || env[name] === "");
  if (missing.length > 0) {
    throw new GrowlmError(op, `a data-parallel process needs ${REQUIRED_VARIABLES.join(", ")} (torchrun and growlm --nproc_per_node set them); missing: ${missing.join(", ")}`);
  }
  const worldSize = integerVariable(env, "WORLD_SIZE", 1, 65536, "");
  const rank = integerVariable(env, "RANK", 0, worldSize - 1, ` (WORLD_SIZE=${worldSize})`);
  const masterPort = integerVariable(env, "MASTER_PORT", 1, 65535, "");
  let localWorldSize: number | null = null;
  if (env.LOCAL_WORLD_SIZE !== undefined && env.LOCAL_WORLD_SIZE !== "") {
    localWorldSize = integerVariable(env, "LOCAL_WORLD_SIZE", 1, worldSize, ` (WORLD_SIZE=${worldSize})`);
  }
  const localRank = integerVariable(env, "LOCAL_RANK", 0, (localWorldSize ?? worldSize) - 1, localWorldSize === null ? ` (WORLD_SIZE=${worldSize})` : ` (LOCAL_WORLD_SIZE=${localWorldSize})`);
  return { rank, worldSize, localRank, localWorldSize, masterAddr: env.MASTER_ADDR!.trim(), masterPort };
}

export interface ProcessGroupOptions {
  /** Default "tcp". */
  backend?: CommBackend;
  /**
   * Seconds any rank waits for the others, in the rendezvous and in every collective, before
   * failing with a message that names the missing ranks (Hugging Face's ddp_timeout, default
   * 1800 as torch's default process-group timeout).
   */
  timeoutSeconds?: number;
}

/** torch.distributed's default process-group timeout, and TrainingArguments.ddp_timeout's default. */
export const DEFAULT_COMM_TIMEOUT_SECONDS = 1800;

/**
 * Joins the process group `env` describes (torch.distributed.init_process_group with
 * init_method "env://"): rank 0 serves the rendezvous at MASTER_ADDR:MASTER_PORT, every rank
 * registers there, and the backend connects the ranks. Resolves once every rank has joined.
 */
export async function initProcessGroup(env: DistributedEnv, options: ProcessGroupOptions = {}): Promise<Communicator> {
  const op = "initProcessGroup";
  const backend = options.backend ?? "tcp";
  const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_COMM_TIMEOUT_SECONDS;
  if (!(timeoutSeconds > 0) || !Number.isFinite(timeoutSeconds)) {
    throw new GrowlmError(op, `the timeout must be a positive number of seconds but is ${timeoutSeconds}`);
  }
  if (backend === "tcp") return TcpCommunicator.connect(env, timeoutSeconds * 1000);
  if (backend === "nccl") return NcclCommunicator.connect(env, timeoutSeconds * 1000);
  throw new GrowlmError(op, `the backend must be one of ${COMM_BACKENDS.join(", ")} but is ${JSON.stringify(backend)}`);
}

/**
 * Σ over ranks of each of `values` (float64, exact for counts below 2⁵³), blocking: token
 * counts, loss sums and other scalars every rank needs the global value of.
 */
export function sumAcrossRanks(comm: Communicator, values: readonly number[]): number[] {
  const data = Float64Array.from(values);
  comm.allReduce(data, "sum").wait();
  return Array.from(data);
}
