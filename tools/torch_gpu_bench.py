#!/usr/bin/env python3
"""PyTorch's side of growlm's GPU benchmarks (bench/gpu/): a server that sets up and times the
baselines on the same GPU, driven by bench/gpu/torch.ts over stdin/stdout, one JSON object per
line, so that growlm's and PyTorch's measurements can alternate round after round in one run.

    python3 tools/torch_gpu_bench.py          (then requests on stdin)

Requests and replies ({"id": n, ...} is echoed; a failure replies {"id", "ok": false, "error"}):
    {"op": "info"}  -> {"ok", "torch", "cuda": bool, "reason", "device", "capability"}
    {"op": "setup", "case": NAME, "kind": KIND, "args": {...}} -> {"ok", "name", "detail"}
    {"op": "measure", "case": NAME, "target_seconds": s} -> {"ok", "seconds_per_call", "calls"}
    {"op": "free", "case": NAME} -> {"ok"}
Kinds (args):
    attention  B, T, H, D: F.scaled_dot_product_attention(q, k, v, is_causal=True) forward and
               backward (torch.autograd.grad), bf16, [B, H, T, D], the flash backend forced
    adamw      n, bf16_copy: torch.optim.AdamW(fused=True) on one fp32 tensor of n elements
               (with bf16_copy, also p.to(bfloat16) into a preallocated tensor: growlm's
               master-weights mode writes that copy in the same kernel)
    matmul     M, N, K, precision ("fp32" | "tf32" | "bf16"): torch.matmul(a, b, out=c),
               a [M, K], b [K, N]; fp32 and tf32 set torch.backends.cuda.matmul.allow_tf32
    rmsnorm    N, C, backward: F.rms_norm forward (and backward through autograd.grad)
    xent       N, V: F.cross_entropy(logits, targets) forward and backward, fp32 logits
    train      config (tools/torch_train_step.py's CONFIGS), attention ("eager": torch_llama.py
               as is, the softmax path of transformers' eager attention; "sdpa": its attention
               replaced by F.scaled_dot_product_attention(is_causal=True)): one training step
               of tools/torch_llama.py's model in bf16 autocast with fp32 weights (as growlm's
               "bfloat16" matmul mode: bf16 products, fp32 master weights), clip_grad_norm_(1),
               torch.optim.AdamW(fused=True, weight decay 0.1 except norms)

Timing: synchronize, then `calls` calls, then synchronize, all inside the timed region (wall
clock); `calls` is chosen on the first measure so that the region lasts about target_seconds,
as bench/gpu/harness.ts does for growlm's side.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class Case:
    """A baseline: `run()` queues one call on the GPU."""

    def __init__(self, name: str, detail: str, run) -> None:
        self.name, self.detail, self.run = name, detail, run
        self.calls = 0


def attention_case(torch, F, args):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    B, T, H, D = (int(args[k]) for k in ("B", "T", "H", "D"))
    gen = torch.Generator(device="cuda").manual_seed(1)
    q, k, v, dout = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16, generator=gen) for _ in range(4))
    for t in (q, k, v):
        t.requires_grad_(True)

    def run():
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        torch.autograd.grad(out, (q, k, v), dout)

    return Case("PyTorch SDPA flash", f"torch {torch.__version__} scaled_dot_product_attention, flash backend, bf16 [B, H, T, D]", run)


def adamw_case(torch, F, args):
    n = int(args["n"])
    p = torch.nn.Parameter(torch.rand(n, device="cuda") * 2 - 1)
    p.grad = torch.rand(n, device="cuda") * 2 - 1
    opt = torch.optim.AdamW([p], lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, fused=True)
    copy = torch.empty(n, device="cuda", dtype=torch.bfloat16) if args.get("bf16_copy") else None

    def run():
        opt.step()
        if copy is not None:
            copy.copy_(p.detach())

    extra = " + bf16 copy" if copy is not None else ""
    return Case(f"PyTorch fused AdamW{extra}", f"torch.optim.AdamW(fused=True), one fp32 tensor of {n} elements{extra}", run)


def matmul_case(torch, F, args):
    M, N, K = int(args["M"]), int(args["N"]), int(args["K"])
    precision = args["precision"]
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    gen = torch.Generator(device="cuda").manual_seed(2)
    a = torch.rand(M, K, device="cuda", generator=gen).to(dtype) * 2 - 1
    b = torch.rand(K, N, device="cuda", generator=gen).to(dtype) * 2 - 1
    # growlm's bf16 GEMM writes fp32 C; torch.matmul of bf16 tensors writes bf16 (what a user gets).
    c = torch.empty(M, N, device="cuda", dtype=dtype)
    tf32 = precision == "tf32"

    def run():
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.matmul(a, b, out=c)

    return Case(f"torch.matmul {precision}", f"torch.matmul [{M}, {K}] x [{K}, {N}] {precision}", run)


def rmsnorm_case(torch, F, args):
    N, C = int(args["N"]), int(args["C"])
    gen = torch.Generator(device="cuda").manual_seed(3)
    x = (torch.rand(N, C, device="cuda", generator=gen) * 2 - 1).requires_grad_(bool(args.get("backward")))
    w = (torch.rand(C, device="cuda", generator=gen) + 0.5).requires_grad_(bool(args.get("backward")))
    dy = torch.rand(N, C, device="cuda", generator=gen) * 2 - 1

    if args.get("backward"):
        def run():
            y = F.rms_norm(x, (C,), w, 1e-5)
            torch.autograd.grad(y, (x, w), dy)
    else:
        def run():
            with torch.no_grad():
                F.rms_norm(x, (C,), w, 1e-5)

    what = "forward + backward" if args.get("backward") else "forward"
    return Case("PyTorch F.rms_norm", f"F.rms_norm {what}, fp32 [{N}, {C}]", run)


def xent_case(torch, F, args):
    N, V = int(args["N"]), int(args["V"])
    gen = torch.Generator(device="cuda").manual_seed(4)
    logits = (torch.randn(N, V, device="cuda", generator=gen) * 2).requires_grad_(True)
    targets = torch.randint(0, V, (N,), device="cuda", generator=gen)

    def run():
        loss = F.cross_entropy(logits, targets, reduction="sum")
        torch.autograd.grad(loss, (logits,))

    return Case("PyTorch F.cross_entropy", f"F.cross_entropy forward + backward, fp32 logits [{N}, {V}]", run)


def sdpa_attention_forward(torch, F, torch_llama):
    """LlamaAttention.forward with F.scaled_dot_product_attention in place of the eager softmax."""

    def forward(self, hidden_states, cos, sin, mask):
        B, T, _ = hidden_states.shape
        shape = (B, T, -1, self.head_dim)
        q = self.q_proj(hidden_states).view(shape).transpose(1, 2)
        k = self.k_proj(hidden_states).view(shape).transpose(1, 2)
        v = self.v_proj(hidden_states).view(shape).transpose(1, 2)
        q, k = torch_llama.apply_rotary_pos_emb(q, k, cos, sin)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.num_key_value_groups > 1)
        return self.o_proj(out.transpose(1, 2).reshape(B, T, -1))

    return forward


def train_case(torch, F, args):
    import torch_llama
    from torch_train_step import CONFIGS

    shape = dict(CONFIGS[args["config"]])
    if "shape" in args:
        shape.update(args["shape"])
    B, T = shape.pop("batch"), shape.pop("seq_len")
    config = torch_llama.LlamaConfig(max_position_embeddings=T, **shape)
    model = torch_llama.LlamaForCausalLM(config)
    model.init_weights(torch.Generator().manual_seed(0))
    model = model.cuda().train()
    attention = args.get("attention", "eager")
    if attention == "sdpa":
        forward = sdpa_attention_forward(torch, F, torch_llama)
        for layer in model.model.layers:
            layer.self_attn.forward = forward.__get__(layer.self_attn)
    opt = torch.optim.AdamW(torch_llama.adamw_param_groups(model, 0.1), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, fused=True)
    ids = torch.randint(0, config.vocab_size, (B, T), device="cuda", generator=torch.Generator(device="cuda").manual_seed(5))

    def run():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            _, loss = model(ids, ids)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
        opt.step()

    name = "PyTorch eager" + (" + SDPA" if attention == "sdpa" else "") + " bf16 autocast"
    detail = (f"tools/torch_llama.py config {args['config']} B={B} T={T}, {attention} attention, bf16 autocast over fp32 weights, "
              f"clip_grad_norm_(1), AdamW(fused=True)")
    return Case(name, detail, run)


KINDS = {"attention": attention_case, "adamw": adamw_case, "matmul": matmul_case, "rmsnorm": rmsnorm_case,
         "xent": xent_case, "train": train_case}


def main() -> None:
    import torch
    import torch.nn.functional as F

    cases: dict[str, Case] = {}

    def handle(request: dict) -> dict:
        op = request.get("op")
        if op == "info":
            cuda = torch.cuda.is_available()
            reason = "" if cuda else f"torch {torch.__version__}: torch.cuda.is_available() is False (built for CUDA {torch.version.cuda})"
            return {"torch": torch.__version__, "cuda": cuda, "reason": reason,
                    "device": torch.cuda.get_device_name(0) if cuda else "",
                    "capability": ".".join(map(str, torch.cuda.get_device_capability(0))) if cuda else ""}
        if op == "setup":
            case = KINDS[request["kind"]](torch, F, request.get("args", {}))
            case.run()  # warm-up: kernels chosen, memory allocated, autotuning done
            torch.cuda.synchronize()
            cases[request["case"]] = case
            return {"name": case.name, "detail": case.detail}
        if op == "measure":
            case = cases[request["case"]]
            target = float(request.get("target_seconds", 0.1))
            if case.calls == 0:
                torch.cuda.synchronize()
                start = time.perf_counter()
                case.run()
                torch.cuda.synchronize()
                once = time.perf_counter() - start
                case.calls = max(1, min(1000, math.ceil(target / max(once, 1e-6))))
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(case.calls):
                case.run()
            torch.cuda.synchronize()
            return {"seconds_per_call": (time.perf_counter() - start) / case.calls, "calls": case.calls}
        if op == "free":
            cases.pop(request["case"], None)
            torch.cuda.empty_cache()
            return {}
        raise ValueError(f"unknown op {op!r}")

    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            reply = {"ok": True, **handle(request)}
        except Exception as e:  # reported to the client, which reports the case as failed
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=4)}
        reply["id"] = request.get("id")
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
