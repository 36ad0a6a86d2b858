// SwiGLU activation of LLaMA's MLP: out = silu(gate) · up, silu(x) = x / (1 + e^-x).
// All buffers [n]. dgate and dup are overwritten. Finite inputs give finite outputs,
// however large |gate| is (e^-x saturates to 0 or inf, never NaN).
#pragma once
#include <cstdint>

#include "growlm/context.h"

namespace growlm {

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n, const Context& ctx);

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n, const Context& ctx);

}  // namespace growlm
