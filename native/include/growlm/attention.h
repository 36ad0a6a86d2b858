// Causal self-attention with grouped-query heads, flash-style (tiled, online softmax):
// memory O(T·D) per head, never the T×T score matrix.
//   q, out, dq, dout: [B, T, H, D]; k, v, dk, dv: [B, T, Hkv, D]; lse: [B, H, T]
// Query head h attends to key/value head h / (H / Hkv). scores = scale · q·kᵀ with
// key positions > query position masked. lse holds each query row's log-sum-exp of its
// scaled scores (natural log; saved by the forward, used by the backward, which recomputes
// the probabilities). dq, dk, dv are overwritten (dk, dv sum the contributions of the
// H / Hkv query heads sharing a kv head). Outputs must not overlap any input.
// Results do not depend on the thread count.
//
// Throws std::invalid_argument unless B, T, H, Hkv, D >= 1, H % Hkv == 0 and scale is
// finite and > 0.
//
// Work, in FlashAttention's convention (the count the benchmarks report): the forward is
// 4·B·H·T²·D / 2 flops (Q·Kᵀ and P·V, halved for causality), the backward 2.5 times that.
#pragma once
#include <cstdint>

#include "growlm/context.h"

namespace growlm {

/// The size and scale checks every attention op makes (both backends): throws
/// std::invalid_argument naming `op` unless B, T, H, Hkv, D >= 1, H % Hkv == 0 and scale is
/// finite and > 0.
void check_attention_sizes(const char* op, int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, float scale);

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, float scale,
                       const Context& ctx);

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse,
                        int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, float scale,
                        const Context& ctx);

/// Attention of Tq new queries against a key/value cache (incremental decoding):
///   q, out: [B, Tq, H, D]; k, v: [B, S, Hkv, D] with slots 0 .. Tk - 1 of every row filled
///   (Tq <= Tk <= S); key_begin: int32 [B], each in [0, Tk].
/// Query i of row b sits at slot p = Tk - Tq + i and attends to the slots j with
/// key_begin[b] <= j <= p (a left-padded row keeps its padding below key_begin); a query
/// with no such slot (p < key_begin[b]) gets out = 0. Query head h reads kv head
/// h / (H / Hkv); scores are scale · q·kᵀ. out is overwritten and must not overlap q, k, v.
///
/// Every query row is computed alone, its keys visited in ascending slot order from
/// key_begin[b] in chunks of fixed size, so its result depends only on its q and its own
/// valid keys: not on Tq, B, S, the padding below key_begin, nor the thread count. (Prefill
/// then single-token steps therefore give bitwise what one call over the whole sequence
/// gives.)
///
/// Throws std::invalid_argument unless B, Tq, H, Hkv, D >= 1, Tq <= Tk <= S, H % Hkv == 0,
/// every key_begin in [0, Tk], and scale is finite and > 0.
void attention_cached_forward(float* out, const float* q, const float* k, const float* v,
                              const int32_t* key_begin, int64_t B, int64_t Tq, int64_t Tk,
                              int64_t S, int64_t H, int64_t Hkv, int64_t D, float scale,
                              const Context& ctx);

}  // namespace growlm
