/**
 * The NCCL communicator: NVIDIA's collectives between the GPUs of a data-parallel job, one
 * process per GPU (the device is cuda:LOCAL_RANK), through the CUDA backend's binding
 * (bindings/nccl.cc; NCCL is loaded at run time from GROWLM_NCCL_PATH or libnccl.so.2).
 *
 * Rendezvous (NcclCommunicator.connect): as torchrun's "env://" with the nccl backend, rank 0
 * serves the store at MASTER_ADDR:MASTER_PORT (src/train/comm-store.ts), makes NCCL's unique
 * id (ncclGetUniqueId, 128 bytes) and publishes it there with its WORLD_SIZE; every rank reads
 * it, checks the world sizes agree, and joins with ncclCommInitRank, which returns once every
 * rank has joined (on a worker thread, so rank 0's event loop keeps serving the store until
 * then). After that NCCL's own connections carry everything and the store closes.
 *
 * Collectives: on DeviceBuffers they run in place on the device's stream (allReduceDevice,
 * broadcastDevice); the Communicator interface's host arrays are copied to a device buffer,
 * reduced there, and copied back when the work is waited for. wait() blocks until the
 * device's stream has run the collective, polling NCCL for the asynchronous error a lost peer
 * causes and giving up after the timeout (the communicator is then aborted), so a dead rank
 * is an error, never a hang.
 *
 * Unlike the "tcp" communicator, NCCL does not sum in rank order: every rank gets the same
 * bits, but they may differ run to run when NCCL picks another algorithm (ring, tree) or
 * topology. NCCL is not emulated: with GROWLM_CUDA_EMULATE=1 the "tcp" communicator covers the
 * same semantics on the CPU.
 */
import { type CudaInfo, type DeviceBuffer, cudaInfo } from "../device.js";
import { GrowlmError } from "../errors.js";
import { binding } from "../native.js";
import type { CommArray, CommWork, Communicator, DistributedEnv, ReduceOp } from "./comm.js";
import { TcpStoreClient, TcpStoreServer } from "./comm-store.js";

/** Size of ncclUniqueId (NCCL_UNIQUE_ID_BYTES). */
export const NCCL_UNIQUE_ID_BYTES = 128;

/** The store key under which rank 0 publishes NCCL's unique id. */
export const NCCL_UNIQUE_ID_KEY = "nccl/unique_id";

/** Element types NCCL collectives move here. */
export type NcclDtype = "float32" | "bfloat16" | "float64";

/** One rank's NCCL communicator (bindings/nccl.cc). */
export interface NcclComm {
  readonly rank: number;
  readonly nranks: number;
  /** The CUDA ordinal it runs on. */
  readonly device: number;
  /** True once destroyed or aborted. */
  readonly closed: boolean;
  /** ncclCommDestroy: frees it after its queued work. */
  destroy(): void;
  /** ncclCommAbort: frees it at once, abandoning queued collectives. */
  abort(): void;
}

/** binding.cuda's NCCL functions. */
export interface NcclBinding {
  /** NCCL's version code (22105 for 2.21.5), loading the library; throws naming libnccl.so.2 when absent. */
  ncclVersion(): number;
  /** Where NCCL was loaded from. */
  ncclLibrary(): string;
  /** A new unique id (ncclGetUniqueId): Uint8Array(128). */
  ncclUniqueId(): Uint8Array;
  /** ncclCommInitRank on `device`; resolves once all `nranks` ranks have joined. */
  ncclCommInit(id: Uint8Array, nranks: number, rank: number, device: number): Promise<NcclComm>;
  /** In-place all-reduce of `count` elements (buffer.byteLength must be count × the element size), queued on the device's stream. */
  ncclAllReduce(comm: NcclComm, buffer: DeviceBuffer, count: number, dtype: NcclDtype, op: "sum" | "avg"): void;
  /** In-place broadcast from rank `root`, queued. */
  ncclBroadcast(comm: NcclComm, buffer: DeviceBuffer, count: number, dtype: NcclDtype, root: number): void;
  ncclGroupStart(): void;
  ncclGroupEnd(): void;
  /** Blocks until the device's queued work (its collectives included) has run; on an NCCL error or the timeout, aborts `comm` and throws. */
  ncclWait(comm: NcclComm, timeoutSeconds: number): void;
}

