/**
 * The communicator: rendezvous variables, and the TCP backend's collectives checked against a
 * rank-ordered float32 sum, bitwise, with 2 and 3 ranks. Ranks here are communicators of one
 * process (each has its own thread and sockets, exactly as in separate processes): a test
 * starts every rank's collective, then waits for each. Separate processes are in
 * comm-processes.test.ts.
 */
import net from "node:net";

import { afterEach, describe, expect, test } from "vitest";

import { type CommArray, type Communicator, type DistributedEnv, distributedEnv, initProcessGroup } from "../../src/train/comm.js";
import { freePort } from "../../src/train/launch.js";
import { expectBitwiseEqual, randomF32 } from "../helpers/reference.js";

function envs(worldSize: number, masterPort: number): DistributedEnv[] {
  return Array.from({ length: worldSize }, (_, rank) => ({ rank, worldSize, localRank: rank, localWorldSize: worldSize, masterAddr: "127.0.0.1", masterPort }));
}

const open: Communicator[] = [];

async function group(worldSize: number, timeoutSeconds = 20): Promise<Communicator[]> {
  const port = await freePort();
  const comms = await Promise.all(envs(worldSize, port).map((e) => initProcessGroup(e, { timeoutSeconds })));
  open.push(...comms);
  return comms;
}

afterEach(async () => {
  await Promise.allSettled(open.splice(0).map((c) => c.close()));
});

/** ((x₀ + x₁) + x₂) + … in float32, the order the communicator promises. */
function rankOrderedSum(inputs: readonly Float32Array[], mean = false): Float32Array {
  const out = Float32Array.from(inputs[0]!);
  for (const x of inputs.slice(1)) for (let i = 0; i < out.length; i++) out[i] = Math.fround(out[i]! + x[i]!);
  if (mean) for (let i = 0; i < out.length; i++) out[i] = Math.fround(out[i]! / inputs.length);
  return out;
}

/** Values spread over many binades, so the order of additions shows in the bits. */
function spread(n: number, seed: number): Float32Array {
  const x = randomF32(n, seed);
  for (let i = 0; i < n; i++) x[i] = x[i]! * 2 ** ((i * 7 + seed) % 24 - 12);
  return x;
}

describe("distributedEnv", () => {
  const full = { MASTER_ADDR: "10.0.0.1", MASTER_PORT: "29500", RANK: "3", WORLD_SIZE: "8", LOCAL_RANK: "1", LOCAL_WORLD_SIZE: "4" };
  test("reads torchrun's variables, and null without them", () => {
    expect(distributedEnv({})).toBeNull();
    expect(distributedEnv(full)).toEqual({ rank: 3, worldSize: 8, localRank: 1, localWorldSize: 4, masterAddr: "10.0.0.1", masterPort: 29500 });
    const { LOCAL_WORLD_SIZE: _, ...withoutLocalWorld } = full;
    expect(distributedEnv(withoutLocalWorld)?.localWorldSize).toBeNull();
  });
  test.each([
    [{ WORLD_SIZE: "2" }, /missing: MASTER_ADDR, MASTER_PORT, RANK, LOCAL_RANK/],
    [{ ...full, RANK: "8" }, /RANK="8" must be an integer in \[0, 7\] \(WORLD_SIZE=8\)/],
    [{ ...full, MASTER_PORT: "http" }, /MASTER_PORT="http" must be an integer in \[1, 65535\]/],
    [{ ...full, LOCAL_RANK: "4" }, /LOCAL_RANK="4" must be an integer in \[0, 3\] \(LOCAL_WORLD_SIZE=4\)/],
    [{ ...full, WORLD_SIZE: "-1" }, /WORLD_SIZE="-1" must be an integer/],
  ])("refuses %j", (env, message) => {
    expect(() => distributedEnv(env)).toThrow(message);
  });
});

