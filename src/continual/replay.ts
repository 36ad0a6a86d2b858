/**
 * Experience replay (rehearsal): a bounded buffer of earlier tasks' training examples, kept
 * tokenized (each as its own task formatted it), and the rows of it mixed into every
 * micro-batch of a later stage.
 *
 * Filling the buffer (at the end of each stage, with that stage's training examples):
 * - "reservoir": Vitter's algorithm R over the stream of every distinct task's examples, so
 *   each example seen so far is in the buffer with the same probability capacity / seen;
 * - "balanced": the capacity split equally between the tasks seen so far (Avalanche's
 *   experience-balanced buffer): each task keeps a seeded random subset, the first tasks in
 *   arrival order get the remainder's extra slots, and a task with fewer examples than its
 *   share keeps all of them and leaves the rest to the others (water-filling). When a task
 *   arrives, the older tasks shrink to their new share by dropping the end of their subset,
 *   so shares never grow back; the shares of tasks not limited by their size differ by at
 *   most one.
 * A task already in the buffer (a revisit) adds nothing: its examples were streamed already.
 * Every random choice is a function of the buffer's seed and the number of examples seen, so
 * the same stages with the same seed give the same buffer.
 *
 * Replaying: micro-batch g (counted from the first of the stage) gets the buffer rows at
 * stream positions floor(g·r·B) .. floor((g+1)·r·B) − 1, r the ratio and B the batch size, so
 * fractional ratios average out exactly; position p is entry perm_k[p mod M] of the buffer's
 * k-th pass (k = floor(p / M), perm_k a seeded permutation): every entry is replayed once per
 * pass, in a fresh order each pass, as a pure function of g (a resumed run replays the same
 * rows). Replayed rows add to the micro-batch; the new task's data order is unchanged.
 */
import fs from "node:fs";