/** The device copies the communicator stages host arrays with (src/device.ts's CudaCoreBinding). */
export interface NcclStaging {
  alloc(device: number, bytes: number): DeviceBuffer;
  copyToDevice(dst: DeviceBuffer, src: ArrayBufferView): void;
  copyToHost(dst: ArrayBufferView, src: DeviceBuffer): void;
}

/** What NcclCommunicator.connect uses; tests replace it to run the rendezvous without NCCL. */
export interface NcclDependencies {
  nccl: NcclBinding;
  staging: NcclStaging;
  /** The CUDA backend's devices (cudaInfo()). */
  cuda: () => CudaInfo;
}

/** The store operations the unique-id exchange needs (TcpStoreClient has them). */
export type UniqueIdStore = Pick<TcpStoreClient, "set" | "get">;

/**
 * Gives every rank the same NCCL unique id: rank 0 makes it with `createId` and publishes it
 * with its world size under NCCL_UNIQUE_ID_KEY; every rank reads it back and checks that the
 * world sizes agree and the id has NCCL_UNIQUE_ID_BYTES bytes.
 * @param where the rendezvous address, for messages
 */
export async function exchangeNcclUniqueId(store: UniqueIdStore, rank: number, worldSize: number, createId: () => Uint8Array, where: string): Promise<Uint8Array> {
  const op = "rendezvous";
  if (rank === 0) {
    const id = createId();
    if (id.length !== NCCL_UNIQUE_ID_BYTES) throw new GrowlmError(op, `NCCL made a unique id of ${id.length} bytes instead of ${NCCL_UNIQUE_ID_BYTES}`);
    await store.set(NCCL_UNIQUE_ID_KEY, JSON.stringify({ worldSize, id: Buffer.from(id.buffer, id.byteOffset, id.length).toString("base64") }));
  }
  const raw = await store.get(NCCL_UNIQUE_ID_KEY, `waiting for rank 0 to share NCCL's unique id at ${where}`);
  let shared: { worldSize: unknown; id: unknown };
  try {
    shared = JSON.parse(raw) as { worldSize: unknown; id: unknown };
  } catch {
    throw new GrowlmError(op, `the store at ${where} holds an unreadable NCCL unique id under "${NCCL_UNIQUE_ID_KEY}" (another program on MASTER_PORT?)`);
  }
  if (shared.worldSize !== worldSize) {
    throw new GrowlmError(op, `this process has WORLD_SIZE=${worldSize} but rank 0 has WORLD_SIZE=${String(shared.worldSize)}`);
  }
  const id = typeof shared.id === "string" ? new Uint8Array(Buffer.from(shared.id, "base64")) : new Uint8Array(0);
  if (id.length !== NCCL_UNIQUE_ID_BYTES) {
    throw new GrowlmError(op, `the NCCL unique id from rank 0 has ${id.length} bytes instead of ${NCCL_UNIQUE_ID_BYTES}`);
  }
  return id;
}

/** binding.cuda's NCCL functions, device copies and device list. */
export function defaultNcclDependencies(): NcclDependencies {
  return { nccl: binding.cuda, staging: binding.cuda, cuda: cudaInfo };
}

class NcclWork implements CommWork {
  #settled = false;

  constructor(
    readonly owner: NcclCommunicator,
    readonly what: string,
    /** For a staged host array: the array and its device copy. */
    readonly target: CommArray | null,
    readonly staged: DeviceBuffer | null,
  ) {}

  wait(): void {
    if (this.#settled) return;
    this.#settled = true;
    try {
      this.owner.waitForStream(this.what);
      if (this.target && this.staged) this.owner.staging.copyToHost(this.target, this.staged);
    } finally {
      this.staged?.free();
      this.owner.settled();
    }
  }
}

/** A Communicator over NCCL (see the module comment). */
export class NcclCommunicator implements Communicator {
  readonly backend = "nccl" as const;
  #inFlight = 0;
  #failure: GrowlmError | null = null;
  /** A 4-byte device buffer the barrier all-reduces. */
  #token: DeviceBuffer | null = null;

