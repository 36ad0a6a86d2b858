#!/usr/bin/python3
"""Writes test/fixtures/io/dtypes.safetensors: float32 values and PyTorch's float16 and
bfloat16 conversions of them, to check growlm's F16/BF16 decoding and BF16 encoding against
an independent implementation.

Run with Debian's python3-torch (the pyenv python has no torch):
    /usr/bin/python3 tools/make_safetensors_fixture.py

Tensors (all shape [64, 64]):
  source       F32   the inputs: normals at scales 1e-8..1e5, float16 subnormals and overflows,
                     float32 subnormals, bfloat16 and float16 rounding ties, +-0, +-inf, NaN
  as_f16       F16   torch source.to(float16)
  as_bf16      BF16  torch source.to(bfloat16)
  f16_as_f32   F32   torch as_f16.to(float32)
  bf16_as_f32  F32   torch as_bf16.to(float32)

The file is written by hand in the layout of the Rust safetensors writer (compact JSON
header sorted by name, "__metadata__" first, padded with spaces to a multiple of 8), so the
test also reads a file growlm did not write.
"""
import json
import os
import struct

import torch

N = 64 * 64
OUT = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "io", "dtypes.safetensors")


def source_values() -> torch.Tensor:
    g = torch.Generator().manual_seed(20240613)
    parts = []
    for scale in (1e-8, 1e-6, 1e-4, 1e-2, 1.0, 1e2, 1e4, 6e4, 1e5):
        parts.append(torch.randn(256, generator=g, dtype=torch.float64) * scale)
    # float16 subnormals (below 2^-14) and float32 subnormals (below 2^-126)
    parts.append((torch.rand(256, generator=g, dtype=torch.float64) - 0.5) * 2 ** -13)
    parts.append((torch.rand(64, generator=g, dtype=torch.float64) - 0.5) * 2 ** -125)
    values = torch.cat(parts).to(torch.float32)

    # Exact rounding ties: the dropped bits are exactly half an ulp, with the kept part even and odd.
    hi = torch.randint(0, 1 << 15, (256,), generator=g, dtype=torch.int64)
    bf16_ties = ((hi << 16) | 0x8000).to(torch.int32).view(torch.float32)
    f16_ties = (torch.randint(-2048, 2048, (256,), generator=g).to(torch.float32) + 0.5) * 2.0 ** -10 + 1.0
    specials = torch.tensor(
        [0.0, -0.0, float("inf"), float("-inf"), float("nan"), 65504.0, 65520.0, -65520.0,
         3.4028234663852886e38, 1.401298464324817e-45, 2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.5],
        dtype=torch.float32,
    )
    negative_nan = torch.tensor([0xFFC00001 - (1 << 32)], dtype=torch.int32).view(torch.float32)
    values = torch.cat([values, bf16_ties, f16_ties, specials, negative_nan])
    fill = torch.randn(N - values.numel(), generator=g, dtype=torch.float32)
    values = torch.cat([values, fill])
    perm = torch.randperm(N, generator=g)
    return values[perm].reshape(64, 64).contiguous()


def raw_bytes(t: torch.Tensor) -> bytes:
    view = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}[t.dtype]
    return t.contiguous().view(view).numpy().tobytes()


def main() -> None:
    source = source_values()
    f16 = source.to(torch.float16)
    bf16 = source.to(torch.bfloat16)
    tensors = {
        "as_bf16": ("BF16", bf16),
        "as_f16": ("F16", f16),
        "bf16_as_f32": ("F32", bf16.to(torch.float32)),
        "f16_as_f32": ("F32", f16.to(torch.float32)),
        "source": ("F32", source),
    }
    header = {"__metadata__": {"format": "pt"}}
    data = b""
    for name, (dtype, t) in tensors.items():
        raw = raw_bytes(t)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)
    print(f"wrote {os.path.normpath(OUT)} ({8 + len(text) + len(data)} bytes, torch {torch.__version__})")


if __name__ == "__main__":
    main()
