/**
 * The worker thread of the TCP communicator: it owns one TCP connection to every other rank
 * (a full mesh, as gloo builds) and runs the collectives the main thread starts, one at a
 * time in the order they were started, while the main thread computes.
 *
 * allReduce of n elements over W ranks (a direct reduce-scatter, then an all-gather): the
 * elements are split into W contiguous chunks, chunk c owned by rank c. Every rank sends
 * chunk c of its data to rank c; rank c sums the W contributions in rank order,
 * (((x₀ + x₁) + x₂) + …), in the array's precision (a Float32Array store rounds every
 * addition of two floats exactly as an fp32 add would), divides by W for a mean, and sends
 * the result to every rank, which copies it in place. Every rank thus ends with the same bits,
 * and those bits depend only on the ranks' inputs: not on the world's timing, the chunking, or
 * how the data was split into collectives. Each rank sends and receives 2·(W−1)/W of the data,
 * the same traffic as a ring, in two steps instead of 2·(W−1). Chunks travel in segments of
 * SEGMENT_BYTES, and the owner sums and returns each segment as soon as all its contributions
 * have come, so summing and sending back overlap the transfer of the later segments.
 *
 * broadcast: the root sends its data to every rank. barrier: every rank sends an empty frame
 * to every rank and waits for all of them.
 *
 * Each frame carries the collective's sequence number, kind, element type, length, root and segment, and
 * the receiver checks them against its own collective: ranks that call different collectives
 * fail with a message saying so, not with corrupted sums or a hang. A failure (a lost
 * connection, a timeout, a mismatch) fails every pending and later collective and closes every
 * connection, so the other ranks learn of it at once instead of at their own timeout.
 */
import net from "node:net";
import { parentPort, workerData } from "node:worker_threads";

import {
  CONTROL_MESSAGE_BYTES,
  CONTROL_MESSAGE_OFFSET,
  type CollectiveRequest,
  type PeerAddress,
  STATUS_DONE,
  STATUS_FAILED,
  type WorkerReply,
  type WorkerRequest,
  type WorkerSetup,
  describeCollective,
} from "./comm-tcp-protocol.js";

const setup = workerData as WorkerSetup;
const { rank, worldSize } = setup;
const control = new Int32Array(setup.control, 0, 2);
const controlText = new Uint8Array(setup.control, CONTROL_MESSAGE_OFFSET, CONTROL_MESSAGE_BYTES);
const mainPort = parentPort!;

const HELLO_MAGIC = 0x484d4c47; // "GLMH"
const FRAME_MAGIC = 0x434d4c47; // "GLMC"
const PROTOCOL_VERSION = 1;
const HELLO_BYTES = 16;
const HEADER_BYTES = 40;

/** Frame kinds on the wire. */
const SCATTER = 1; // a rank's contribution to the receiver's chunk (allReduce)
const GATHER = 2; // the sender's reduced chunk (allReduce)
const BROADCAST = 3;
const BARRIER = 4;
const GOODBYE = 5; // the sender closed its communicator
const ABORT = 6; // the sender failed; the payload says why (UTF-8)

const DTYPES = ["float32", "float64"] as const;
const COLLECTIVE_OF_KIND: Record<number, string> = { [SCATTER]: "allReduce", [GATHER]: "allReduce", [BROADCAST]: "broadcast", [BARRIER]: "barrier" };

interface Frame {
  kind: number;
  seq: number;
  /** allReduce: the segment of the chunk this frame carries. */
  segment: number;
  dtype: number;
  mean: boolean;
  root: number;
  /** Elements of the whole collective (not of this frame). */
  length: number;
  payload: Uint8Array;
}

interface Peer {
  rank: number;
  socket: net.Socket;
  frames: Frame[];
  /** It sent GOODBYE: its connection closing is no failure, but it takes part in nothing more. */
  left: boolean;
  error: string | null;
}

