/**
 * The CPU communicator: TCP connections between the ranks, run by a worker thread of each
 * process (comm-tcp-worker.ts describes the collectives and why their sums are reproducible).
 *
 * Why a thread: a training step is synchronous JavaScript calling native kernels, so the main
 * thread's event loop does not turn while it computes. The worker's loop does: a collective
 * started during the backward moves and sums its data while the backward goes on, and
 * CommWork.wait() blocks the main thread on a shared-memory status cell (Atomics.wait) rather
 * than needing the event loop. Data the worker touches must live in shared memory: arrays over
 * a SharedArrayBuffer are used in place, any other array (model gradients live in native
 * memory) is copied into a reusable shared staging buffer when the collective starts and back
 * when it is waited for.
 *
 * Rendezvous (TcpCommunicator.connect): rank 0 serves the store at MASTER_ADDR:MASTER_PORT;
 * each rank checks that its rank is its own and its WORLD_SIZE is rank 0's, listens for its
 * peers on the address its store connection leaves from (the interface that routes to rank 0,
 * so the same code serves one machine and several), publishes that address, connects to the
 * lower ranks and accepts the higher ones; rank 0 stops serving once every rank is connected.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";

import { GrowlmError } from "../errors.js";
import type { CommArray, CommWork, Communicator, DistributedEnv, ReduceOp } from "./comm.js";
import { TcpStoreClient, TcpStoreServer } from "./comm-store.js";
import {
  CONTROL_BYTES,
  CONTROL_MESSAGE_BYTES,
  CONTROL_MESSAGE_OFFSET,
  type CollectiveKind,
  type CollectiveRequest,
  type PeerAddress,
  STATUS_FAILED,
  STATUS_PENDING,
  type WorkerReply,
  type WorkerRequest,
  type WorkerSetup,
  describeCollective,
} from "./comm-tcp-protocol.js";

/** How much longer than the collective timeout wait() gives the worker to report before blaming the thread itself. */
const THREAD_GRACE_MS = 10_000;

/**
 * Starts the communication thread. From the built package the worker module is JavaScript;
 * from TypeScript source (tests, tsx) it goes through tsx's loader, which Node 20 does not
 * pass on to worker threads by itself.
 */
function startWorker(setup: WorkerSetup): Worker {
  const extension = path.extname(fileURLToPath(import.meta.url));
  const entry = new URL(`./comm-tcp-worker${extension}`, import.meta.url);
  if (extension !== ".ts") return new Worker(entry, { workerData: setup });
  // tsx's ESM API (its package exports' "./esm/api" import entry) registers the loader in this thread.
  const manifest = createRequire(import.meta.url).resolve("tsx/package.json");
  const { exports } = JSON.parse(readFileSync(manifest, "utf8")) as { exports: Record<string, { import: { default: string } }> };
  const api = pathToFileURL(path.join(path.dirname(manifest), exports["./esm/api"]!.import.default)).href;
  return new Worker(`import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`, { eval: true, workerData: setup });
}

/** Sends `request` and resolves with the worker's next reply of kind `expected`. */
function ask<K extends WorkerReply["kind"]>(worker: Worker, request: WorkerRequest, expected: K): Promise<Extract<WorkerReply, { kind: K }>> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      worker.off("message", onMessage);
      worker.off("error", onError);
      worker.off("exit", onExit);
    };
    const onMessage = (reply: WorkerReply): void => {
      cleanup();
      if (reply.kind === "error") reject(new GrowlmError("TcpCommunicator", reply.message));
      else if (reply.kind === expected) resolve(reply as Extract<WorkerReply, { kind: K }>);
      else reject(new GrowlmError("TcpCommunicator", `the communication thread answered "${reply.kind}" to "${request.kind}"`));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new GrowlmError("TcpCommunicator", `the communication thread failed: ${err.message}`, { cause: err }));
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new GrowlmError("TcpCommunicator", `the communication thread exited with code ${code}`));
    };
    worker.on("message", onMessage);
    worker.on("error", onError);
    worker.on("exit", onExit);
    worker.postMessage(request);
  });
}

class CompletedWork implements CommWork {
  wait(): void {}
}

/** What a TcpWork needs from its communicator. */
interface WorkOwner {
  readonly rank: number;
  /** Called once per collective when it is waited for. */
  settled(): void;
  /** The first failure, as the worker recorded it. */
  failure(): GrowlmError;
}