import type { TokenizedExample } from "../data/collator.js";
import { GrowlmError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { RandomStream } from "../train/random.js";

export type ReplayPolicy = "reservoir" | "balanced";
export const REPLAY_POLICIES: readonly ReplayPolicy[] = ["reservoir", "balanced"];

/** The file in a stage folder holding the buffer after that stage. */
export const REPLAY_BUFFER_NAME = "replay_buffer.json";

/** One buffered example: its task and its tokens as that task's collator built them. */
export interface ReplayExample extends TokenizedExample {
  task: string;
}

/** Purposes of the random streams drawn from one seed (the Philox key's high word). */
export const STREAM_TAGS = { replayFill: 1, replayOrder: 2, fisherPick: 3, fisherLabels: 4 } as const;

/**
 * The Philox key of stream `tag` of `seed`: (seed, tag) as (low, high) 32-bit words, so the
 * strategies' streams never overlap the trainer's (tag 0, the seed itself).
 */
export function streamKey(op: string, seed: number, tag: number): number {
  if (!Number.isSafeInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new GrowlmError(op, `the seed must be an integer in [0, 2^32) for the strategies' random streams but is ${seed}`);
  }
  return seed + tag * 2 ** 32;
}

/** A uniform integer in [0, n) from two 24-bit draws (48 bits: unbiased enough for any n < 2^32). */
function uniformInt(u: Float32Array, k: number, n: number): number {
  const hi = Math.floor(u[2 * k]! * 2 ** 24);
  const lo = Math.floor(u[2 * k + 1]! * 2 ** 24);
  return Math.floor(((hi * 2 ** 24 + lo) / 2 ** 48) * n);
}

/** Per-task shares of `capacity` by water-filling over the tasks' available counts (arrival order). */
export function balancedShares(capacity: number, available: readonly number[]): number[] {
  const share = available.map(() => 0);
  let open = available.map((_, i) => i);
  let remaining = capacity;
  for (;;) {
    if (open.length === 0) return share;
    const base = Math.floor(remaining / open.length);
    const extra = remaining % open.length;
    const quota = (k: number): number => base + (k < extra ? 1 : 0);
    const limited = open.filter((t, k) => available[t]! <= quota(k));
    if (limited.length === 0) {
      open.forEach((t, k) => (share[t] = quota(k)));
      return share;
    }
    for (const t of limited) {
      share[t] = available[t]!;
      remaining -= available[t]!;
    }
    open = open.filter((t) => !limited.includes(t));
  }
}

export interface ReplayBufferState {
  policy: ReplayPolicy;
  capacity: number;
  seed: number;
  /** Tasks in arrival order with the number of their examples streamed. */
  seen: { task: string; examples: number }[];
  examples: ReplayExample[];
}

export class ReplayBuffer {
  readonly policy: ReplayPolicy;
  readonly capacity: number;
  readonly seed: number;
  readonly seen: { task: string; examples: number }[];
  examples: ReplayExample[];

  constructor(state: ReplayBufferState) {
    const op = "ReplayBuffer";
    if (!REPLAY_POLICIES.includes(state.policy)) throw new GrowlmError(op, `policy must be one of ${REPLAY_POLICIES.join(", ")} but is ${JSON.stringify(state.policy)}`);
    if (!Number.isSafeInteger(state.capacity) || state.capacity < 1) throw new GrowlmError(op, `capacity must be a positive integer but is ${state.capacity}`);
    streamKey(op, state.seed, 0);
    if (state.examples.length > state.capacity) throw new GrowlmError(op, `${state.examples.length} examples exceed the capacity ${state.capacity}`);
    this.policy = state.policy;
    this.capacity = state.capacity;
    this.seed = state.seed;
    this.seen = state.seen.map((s) => ({ ...s }));
    this.examples = [...state.examples];
  }

  /** An empty buffer. */
  static empty(policy: ReplayPolicy, capacity: number, seed: number): ReplayBuffer {
    return new ReplayBuffer({ policy, capacity, seed, seen: [], examples: [] });
  }

  /** The examples streamed so far (every task's). */
  get streamed(): number {
    return this.seen.reduce((n, s) => n + s.examples, 0);
  }

  /** Buffered examples per task, in arrival order. */
  counts(): Map<string, number> {
    const counts = new Map(this.seen.map((s) => [s.task, 0]));
    for (const e of this.examples) counts.set(e.task, (counts.get(e.task) ?? 0) + 1);
    return counts;
  }

  /** Streams one stage's training examples of `task` into the buffer (see the module comment). */
  addTask(task: string, examples: readonly TokenizedExample[]): void {
    if (task === "") throw new GrowlmError("ReplayBuffer.addTask", "the task name is empty");
    if (this.seen.some((s) => s.task === task)) return;
    const start = this.streamed;
    this.seen.push({ task, examples: examples.length });
    if (this.policy === "reservoir") this.#reservoir(task, examples, start);
    else this.#balanced(task, examples, start);
  }

  #reservoir(task: string, examples: readonly TokenizedExample[], start: number): void {
    const u = new RandomStream(streamKey("ReplayBuffer", this.seed, STREAM_TAGS.replayFill), 2 * start).uniform(2 * examples.length);
    examples.forEach((e, i) => {
      const entry = { task, ids: [...e.ids], labels: [...e.labels] };
      if (this.examples.length < this.capacity) {
        this.examples.push(entry);
        return;
      }
      const j = uniformInt(u, i, start + i + 1);
      if (j < this.capacity) this.examples[j] = entry;
    });
  }

  #balanced(task: string, examples: readonly TokenizedExample[], start: number): void {
    const held = this.counts();
    const tasks = this.seen.map((s) => s.task);
    const available = tasks.map((t) => (t === task ? examples.length : held.get(t) ?? 0));
    const shares = balancedShares(this.capacity, available);
    const order = new RandomStream(streamKey("ReplayBuffer", this.seed, STREAM_TAGS.replayFill), start).permutation(examples.length);
    const kept: ReplayExample[] = [];
    tasks.forEach((t, k) => {
      if (t === task) {
        for (const i of order.slice(0, shares[k])) kept.push({ task, ids: [...examples[i]!.ids], labels: [...examples[i]!.labels] });
      } else {
        kept.push(...this.examples.filter((e) => e.task === t).slice(0, shares[k]));
      }
    });
    this.examples = kept;
  }

  /** The state as replay_buffer.json stores it. */
  toJson(): { format: string; version: number } & ReplayBufferState {
    return { format: "growlm-replay-buffer", version: 1, policy: this.policy, capacity: this.capacity, seed: this.seed, seen: this.seen, examples: this.examples };
  }

  /** Writes the buffer to `file` atomically. */
  write(file: string): void {
    writeFileAtomic("ReplayBuffer.write", file, `${JSON.stringify(this.toJson())}\n`);
  }

  /** Reads a buffer written by write(), or null when `file` does not exist. */
  static read(file: string): ReplayBuffer | null {
    const op = "ReplayBuffer.read";
    if (!fs.existsSync(file)) return null;
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(file, "utf8"));
    } catch (err) {
      throw new GrowlmError(op, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
    const r = raw as Partial<ReplayBufferState & { format: string }> | null;
    const isInts = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => Number.isSafeInteger(x));
    const ok =
      typeof r === "object" &&
      r !== null &&
      r.format === "growlm-replay-buffer" &&
      Array.isArray(r.seen) &&
      r.seen.every((s) => typeof s?.task === "string" && Number.isSafeInteger(s.examples)) &&
      Array.isArray(r.examples) &&
      r.examples.every((e) => typeof e?.task === "string" && isInts(e.ids) && isInts(e.labels) && e.ids.length === e.labels.length && e.ids.length > 0);
    if (!ok) throw new GrowlmError(op, `${file} is not a growlm replay buffer (expected format, policy, capacity, seed, seen and examples of {task, ids, labels})`);
    try {
      return new ReplayBuffer(r as ReplayBufferState);
    } catch (err) {
      throw new GrowlmError(op, `${file}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** Which buffer rows each micro-batch replays (see the module comment). */
export class ReplaySchedule {
  #pass = -1;
  #perm: number[] = [];

  /**
   * @param size the buffer's entries M
   * @param rowsPerBatch r·B, replayed rows per micro-batch on average (>= 0)
   * @param seed the stage's seed (its own stream of pass orders)
   */
  constructor(
    readonly size: number,
    readonly rowsPerBatch: number,
    readonly seed: number,
  ) {
    streamKey("ReplaySchedule", seed, 0);
  }

  /** Buffer indices replayed in micro-batch `micro` (0 for the stage's first). */
  rows(micro: number): number[] {
    if (this.size === 0) return [];
    const first = Math.floor(micro * this.rowsPerBatch);
    const end = Math.floor((micro + 1) * this.rowsPerBatch);
    const out: number[] = [];
    for (let p = first; p < end; p++) {
      const pass = Math.floor(p / this.size);
      if (pass !== this.#pass) {
        this.#perm = new RandomStream(streamKey("ReplaySchedule", this.seed, STREAM_TAGS.replayOrder), pass * this.size).permutation(this.size);
        this.#pass = pass;
      }
      out.push(this.#perm[p % this.size]!);
    }
    return out;
  }
}