describe.each([2, 3])("TCP collectives with %i ranks", (W) => {
  test("allReduce: every rank gets the rank-ordered float32 sum, bitwise, for any length", async () => {
    const comms = await group(W);
    // Lengths around the 1 MiB segments of a chunk: 524 289 floats give 2 ranks chunks of one and of two segments.
    for (const n of [0, 1, W - 1, 1000, 65_537, 524_289, 1_000_003]) {
      const inputs = comms.map((_, r) => spread(n, 10 * n + r));
      const expected = rankOrderedSum(inputs);
      const data = inputs.map((x) => Float32Array.from(x));
      const works = comms.map((c, r) => c.allReduce(data[r]!, "sum"));
      works.reverse().forEach((w) => w.wait());
      data.forEach((d, r) => expectBitwiseEqual(d, expected, `n=${n}, rank ${r}`));
    }
  });

  test("the result does not depend on how the data is split into collectives (fixed reduction order)", async () => {
    const comms = await group(W);
    const n = 4099;
    const inputs = comms.map((_, r) => spread(n, 77 + r));
    const whole = inputs.map((x) => Float32Array.from(x));
    comms.map((c, r) => c.allReduce(whole[r]!)).forEach((w) => w.wait());
    // Three uneven pieces, all in flight at once, waited for out of order.
    const pieces = inputs.map((x) => Float32Array.from(x));
    const cuts = [0, 17, 2000, n];
    const works = comms.flatMap((c, r) => cuts.slice(1).map((end, k) => c.allReduce(pieces[r]!.subarray(cuts[k]!, end))));
    for (const k of [2, 0, 1]) for (let r = 0; r < W; r++) works[r * 3 + k]!.wait();
    for (let r = 0; r < W; r++) expectBitwiseEqual(pieces[r]!, whole[0]!, `rank ${r}`);
  });

  test("mean, float64, arrays in shared memory, broadcast and barrier", async () => {
    const comms = await group(W);
    const inputs = comms.map((_, r) => spread(513, 300 + r));
    const shared = inputs.map((x) => {
      const s = new Float32Array(new SharedArrayBuffer(x.byteLength));
      s.set(x);
      return s;
    });
    comms.map((c, r) => c.allReduce(shared[r]!, "mean")).forEach((w) => w.wait());
    shared.forEach((s, r) => expectBitwiseEqual(s, rankOrderedSum(inputs, true), `mean, rank ${r}`));

    const counts = comms.map((_, r) => Float64Array.from([2 ** 40 + r, 0.1 * r]));
    comms.map((c, r) => c.allReduce(counts[r]!)).forEach((w) => w.wait());
    const triangle = (W * (W - 1)) / 2;
    let tenth = 0;
    for (let r = 0; r < W; r++) tenth += 0.1 * r;
    for (const c of counts) expect(Array.from(c)).toEqual([W * 2 ** 40 + triangle, tenth]);

    const root = W - 1;
    const payload = comms.map((_, r) => (r === root ? spread(300, 9) : new Float32Array(300).fill(-1)));
    comms.map((c, r) => c.broadcast(payload[r]!, root)).forEach((w) => w.wait());
    payload.forEach((p, r) => expectBitwiseEqual(p, payload[root]!, `broadcast, rank ${r}`));

    comms.map((c) => c.barrier()).forEach((w) => w.wait());
  });
});

