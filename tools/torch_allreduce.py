#!/usr/bin/python3
"""PyTorch's side of growlm's all-reduce benchmark: torch.distributed's gloo backend (the CPU
collective DDP uses) summing a float32 tensor in place across WORLD processes on this
machine's loopback interface, the same setup as growlm's TCP communicator.

    /usr/bin/python3 tools/torch_allreduce.py --world 2 --mib 1 25 100 --iters 5 --json

Rank 0 prints one JSON object: {"torch_version", "world", "results": [{"mib", "seconds":
median seconds of one all_reduce after one warm-up, "algbw_gbs": bytes / seconds / 1e9}]}.
Every rank times `iters` all_reduce calls, each after a barrier; OMP_NUM_THREADS=1 per rank.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(rank: int, world: int, port: int, sizes: list[float], iters: int, queue) -> None:
    import torch
    import torch.distributed as dist

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    results = []
    for mib in sizes:
        x = torch.randn(int(mib * 2**20 / 4), dtype=torch.float32)
        dist.all_reduce(x)
        times = []
        for _ in range(iters):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(x)
            times.append(time.perf_counter() - t0)
        seconds = statistics.median(times)
        results.append({"mib": mib, "seconds": seconds, "algbw_gbs": x.numel() * 4 / seconds / 1e9})
    if rank == 0:
        queue.put({"torch_version": torch.__version__, "world": world, "results": results})
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=int, default=2)
    parser.add_argument("--mib", type=float, nargs="+", default=[1, 25, 100])
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=run, args=(r, args.world, port, args.mib, args.iters, queue)) for r in range(args.world)]
    for p in procs:
        p.start()
    result = queue.get(timeout=600)
    for p in procs:
        p.join()
    if args.json:
        print(json.dumps(result))
    else:
        for r in result["results"]:
            print(f"{r['mib']:>8} MiB  {r['seconds'] * 1e3:9.2f} ms  {r['algbw_gbs']:6.2f} GB/s")


if __name__ == "__main__":
    main()
