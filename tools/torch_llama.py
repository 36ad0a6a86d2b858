#!/usr/bin/python3
"""A self-contained LLaMA decoder in PyTorch: growlm's reference for Hugging Face
transformers' LlamaForCausalLM (modeling_llama.py, the eager attention path of
transformers 4.45 to 4.5x; the math has not changed since 4.38 apart from where the RoPE
tables are built). Neither transformers nor the safetensors package is needed: this file
also holds a small safetensors reader and writer.

What is mirrored from transformers, exactly:
- LlamaModel: h = embed_tokens(input_ids) (nn.Embedding with padding_idx = pad_token_id,
  so the pad row receives no gradient); position_ids = arange(T); per layer
  h = h + o_proj(attn(input_layernorm(h))); h = h + down_proj(silu(gate_proj(u)) * up_proj(u))
  with u = post_attention_layernorm(h); then model.norm. No biases anywhere.
- LlamaRMSNorm: x = hidden.to(float32); variance = x.pow(2).mean(-1, keepdim=True);
  x = x * rsqrt(variance + eps); weight * x.to(input dtype).
- LlamaRotaryEmbedding (rope_type "default"): inv_freq = 1 / theta ** (arange(0, D, 2).float() / D)
  in float32; angles = inv_freq ⊗ position_ids in float32 (autocast off); emb = cat(angles,
  angles); cos, sin = emb.cos(), emb.sin(), cast to the activations' dtype;
  apply_rotary_pos_emb: q * cos + rotate_half(q) * sin, rotate_half(x) = cat(-x2, x1) of the
  two halves of the head dimension. Query/key rows of q_proj/k_proj are head-major
  (row h * D + d), as .view(B, T, -1, D).transpose(1, 2) reads them.
- eager_attention_forward: repeat_kv (query head h reads key/value head h // (H / H_kv));
  scores = q @ k^T * D^-0.5; + causal mask (0 on and below the diagonal, finfo(dtype).min
  above); softmax(dim=-1, dtype=float32).to(q dtype); @ v; transpose back and reshape to
  [B, T, H * D] for o_proj.
- LlamaForCausalLM: logits = lm_head(h) (lm_head.weight is embed_tokens.weight when
  tie_word_embeddings); loss = ForCausalLMLoss: logits.float(), cross entropy of the logits
  at position t against labels[t + 1] (labels are the input ids, shifted inside the loss),
  ignore_index -100, mean over the tokens that are not ignored in the whole batch.

Incremental decoding (forward_cached, KVCache) follows transformers' generate() with a
preallocated cache (StaticCache layout [B, H_kv, S, D]): new keys and values are written at
the next slots, queries attend to every filled slot allowed by the causal mask and the
attention_mask (left padding), and positions are cumsum(attention_mask) - 1. The plain
forward above is unchanged by it.

The one deliberate difference: where transformers casts up to float32 (RMSNorm, softmax,
the loss), this file casts to the wider of float32 and the activations' dtype, so a model
converted with .double() computes in float64 throughout (transformers would round those
steps to float32). In float32, bfloat16 and float16 the two are the same. RoPE keeps
transformers' float32 inv_freq and float32 angles in every dtype (they define the model);
in float64 only their cos and sin are evaluated in float64.

Linear weights are [out_features, in_features]; state-dict names are transformers' own
(model.embed_tokens.weight, model.layers.{i}.self_attn.{q,k,v,o}_proj.weight,
model.layers.{i}.mlp.{gate,up,down}_proj.weight, model.layers.{i}.input_layernorm.weight,
model.layers.{i}.post_attention_layernorm.weight, model.norm.weight, lm_head.weight; the
last is absent from state_dict() when tied, as in save_pretrained).
"""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100