describe("TCP communicator errors", () => {
  test("ranks that call different collectives fail with a message saying so", async () => {
    const [a, b] = await group(2);
    const wa = a!.allReduce(new Float32Array(10));
    const wb = b!.broadcast(new Float32Array(10), 0);
    // Whichever rank notices first tells the other why.
    const mismatch = /rank (0's collective #0 is allReduce\(float32 × 10, sum\) but rank 1's collective #0 is broadcast\(float32 × 10, root 0\)|1's collective #0 is broadcast\(float32 × 10, root 0\) but rank 0's collective #0 is allReduce\(float32 × 10, sum\)): every rank must call the same collectives/;
    expect(() => wa.wait()).toThrow(mismatch);
    expect(() => wb.wait()).toThrow(mismatch);
    // A failed communicator refuses what follows, with the first failure's message.
    expect(() => a!.allReduce(new Float32Array(1))).toThrow(mismatch);
  });

  test("a rank that does not come times out, naming it, and the others learn at once", async () => {
    const comms = await group(3, 1);
    const w0 = comms[0]!.allReduce(new Float32Array(4));
    const w1 = comms[1]!.allReduce(new Float32Array(4));
    const t0 = Date.now();
    // Both wait for rank 2; whichever times out first tells the other.
    const timedOut = /allReduce\(float32 × 4, sum\) \(collective #0\) timed out after 1 s waiting for rank 2: a rank is stuck/;
    expect(() => w0.wait()).toThrow(timedOut);
    expect(() => w1.wait()).toThrow(timedOut);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  test("a rank leaving while another waits for it is an error, not a hang; leaving after the last collective is not", async () => {
    const [a, b] = await group(2);
    const waiting = a!.barrier();
    await b!.close();
    expect(() => waiting.wait()).toThrow(/rank 0 waits in barrier\(\) \(collective #0\) but rank 1 closed its communicator/);
    const [c, d] = await group(2);
    const works = [c!.barrier(), d!.barrier()];
    works.forEach((w) => w.wait());
    await Promise.all([c!.close(), d!.close()]);
    expect(() => c!.barrier()).toThrow(/the communicator is closed/);
  });

  test("rendezvous: a missing rank times out naming it; a second process with the same rank and a WORLD_SIZE mismatch are refused", async () => {
    const port = await freePort();
    const [e0] = envs(2, port);
    await expect(initProcessGroup(e0!, { timeoutSeconds: 1 })).rejects.toThrow(/timed out waiting for rank 1 to join the rendezvous at 127\.0\.0\.1:\d+/);

    const port2 = await freePort();
    const [f0, f1] = envs(3, port2);
    const results = await Promise.allSettled([initProcessGroup(f0!, { timeoutSeconds: 1 }), initProcessGroup(f1!, { timeoutSeconds: 1 }), initProcessGroup({ ...f1! }, { timeoutSeconds: 1 })]);
    const messages = results.map((r) => (r.status === "rejected" ? String((r.reason as Error).message) : "joined"));
    expect(messages.some((m) => /another process already joined 127\.0\.0\.1:\d+ as RANK=1/.test(m))).toBe(true);

    const port3 = await freePort();
    const [g0, g1] = envs(2, port3);
    const mismatch = await Promise.allSettled([initProcessGroup(g0!, { timeoutSeconds: 1 }), initProcessGroup({ ...g1!, worldSize: 3 }, { timeoutSeconds: 1 })]);
    expect(mismatch[1]!.status === "rejected" && String((mismatch[1].reason as Error).message)).toMatch(/this process has WORLD_SIZE=3 but rank 0 has WORLD_SIZE=2/);
  });

  test("MASTER_PORT in use and the nccl backend are refused clearly; one rank needs no sockets", async () => {
    const busy = net.createServer();
    const port = await new Promise<number>((resolve) => busy.listen(0, "127.0.0.1", () => resolve((busy.address() as net.AddressInfo).port)));
    try {
      await expect(initProcessGroup(envs(2, port)[0]!, { timeoutSeconds: 1 })).rejects.toThrow(/rank 0 cannot serve the rendezvous at 127\.0\.0\.1:\d+: the port is in use/);
    } finally {
      busy.close();
    }
    // Without NCCL (or, under the emulator, without a GPU to run it on) before any rendezvous: comm-nccl.test.ts has the details.
    await expect(initProcessGroup(envs(2, port)[0]!, { backend: "nccl" })).rejects.toThrow(/the "nccl" backend cannot load NCCL: .*libnccl\.so\.2|NCCL is not emulated/s);
    const solo = await initProcessGroup(envs(1, port)[0]!);
    const x: CommArray = Float32Array.from([1.5, -2]);
    solo.allReduce(x, "mean").wait();
    expect(Array.from(x)).toEqual([1.5, -2]);
    await solo.close();
  });
});
