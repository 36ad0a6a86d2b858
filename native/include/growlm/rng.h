// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011). Element i of a fill
// with (seed, offset) is a pure function of (seed, offset + i): the same bits for any
// thread count, and any slice of a stream can be regenerated on its own.
//   uniform: [low, high) from 24 random bits;  normal: Box–Muller on two 32-bit words.
#pragma once
#include <cstdint>

#include "growlm/context.h"

namespace growlm {

void rng_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset, float low, float high,
                 const Context& ctx);

void rng_normal(float* out, int64_t n, uint64_t seed, uint64_t offset, float mean, float std,
                const Context& ctx);

}  // namespace growlm