  private constructor(
    readonly rank: number,
    readonly worldSize: number,
    /** The CUDA ordinal of this rank's GPU (LOCAL_RANK). */
    readonly device: number,
    readonly comm: NcclComm,
    readonly nccl: NcclBinding,
    readonly staging: NcclStaging,
    readonly timeoutMs: number,
  ) {}

  /**
   * Joins the group `env` describes on GPU cuda:LOCAL_RANK (see the module comment). Fails
   * before any rendezvous, naming the cause, when NCCL or the device is missing.
   */
  static async connect(env: DistributedEnv, timeoutMs: number, deps: NcclDependencies = defaultNcclDependencies()): Promise<NcclCommunicator> {
    const op = "NcclCommunicator";
    const { rank, worldSize, localRank } = env;
    try {
      deps.nccl.ncclVersion();
    } catch (err) {
      throw new GrowlmError(op, `the "nccl" backend cannot load NCCL: ${(err as Error).message}`, { cause: err });
    }
    const info = deps.cuda();
    if (info.emulated) {
      throw new GrowlmError(op, 'NCCL is not emulated: with GROWLM_CUDA_EMULATE=1 use the "tcp" backend (--ddp_backend tcp), which runs the same collectives on the CPU');
    }
    if (localRank >= info.devices.length) {
      const why = info.devices.length === 0 ? `no CUDA device is usable (${info.unavailableReason})` : `this machine has ${info.devices.length} CUDA device(s)`;
      throw new GrowlmError(op, `rank ${rank} needs GPU cuda:${localRank} (LOCAL_RANK=${localRank}) but ${why}: run at most one process per GPU`);
    }
    const deadline = Date.now() + timeoutMs;
    const where = `${env.masterAddr}:${env.masterPort}`;
    let server: TcpStoreServer | null = null;
    let client: TcpStoreClient | null = null;
    try {
      let id: Uint8Array;
      if (worldSize === 1) {
        id = deps.nccl.ncclUniqueId();
      } else {
        if (rank === 0) server = await TcpStoreServer.listen(env.masterAddr, env.masterPort);
        client = await TcpStoreClient.connect(env.masterAddr, env.masterPort, deadline);
        if ((await client.add(`nccl/rank/${rank}`, 1)) > 1) {
          throw new GrowlmError("rendezvous", `another process already joined ${where} as RANK=${rank}: every process needs its own rank`);
        }
        id = await exchangeNcclUniqueId(client, rank, worldSize, () => deps.nccl.ncclUniqueId(), where);
      }
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new GrowlmError("rendezvous", `rank ${rank}: NCCL's communicator was not complete before the timeout (ncclCommInitRank waits for all ${worldSize} ranks; is every rank running, with the same MASTER_ADDR and MASTER_PORT?)`)),
          Math.max(0, deadline - Date.now()),
        );
      });
      let comm: NcclComm;
      try {
        comm = await Promise.race([deps.nccl.ncclCommInit(id, worldSize, rank, localRank), timeout]);
      } finally {
        clearTimeout(timer);
      }
      // Every rank has the id once ncclCommInitRank returns: the store is no longer needed.
      client?.close();
      client = null;
      server?.close();
      return new NcclCommunicator(rank, worldSize, localRank, comm, deps.nccl, deps.staging, timeoutMs);
    } catch (err) {
      client?.close();
      server?.close(true);
      throw err;
    }
  }

  #check(collective: string): void {
    if (this.#failure) throw this.#failure;
    if (this.comm.closed) throw new GrowlmError(`NcclCommunicator.${collective}`, `rank ${this.rank}: the communicator is closed`);
  }

  #start(collective: string, data: CommArray, run: (buffer: DeviceBuffer, count: number, dtype: NcclDtype) => void): CommWork {
    this.#check(collective);
    if (!(data instanceof Float32Array) && !(data instanceof Float64Array)) {
      throw new GrowlmError(`NcclCommunicator.${collective}`, `expected a Float32Array or Float64Array but received ${Object.prototype.toString.call(data)}`);
    }
    if (data.length === 0) return this.#work(collective, null, null);
    const staged = this.staging.alloc(this.device, data.byteLength);
    try {
      this.staging.copyToDevice(staged, data);
      run(staged, data.length, data instanceof Float32Array ? "float32" : "float64");
    } catch (err) {
      staged.free();
      throw err;
    }
    return this.#work(collective, data, staged);
  }

  #work(collective: string, target: CommArray | null, staged: DeviceBuffer | null): CommWork {
    this.#inFlight++;
    return new NcclWork(this, `rank ${this.rank}: ${collective}`, target, staged);
  }

  /** Sums (or averages) `data` over the ranks, in place; NCCL's order of additions (see the module comment). */
  allReduce(data: CommArray, op: ReduceOp = "sum"): CommWork {
    const nccl = reduction(op);
    return this.#start("allReduce", data, (buffer, count, dtype) => this.nccl.ncclAllReduce(this.comm, buffer, count, dtype, nccl));
  }

  broadcast(data: CommArray, root = 0): CommWork {
    checkRoot(root, this.worldSize);
    return this.#start("broadcast", data, (buffer, count, dtype) => this.nccl.ncclBroadcast(this.comm, buffer, count, dtype, root));
  }

  /**
   * All-reduces `count` elements of `dtype` in `buffer` (on this rank's GPU) in place on the
   * device's stream: no host copy. The buffer must not be used until the work is waited for.
   */
  allReduceDevice(buffer: DeviceBuffer, count: number, dtype: NcclDtype, op: ReduceOp = "sum"): CommWork {
    this.#check("allReduceDevice");
    this.nccl.ncclAllReduce(this.comm, buffer, count, dtype, reduction(op));
    return this.#work("allReduceDevice", null, null);
  }

  /** Copies rank `root`'s `buffer` into every rank's, in place on the device's stream. */
  broadcastDevice(buffer: DeviceBuffer, count: number, dtype: NcclDtype, root = 0): CommWork {
    this.#check("broadcastDevice");
    checkRoot(root, this.worldSize);
    this.nccl.ncclBroadcast(this.comm, buffer, count, dtype, root);
    return this.#work("broadcastDevice", null, null);
  }

  /**
   * Runs `start` between ncclGroupStart and ncclGroupEnd: the collectives it starts (bucket
   * all-reduces, say) are launched as one.
   */
  group<T>(start: () => T): T {
    this.#check("group");
    this.nccl.ncclGroupStart();
    try {
      return start();
    } finally {
      this.nccl.ncclGroupEnd();
    }
  }

  barrier(): CommWork {
    this.#check("barrier");
    this.#token ??= this.staging.alloc(this.device, 4);
    this.nccl.ncclAllReduce(this.comm, this.#token, 1, "float32", "sum");
    return this.#work("barrier", null, null);
  }

  /** @internal Waits for the device's stream (NcclWork.wait); a failure aborts the communicator and is kept for every later call. */
  waitForStream(what: string): void {
    if (this.#failure) throw this.#failure;
    try {
      this.nccl.ncclWait(this.comm, this.timeoutMs / 1000);
    } catch (err) {
      this.#failure = new GrowlmError("NcclCommunicator", `${what}: ${(err as Error).message}`, { cause: err });
      throw this.#failure;
    }
  }

  /** @internal Called once per collective when it is waited for. */
  settled(): void {
    this.#inFlight--;
  }

  async close(): Promise<void> {
    if (this.comm.closed) return;
    const unwaited = this.#inFlight;
    this.#token?.free();
    this.#token = null;
    if (unwaited > 0 || this.#failure) this.comm.abort();
    else this.comm.destroy();
    if (unwaited > 0) throw new GrowlmError("NcclCommunicator.close", `rank ${this.rank}: ${unwaited} started collective(s) were never waited for`);
  }
}

function reduction(op: ReduceOp): "sum" | "avg" {
  if (op === "sum") return "sum";
  if (op === "mean") return "avg";
  throw new GrowlmError("NcclCommunicator.allReduce", `the reduction must be "sum" or "mean" but is ${JSON.stringify(op)}`);
}

function checkRoot(root: number, worldSize: number): void {
  if (!Number.isSafeInteger(root) || root < 0 || root >= worldSize) {
    throw new GrowlmError("NcclCommunicator.broadcast", `the root must be a rank in [0, ${worldSize}) but is ${root}`);
  }
}