class TcpWork implements CommWork {
  #settled = false;

  constructor(
    readonly owner: WorkOwner,
    readonly request: CollectiveRequest,
    /** The caller's array when its data was staged (copied back on completion). */
    readonly target: CommArray | null,
    readonly staged: CommArray | null,
  ) {}

  wait(): void {
    if (this.#settled) return;
    const status = this.request.status;
    const limit = this.request.deadline + THREAD_GRACE_MS;
    while (Atomics.load(status, 0) === STATUS_PENDING) {
      const left = limit - Date.now();
      if (left <= 0) {
        this.#settled = true;
        this.owner.settled();
        throw new GrowlmError(
          "TcpCommunicator",
          `rank ${this.owner.rank}: the communication thread did not report on ${describeCollective(this.request)} (collective #${this.request.seq}) within the timeout; it has stopped`,
        );
      }
      Atomics.wait(status, 0, STATUS_PENDING, left);
    }
    this.#settled = true;
    this.owner.settled();
    if (Atomics.load(status, 0) === STATUS_FAILED) throw this.owner.failure();
    if (this.target && this.staged) this.target.set(this.staged);
  }
}

export class TcpCommunicator implements Communicator {
  readonly backend = "tcp" as const;
  readonly #worker: Worker | null;
  readonly #control: SharedArrayBuffer;
  readonly #timeoutMs: number;
  #seq = 0;
  #closed = false;
  /** Staging memory for arrays that are not shared, reused once every collective using it is waited for. */
  #arena: SharedArrayBuffer | null = null;
  #arenaUsed = 0;
  #inFlight = 0;
  readonly #owner: WorkOwner;

  private constructor(
    readonly rank: number,
    readonly worldSize: number,
    worker: Worker | null,
    control: SharedArrayBuffer,
    timeoutMs: number,
  ) {
    this.#worker = worker;
    this.#control = control;
    this.#timeoutMs = timeoutMs;
    this.#owner = {
      rank,
      settled: () => {
        // The staging memory is reused once no collective uses it.
        if (--this.#inFlight === 0) this.#arenaUsed = 0;
      },
      failure: () => this.#failure(),
    };
  }

  /** Joins the group `env` describes (see the module comment); every step is bounded by `timeoutMs`. */
  static async connect(env: DistributedEnv, timeoutMs: number): Promise<TcpCommunicator> {
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    if (env.worldSize === 1) return new TcpCommunicator(0, 1, null, control, timeoutMs);
    const deadline = Date.now() + timeoutMs;
    const { rank, worldSize } = env;
    const where = `${env.masterAddr}:${env.masterPort}`;
    let server: TcpStoreServer | null = null;
    let client: TcpStoreClient | null = null;
    let worker: Worker | null = null;
    try {
      if (rank === 0) server = await TcpStoreServer.listen(env.masterAddr, env.masterPort);
      client = await TcpStoreClient.connect(env.masterAddr, env.masterPort, deadline);
      if ((await client.add(`rank/${rank}`, 1)) > 1) {
        throw new GrowlmError("rendezvous", `another process already joined ${where} as RANK=${rank}: every process needs its own rank`);
      }
      if (rank === 0) await client.set("world_size", String(worldSize));
      const rankZeroWorld = Number(await client.get("world_size", `waiting for rank 0 to join the rendezvous at ${where}`));
      if (rankZeroWorld !== worldSize) throw new GrowlmError("rendezvous", `this process has WORLD_SIZE=${worldSize} but rank 0 has WORLD_SIZE=${rankZeroWorld}`);

      worker = startWorker({ rank, worldSize, timeoutMs, control });
      const host = client.localAddress;
      const { port } = await ask(worker, { kind: "listen", host }, "listening");
      await client.set(`tcp/${rank}`, JSON.stringify({ host, port }));
      const peers: PeerAddress[] = [];
      for (let r = 0; r < worldSize; r++) {
        peers.push(JSON.parse(await client.get(`tcp/${r}`, `waiting for rank ${r} to join the rendezvous at ${where}`)) as PeerAddress);
      }
      await ask(worker, { kind: "connect", peers, deadline }, "connected");
      // Rank 0 serves the store from its main thread, whose event loop stops turning once
      // training starts: it leaves last, when every rank has said it is connected, and no
      // other rank waits for an answer after that.
      if ((await client.add("connected", 1)) === worldSize) await client.set("complete", "1");
      if (rank === 0) await client.get("complete", `waiting for every rank to connect to the others (rendezvous at ${where})`);
      client.close();
      client = null;
      server?.close();
      worker.unref();
      return new TcpCommunicator(rank, worldSize, worker, control, timeoutMs);
    } catch (err) {
      client?.close();
      await worker?.terminate();
      server?.close(true);
      throw err;
    }
  }

