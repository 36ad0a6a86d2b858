// Elementwise kernels on flat buffers: residual add, copy (also the bandwidth baseline of
// the benchmarks), scale, and fp32 <-> bf16 conversion (round to nearest even, NaN kept).
#pragma once
#include <cstdint>

#include "growlm/context.h"

namespace growlm {

/// out = a + b; out may alias a or b.
void add(float* out, const float* a, const float* b, int64_t n, const Context& ctx);
/// dst = src (no overlap).
void copy(float* dst, const float* src, int64_t n, const Context& ctx);
/// x *= s.
void scale(float* x, float s, int64_t n, const Context& ctx);
void f32_to_bf16(uint16_t* dst, const float* src, int64_t n, const Context& ctx);
void bf16_to_f32(float* dst, const uint16_t* src, int64_t n, const Context& ctx);

}  // namespace growlm