/**
 * Receive buffers, reused by size: training all-reduces the same buckets every step, and a
 * fresh buffer costs a page fault per 4 KiB, which at this scale is slower than the copy.
 */
class BufferPool {
  readonly #free = new Map<number, ArrayBuffer[]>();

  take(bytes: number): Uint8Array {
    return new Uint8Array(this.#free.get(bytes)?.pop() ?? new ArrayBuffer(bytes));
  }

  give(buffer: Uint8Array): void {
    const list = this.#free.get(buffer.byteLength);
    if (list) list.push(buffer.buffer as ArrayBuffer);
    else this.#free.set(buffer.byteLength, [buffer.buffer as ArrayBuffer]);
  }
}

const pool = new BufferPool();
const peers: (Peer | null)[] = Array.from({ length: worldSize }, () => null);
const queue: Collective[] = [];
let server: net.Server | null = null;
let failed = false;
let closing = false;
/** Set while the main thread awaits "connected" (answered by replyIfConnected, or by a failure). */
let connecting: { peers: PeerAddress[]; deadline: number } | null = null;

function reply(message: WorkerReply): void {
  mainPort.postMessage(message);
}

/**
 * Fails the communicator: records `message` for the main thread, fails every pending
 * collective, tells the other ranks why and closes every connection, so they fail now, with
 * the cause, rather than at their timeout.
 */
function fail(message: string): void {
  if (failed) return;
  failed = true;
  const { written } = new TextEncoder().encodeInto(message, controlText);
  Atomics.store(control, 1, written);
  Atomics.store(control, 0, 1);
  for (const c of queue) {
    Atomics.store(c.status, 0, STATUS_FAILED);
    Atomics.notify(c.status, 0);
  }
  queue.length = 0;
  const why = new TextEncoder().encode(message);
  const abort = new Uint8Array(HEADER_BYTES + why.length);
  const view = new DataView(abort.buffer);
  view.setUint32(0, FRAME_MAGIC, true);
  view.setUint8(4, ABORT);
  view.setFloat64(32, why.length, true);
  abort.set(why, HEADER_BYTES);
  for (const peer of peers) {
    if (!peer || peer.socket.destroyed) continue;
    peer.socket.end(abort);
    setTimeout(() => peer.socket.destroy(), 1000).unref();
  }
  server?.close();
  if (connecting) {
    connecting = null;
    reply({ kind: "error", message });
  }
}

/** Runs `body`, turning an unexpected exception into a failure instead of a dead thread. */
function guarded(body: () => void): void {
  try {
    body();
  } catch (err) {
    fail(`rank ${rank}: internal error in the communication thread: ${(err as Error).stack ?? String(err)}`);
  }
}

function hello(): Uint8Array {
  const bytes = new Uint8Array(HELLO_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, HELLO_MAGIC, true);
  view.setUint32(4, PROTOCOL_VERSION, true);
  view.setUint32(8, rank, true);
  view.setUint32(12, worldSize, true);
  return bytes;
}

function header(kind: number, c: CollectiveRequest, segment: number, payloadBytes: number): Uint8Array {
  const bytes = new Uint8Array(HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, FRAME_MAGIC, true);
  view.setUint8(4, kind);
  view.setUint8(5, DTYPES.indexOf(c.dtype));
  view.setUint8(6, c.mean ? 1 : 0);
  view.setUint32(8, c.root, true);
  view.setUint32(12, segment, true);
  view.setFloat64(16, c.seq, true);
  view.setFloat64(24, c.length, true);
  view.setFloat64(32, payloadBytes, true);
  return bytes;
}

/** Splits a connection's bytes into frames (after the hello), each payload in its own aligned buffer. */
class FrameReader {
  readonly #header = new Uint8Array(HEADER_BYTES);
  #headerFill = 0;
  #frame: Frame | null = null;
  #payloadFill = 0;

