#!/usr/bin/python3
"""Checks a grown Hugging Face directory with the PyTorch reference (tools/torch_llama.py), in
float64, independently of growlm's own forward:

  /usr/bin/python3 tools/check_growth_torch.py SOURCE_DIR GROWN_DIR [--seqs 4] [--len 16] [--seed 0]

1. The grown directory loads: config.json gives the target's shapes, every parameter of
   transformers' LlamaForCausalLM is present (single file or shards) with its shape, and no
   tensor is left over (load_state is strict about missing tensors and shapes; leftovers are
   checked here).
2. The grown model's logits against the source's on random token sequences: the relative error
   max|Δ| / max|logits| is printed. For a function-preserving growth (growth.json says
   "function_preserving": true and has no MSG mask) it must be at the level of the weights'
   rounding (float32 files: ~1e-6; bfloat16: ~1e-2 since scaled copies are rounded again); the
   script exits 1 when it exceeds --tol (default 1e-5).

Needs torch and numpy (Debian's /usr/bin/python3 has both); growlm's tests do not run it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_llama import LlamaConfig, LlamaForCausalLM, load_safetensors, load_state  # noqa: E402


def load(directory: str) -> LlamaForCausalLM:
    with open(os.path.join(directory, "config.json")) as f:
        raw = json.load(f)
    fields = set(LlamaConfig.__dataclass_fields__)
    config = LlamaConfig(**{k: v for k, v in raw.items() if k in fields})
    tensors = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".safetensors"):
            tensors.update(load_safetensors(os.path.join(directory, name)))
    model = LlamaForCausalLM(config).double()
    load_state(model, tensors)
    leftover = set(tensors) - {n for n, _ in model.named_parameters()}
    if config.tie_word_embeddings:
        leftover.discard("lm_head.weight")
    if leftover:
        raise SystemExit(f"{directory}: tensors the model does not have: {sorted(leftover)}")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source")
    parser.add_argument("grown")
    parser.add_argument("--seqs", type=int, default=4)
    parser.add_argument("--len", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tol", type=float, default=1e-5)
    args = parser.parse_args()
    source = load(args.source)
    grown = load(args.grown)
    vocab = source.config.vocab_size
    generator = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(0, vocab, (args.seqs, args.len), generator=generator)
    with torch.no_grad():
        a = source(ids)
        b = grown(ids)
    a = a[0] if isinstance(a, tuple) else a
    b = b[0] if isinstance(b, tuple) else b
    err = ((b - a).abs().max() / a.abs().max()).item()
    record_path = os.path.join(args.grown, "growth.json")
    record = json.load(open(record_path)) if os.path.exists(record_path) else {}
    promised = bool(record.get("function_preserving")) and record.get("mask") is None
    print(f"{args.grown}: loads ({len(grown.model.layers)} layers); logits vs the source: relative error {err:.3e}"
          f" ({'function-preserving growth' if promised else 'growth that changes the function'})")
    if promised and err > args.tol:
        raise SystemExit(f"relative error {err:.3e} exceeds --tol {args.tol:g} for a function-preserving growth")


if __name__ == "__main__":
    main()
