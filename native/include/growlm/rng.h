// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011). Element i of a fill
// with (seed, offset) is a pure function of (seed, offset + i): the same bits for any
// thread count, and any slice of a stream can be regenerated on its own. Key = seed (low
// word first); counter = (offset + i mod 2^64 as two words, low first, 0, 0).
//   uniform: low + (high - low)·u, u = (w0 >> 8)·2^-24 in [0, 1) (24 random bits; the
//            rounded result can reach high);
//   normal:  Box–Muller on two words of the same counter, u1 = ((w0 >> 8) + 1)·2^-24 in
//            (0, 1], u2 = (w1 >> 8)·2^-24: mean + std·sqrt(-2 ln u1)·cos(2π u2).
// The Philox words are the same on every code path; the float transforms may differ in
// the last bits between code paths (FMA contraction, polynomial ln and cos).
#pragma once
#include <cstdint>

#include "growlm/context.h"

namespace growlm {

void rng_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset, float low, float high,
                 const Context& ctx);

void rng_normal(float* out, int64_t n, uint64_t seed, uint64_t offset, float mean, float std,
                const Context& ctx);

/// The raw Philox4x32-10 block of one counter and key, computed by the same (vector) code
/// as the fills: exposed for the Random123 known-answer tests.
void philox4x32_10(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2],
                   const Context& ctx);

}  // namespace growlm