@dataclass
class LlamaConfig:
    """transformers.LlamaConfig's fields that change the computation, with its defaults."""

    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: Optional[int] = None
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = False
    bos_token_id: Optional[int] = 1
    eos_token_id: Optional[int] = 2
    pad_token_id: Optional[int] = None
    initializer_range: float = 0.02

    def __post_init__(self) -> None:
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}")
        if self.num_attention_heads % self.num_key_value_heads != 0:
            raise ValueError(f"num_key_value_heads {self.num_key_value_heads} does not divide num_attention_heads {self.num_attention_heads}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def to_hf_dict(self) -> Dict[str, object]:
        """The config.json transformers writes for this model (keys sorted)."""
        out: Dict[str, object] = {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": None,
            "tie_word_embeddings": self.tie_word_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
            "initializer_range": self.initializer_range,
            "hidden_act": "silu",
            "attention_bias": False,
            "attention_dropout": 0.0,
            "mlp_bias": False,
            "pretraining_tp": 1,
            "use_cache": True,
            "torch_dtype": "float32",
        }
        return dict(sorted(out.items()))

def _upcast_dtype(dtype: torch.dtype) -> torch.dtype:
    """Where transformers writes .to(torch.float32): float32, or float64 for a float64 model."""
    return torch.promote_types(dtype, torch.float32)


class LlamaRMSNorm(nn.Module):
    def __init__(self, hidden_size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(_upcast_dtype(input_dtype))
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


def rope_inv_freq(head_dim: int, theta: float) -> torch.Tensor:
    """transformers' default inv_freq [D/2], float32."""
    return 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))


def rope_cos_sin(inv_freq: torch.Tensor, position_ids: torch.Tensor, dtype: torch.dtype):
    """cos, sin [B, T, D] of the float32 angles position_ids[b, t] * inv_freq[i], duplicated
    over both halves; evaluated in float32 (float64 for a float64 model) and cast to dtype."""
    inv = inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
    pos = position_ids[:, None, :].float()
    angles = (inv @ pos).transpose(1, 2)
    emb = torch.cat((angles, angles), dim=-1).to(_upcast_dtype(dtype))
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    cos = cos.unsqueeze(1)
    sin = sin.unsqueeze(1)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


def repeat_kv(hidden_states: torch.Tensor, n_rep: int) -> torch.Tensor:
    """[B, H_kv, T, D] -> [B, H_kv * n_rep, T, D]; head h of the result is kv head h // n_rep."""
    batch, kv_heads, slen, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, :, None, :, :].expand(batch, kv_heads, n_rep, slen, head_dim)
    return hidden_states.reshape(batch, kv_heads * n_rep, slen, head_dim)


