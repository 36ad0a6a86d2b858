// RMSNorm as Hugging Face's LlamaRMSNorm computes it in fp32:
//   rstd[n] = 1 / sqrt(mean_c(inp[n,c]²) + eps);  out[n,c] = (inp[n,c] · rstd[n]) · weight[c]
// inp, out, dinp, dout: [N, C]; weight, dweight: [C]; rstd: [N] (saved for backward).
// dinp is overwritten; dweight accumulates (+=), summed over rows in a fixed order.
#pragma once
#include <cstdint>

#include "growlm/context.h"

namespace growlm {

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N,
                     int64_t C, float eps, const Context& ctx);

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                      const float* weight, const float* rstd, int64_t N, int64_t C,
                      const Context& ctx);

// RMSNorm followed by FiLM-Ensemble's per-member affine map (Turkoglu et al. 2022):
//   out[n,c] = ((inp[n,c] · rstd[n]) · weight[c]) · gamma[m,c] + beta[m,c],
//   m = (n / group) mod M
// Rows come in runs of `group` rows (the T tokens of one sequence); run s belongs to member
// s mod M, so a batch laid out as row b·M + m = sample b seen by member m maps to members.
// gamma, beta, dgamma, dbeta: [M, C]. With M = 1, gamma = 1 and beta = 0 every output is
// bitwise the plain rmsnorm_forward / rmsnorm_backward's.
// Backward: dinp is overwritten; dweight, dgamma and dbeta accumulate (+=):
//   dgamma[m,c] += Σ_{n of m} dout[n,c] · (inp[n,c] · rstd[n]) · weight[c]
//   dbeta[m,c]  += Σ_{n of m} dout[n,c]
// and dinp, dweight are rmsnorm_backward's with dout[n,c] · gamma[m,c] in place of dout.
// Every sum runs in a fixed order (the same bits for any thread count).
void rmsnorm_film_forward(float* out, float* rstd, const float* inp, const float* weight,
                          const float* gamma, const float* beta, int64_t N, int64_t C,
                          int64_t group, int64_t M, float eps, const Context& ctx);

void rmsnorm_film_backward(float* dinp, float* dweight, float* dgamma, float* dbeta,
                           const float* dout, const float* inp, const float* weight,
                           const float* gamma, const float* rstd, int64_t N, int64_t C,
                           int64_t group, int64_t M, const Context& ctx);

}  // namespace growlm
