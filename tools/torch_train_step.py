#!/usr/bin/python3
"""PyTorch's side of growlm's training-step benchmark: one full float32 step of
tools/torch_llama.py (transformers' LlamaForCausalLM with eager attention, the path
transformers takes on torch 1.13, which has no scaled_dot_product_attention) on random
tokens: zero_grad(set_to_none=True), forward, loss, backward, torch.optim.AdamW step
(weight decay 0.1 except the norm weights). No gradient clipping.

    /usr/bin/python3 tools/torch_train_step.py --config S --threads 2 --steps 5 --warmup 2 --json
    /usr/bin/python3 tools/torch_train_step.py --config M --mode memory --json

--mode time (default) times `steps` steps after `warmup` untimed ones; --mode memory runs
`warmup` + `steps` steps (defaults 0 + 2) to report the process's peak resident memory.
Both print one JSON object with --json: {"config", "threads", "torch_version", "mode",
"step_seconds": [one per timed step], "median_step_seconds", "tokens_per_step",
"tokens_per_second" (tokens_per_step / median), "model_flops_per_step", "parameters",
"optimizer", "peak_rss_bytes" (VmHWM of /proc/self/status: unlike ru_maxrss, it does not
inherit the high-water mark of the process that spawned this one), "blas"}.

BLAS: Debian's torch calls the system libblas.so.3, and Debian's default alternative is
OpenBLAS's pthread build, whose own spinning threads fight torch's OpenMP pool (four busy
threads on two cores: about 1.7k tokens/s at S instead of 4k). --blas openmp (the default
where libopenblas0-openmp is installed) loads OpenBLAS's OpenMP build before torch, so the
GEMMs and torch's own kernels share one OpenMP pool; that is PyTorch's intended setup and
the one behind the issue's 4.6k tokens/s. --blas system keeps whatever the alternatives
select. OMP_NUM_THREADS and OPENBLAS_NUM_THREADS are set to --threads before torch is
imported (unless already set).
"""
from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import resource
import statistics
import sys
import time

CONFIGS = {
    # hidden, layers, heads, kv heads, intermediate, vocab, batch, sequence length
    "S": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
              intermediate_size=688, vocab_size=4096, batch=8, seq_len=256),
    "M": dict(hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=8,
              intermediate_size=1376, vocab_size=8192, batch=4, seq_len=512),
}
# torch 1.13's AdamW on CPU: the per-tensor loop (foreach=False, the default) measured faster
# than foreach=True for S and M at 2 threads; --foreach overrides.
DEFAULT_FOREACH = False
OPENMP_OPENBLAS_DIRS = sorted(glob.glob("/usr/lib/*/openblas-openmp"))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=sorted(CONFIGS), default="S")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mode", choices=["time", "memory"], default="time")
    p.add_argument("--steps", type=int, default=None, help="timed steps (time: 5, memory: 2)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (time: 2, memory: 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--foreach", choices=["on", "off"], default="on" if DEFAULT_FOREACH else "off",
                   help="torch.optim.AdamW(foreach=...)")
    p.add_argument("--blas", choices=["openmp", "system"], default="openmp" if OPENMP_OPENBLAS_DIRS else "system",
                   help="OpenBLAS build to load (see above)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary line")
    args = p.parse_args()
    if args.steps is None:
        args.steps = 5 if args.mode == "time" else 2
    if args.warmup is None:
        args.warmup = 2 if args.mode == "time" else 0
    if args.blas == "openmp" and not OPENMP_OPENBLAS_DIRS:
        p.error("--blas openmp: no /usr/lib/*/openblas-openmp (install libopenblas0-openmp)")
    if args.threads < 1 or args.steps < 1 or args.warmup < 0:
        p.error("--threads and --steps must be >= 1, --warmup >= 0")
    return args


def load_openmp_openblas() -> None:
    """Loads OpenBLAS's OpenMP build under the sonames torch links against (libblas.so.3,
    liblapack.so.3), so the dynamic linker reuses it when torch is imported."""
    directory = OPENMP_OPENBLAS_DIRS[0]
    for lib in ("libopenblas.so.0", "libblas.so.3", "liblapack.so.3"):
        ctypes.CDLL(os.path.join(directory, lib), mode=ctypes.RTLD_GLOBAL)


def blas_summary(torch) -> str:
    """torch's BLAS_INFO build setting and the BLAS libraries actually mapped into the process."""
    build = next((line for line in torch.__config__.show().splitlines() if "BLAS_INFO=" in line), "")
    info = next((part.strip() for part in build.split(",") if "BLAS_INFO=" in part), "BLAS_INFO=unknown")
    info = info[info.index("BLAS_INFO="):] if "BLAS_INFO=" in info else info
    with open("/proc/self/maps") as maps:
        libs = sorted({line.split()[-1] for line in maps if "blas" in line.split()[-1]})
    return f"{info}; loaded: {', '.join(libs) or 'none'}"


def peak_rss_bytes():
    """This process's peak resident set (VmHWM; ru_maxrss where /proc is absent)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    args = parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    if args.blas == "openmp":
        load_openmp_openblas()
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torch_llama import LlamaConfig, LlamaForCausalLM, adamw_param_groups, count_flops_per_token

    torch.set_num_threads(args.threads)
    shape = dict(CONFIGS[args.config])
    B, T = shape.pop("batch"), shape.pop("seq_len")
    config = LlamaConfig(max_position_embeddings=T, **shape)
    gen = torch.Generator().manual_seed(args.seed)
    model = LlamaForCausalLM(config)
    model.init_weights(gen)
    model.train()
    foreach = args.foreach == "on"
    opt = torch.optim.AdamW(adamw_param_groups(model, 0.1), lr=3e-4, betas=(0.9, 0.95), eps=1e-8, foreach=foreach)

    total = args.warmup + args.steps
    batches = torch.randint(0, config.vocab_size, (total, B, T), generator=gen)
    seconds = []
    for s in range(total):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        _, loss = model(batches[s], batches[s])
        loss.backward()
        opt.step()
        elapsed = time.perf_counter() - start
        if s >= args.warmup:
            seconds.append(elapsed)
        if not torch.isfinite(loss):
            raise SystemExit(f"step {s}: loss is {loss.item()}")

    median = statistics.median(seconds)
    tokens = B * T
    result = {
        "config": args.config,
        "threads": args.threads,
        "torch_version": torch.__version__,
        "mode": args.mode,
        "step_seconds": seconds,
        "median_step_seconds": median,
        "tokens_per_step": tokens,
        "tokens_per_second": tokens / median,
        "model_flops_per_step": count_flops_per_token(config, T) * tokens,
        "parameters": sum(p.numel() for p in model.parameters()),
        "optimizer": f"torch.optim.AdamW(foreach={foreach})",
        "peak_rss_bytes": peak_rss_bytes(),
        "blas": blas_summary(torch),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"torch {result['torch_version']} config {args.config}, {args.threads} threads, {result['optimizer']}: "
              f"median {median * 1e3:.0f} ms/step over {len(seconds)} steps, {result['tokens_per_second']:.0f} tokens/s, "
              f"{result['model_flops_per_step'] / median / 1e9:.1f} GFLOP/s, peak RSS {result['peak_rss_bytes'] / 2**20:.0f} MiB; {result['blas']}")


if __name__ == "__main__":
    main()