def causal_mask(T: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[1, 1, T, T]: 0 where key <= query, finfo(dtype).min above the diagonal (added to the scores)."""
    mask = torch.full((T, T), torch.finfo(dtype).min, dtype=dtype, device=device)
    return torch.triu(mask, diagonal=1)[None, None, :, :]


class LlamaAttention(nn.Module):
    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.head_dim = config.head_dim
        self.num_heads = config.num_attention_heads
        self.num_key_value_heads = config.num_key_value_heads
        self.num_key_value_groups = self.num_heads // self.num_key_value_heads
        self.scaling = self.head_dim ** -0.5
        C = config.hidden_size
        self.q_proj = nn.Linear(C, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(C, self.num_key_value_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(C, self.num_key_value_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, C, bias=False)

    def forward(self, hidden_states: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, T, _ = hidden_states.shape
        shape = (B, T, -1, self.head_dim)
        q = self.q_proj(hidden_states).view(shape).transpose(1, 2)
        k = self.k_proj(hidden_states).view(shape).transpose(1, 2)
        v = self.v_proj(hidden_states).view(shape).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        k = repeat_kv(k, self.num_key_value_groups)
        v = repeat_kv(v, self.num_key_value_groups)
        scores = torch.matmul(q, k.transpose(2, 3)) * self.scaling
        scores = scores + mask
        probs = F.softmax(scores, dim=-1, dtype=_upcast_dtype(q.dtype)).to(q.dtype)
        out = torch.matmul(probs, v).transpose(1, 2).contiguous()
        return self.o_proj(out.reshape(B, T, -1))

    def forward_cached(self, hidden_states: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                       keys: torch.Tensor, values: torch.Tensor, start: int) -> torch.Tensor:
        """forward() for T new positions whose keys and values are written into the layer's
        cache (keys, values [B, H_kv, S, D]) at slots start..start+T-1; the queries attend to
        slots 0..start+T-1 under `mask` [B, 1, T, start+T]."""
        B, T, _ = hidden_states.shape
        shape = (B, T, -1, self.head_dim)
        q = self.q_proj(hidden_states).view(shape).transpose(1, 2)
        k = self.k_proj(hidden_states).view(shape).transpose(1, 2)
        v = self.v_proj(hidden_states).view(shape).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        keys[:, :, start : start + T] = k
        values[:, :, start : start + T] = v
        k = repeat_kv(keys[:, :, : start + T], self.num_key_value_groups)
        v = repeat_kv(values[:, :, : start + T], self.num_key_value_groups)
        scores = torch.matmul(q, k.transpose(2, 3)) * self.scaling
        scores = scores + mask
        probs = F.softmax(scores, dim=-1, dtype=_upcast_dtype(q.dtype)).to(q.dtype)
        out = torch.matmul(probs, v).transpose(1, 2).contiguous()
        return self.o_proj(out.reshape(B, T, -1))


class LlamaMLP(nn.Module):
    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        C, I = config.hidden_size, config.intermediate_size
        self.gate_proj = nn.Linear(C, I, bias=False)
        self.up_proj = nn.Linear(C, I, bias=False)
        self.down_proj = nn.Linear(I, C, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.self_attn = LlamaAttention(config)
        self.mlp = LlamaMLP(config)
        self.input_layernorm = LlamaRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = LlamaRMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = h + self.self_attn(self.input_layernorm(h), cos, sin, mask)
        return h + self.mlp(self.post_attention_layernorm(h))

    def forward_cached(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                       keys: torch.Tensor, values: torch.Tensor, start: int) -> torch.Tensor:
        h = h + self.self_attn.forward_cached(self.input_layernorm(h), cos, sin, mask, keys, values, start)
        return h + self.mlp(self.post_attention_layernorm(h))


class LlamaModel(nn.Module):
    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = nn.ModuleList([LlamaDecoderLayer(config) for _ in range(config.num_hidden_layers)])
        self.norm = LlamaRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.register_buffer("inv_freq", rope_inv_freq(config.head_dim, config.rope_theta), persistent=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        h = self.embed_tokens(input_ids)
        B, T = input_ids.shape
        position_ids = torch.arange(T, device=input_ids.device)[None, :].expand(B, T)
        cos, sin = rope_cos_sin(self.inv_freq, position_ids, h.dtype)
        mask = causal_mask(T, h.dtype, h.device)
        for layer in self.layers:
            h = layer(h, cos, sin, mask)
        return self.norm(h)

    def forward_cached(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache: "KVCache") -> torch.Tensor:
        """The hidden states of T new tokens per row appended after the cache's contents.
        attention_mask [B, cache.length + T] (1 = token, 0 = padding; left padding) gives the
        keys each row may attend to; positions are transformers' generate() ones,
        cumsum(attention_mask) - 1 (padding at 1)."""
        h = self.embed_tokens(input_ids)
        B, T = input_ids.shape
        start = cache.length
        position_ids = attention_mask.long().cumsum(-1) - 1
        position_ids = position_ids.masked_fill(attention_mask == 0, 1)[:, start : start + T]
        cos, sin = rope_cos_sin(self.inv_freq, position_ids, h.dtype)
        mask = cached_attention_mask(attention_mask, start, T, h.dtype)
        for layer, keys, values in zip(self.layers, cache.keys, cache.values):
            h = layer.forward_cached(h, cos, sin, mask, keys, values, start)
        cache.length = start + T
        return self.norm(h)


def cached_attention_mask(attention_mask: torch.Tensor, start: int, T: int, dtype: torch.dtype) -> torch.Tensor:
    """[B, 1, T, start + T] additive mask for T queries at slots start..start+T-1: 0 where the
    key slot is at or before the query's and attention_mask holds 1 there, finfo(dtype).min
    elsewhere (transformers' causal mask combined with the padding mask)."""
    total = start + T
    query = torch.arange(start, total, device=attention_mask.device)[:, None]
    key = torch.arange(total, device=attention_mask.device)[None, :]
    allowed = (key <= query)[None, :, :] & attention_mask[:, None, :total].bool()
    mask = torch.zeros(allowed.shape, dtype=dtype, device=attention_mask.device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)[:, None, :, :]


class KVCache:
    """Keys and values of every layer for incremental decoding, preallocated as
    [B, H_kv, max_length, D] per layer (transformers' StaticCache layout); `length` slots
    are filled."""

    def __init__(self, config: LlamaConfig, batch: int, max_length: int, dtype: torch.dtype = torch.float32) -> None:
        shape = (batch, config.num_key_value_heads, max_length, config.head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype) for _ in range(config.num_hidden_layers)]
        self.values = [torch.zeros(shape, dtype=dtype) for _ in range(config.num_hidden_layers)]
        self.length = 0


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """transformers' ForCausalLMLoss: logits [B, T, V] at t scored against labels[:, t + 1],
    ignore_index -100, mean over the non-ignored targets of the whole batch."""
    logits = logits.to(_upcast_dtype(logits.dtype))
    shift_logits = logits[:, :-1, :].reshape(-1, logits.shape[-1])
    shift_labels = labels[:, 1:].reshape(-1)
    return F.cross_entropy(shift_logits, shift_labels, ignore_index=IGNORE_INDEX, reduction="mean")


class LlamaForCausalLM(nn.Module):
    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.config = config
        self.model = LlamaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, input_ids: torch.Tensor, labels: Optional[torch.Tensor] = None):
        """input_ids [B, T] int64, labels [B, T] (HF semantics, see causal_lm_loss) or None.
        Returns (logits [B, T, V], loss scalar or None)."""
        logits = self.lm_head(self.model(input_ids))
        loss = causal_lm_loss(logits, labels) if labels is not None else None
        return logits, loss

    def forward_cached(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Logits [B, V] of the last of T new tokens per row (LlamaModel.forward_cached); only
        the last position goes through lm_head, as generate() does."""
        h = self.model.forward_cached(input_ids, attention_mask, cache)
        return self.lm_head(h[:, -1, :])

    def init_weights(self, generator: torch.Generator, norm_jitter: float = 0.0) -> None:
        """transformers' _init_weights: linear and embedding weights ~ N(0, initializer_range),
        the padding row zeroed; norm weights 1 (+ norm_jitter * N(0, 1) when asked, so that
        tests see norm gradients that depend on the weights)."""
        std = self.config.initializer_range
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("norm.weight"):
                    p.copy_(1.0 + norm_jitter * torch.randn(p.shape, generator=generator, dtype=torch.float64).to(p.dtype))
                else:
                    p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64).mul_(std).to(p.dtype))
            if self.config.pad_token_id is not None:
                self.model.embed_tokens.weight[self.config.pad_token_id].zero_()


def no_decay(name: str) -> bool:
    """transformers Trainer's grouping: no weight decay for biases and norm weights."""
    return name.endswith("norm.weight") or name.endswith(".bias")


def adamw_param_groups(model: nn.Module, weight_decay: float) -> List[dict]:
    named = list(model.named_parameters())
    return [
        {"params": [p for n, p in named if not no_decay(n)], "weight_decay": weight_decay},
        {"params": [p for n, p in named if no_decay(n)], "weight_decay": 0.0},
    ]


# ---- safetensors (format: 8-byte little-endian header length N, N bytes of JSON
# {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
# then the data, offsets relative to its start, no holes) ----

_DTYPES = {
    "F64": (np.float64, torch.float64),
    "F32": (np.float32, torch.float32),
    "F16": (np.float16, torch.float16),
    "BF16": (np.int16, torch.bfloat16),
    "I64": (np.int64, torch.int64),
    "I32": (np.int32, torch.int32),
    "I16": (np.int16, torch.int16),
    "I8": (np.int8, torch.int8),
    "U8": (np.uint8, torch.uint8),
    "BOOL": (np.bool_, torch.bool),
}
_TORCH_TO_ST = {t: name for name, (_, t) in _DTYPES.items()}


def save_safetensors(tensors: Dict[str, torch.Tensor], path: str, metadata: Optional[Dict[str, str]] = None) -> None:
    """Writes tensors atomically (temporary file, then rename). Tensors are laid out by
    element size, largest first, then in the given order, so every tensor is aligned to its
    element size; the header is padded with spaces to a multiple of 8 bytes."""
    items = sorted(tensors.items(), key=lambda kv: -kv[1].element_size())
    header: Dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs: List[bytes] = []
    offset = 0
    for name, t in items:
        t = t.detach().contiguous().cpu()
        if t.dtype == torch.bfloat16:
            data = t.view(torch.int16).numpy().tobytes()
        else:
            data = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _TORCH_TO_ST[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    tmp = f"{path}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)
    os.replace(tmp, path)


def load_safetensors(path: str) -> Dict[str, torch.Tensor]:
    """Reads every tensor of a safetensors file (copies, in file order)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    out: Dict[str, torch.Tensor] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        np_dtype, torch_dtype = _DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        arr = np.frombuffer(raw, dtype=np.dtype(np_dtype).newbyteorder("<"), count=(end - begin) // np.dtype(np_dtype).itemsize, offset=base + begin)
        t = torch.from_numpy(arr.copy()).reshape(info["shape"])
        out[name] = t.view(torch.bfloat16) if torch_dtype == torch.bfloat16 else t
    return out


def load_state(model: LlamaForCausalLM, tensors: Dict[str, torch.Tensor]) -> None:
    """Copies HF-named tensors into the model (converted to its dtype); every parameter must be present."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name not in tensors:
                raise KeyError(f"missing tensor {name}")
            if tuple(tensors[name].shape) != tuple(p.shape):
                raise ValueError(f"{name}: shape {tuple(tensors[name].shape)} but the model has {tuple(p.shape)}")
            p.copy_(tensors[name].to(p.dtype))


def count_flops_per_token(config: LlamaConfig, T: int) -> float:
    """Training FLOPs per token as PaLM's MFU counts them: 6 * (matmul parameters) +
    12 * L * T * C for the attention scores and weighted sum (forward 4 * T * C per layer,
    backward twice that; causal masking not discounted). The matmul parameters are every
    projection plus lm_head (V * C); the embedding lookup is not a matmul."""
    C, I, L = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    kv = config.num_key_value_heads * config.head_dim
    per_layer = C * C * 2 + 2 * C * kv + 3 * C * I
    matmul_params = L * per_layer + config.vocab_size * C
    return 6.0 * matmul_params + 12.0 * L * T * C


__all__ = [
    "IGNORE_INDEX",
    "KVCache",
    "LlamaConfig",
    "LlamaForCausalLM",
    "LlamaRMSNorm",
    "adamw_param_groups",
    "apply_rotary_pos_emb",
    "cached_attention_mask",
    "causal_lm_loss",
    "causal_mask",
    "count_flops_per_token",
    "load_safetensors",
    "load_state",
    "no_decay",
    "repeat_kv",
    "rope_cos_sin",
    "rope_inv_freq",
    "rotate_half",
    "save_safetensors",
]
