/**
 * The NCCL communicator without NCCL: its error paths on this machine (no libnccl.so.2, or
 * an emulated device), and its rendezvous (the unique id rank 0 shares over the TCP store),
 * staging and failure handling with a stand-in for the NCCL binding. NCCL itself is not
 * emulated; the collectives' semantics are the "tcp" communicator's (comm.test.ts), and the
 * real library runs in bench/gpu/check.sh on a machine with GPUs.
 */
import { afterEach, describe, expect, test, vi } from "vitest";

import { startDistributed } from "../../src/cli/distributed.js";
import type { CudaInfo, DeviceBuffer } from "../../src/device.js";
import type { FlagValue } from "../../src/cli/hf-args.js";
import { type DistributedEnv, initProcessGroup } from "../../src/train/comm.js";
import { TcpStoreClient, TcpStoreServer } from "../../src/train/comm-store.js";
import {
  NCCL_UNIQUE_ID_BYTES,
  NCCL_UNIQUE_ID_KEY,
  type NcclBinding,
  type NcclComm,
  NcclCommunicator,
  type NcclDependencies,
  exchangeNcclUniqueId,
} from "../../src/train/comm-nccl.js";
import { freePort } from "../../src/train/launch.js";
import { binding } from "../../src/native.js";
import { randomF32 } from "../helpers/reference.js";

const TIMEOUT_MS = 10_000;

function envs(worldSize: number, masterPort: number): DistributedEnv[] {
  return Array.from({ length: worldSize }, (_, rank) => ({ rank, worldSize, localRank: rank, localWorldSize: worldSize, masterAddr: "127.0.0.1", masterPort }));
}

function uniqueId(seed: number): Uint8Array {
  return Uint8Array.from({ length: NCCL_UNIQUE_ID_BYTES }, (_, i) => (i * 31 + seed) & 0xff);
}

/** Host memory standing in for device memory. */
class FakeDeviceBuffer implements DeviceBuffer {
  freed = false;
  constructor(
    readonly bytes: Uint8Array,
    readonly device: number,
  ) {}
  get byteLength(): number {
    return this.bytes.length;
  }
  readonly byteOffset = 0;
  view(): DeviceBuffer {
    throw new Error("not used");
  }
  free(): void {
    this.freed = true;
  }
}

interface FakeWorld {
  deps: (rank: number) => NcclDependencies;
  /** ncclCommInit's arguments per rank. */
  inits: { id: Uint8Array; nranks: number; rank: number; device: number }[];
  /** Every collective queued, by rank. */
  calls: string[];
  idsMade: number;
  destroyed: number[];
  aborted: number[];
  /** When set, ncclWait throws it. */
  waitError: Error | null;
  buffers: FakeDeviceBuffer[];
}

/**
 * A stand-in for NCCL: ncclCommInit resolves once every rank has called it (as
 * ncclCommInitRank returns), an all-reduce "sums" over `worldSize` identical ranks by
 * multiplying by it, a broadcast leaves the data as it is.
 */
function fakeWorld(worldSize: number, cuda: Partial<CudaInfo> = {}): FakeWorld {
  const world: FakeWorld = { deps: () => undefined as never, inits: [], calls: [], idsMade: 0, destroyed: [], aborted: [], waitError: null, buffers: [] };
  const joined: (() => void)[] = [];
  const info: CudaInfo = { compiled: true, emulated: false, devices: Array.from({ length: 8 }, (_, index) => ({ index, name: "fake", totalBytes: 1, computeCapability: "9.0", multiprocessors: 1 })), unavailableReason: "", ...cuda };
  const scale = (buffer: DeviceBuffer, count: number, dtype: string, by: number): void => {
    const bytes = (buffer as FakeDeviceBuffer).bytes;
    const data = dtype === "float64" ? new Float64Array(bytes.buffer, 0, count) : new Float32Array(bytes.buffer, 0, count);
    for (let i = 0; i < count; i++) data[i] = data[i]! * by;
  };
  world.deps = (rank) => {
    const comm = (nranks: number, device: number): NcclComm => {
      let closed = false;
      return {
        rank,
        nranks,
        device,
        get closed() {
          return closed;
        },
        destroy: () => {
          closed = true;
          world.destroyed.push(rank);
        },
        abort: () => {
          closed = true;
          world.aborted.push(rank);
        },
      };
    };
    const nccl: NcclBinding = {
      ncclVersion: () => 22105,
      ncclLibrary: () => "libnccl.so.2",
      ncclUniqueId: () => uniqueId(++world.idsMade),
      ncclCommInit: (id, nranks, r, device) => {
        world.inits.push({ id, nranks, rank: r, device });
        return new Promise((resolve) => {
          joined.push(() => resolve(comm(nranks, device)));
          if (joined.length === nranks) joined.splice(0).forEach((f) => f());
        });
      },
      ncclAllReduce: (_comm, buffer, count, dtype, op) => {
        world.calls.push(`${rank} allReduce ${count} ${dtype} ${op}`);
        if (op === "sum") scale(buffer, count, dtype, worldSize);
      },
      ncclBroadcast: (_comm, _buffer, count, dtype, root) => {
        world.calls.push(`${rank} broadcast ${count} ${dtype} root ${root}`);
      },
      ncclGroupStart: () => world.calls.push(`${rank} groupStart`),
      ncclGroupEnd: () => world.calls.push(`${rank} groupEnd`),
      ncclWait: () => {
        if (world.waitError) throw world.waitError;
      },
    };
    return {
      nccl,
      staging: {
        alloc: (device, bytes) => {
          const b = new FakeDeviceBuffer(new Uint8Array(bytes), device);
          world.buffers.push(b);
          return b;
        },
        copyToDevice: (dst, src) => (dst as FakeDeviceBuffer).bytes.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength)),
        copyToHost: (dst, src) => new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength).set((src as FakeDeviceBuffer).bytes),
      },
      cuda: () => info,
    };
  };
  return world;
}

