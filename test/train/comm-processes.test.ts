/**
 * The TCP communicator across processes started by the launcher: the rendezvous variables it
 * sets, results that are the same bits on every rank and in every run, and a rank that fails
 * bringing the launch down with a message naming it, without a hang.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";

import { distributedEnv } from "../../src/train/comm.js";
import { freePort, launchWorkers, workerEnv } from "../../src/train/launch.js";
import { BASE_SEED, expectBitwiseEqual } from "../helpers/reference.js";

const FIXTURE = "test/fixtures/data-parallel/comm-rank.ts";
const W = 3;

/** The vector comm-rank.ts all-reduces on `rank` (the same generator). */
function input(seed: number, rank: number): Float32Array {
  const n = 100_003;
  const data = new Float32Array(n);
  let a = (seed * 7919 + rank) >>> 0;
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    data[i] = (a / 2 ** 32 - 0.5) * 2 ** ((i % 17) - 8);
  }
  return data;
}

test("the launcher's variables are torchrun's, and distributedEnv reads them back", () => {
  const env = workerEnv({ nprocPerNode: 4, nnodes: 2, nodeRank: 1, masterAddr: "10.1.2.3", masterPort: 29500 }, 2);
  expect(env).toEqual({ MASTER_ADDR: "10.1.2.3", MASTER_PORT: "29500", RANK: "6", WORLD_SIZE: "8", LOCAL_RANK: "2", LOCAL_WORLD_SIZE: "4", GROUP_RANK: "1" });
  expect(distributedEnv(env)).toEqual({ rank: 6, worldSize: 8, localRank: 2, localWorldSize: 4, masterAddr: "10.1.2.3", masterPort: 29500 });
});

describe(`${W} processes`, () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "growlm-comm-"));
  });
  afterEach(() => {
    vi.restoreAllMocks();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const launch = async (out: string, mode: string): Promise<void> =>
    launchWorkers({ nprocPerNode: W, masterAddr: "127.0.0.1", masterPort: await freePort(), command: process.execPath, args: ["--import", "tsx", FIXTURE, out, String(BASE_SEED % 100_000), mode], killGraceMs: 2000 });

  test("allReduce gives every rank the rank-ordered sum, the same bits in every run", async () => {
    const runs = ["a", "b"].map((name) => path.join(dir, name));
    for (const out of runs) {
      fs.mkdirSync(out);
      await launch(out, "sum");
    }
    const expected = input(BASE_SEED % 100_000, 0);
    for (let r = 1; r < W; r++) {
      const x = input(BASE_SEED % 100_000, r);
      for (let i = 0; i < expected.length; i++) expected[i] = Math.fround(expected[i]! + x[i]!);
    }
    for (const out of runs) {
      for (let r = 0; r < W; r++) {
        const bytes = fs.readFileSync(path.join(out, `rank-${r}.bin`));
        expectBitwiseEqual(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), expected, `${path.basename(out)}, rank ${r}`);
      }
    }
  });

  test("two launchers as two machines (--nnodes 2): four ranks meet at rank 0's address", async () => {
    const port = await freePort();
    const seed = BASE_SEED % 100_000;
    const args = ["--import", "tsx", FIXTURE, dir, String(seed), "sum"];
    await Promise.all([0, 1].map((nodeRank) => launchWorkers({ nprocPerNode: 2, nnodes: 2, nodeRank, masterAddr: "127.0.0.1", masterPort: port, command: process.execPath, args })));
    const expected = input(seed, 0);
    for (let r = 1; r < 4; r++) {
      const x = input(seed, r);
      for (let i = 0; i < expected.length; i++) expected[i] = Math.fround(expected[i]! + x[i]!);
    }
    for (let r = 0; r < 4; r++) {
      const bytes = fs.readFileSync(path.join(dir, `rank-${r}.bin`));
      expectBitwiseEqual(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), expected, `rank ${r}`);
    }
  });

  test("a rank that fails stops the launch with a message naming it, without waiting for a timeout", async () => {
    const lines: string[] = [];
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const t0 = Date.now();
    // Ranks 0 and 2 fail too (their connection to rank 1 drops), or are stopped if they are slower.
    const error = await launch(dir, "fail").then(() => null, (err: Error) => err.message);
    expect(error).toMatch(/^launch: (.*; )?rank 1 \(local rank 1, pid \d+\) exited with code 1(; |$)/);
    expect(error).not.toMatch(/rank [02] .*killed/);
    // The communicator's timeout is 30 s: the others learnt from the lost connection or were stopped.
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(lines.join("")).toMatch(/\[rank 1\] Error: rank 1 fails on purpose/);
  });
});