  allReduce(data: CommArray, op: ReduceOp = "sum"): CommWork {
    if (op !== "sum" && op !== "mean") throw new GrowlmError("TcpCommunicator.allReduce", `the reduction must be "sum" or "mean" but is ${JSON.stringify(op)}`);
    return this.#start("allReduce", data, op === "mean", 0);
  }

  broadcast(data: CommArray, root = 0): CommWork {
    if (!Number.isSafeInteger(root) || root < 0 || root >= this.worldSize) {
      throw new GrowlmError("TcpCommunicator.broadcast", `the root must be a rank in [0, ${this.worldSize}) but is ${root}`);
    }
    return this.#start("broadcast", data, false, root);
  }

  barrier(): CommWork {
    return this.#start("barrier", null, false, 0);
  }

  #failure(): GrowlmError {
    const header = new Int32Array(this.#control, 0, 2);
    const bytes = new Uint8Array(this.#control, CONTROL_MESSAGE_OFFSET, Math.min(Atomics.load(header, 1), CONTROL_MESSAGE_BYTES));
    return new GrowlmError("TcpCommunicator", new TextDecoder().decode(bytes.slice()));
  }

  #start(collective: CollectiveKind, data: CommArray | null, mean: boolean, root: number): CommWork {
    const op = `TcpCommunicator.${collective}`;
    if (this.#closed) throw new GrowlmError(op, `rank ${this.rank}: the communicator is closed`);
    if (data !== null && !(data instanceof Float32Array) && !(data instanceof Float64Array)) {
      throw new GrowlmError(op, `expected a Float32Array or Float64Array but received ${Object.prototype.toString.call(data)}`);
    }
    if (this.#worker === null) {
      this.#seq++;
      return new CompletedWork();
    }
    if (Atomics.load(new Int32Array(this.#control, 0, 1), 0) !== 0) throw this.#failure();
    const shared = data === null ? new Float32Array(new SharedArrayBuffer(0)) : data.buffer instanceof SharedArrayBuffer ? data : this.#stage(data);
    const request: CollectiveRequest = {
      kind: "collective",
      seq: this.#seq++,
      collective,
      dtype: shared instanceof Float32Array ? "float32" : "float64",
      length: shared.length,
      buffer: shared.buffer as SharedArrayBuffer,
      byteOffset: shared.byteOffset,
      mean,
      root,
      status: new Int32Array(new SharedArrayBuffer(4)),
      deadline: Date.now() + this.#timeoutMs,
    };
    this.#worker.postMessage(request);
    this.#inFlight++;
    return new TcpWork(this.#owner, request, data !== null && shared !== data ? data : null, shared !== data ? shared : null);
  }

  /** A copy of `data` in shared memory (8-byte aligned within the arena). */
  #stage(data: CommArray): CommArray {
    const bytes = Math.ceil(data.byteLength / 8) * 8;
    if (this.#arena === null || this.#arenaUsed + bytes > this.#arena.byteLength) {
      // A fresh arena: collectives still using the old one keep it alive until they are waited for.
      this.#arena = new SharedArrayBuffer(Math.max(bytes, 2 * (this.#arena?.byteLength ?? 0)));
      this.#arenaUsed = 0;
    }
    const copy = data instanceof Float32Array ? new Float32Array(this.#arena, this.#arenaUsed, data.length) : new Float64Array(this.#arena, this.#arenaUsed, data.length);
    copy.set(data);
    this.#arenaUsed += bytes;
    return copy;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const worker = this.#worker;
    if (worker === null) return;
    const unwaited = this.#inFlight;
    const failed = Atomics.load(new Int32Array(this.#control, 0, 1), 0) !== 0;
    try {
      if (!failed && unwaited === 0) {
        worker.ref();
        await Promise.race([ask(worker, { kind: "close" }, "closed"), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
      }
    } finally {
      await worker.terminate();
    }
    if (unwaited > 0) throw new GrowlmError("TcpCommunicator.close", `rank ${this.rank}: ${unwaited} started collective(s) were never waited for`);
  }
}