const open: NcclCommunicator[] = [];
afterEach(async () => {
  await Promise.allSettled(open.splice(0).map((c) => c.close()));
  vi.unstubAllEnvs();
});

async function fakeGroup(world: FakeWorld, worldSize: number): Promise<NcclCommunicator[]> {
  const port = await freePort();
  const comms = await Promise.all(envs(worldSize, port).map((e) => NcclCommunicator.connect(e, TIMEOUT_MS, world.deps(e.rank))));
  open.push(...comms);
  return comms;
}

describe("the NCCL unique id over the rendezvous store", () => {
  test("rank 0 makes it, every rank gets the same 128 bytes", async () => {
    const port = await freePort();
    const server = await TcpStoreServer.listen("127.0.0.1", port);
    const clients = await Promise.all([0, 1, 2].map(() => TcpStoreClient.connect("127.0.0.1", port, Date.now() + TIMEOUT_MS)));
    try {
      let made = 0;
      // The other ranks ask before rank 0 has published: they wait for it.
      const ids = await Promise.all([2, 1, 0].map((rank) => exchangeNcclUniqueId(clients[rank]!, rank, 3, () => uniqueId(++made + 100), "127.0.0.1:" + port)));
      expect(made).toBe(1);
      for (const id of ids) expect(Array.from(id)).toEqual(Array.from(uniqueId(101)));
    } finally {
      clients.forEach((c) => c.close());
      server.close(true);
    }
  });

  test("refuses a world size that differs from rank 0's, a malformed id, and an id of the wrong size", async () => {
    const values = new Map<string, string>();
    const store = {
      set: async (key: string, value: string) => void values.set(key, value),
      get: async (key: string) => values.get(key)!,
    };
    await exchangeNcclUniqueId(store, 0, 4, () => uniqueId(1), "here");
    await expect(exchangeNcclUniqueId(store, 1, 2, () => uniqueId(2), "here")).rejects.toThrow(/this process has WORLD_SIZE=2 but rank 0 has WORLD_SIZE=4/);
    await expect(exchangeNcclUniqueId(store, 0, 4, () => new Uint8Array(16), "here")).rejects.toThrow(/NCCL made a unique id of 16 bytes instead of 128/);
    values.set(NCCL_UNIQUE_ID_KEY, JSON.stringify({ worldSize: 4, id: Buffer.from([1, 2, 3]).toString("base64") }));
    await expect(exchangeNcclUniqueId(store, 3, 4, () => uniqueId(3), "here")).rejects.toThrow(/has 3 bytes instead of 128/);
    values.set(NCCL_UNIQUE_ID_KEY, "{not json");
    await expect(exchangeNcclUniqueId(store, 3, 4, () => uniqueId(3), "here")).rejects.toThrow(/unreadable NCCL unique id under "nccl\/unique_id"/);
  });
});

