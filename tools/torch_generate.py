#!/usr/bin/python3
"""PyTorch's side of growlm's generation benchmark: greedy decoding with a KV cache in
tools/torch_llama.py (transformers' LlamaForCausalLM math, eager attention, a preallocated
cache as transformers' StaticCache lays it out), float32, under torch.inference_mode().

    /usr/bin/python3 tools/torch_generate.py --config M --batch 8 --prompt_len 128 --new_tokens 128 --json

One generation = prefill of the prompts [batch, prompt_len] (random token ids, one row each)
then new_tokens - 1 single-token steps, each taking the argmax of the last logits: exactly
new_tokens tokens per row (no EOS stop, as a benchmark must). `--rounds` generations are
timed after `--warmup` untimed ones. With --check the cached greedy tokens of the first
round are compared with greedy decoding that recomputes the whole sequence each step (the
script exits with an error where they differ).

--json prints one object: {"config", "threads", "torch_version", "batch", "prompt_len",
"new_tokens", "round_seconds": [one per timed generation], "median_seconds",
"tokens_per_second" (batch * new_tokens / median), "prefill_seconds" (median of the timed
rounds' prefills), "blas"}.

BLAS and threads as tools/torch_train_step.py sets them up (OpenBLAS's OpenMP build where
installed, OMP_NUM_THREADS and OPENBLAS_NUM_THREADS = --threads).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train_step import CONFIGS, OPENMP_OPENBLAS_DIRS, blas_summary, load_openmp_openblas  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=sorted(CONFIGS), default="M")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--prompt_len", type=int, default=128)
    p.add_argument("--new_tokens", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", action="store_true", help="compare with decoding that recomputes every step")
    p.add_argument("--blas", choices=["openmp", "system"], default="openmp" if OPENMP_OPENBLAS_DIRS else "system")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if min(args.batch, args.prompt_len, args.new_tokens, args.threads, args.rounds) < 1 or args.warmup < 0:
        p.error("--batch, --prompt_len, --new_tokens, --threads and --rounds must be >= 1, --warmup >= 0")
    if args.blas == "openmp" and not OPENMP_OPENBLAS_DIRS:
        p.error("--blas openmp: no /usr/lib/*/openblas-openmp (install libopenblas0-openmp)")
    return args


def greedy_cached(torch, model, config, prompts, new_tokens):
    """Greedy tokens [B, new_tokens] with the KV cache, and the prefill's seconds."""
    from torch_llama import KVCache

    B, P = prompts.shape
    cache = KVCache(config, B, P + new_tokens)
    attention_mask = torch.ones(B, P + new_tokens, dtype=torch.long)
    out = torch.empty(B, new_tokens, dtype=torch.long)
    start = time.perf_counter()
    logits = model.forward_cached(prompts, attention_mask, cache)
    prefill = time.perf_counter() - start
    for t in range(new_tokens):
        out[:, t] = logits.argmax(-1)
        if t + 1 < new_tokens:
            logits = model.forward_cached(out[:, t : t + 1], attention_mask, cache)
    return out, prefill


def greedy_recomputed(torch, model, prompts, new_tokens):
    """Greedy tokens [B, new_tokens], the whole sequence through the plain forward each step."""
    seq = prompts
    for _ in range(new_tokens):
        logits, _ = model(seq)
        seq = torch.cat([seq, logits[:, -1, :].argmax(-1, keepdim=True)], dim=1)
    return seq[:, prompts.shape[1] :]


def main() -> None:
    args = parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    if args.blas == "openmp":
        load_openmp_openblas()
    import torch
    from torch_llama import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(args.threads)
    shape = dict(CONFIGS[args.config])
    shape.pop("batch")
    shape.pop("seq_len")
    config = LlamaConfig(max_position_embeddings=args.prompt_len + args.new_tokens, **shape)
    gen = torch.Generator().manual_seed(args.seed)
    model = LlamaForCausalLM(config)
    model.init_weights(gen)
    model.eval()
    prompts = torch.randint(0, config.vocab_size, (args.batch, args.prompt_len), generator=gen)

    seconds, prefills = [], []
    with torch.inference_mode():
        for r in range(args.warmup + args.rounds):
            start = time.perf_counter()
            tokens, prefill = greedy_cached(torch, model, config, prompts, args.new_tokens)
            elapsed = time.perf_counter() - start
            if r >= args.warmup:
                seconds.append(elapsed)
                prefills.append(prefill)
        if args.check:
            expected = greedy_recomputed(torch, model, prompts, args.new_tokens)
            if not torch.equal(tokens, expected):
                raise SystemExit("cached greedy tokens differ from recomputed ones")

    median = statistics.median(seconds)
    result = {
        "config": args.config,
        "threads": args.threads,
        "torch_version": torch.__version__,
        "batch": args.batch,
        "prompt_len": args.prompt_len,
        "new_tokens": args.new_tokens,
        "round_seconds": seconds,
        "median_seconds": median,
        "tokens_per_second": args.batch * args.new_tokens / median,
        "prefill_seconds": statistics.median(prefills),
        "blas": blas_summary(torch),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"torch {result['torch_version']} config {args.config}, batch {args.batch}, prompt {args.prompt_len}, "
              f"{args.new_tokens} new tokens, {args.threads} threads: median {median:.3f} s per generation "
              f"(prefill {result['prefill_seconds']:.3f} s), {result['tokens_per_second']:.0f} tokens/s; {result['blas']}")


if __name__ == "__main__":
    main()
