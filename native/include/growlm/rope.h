// Rotary position embedding in Hugging Face's LLaMA convention (rotate_half):
//   inv_freq[i] = 1 / theta^(2i / D) (fp32), angle = positions[b,t] · inv_freq[i] (fp32)
//   out[i]       = x[i] · cos(angle) - x[i + D/2] · sin(angle)      for i < D/2
//   out[i + D/2] = x[i + D/2] · cos(angle) + x[i] · sin(angle)
// x, out, dout, dinp: [B, T, H, D] with D even; positions: int32 [B, T].
// The backward is the rotation by -angle. out may alias inp, dinp may alias dout.
#pragma once
#include <cstdint>

#include "growlm/context.h"

namespace growlm {

void rope_forward(float* out, const float* inp, const int32_t* positions, int64_t B, int64_t T,
                  int64_t H, int64_t D, float theta, const Context& ctx);

void rope_backward(float* dinp, const float* dout, const int32_t* positions, int64_t B,
                   int64_t T, int64_t H, int64_t D, float theta, const Context& ctx);

}  // namespace growlm
