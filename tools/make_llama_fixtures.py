#!/usr/bin/python3
"""Writes growlm's LLaMA parity fixtures: test/fixtures/llama/<name>.safetensors + <name>.json.

Run from the repository root with Debian's python3-torch: `/usr/bin/python3 tools/make_llama_fixtures.py`.
The output is deterministic for a given torch build (seeded torch.Generator per fixture).

Each fixture is a small model (weights stored F32 under Hugging Face names), a batch with its
float64 logits, loss and every parameter gradient, and a 20-step torch.optim.AdamW trajectory
(20 different batches, clip_grad_norm_ before each step) computed in float64 from the same
F32 weights. The float64 model is tools/torch_llama.py (transformers' LlamaForCausalLM math);
before anything is written it is checked against an independent numpy forward (per-pair RoPE
rotation, per-head attention loops, -inf masking, explicit log-sum-exp).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Tuple

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_llama import (  # noqa: E402
    IGNORE_INDEX,
    LlamaConfig,
    LlamaForCausalLM,
    adamw_param_groups,
    load_safetensors,
    load_state,
    no_decay,
    save_safetensors,
)

BATCH = 2
STEPS = 20
HYPER = {"lr": 3e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1, "max_grad_norm": 1.0}
NORM_JITTER = 0.1  # norm weights 1 + 0.1 * N(0, 1): not all ones, so their gradients depend on them
IGNORED_PER_ROW = 3  # labels set to -100 in each row of every batch
# The independent numpy forward agrees with the torch model to rounding (both float64).
SELF_CHECK_RTOL = 1e-11

FIXTURES: List[Tuple[str, int, Dict[str, object], int, str]] = [
    (
        "mha_untied",
        1001,
        dict(vocab_size=61, hidden_size=32, intermediate_size=56, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=4, tie_word_embeddings=False),
        9,
        "multi-head attention (H = H_kv = 4, D = 8), untied lm_head, transformers' defaults for eps and theta",
    ),
    (
        "gqa_tied",
        1002,
        dict(vocab_size=67, hidden_size=48, intermediate_size=80, num_hidden_layers=3, num_attention_heads=6,
             num_key_value_heads=2, tie_word_embeddings=True),
        13,
        "grouped-query attention (H = 6, H_kv = 2, D = 8), lm_head tied to embed_tokens (one tensor, its gradient sums both uses)",
    ),
    (
        "gqa_untied_odd",
        1003,
        dict(vocab_size=53, hidden_size=40, intermediate_size=72, num_hidden_layers=2, num_attention_heads=5,
             num_key_value_heads=1, tie_word_embeddings=False, rope_theta=500000.0, rms_norm_eps=1e-5, pad_token_id=0),
        11,
        "multi-query attention (H = 5, H_kv = 1, D = 8), untied, rope_theta 500000, rms_norm_eps 1e-5, "
        "pad_token_id 0 occurring in the inputs (transformers' nn.Embedding padding_idx: row 0 of "
        "embed_tokens gets no gradient and is initialised to zero)",
    ),
]

CONVENTIONS = {
    "reference": "tools/torch_llama.py: transformers' LlamaForCausalLM (eager attention) evaluated in float64 "
                 "from the F32 weights in this file (weights are rounded to float32 first, then widened).",
    "labels": "labels [B, T] use Hugging Face semantics: they are the input ids (some set to -100); the loss "
              "scores logits[:, t] against labels[:, t + 1] (shift inside the loss), so labels[:, 0] is never used.",
    "loss": "mean cross entropy over the non-ignored shifted targets of the whole batch (not per sequence).",
    "positions": "position_ids = arange(T) in every row; causal attention; no attention mask or padding handling "
                 "beyond nn.Embedding's padding_idx when pad_token_id is set.",
    "rope": "inv_freq = 1 / theta^(arange(0, D, 2) / D) and the angles pos * inv_freq in float32 as transformers "
            "computes them; cos/sin evaluated in float64 from those float32 angles; rotate_half pairs (i, i + D/2).",
    "attention": "query head h uses key/value head h // (H / H_kv) (repeat_kv); scale 1/sqrt(D); softmax over keys <= query.",
    "linear": "weights are [out_features, in_features] (y = x W^T); q_proj/k_proj/v_proj rows are head-major (h * D + d).",
    "tied": "when tie_word_embeddings, only model.embed_tokens.weight is stored; it is also lm_head.weight, "
            "and grad.model.embed_tokens.weight is the sum of both contributions.",
    "padding_idx": "when pad_token_id is set, embed_tokens' row pad_token_id receives no gradient from the "
                   "embedding lookup (torch nn.Embedding padding_idx, as transformers builds it).",
    "train": "step s (0-based): zero grads; forward train.input_ids[s], train.labels[s]; train.losses[s] is that "
             "loss (before the update); backward; train.grad_norms[s] = torch.nn.utils.clip_grad_norm_(params, "
             "max_norm) (the global L2 norm before clipping; every gradient is multiplied by "
             "min(1, max_norm / (norm + 1e-6))); torch.optim.AdamW step (decoupled decay: p *= 1 - lr * wd, "
             "bias-corrected moments, eps added to sqrt(v_hat)). Two groups: weight_decay on every tensor except "
             "the norm weights (input_layernorm, post_attention_layernorm, model.norm), which have 0. "
             "final.<name> are the parameters after the 20th update.",
    "float32": "logits_f32 / loss_f32 / train.losses_f32: the same torch code run in float32 (not the reference; "
               "they show how far plain float32 lands from float64, see torch_f32_vs_f64).",
    "relative_error": "torch_f32_vs_f64 values are normwise: max|a - e| / max|e| per tensor, max over tensors.",
}


def rel_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    a = actual.double().reshape(-1)
    e = expected.double().reshape(-1)
    scale = e.abs().max().item()
    diff = (a - e).abs().max().item()
    return diff / scale if scale > 0 else diff


def bigram_batches(gen: torch.Generator, vocab: int, count: int, T: int) -> torch.Tensor:
    """[count, B, T] token ids from a fixed random bigram chain with 3 likely successors per
    token, so that 20 AdamW steps visibly lower the loss (uniform tokens would not)."""
    successors = torch.randint(0, vocab, (vocab, 3), generator=gen)
    ids = torch.empty((count, BATCH, T), dtype=torch.int64)
    ids[:, :, 0] = torch.randint(0, vocab, (count, BATCH), generator=gen)
    for t in range(1, T):
        pick = torch.randint(0, 3, (count, BATCH), generator=gen)
        follow = successors[ids[:, :, t - 1], pick]
        noise = torch.randint(0, vocab, (count, BATCH), generator=gen)
        use_noise = torch.rand((count, BATCH), generator=gen) < 0.15
        ids[:, :, t] = torch.where(use_noise, noise, follow)
    return ids


def mask_labels(gen: torch.Generator, ids: torch.Tensor) -> torch.Tensor:
    """labels = ids with IGNORED_PER_ROW positions of every row set to -100."""
    labels = ids.clone()
    flat = labels.reshape(-1, ids.shape[-1])
    for row in flat:
        positions = torch.randperm(ids.shape[-1], generator=gen)[:IGNORED_PER_ROW]
        row[positions] = IGNORE_INDEX
    return labels


def numpy_forward(cfg: LlamaConfig, w: Dict[str, np.ndarray], inv_freq: np.ndarray, ids: np.ndarray, labels: np.ndarray):
    """An independent float64 LLaMA forward: (logits [B, T, V], loss)."""
    B, T = ids.shape
    H, Hkv, D = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    half = D // 2

    def rms(x: np.ndarray, g: np.ndarray) -> np.ndarray:
        return g * (x / np.sqrt((x * x).mean(-1, keepdims=True) + cfg.rms_norm_eps))

    def rope(x: np.ndarray) -> np.ndarray:  # [B, T, heads, D], pair (i, i + half) rotated by pos * inv_freq[i]
        out = np.empty_like(x)
        for t in range(T):
            angle = (np.float32(t) * inv_freq).astype(np.float64)  # float32 product, as transformers
            c, s = np.cos(angle), np.sin(angle)
            a, b = x[:, t, :, :half], x[:, t, :, half:]
            out[:, t, :, :half] = a * c - b * s
            out[:, t, :, half:] = b * c + a * s
        return out

    h = w["model.embed_tokens.weight"][ids]
    for layer in range(cfg.num_hidden_layers):
        p = f"model.layers.{layer}."
        x = rms(h, w[p + "input_layernorm.weight"])
        q = rope((x @ w[p + "self_attn.q_proj.weight"].T).reshape(B, T, H, D))
        k = rope((x @ w[p + "self_attn.k_proj.weight"].T).reshape(B, T, Hkv, D))
        v = (x @ w[p + "self_attn.v_proj.weight"].T).reshape(B, T, Hkv, D)
        att = np.zeros((B, T, H, D))
        for b in range(B):
            for head in range(H):
                kv = head // (H // Hkv)
                for t in range(T):
                    scores = k[b, : t + 1, kv] @ q[b, t, head] / np.sqrt(D)
                    e = np.exp(scores - scores.max())
                    att[b, t, head] = (e / e.sum()) @ v[b, : t + 1, kv]
        h = h + att.reshape(B, T, H * D) @ w[p + "self_attn.o_proj.weight"].T
        x = rms(h, w[p + "post_attention_layernorm.weight"])
        gate = x @ w[p + "mlp.gate_proj.weight"].T
        up = x @ w[p + "mlp.up_proj.weight"].T
        h = h + (gate / (1 + np.exp(-gate)) * up) @ w[p + "mlp.down_proj.weight"].T
    h = rms(h, w["model.norm.weight"])
    head_w = w["model.embed_tokens.weight"] if cfg.tie_word_embeddings else w["lm_head.weight"]
    logits = h @ head_w.T
    nll, count = 0.0, 0
    for b in range(B):
        for t in range(T - 1):
            target = labels[b, t + 1]
            if target == IGNORE_INDEX:
                continue
            row = logits[b, t]
            m = row.max()
            nll += m + np.log(np.exp(row - m).sum()) - row[target]
            count += 1
    return logits, nll / count


def train(model: LlamaForCausalLM, ids: torch.Tensor, labels: torch.Tensor) -> Tuple[List[float], List[float]]:
    """The 20-step AdamW trajectory (see CONVENTIONS["train"]); returns (losses, grad norms)."""
    opt = torch.optim.AdamW(adamw_param_groups(model, HYPER["weight_decay"]), lr=HYPER["lr"],
                            betas=tuple(HYPER["betas"]), eps=HYPER["eps"])
    losses, norms = [], []
    for s in range(ids.shape[0]):
        opt.zero_grad(set_to_none=True)
        _, loss = model(ids[s], labels[s])
        losses.append(loss.item())
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), HYPER["max_grad_norm"]).item())
        opt.step()
    return losses, norms


def build(name: str, seed: int, fields: Dict[str, object], T: int, description: str, out_dir: str) -> Dict[str, float]:
    cfg = LlamaConfig(max_position_embeddings=64, **fields)  # type: ignore[arg-type]
    gen = torch.Generator().manual_seed(seed)

    init = LlamaForCausalLM(cfg)
    init.init_weights(gen, norm_jitter=NORM_JITTER)
    weights = {n: p.detach().float().clone() for n, p in init.named_parameters()}

    all_ids = bigram_batches(gen, cfg.vocab_size, STEPS + 1, T)
    if cfg.pad_token_id is not None:
        all_ids[:, 0, 2] = cfg.pad_token_id  # the pad token occurs, with a label, in every batch
        all_ids[:, 1, T - 1] = cfg.pad_token_id
    all_labels = mask_labels(gen, all_ids)
    ids, labels = all_ids[0], all_labels[0]
    train_ids, train_labels = all_ids[1:], all_labels[1:]

    def model_in(dtype: torch.dtype) -> LlamaForCausalLM:
        m = LlamaForCausalLM(cfg).to(dtype)
        load_state(m, weights)
        return m

    m64 = model_in(torch.float64)
    logits, loss = m64(ids, labels)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in m64.named_parameters()}

    np_logits, np_loss = numpy_forward(cfg, {n: t.double().numpy() for n, t in weights.items()},
                                       m64.model.inv_freq.float().numpy(), ids.numpy(), labels.numpy())
    check_logits = rel_error(torch.from_numpy(np_logits), logits.detach())
    check_loss = abs(np_loss - loss.item()) / abs(np_loss)
    if check_logits > SELF_CHECK_RTOL or check_loss > SELF_CHECK_RTOL:
        raise SystemExit(f"{name}: torch_llama.py and the numpy forward disagree (logits {check_logits:.2e}, loss {check_loss:.2e})")

    m32 = model_in(torch.float32)
    logits32, loss32 = m32(ids, labels)
    loss32.backward()
    grad_err32 = max(rel_error(p.grad, grads[n]) for n, p in m32.named_parameters())

    losses, grad_norms = train(m64, train_ids, train_labels)
    m32 = model_in(torch.float32)
    losses32, _ = train(m32, train_ids, train_labels)
    final = {n: p.detach().clone() for n, p in m64.named_parameters()}
    final_err32 = max(rel_error(p, final[n]) for n, p in m32.named_parameters())

    tensors: Dict[str, torch.Tensor] = dict(weights)
    tensors["input_ids"] = ids.int()
    tensors["labels"] = labels.int()
    tensors["logits"] = logits.detach()
    tensors["loss"] = loss.detach().reshape(1)
    tensors["logits_f32"] = logits32.detach()
    tensors["loss_f32"] = loss32.detach().reshape(1)
    for n, g in grads.items():
        tensors[f"grad.{n}"] = g
    tensors["train.input_ids"] = train_ids.int()
    tensors["train.labels"] = train_labels.int()
    tensors["train.losses"] = torch.tensor(losses, dtype=torch.float64)
    tensors["train.grad_norms"] = torch.tensor(grad_norms, dtype=torch.float64)
    for n, p in final.items():
        # F32 keeps the file under 1 MB; its rounding (<= 6e-8 relative) is far below any parity tolerance.
        tensors[f"final.{n}"] = p.float()

    f32_vs_f64 = {
        "logits": rel_error(logits32, logits),
        "loss": abs(loss32.item() - loss.item()) / abs(loss.item()),
        "grads_max": grad_err32,
        "train_losses_max": max(abs(a - b) / abs(b) for a, b in zip(losses32, losses)),
        "final_params_max": final_err32,
    }
    meta = {
        "name": name,
        "description": description,
        "generator": "tools/make_llama_fixtures.py (model: tools/torch_llama.py)",
        "torch_version": torch.__version__,
        "seed": seed,
        "config": cfg.to_hf_dict(),
        "batch_size": BATCH,
        "seq_len": T,
        "loss": loss.item(),
        "loss_f32": loss32.item(),
        "parameters": [n for n, _ in m64.named_parameters()],
        "no_decay": [n for n, _ in m64.named_parameters() if no_decay(n)],
        "train": {
            "steps": STEPS,
            "optimizer": "torch.optim.AdamW",
            **HYPER,
            "clip": "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm) before every step",
            "losses": losses,
            "grad_norms": grad_norms,
            "losses_f32": losses32,
        },
        "torch_f32_vs_f64": f32_vs_f64,
        "self_check_numpy_vs_torch": {"logits": check_logits, "loss": check_loss},
        "tensors": {
            "<parameter name>": "F32, the initial weights under transformers' names (see parameters)",
            "input_ids": "I32 [B, T]",
            "labels": "I32 [B, T], input_ids with some positions -100",
            "logits": "F64 [B, T, V], float64 reference",
            "loss": "F64 [1], float64 reference",
            "logits_f32": "F32 [B, T, V], torch in float32 (informative)",
            "loss_f32": "F32 [1], torch in float32 (informative)",
            "grad.<parameter name>": "F64, d loss / d parameter, float64 reference",
            "train.input_ids": "I32 [20, B, T], the batch of each step",
            "train.labels": "I32 [20, B, T]",
            "train.losses": "F64 [20], loss before each update",
            "train.grad_norms": "F64 [20], gradient L2 norm before clipping",
            "final.<parameter name>": "F32, parameters after 20 float64 AdamW steps (rounded to F32)",
        },
        "conventions": CONVENTIONS,
    }
    base = os.path.join(out_dir, name)
    save_safetensors(tensors, base + ".safetensors", {"format": "pt", "fixture": name})
    back = load_safetensors(base + ".safetensors")
    if back.keys() != tensors.keys() or any(not torch.equal(back[n], t.contiguous()) for n, t in tensors.items()):
        raise SystemExit(f"{base}.safetensors does not read back as written")
    tmp = f"{base}.json.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    os.replace(tmp, base + ".json")
    return f32_vs_f64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="test/fixtures/llama", help="output directory")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    for name, seed, fields, T, description in FIXTURES:
        errs = build(name, seed, fields, T, description, args.out)
        size = os.path.getsize(os.path.join(args.out, name + ".safetensors"))
        print(f"{name}: {size / 1024:.0f} KiB; torch float32 vs float64: " + ", ".join(f"{k} {v:.1e}" for k, v in errs.items()))


if __name__ == "__main__":
    main()
