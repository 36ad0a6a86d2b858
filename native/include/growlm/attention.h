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

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, float scale,
                       const Context& ctx);

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse,
                        int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, float scale,
                        const Context& ctx);

}  // namespace growlm
