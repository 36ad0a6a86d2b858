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

}  // namespace growlm
