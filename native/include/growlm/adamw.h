// Fused AdamW over a flat parameter buffer, with PyTorch's torch.optim.AdamW semantics:
//   p -= lr · wd · p                       (decoupled decay, only in decaying segments)
//   g = grad · grad_scale                  (grad_scale folds gradient clipping in)
//   m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²
//   p -= (lr / (1-β1^t)) · m / (sqrt(v) / sqrt(1-β2^t) + eps)
// Segments [seg_begin[s], seg_begin[s+1]) of the buffer decay when seg_decay[s] != 0
// (per-parameter mask: norms and biases off). params_bf16, when not null, receives the
// updated parameters rounded to bf16 (the working copy of mixed-precision training).
// Global gradient norm: sum of squares in double over fixed blocks, combined in block
// order, so the result is the same for any thread count.
#pragma once
#include <cstdint>

#include "growlm/context.h"

namespace growlm {

struct AdamWHyper {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
  int64_t step = 1;         // t >= 1, the step being taken (bias correction)
  float grad_scale = 1.0f;  // multiplies every gradient before use
};

void adamw_step(float* params, float* m, float* v, uint16_t* params_bf16, const float* grads,
                int64_t n, const int64_t* seg_begin, const uint8_t* seg_decay, int64_t n_segments,
                const AdamWHyper& hyper, const Context& ctx);

/// L2 norm of grads[0..n), as double.
double global_grad_norm(const float* grads, int64_t n, const Context& ctx);

/// torch.nn.utils.clip_grad_norm_: if norm > max_norm, grads *= max_norm / (norm + 1e-6).
/// Returns the norm before clipping.
double clip_grad_norm(float* grads, int64_t n, double max_norm, const Context& ctx);

}  // namespace growlm