  constructor(
    readonly peer: Peer,
    readonly onFrame: (frame: Frame) => void,
  ) {}

  push(chunk: Uint8Array): void {
    if (failed) return;
    let at = 0;
    while (at < chunk.length) {
      if (this.#frame === null) {
        const n = Math.min(HEADER_BYTES - this.#headerFill, chunk.length - at);
        this.#header.set(chunk.subarray(at, at + n), this.#headerFill);
        this.#headerFill += n;
        at += n;
        if (this.#headerFill < HEADER_BYTES) return;
        this.#headerFill = 0;
        const view = new DataView(this.#header.buffer);
        const payloadBytes = view.getFloat64(32, true);
        if (view.getUint32(0, true) !== FRAME_MAGIC || !Number.isSafeInteger(payloadBytes) || payloadBytes < 0) {
          fail(`rank ${rank}: rank ${this.peer.rank} sent bytes that are not a growlm frame: the connection is corrupt`);
          return;
        }
        this.#frame = {
          kind: view.getUint8(4),
          dtype: view.getUint8(5),
          mean: view.getUint8(6) === 1,
          root: view.getUint32(8, true),
          segment: view.getUint32(12, true),
          seq: view.getFloat64(16, true),
          length: view.getFloat64(24, true),
          payload: pool.take(payloadBytes),
        };
        this.#payloadFill = 0;
      } else {
        const frame = this.#frame;
        const n = Math.min(frame.payload.length - this.#payloadFill, chunk.length - at);
        frame.payload.set(chunk.subarray(at, at + n), this.#payloadFill);
        this.#payloadFill += n;
        at += n;
      }
      if (this.#frame !== null && this.#payloadFill === this.#frame.payload.length) {
        const frame = this.#frame;
        this.#frame = null;
        this.onFrame(frame);
        if (failed) return;
      }
    }
  }
}

function onFrame(peer: Peer, frame: Frame): void {
  if (frame.kind === ABORT) {
    fail(`rank ${rank} stops because rank ${peer.rank} failed: ${new TextDecoder().decode(frame.payload)}`);
    return;
  }
  if (frame.kind === GOODBYE) {
    peer.left = true;
    progress();
    return;
  }
  peer.frames.push(frame);
  progress();
}

/** Takes over a connection whose hello was exchanged: frames from now on. */
function register(peerRank: number, socket: net.Socket, rest: Uint8Array): void {
  const peer: Peer = { rank: peerRank, socket, frames: [], left: false, error: null };
  peers[peerRank] = peer;
  const reader = new FrameReader(peer, (frame) => onFrame(peer, frame));
  socket.on("data", (chunk: Buffer) => guarded(() => reader.push(chunk)));
  socket.on("error", (err) => {
    peer.error = err.message;
  });
  socket.on("close", () =>
    guarded(() => {
      if (closing || peer.left) return;
      const during = queue[0] ? ` during ${describeCollective(queue[0])} (collective #${queue[0].seq})` : "";
      fail(
        `rank ${rank} lost its connection to rank ${peerRank}${during}${peer.error ? ` (${peer.error})` : ""}: rank ${peerRank} failed or was stopped; its own output says why`,
      );
    }),
  );
  if (rest.length > 0) guarded(() => reader.push(rest));
  replyIfConnected();
}

/** Answers the main thread's "connect" once every peer is connected (higher ranks may connect before it asks). */
function replyIfConnected(): void {
  if (!connecting || !peers.every((p, r) => r === rank || p !== null)) return;
  connecting = null;
  server?.close();
  server = null;
  reply({ kind: "connected" });
}

/** Reads the 16-byte hello that opens every connection, then hands the socket and the bytes after it on. */
function readHello(socket: net.Socket, onHello: (peerRank: number, peerWorld: number, rest: Uint8Array) => void): void {
  let buffered = new Uint8Array(0);
  const onData = (chunk: Buffer): void => {
    const joined = new Uint8Array(buffered.length + chunk.length);
    joined.set(buffered);
    joined.set(chunk, buffered.length);
    buffered = joined;
    if (buffered.length < HELLO_BYTES) return;
    socket.off("data", onData);
    const view = new DataView(buffered.buffer, buffered.byteOffset, HELLO_BYTES);
    if (view.getUint32(0, true) !== HELLO_MAGIC || view.getUint32(4, true) !== PROTOCOL_VERSION) {
      socket.destroy();
      return;
    }
    onHello(view.getUint32(8, true), view.getUint32(12, true), buffered.subarray(HELLO_BYTES));
  };
  socket.on("data", onData);
}

function listen(host: string): void {
  server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on("error", () => socket.destroy());
    readHello(socket, (peerRank, peerWorld, rest) =>
      guarded(() => {
        if (peerWorld !== worldSize) {
          fail(`rank ${rank}: rank ${peerRank} joined with WORLD_SIZE=${peerWorld} but this rank has ${worldSize}`);
          return;
        }
        // Higher ranks connect to lower ones; anything else is not a rank of this job.
        if (peerRank <= rank || peerRank >= worldSize || peers[peerRank] !== null) {
          socket.destroy();
          return;
        }
        socket.write(hello());
        register(peerRank, socket, rest);
      }),
    );
  });
  server.once("error", (err) => {
    reply({ kind: "error", message: `rank ${rank} cannot listen on ${host}: ${err.message}` });
  });
  server.listen(0, host, () => {
    const address = server!.address() as net.AddressInfo;
    reply({ kind: "listening", port: address.port });
  });
}

/** Connects to lower rank `peerRank`, retrying refused connections until the deadline. */
function connectTo(peerRank: number, address: PeerAddress, deadline: number): void {
  const socket = net.connect({ host: address.host, port: address.port });
  socket.setNoDelay(true);
  socket.once("connect", () => socket.write(hello()));
  socket.once("error", (err: NodeJS.ErrnoException) => {
    socket.destroy();
    if (!connecting) return;
    if ((err.code === "ECONNREFUSED" || err.code === "ECONNRESET") && Date.now() + 100 < deadline) {
      setTimeout(() => connecting && connectTo(peerRank, address, deadline), 100);
      return;
    }
    fail(`rank ${rank} cannot connect to rank ${peerRank} at ${address.host}:${address.port}: ${err.message}`);
  });
  readHello(socket, (helloRank, helloWorld, rest) =>
    guarded(() => {
      socket.removeAllListeners("error");
      if (helloRank !== peerRank || helloWorld !== worldSize) {
        fail(`rank ${rank}: the process at ${address.host}:${address.port} says it is rank ${helloRank} of ${helloWorld}, not rank ${peerRank} of ${worldSize}`);
        return;
      }
      register(peerRank, socket, rest);
    }),
  );
}

function connectAll(addresses: PeerAddress[], deadline: number): void {
  connecting = { peers: addresses, deadline };
  for (let r = 0; r < rank; r++) connectTo(r, addresses[r]!, deadline);
  replyIfConnected();
}

/**
 * Bytes per allReduce frame: a rank's chunk travels in segments, so its owner sums and sends
 * back the first segments while the later ones are still arriving.
 */
const SEGMENT_BYTES = 1 << 20;

/** The frame expected next from a rank: its kind, segment index and payload size. */
interface Expected {
  kind: number;
  segment: number;
  bytes: number;
}

/** One started collective and how far it has got. */
class Collective {
  readonly seq: number;
  readonly collective: CollectiveRequest["collective"];
  readonly dtype: CollectiveRequest["dtype"];
  readonly length: number;
  readonly mean: boolean;
  readonly root: number;
  readonly status: Int32Array;
  readonly deadline: number;
  readonly bytesPerElement: number;
  /** Elements per allReduce segment. */
  readonly segment: number;
  /** The data, in shared memory. */
  readonly data: Float32Array | Float64Array;
  started = false;
  writesPending = 0;
  /** Frames taken from each rank so far. */
  readonly taken: Int32Array;
  /** allReduce: per segment of our chunk, the contributions that have come, by rank, and their payloads (back to the pool once summed). */
  readonly contributions: (Float32Array | Float64Array | null)[][] = [];
  readonly payloads: Uint8Array[][] = [];
  /** allReduce: segments of our chunk summed and sent back. */
  reduced = 0;

  constructor(readonly request: CollectiveRequest) {
    this.seq = request.seq;
    this.collective = request.collective;
    this.dtype = request.dtype;
    this.length = request.length;
    this.mean = request.mean;
    this.root = request.root;
    this.status = request.status;
    this.deadline = request.deadline;
    this.bytesPerElement = request.dtype === "float32" ? 4 : 8;
    this.segment = SEGMENT_BYTES / this.bytesPerElement;
    this.data =
      request.dtype === "float32"
        ? new Float32Array(request.buffer, request.byteOffset, request.length)
        : new Float64Array(request.buffer, request.byteOffset, request.length);
    this.taken = new Int32Array(worldSize);
  }

  /** [begin, end) of chunk c. */
  chunk(c: number): [number, number] {
    return [Math.floor((c * this.length) / worldSize), Math.floor(((c + 1) * this.length) / worldSize)];
  }

  /** Segments of chunk c (one, empty, for an empty chunk). */
  segments(c: number): number {
    const [begin, end] = this.chunk(c);
    return Math.max(1, Math.ceil((end - begin) / this.segment));
  }

  /** [begin, end) of segment j of chunk c. */
  segmentRange(c: number, j: number): [number, number] {
    const [begin, end] = this.chunk(c);
    return [Math.min(end, begin + j * this.segment), Math.min(end, begin + (j + 1) * this.segment)];
  }

  bytes([begin, end]: [number, number]): Uint8Array {
    return new Uint8Array(this.data.buffer, this.data.byteOffset + begin * this.bytesPerElement, (end - begin) * this.bytesPerElement);
  }

  view(payload: Uint8Array): Float32Array | Float64Array {
    return this.dtype === "float32" ? new Float32Array(payload.buffer, 0, payload.length / 4) : new Float64Array(payload.buffer, 0, payload.length / 8);
  }

  send(to: number, kind: number, segment: number, payload: Uint8Array | null): void {
    const socket = peers[to]!.socket;
    this.writesPending++;
    const sent = (err?: Error | null): void =>
      guarded(() => {
        this.writesPending--;
        if (err) fail(`rank ${rank} could not send ${describeCollective(this)} (collective #${this.seq}) data to rank ${to}: ${err.message}`);
        else progress();
      });
    socket.cork();
    if (payload && payload.length > 0) {
      socket.write(header(kind, this.request, segment, payload.length));
      socket.write(payload, sent);
    } else {
      socket.write(header(kind, this.request, segment, 0), sent);
    }
    socket.uncork();
  }

  start(): void {
    this.started = true;
    for (let p = 0; p < worldSize; p++) {
      if (p === rank) continue;
      if (this.collective === "allReduce") {
        for (let j = 0; j < this.segments(p); j++) this.send(p, SCATTER, j, this.bytes(this.segmentRange(p, j)));
      } else if (this.collective === "broadcast") {
        if (rank === this.root) this.send(p, BROADCAST, 0, this.bytes([0, this.length]));
      } else {
        this.send(p, BARRIER, 0, null);
      }
    }
  }

  /**
   * What rank p sends us next in this collective, or null when it owes nothing more.
   * allReduce: its contribution to our chunk segment by segment, then its own reduced chunk
   * segment by segment; broadcast: the root's data; barrier: one empty frame.
   */
  expected(p: number): Expected | null {
    const n = this.taken[p]!;
    if (this.collective === "allReduce") {
      const mine = this.segments(rank);
      if (n < mine) return { kind: SCATTER, segment: n, bytes: this.bytes(this.segmentRange(rank, n)).length };
      if (n < mine + this.segments(p)) return { kind: GATHER, segment: n - mine, bytes: this.bytes(this.segmentRange(p, n - mine)).length };
      return null;
    }
    if (this.collective === "broadcast") return p === this.root && rank !== this.root && n === 0 ? { kind: BROADCAST, segment: 0, bytes: this.length * this.bytesPerElement } : null;
    return n === 0 ? { kind: BARRIER, segment: 0, bytes: 0 } : null;
  }

  /**
   * The ranks that still owe us frames (for the timeout message); in an allReduce those that
   * have not sent their contribution, if any: the others may only be waiting for them too.
   */
  waitingFor(): number[] {
    const owing = peers.map((_, r) => r).filter((r) => r !== rank && this.expected(r) !== null);
    const silent = this.collective === "allReduce" ? owing.filter((r) => this.taken[r]! < this.segments(rank)) : [];
    return silent.length > 0 ? silent : owing;
  }

  /**
   * The next frame from `from` if it has come, checked against what this collective expects;
   * null while it has not. Fails the communicator on a mismatch or when `from` has left.
   */
  take(from: number, expected: Expected): Frame | null {
    const peer = peers[from]!;
    const frame = peer.frames[0];
    if (!frame) {
      if (peer.left) fail(`rank ${rank} waits in ${describeCollective(this)} (collective #${this.seq}) but rank ${from} closed its communicator: the ranks ran different numbers of collectives`);
      return null;
    }
    const theirs = {
      collective: (COLLECTIVE_OF_KIND[frame.kind] ?? `frame kind ${frame.kind}`) as CollectiveRequest["collective"],
      dtype: DTYPES[frame.dtype] ?? "float32",
      length: frame.length,
      mean: frame.mean,
      root: frame.root,
    };
    const same =
      frame.seq === this.seq &&
      frame.kind === expected.kind &&
      frame.segment === expected.segment &&
      DTYPES[frame.dtype] === this.dtype &&
      frame.length === this.length &&
      frame.mean === this.mean &&
      frame.root === this.root &&
      frame.payload.length === expected.bytes;
    if (!same) {
      fail(
        `rank ${rank}'s collective #${this.seq} is ${describeCollective(this)} but rank ${from}'s collective #${frame.seq} is ${describeCollective(theirs)}: every rank must call the same collectives in the same order with the same sizes`,
      );
      return null;
    }
    peer.frames.shift();
    this.taken[from]!++;
    return frame;
  }

  /** Advances as far as the frames that have arrived allow; true once complete. */
  step(): boolean {
    for (let p = 0; p < worldSize; p++) {
      if (p === rank) continue;
      for (let expected = this.expected(p); expected !== null; expected = this.expected(p)) {
        const frame = this.take(p, expected);
        if (failed || frame === null) break;
        if (expected.kind === SCATTER) {
          (this.contributions[expected.segment] ??= Array.from({ length: worldSize }, () => null))[p] = this.view(frame.payload);
          (this.payloads[expected.segment] ??= []).push(frame.payload);
        } else {
          if (expected.kind === GATHER) this.data.set(this.view(frame.payload), this.segmentRange(p, expected.segment)[0]);
          else if (expected.kind === BROADCAST) this.data.set(this.view(frame.payload));
          pool.give(frame.payload);
        }
      }
      if (failed) return false;
    }
    if (this.collective === "allReduce") {
      // Sum the segments of our chunk whose contributions have all come, in order, and send each back.
      while (this.reduced < this.segments(rank) && peers.every((_, p) => p === rank || this.taken[p]! > this.reduced)) {
        const range = this.segmentRange(rank, this.reduced);
        this.reduce(this.contributions[this.reduced] ?? [], range);
        for (const payload of this.payloads[this.reduced] ?? []) pool.give(payload);
        delete this.contributions[this.reduced];
        delete this.payloads[this.reduced];
        for (let p = 0; p < worldSize; p++) if (p !== rank) this.send(p, GATHER, this.reduced, this.bytes(range));
        this.reduced++;
      }
      if (this.reduced < this.segments(rank)) return false;
    }
    return this.waitingFor().length === 0 && this.writesPending === 0;
  }

  /**
   * Our segment [begin, end) = Σ contributions in rank order (then / W for a mean), written in
   * place. The partial sums live in rank 0's contribution (our own data when we are rank 0,
   * else a received buffer we may overwrite); the last addition writes our data.
   */
  reduce(received: readonly (Float32Array | Float64Array | null)[], [begin, end]: [number, number]): void {
    const n = end - begin;
    const own = this.data.subarray(begin, end);
    const contribution = (r: number): Float32Array | Float64Array => (r === rank ? own : received[r]!);
    const acc = contribution(0);
    for (let r = 1; r < worldSize; r++) {
      const x = contribution(r);
      const out = r === worldSize - 1 ? own : acc;
      for (let i = 0; i < n; i++) out[i] = acc[i]! + x[i]!;
    }
    if (this.mean) for (let i = 0; i < n; i++) own[i]! /= worldSize;
  }
}

/** Runs the collectives at the head of the queue as far as they go. */
function progress(): void {
  while (!failed && queue.length > 0) {
    const head = queue[0]!;
    if (!head.started) head.start();
    if (!head.step() || failed) return;
    queue.shift();
    Atomics.store(head.status, 0, STATUS_DONE);
    Atomics.notify(head.status, 0);
  }
}

function checkDeadline(): void {
  if (failed) return;
  if (connecting && Date.now() > connecting.deadline) {
    const missing = peers.map((p, r) => (p === null && r !== rank ? r : -1)).filter((r) => r >= 0);
    fail(`rank ${rank}: rank${missing.length === 1 ? "" : "s"} ${missing.join(", ")} did not connect within ${setup.timeoutMs / 1000} s`);
    return;
  }
  const head = queue[0];
  if (!head || Date.now() <= head.deadline) return;
  const missing = head.waitingFor();
  const waiting = missing.length > 0 ? ` waiting for rank${missing.length === 1 ? "" : "s"} ${missing.join(", ")}` : " sending its data";
  fail(
    `rank ${rank}: ${describeCollective(head)} (collective #${head.seq}) timed out after ${setup.timeoutMs / 1000} s${waiting}: ` +
      "a rank is stuck, far slower than the others, or no longer calls the same collectives (a slow rank needs a longer --ddp_timeout)",
  );
}

function close(): void {
  closing = true;
  const open = peers.filter((p): p is Peer => p !== null && !p.socket.destroyed);
  if (open.length === 0) {
    reply({ kind: "closed" });
    return;
  }
  let remaining = open.length;
  const done = (): void => {
    if (--remaining === 0) reply({ kind: "closed" });
  };
  for (const peer of open) {
    peer.socket.once("close", done);
    const bye = new Uint8Array(HEADER_BYTES);
    const view = new DataView(bye.buffer);
    view.setUint32(0, FRAME_MAGIC, true);
    view.setUint8(4, GOODBYE);
    peer.socket.end(bye);
  }
}

setInterval(() => guarded(checkDeadline), 200).unref();

mainPort.on("message", (request: WorkerRequest) =>
  guarded(() => {
    if (request.kind === "listen") listen(request.host);
    else if (request.kind === "connect") connectAll(request.peers, request.deadline);
    else if (request.kind === "close") close();
    else if (failed) {
      Atomics.store(request.status, 0, STATUS_FAILED);
      Atomics.notify(request.status, 0);
    } else {
      queue.push(new Collective(request));
      progress();
    }
  }),
);
