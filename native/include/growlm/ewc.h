// Elastic weight consolidation (Kirkpatrick et al. 2017) over a flat fp32 parameter buffer,
// in one streaming pass each:
//   penalty:  d = θ − θ*  (float32),  grads += fl(fl(λ·F)·d),
//             returns (λ/2)·Σ F·d²  (F·d·d in double, summed as below);
//   Fisher:   F += fl(scale·fl(g·g))  (accumulating squared per-example gradients).
// Every product and sum is rounded separately (no FMA contraction), so each element is the
// same on every code path. The penalty's sum goes to 32 fixed lanes per block of 2^16
// elements, the lanes fold in a fixed tree and the blocks add in order: the value is bitwise
// the same for every thread count and every code path. grads may be null (value only).
#pragma once
#include <cstdint>

#include "growlm/context.h"

namespace growlm {

double ewc_penalty(float* grads, const float* params, const float* anchor, const float* fisher,
                   int64_t n, float lambda, const Context& ctx);

void ewc_fisher_accumulate(float* fisher, const float* grads, int64_t n, float scale,
                           const Context& ctx);

}  // namespace growlm
