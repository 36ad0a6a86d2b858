// Elementwise kernels on flat buffers: residual add, copy (also the bandwidth baseline of
// the benchmarks), scale, fp32 <-> bf16 conversion (round to nearest even, NaN kept), and
// e^x, 2^x with the vectorised exponentials every kernel uses (native/cpu/vmath.h).
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
/// out = e^inp within 1 ulp (results below 2^-126 within one step of 2^-149); +inf where
/// e^x rounds above FLT_MAX (x > 88.72283), +0 where it rounds to 0 (x < -103.972); NaN
/// stays NaN. out may alias inp.
void exp_f32(float* out, const float* inp, int64_t n, const Context& ctx);
/// out = 2^inp, the same guarantees (+inf from x = 128 on, +0 from x = -150 down).
void exp2_f32(float* out, const float* inp, int64_t n, const Context& ctx);

}  // namespace growlm