describe("NcclCommunicator with a stand-in for NCCL", () => {
  test("3 ranks join one clique on cuda:LOCAL_RANK with rank 0's id, and leave with ncclCommDestroy", async () => {
    const world = fakeWorld(3);
    const comms = await fakeGroup(world, 3);
    expect(world.idsMade).toBe(1);
    expect(world.inits.map((i) => [i.rank, i.nranks, i.device]).sort()).toEqual([[0, 3, 0], [1, 3, 1], [2, 3, 2]]);
    for (const init of world.inits) expect(Array.from(init.id)).toEqual(Array.from(uniqueId(1)));
    expect(comms.map((c) => [c.backend, c.rank, c.worldSize, c.device])).toEqual([["nccl", 0, 3, 0], ["nccl", 1, 3, 1], ["nccl", 2, 3, 2]]);
    await Promise.all(comms.map((c) => c.close()));
    expect(world.destroyed.sort()).toEqual([0, 1, 2]);
  });

  test("host arrays are staged on the device, reduced there and copied back by wait(); the staging is freed", async () => {
    const world = fakeWorld(2);
    const [c0, c1] = await fakeGroup(world, 2);
    const x = randomF32(37, 5);
    const y = Float64Array.from([1.5, -2, 3]);
    const a = Float32Array.from(x);
    const works = [c0!.allReduce(a, "sum"), c1!.allReduce(y, "mean"), c0!.broadcast(new Float32Array(4), 1), c1!.barrier()];
    expect(world.calls).toEqual(["0 allReduce 37 float32 sum", "1 allReduce 3 float64 avg", "0 broadcast 4 float32 root 1", "1 allReduce 1 float32 sum"]);
    for (const w of works) w.wait();
    expect(Array.from(a)).toEqual(Array.from(x, (v) => Math.fround(v * 2)));
    expect(Array.from(y)).toEqual([1.5, -2, 3]);
    const staged = world.buffers.filter((b) => b.byteLength !== 4 || b.device !== 1);
    expect(staged.slice(0, 3).every((b) => b.freed)).toBe(true);
    expect(c0!.group(() => c0!.allReduceDevice(world.buffers[0]!, 37, "bfloat16"))).toBeDefined();
    expect(world.calls.slice(-3)).toEqual(["0 groupStart", "0 allReduce 37 bfloat16 sum", "0 groupEnd"]);
    expect(() => c0!.broadcast(new Float32Array(1), 2)).toThrow(/the root must be a rank in \[0, 2\) but is 2/);
  });

  test("a failed wait names the rank and the collective, aborts the communicator, and every later call fails the same way", async () => {
    const world = fakeWorld(2);
    const [c0] = await fakeGroup(world, 2);
    const work = c0!.allReduce(new Float32Array(3), "sum");
    world.waitError = new Error("ncclWait: NCCL reported remote process exited or there was a network error");
    expect(() => work.wait()).toThrow(/rank 0: allReduce: ncclWait: NCCL reported remote process exited/);
    expect(() => c0!.allReduce(new Float32Array(3))).toThrow(/rank 0: allReduce: ncclWait/);
    await c0!.close();
    expect(world.aborted).toEqual([0]);
  });

  test("close() refuses to leave collectives unwaited (and aborts)", async () => {
    const world = fakeWorld(1);
    const [c0] = await fakeGroup(world, 1);
    c0!.allReduce(new Float32Array(2));
    await expect(c0!.close()).rejects.toThrow(/rank 0: 1 started collective\(s\) were never waited for/);
    expect(world.aborted).toEqual([0]);
  });

  test("an emulated device or a missing GPU is refused before any rendezvous", async () => {
    const env = envs(2, 1)[1]!;
    await expect(NcclCommunicator.connect(env, TIMEOUT_MS, fakeWorld(2, { emulated: true }).deps(1))).rejects.toThrow(/NCCL is not emulated: with GROWLM_CUDA_EMULATE=1 use the "tcp" backend/);
    await expect(NcclCommunicator.connect(env, TIMEOUT_MS, fakeWorld(2, { devices: [], unavailableReason: "no CUDA device" }).deps(1))).rejects.toThrow(
      /rank 1 needs GPU cuda:1 \(LOCAL_RANK=1\) but no CUDA device is usable \(no CUDA device\)/,
    );
  });
});

describe("the nccl backend on this machine", () => {
  // Where NCCL is installed (a GPU machine) the library loads and these checks do not apply.
  const ncclInstalled = ((): boolean => {
    try {
      return binding.cuda.ncclVersion() > 0;
    } catch {
      return false;
    }
  })();

  test.skipIf(ncclInstalled)("initProcessGroup({ backend: 'nccl' }) names libnccl.so.2 and where it looked", async () => {
    const port = await freePort();
    await expect(initProcessGroup(envs(1, port)[0]!, { backend: "nccl", timeoutSeconds: 5 })).rejects.toThrow(/the "nccl" backend cannot load NCCL: .*libnccl\.so\.2/s);
  });

  test.skipIf(ncclInstalled)("GROWLM_NCCL_PATH is the only place searched when set", async () => {
    vi.stubEnv("GROWLM_NCCL_PATH", "/nonexistent/nccl");
    const port = await freePort();
    await expect(initProcessGroup(envs(1, port)[0]!, { backend: "nccl", timeoutSeconds: 5 })).rejects.toThrow(
      /(NCCL could not be loaded from GROWLM_NCCL_PATH=\/nonexistent\/nccl .*libnccl\.so\.2)|(built without nvcc.*libnccl\.so\.2)/s,
    );
  });

  test.skipIf(ncclInstalled)("growlm finetune --ddp_backend nccl in a process group fails with the same message", async () => {
    const port = await freePort();
    for (const [name, value] of Object.entries({ MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port), RANK: "0", WORLD_SIZE: "1", LOCAL_RANK: "0" })) vi.stubEnv(name, value);
    const values = new Map<string, FlagValue>([["ddp_backend", "nccl"]]);
    await expect(startDistributed("finetune", ["--ddp_backend", "nccl"], values)).rejects.toThrow(/libnccl\.so\.2/);
  });
});
