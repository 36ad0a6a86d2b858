/**
 * What the TCP communicator's two halves say to each other: the main thread (comm-tcp.ts),
 * which starts collectives and blocks in CommWork.wait(), and its worker thread
 * (comm-tcp-worker.ts), which owns the sockets and runs the collectives.
 *
 * Collectives need no message back: each has an Int32Array status cell in shared memory that
 * the worker sets and Atomics.notify()s, so the main thread can wait with Atomics.wait while
 * its event loop is blocked by the training step. The first failure's text goes into the
 * shared control block, where a blocked main thread can read it.
 */

/** A collective's status cell: pending until the worker sets done or failed. */
export const STATUS_PENDING = 0;
export const STATUS_DONE = 1;
export const STATUS_FAILED = 2;

/** Control block: Int32 [0] = failed (0/1), [1] = byte length of the failure message; the UTF-8 message from CONTROL_MESSAGE_OFFSET. */
export const CONTROL_MESSAGE_OFFSET = 8;
export const CONTROL_MESSAGE_BYTES = 4096;
export const CONTROL_BYTES = CONTROL_MESSAGE_OFFSET + CONTROL_MESSAGE_BYTES;

export type CommDtype = "float32" | "float64";
export type CollectiveKind = "allReduce" | "broadcast" | "barrier";

/** One collective as the main thread hands it to the worker (the data lives in shared memory). */
export interface CollectiveRequest {
  kind: "collective";
  /** Position in this rank's sequence of collectives (0, 1, ...): the same collective has the same number on every rank. */
  seq: number;
  collective: CollectiveKind;
  dtype: CommDtype;
  /** Elements of `buffer` from `byteOffset` that the collective works on. */
  length: number;
  buffer: SharedArrayBuffer;
  byteOffset: number;
  /** allReduce only: divide the sum by the world size. */
  mean: boolean;
  /** broadcast only. */
  root: number;
  /** Int32Array of one element over a SharedArrayBuffer. */
  status: Int32Array;
  /** Date.now() after which the collective fails as timed out. */
  deadline: number;
}

export interface PeerAddress {
  host: string;
  port: number;
}

/** Main thread → worker. */
export type WorkerRequest =
  | { kind: "listen"; host: string }
  | { kind: "connect"; peers: PeerAddress[]; deadline: number }
  | CollectiveRequest
  | { kind: "close" };

/** Worker → main thread, for the asynchronous phases (connecting, closing). */
export type WorkerReply =
  | { kind: "listening"; port: number }
  | { kind: "connected" }
  | { kind: "closed" }
  | { kind: "error"; message: string };

export interface WorkerSetup {
  rank: number;
  worldSize: number;
  /** How long a collective (or the connecting) may take before it fails, in ms. */
  timeoutMs: number;
  /** SharedArrayBuffer of CONTROL_BYTES. */
  control: SharedArrayBuffer;
}

/** "allReduce(float32 × 1024, sum)" and the like, for messages. */
export function describeCollective(c: { collective: CollectiveKind; dtype: CommDtype; length: number; mean: boolean; root: number }): string {
  if (c.collective === "barrier") return "barrier()";
  if (c.collective === "broadcast") return `broadcast(${c.dtype} × ${c.length}, root ${c.root})`;
  return `allReduce(${c.dtype} × ${c.length}, ${c.mean ? "mean" : "sum"})`;
}
