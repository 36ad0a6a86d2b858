#!/usr/bin/env python3
"""PyTorch baseline of bench/attention.bench.ts on a GPU: causal
torch.nn.functional.scaled_dot_product_attention, forward + backward, bf16, restricted to the
flash backend, on tensors laid out as growlm's [B, T, H, D] (transposed views, no copies).
Prints the median seconds of one forward + backward (CUDA events) and FlashAttention's flop
count (forward 4·B·H·T²·D / 2, backward 2.5 × that). H must equal Hkv (no GQA expansion, which
would add copies to PyTorch's time)."""
import argparse
import json
import statistics

import torch
import torch.nn.functional as F


def flash_only():
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel(SDPBackend.FLASH_ATTENTION)
    except ImportError:  # torch < 2.3
        return torch.backends.cuda.sdp_kernel(enable_flash=True, enable_math=False, enable_mem_efficient=False)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--B", type=int, default=4)
    p.add_argument("--T", type=int, default=2048)
    p.add_argument("--H", type=int, default=16)
    p.add_argument("--D", type=int, default=128)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args()
    dev = torch.device("cuda")
    shape = (a.B, a.T, a.H, a.D)
    q, k, v = (torch.randn(shape, device=dev, dtype=torch.bfloat16).transpose(1, 2).requires_grad_() for _ in range(3))
    dout = torch.randn(shape, device=dev, dtype=torch.bfloat16).transpose(1, 2)

    def step():
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        out.backward(dout)

    times = []
    with flash_only():
        for _ in range(a.warmup):
            step()
        torch.cuda.synchronize()
        for _ in range(a.iters):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
    seconds = statistics.median(times)
    flops = 3.5 * 4 * a.B * a.H * a.T * a.T * a.D / 2
    result = {"seconds": seconds, "flops": flops, "torch": torch.__version__, "device": torch.cuda.get_device_name()}
    print(json.dumps(result) if a.json else f"{seconds * 1e3:.3f} ms, {flops / seconds / 1e12:.1f} TFLOP/s ({result['device']})")


if __name__ == "__main__":
    main()
