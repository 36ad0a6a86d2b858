// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011). A fill of n elements
// with (seed, offset) writes elements j = offset + i (mod 2^64), i in [0, n), of the stream
// of `seed`, and element j is a pure function of (seed, j): the same bits for any thread
// count, and any slice of a stream, even one starting or ending inside a block, is bitwise
// the corresponding part of a longer fill. The stream, which every backend reproduces:
//   key     = (seed mod 2^32, seed >> 32)
//   block   = j >> 2 (< 2^62); counter = (block mod 2^32, block >> 32, 0, 0)
//   w[0..4) = Philox4x32-10(counter, key), in Random123's word order
//   uniform: u = (w[j & 3] >> 8)·2^-24 in [0, 1) (24 random bits); element j = low + s·u
//            in float32, s = high - low rounded to float32 (the rounded result can reach high);
//   normal:  words (0, 1) and (2, 3) are two Box–Muller pairs; element j uses pair
//            p = (j & 3) >> 1, a = w[2p], b = w[2p + 1]: u1 = ((a >> 8) + 1)·2^-24 in (0, 1],
//            θ = 2π·(b >> 8)·2^-24, r = sqrt(-2 ln u1), and element j = mean + std·(r·cos θ)
//            for even j, mean + std·(r·sin θ) for odd j.
// Every word of every block is used: four uniforms, or two pairs of normals, per block.
// The Philox words are the same on every code path; the float transforms may differ in
// the last bits between code paths (FMA contraction, polynomial ln, sin and cos).
#pragma once
#include <cstdint>

#include "growlm/context.h"

namespace growlm {

void rng_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset, float low, float high,
                 const Context& ctx);

void rng_normal(float* out, int64_t n, uint64_t seed, uint64_t offset, float mean, float std,
                const Context& ctx);

/// Dropout with counter-based masks over rows × C values: element (r, c) draws the uniform
/// u of stream element row_offsets[r] + c (mod 2^64) of `seed`, exactly as rng_uniform(0, 1)
/// draws it, and
///   out[r,c] = u >= p ? inp[r,c] · scale : inp[r,c] · 0,   scale = fp32(1 / (1 − p))
/// (torch.nn.functional.dropout's rule: keep with probability 1 − p, rescale the kept).
/// The backward is the same call on the gradient. out may alias inp. p in [0, 1).
void rng_dropout(float* out, const float* inp, int64_t rows, int64_t C, float p, uint64_t seed,
                 const uint64_t* row_offsets, const Context& ctx);

/// The raw Philox4x32-10 block of one counter and key, computed by the same (vector) code
/// as the fills: exposed for the Random123 known-answer tests.
void philox4x32_10(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2],
                   const Context& ctx);

}  // namespace growlm
