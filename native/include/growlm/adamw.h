// Fused AdamW over a flat parameter buffer, with PyTorch's torch.optim.AdamW semantics and
// its float32 operation order:
//   p = p · (1 - lr·wd)                    (decoupled decay, only in decaying segments)
//   g = grad · grad_scale                  (grad_scale folds gradient clipping in)
//   m = m.lerp(g, 1-β1)                    (m + (1-β1)·(g - m), torch's lerp)
//   v = v·β2 + (1-β2)·g·g
//   p = p + (-lr / (1-β1^t)) · m / (sqrt(v) / sqrt(1-β2^t) + eps)
// Segments [seg_begin[s], seg_begin[s+1]) of the buffer decay when seg_decay[s] != 0
// (per-parameter mask: norms and biases off). params_bf16, when not null, receives the
// updated parameters rounded to bf16 (the working copy of mixed-precision training).
// Global gradient norm: exact double squares summed in fixed lanes over fixed blocks,
// combined in block order, so the result is bitwise the same for any thread count and
// any code path.
#pragma once
#include <cstdint>

#include "growlm/context.h"

namespace growlm {

// Hyperparameters are doubles, as Python floats are in torch: the scalars torch derives
// from them (1 - lr·wd, 1 - β1, 1 - β2, lr / (1 - β1^t), sqrt(1 - β2^t)) are computed in
// double and rounded once to float32, exactly as torch's CPU kernels receive them.
struct AdamWHyper {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  int64_t step = 1;         // t >= 1, the step being taken (bias correction)
  float grad_scale = 1.0f;  // multiplies every gradient (in float32) before use
};

/// The float32 scalars torch's AdamW kernels receive, derived in double from `hyper` and rounded
/// once (both backends' kernels take these, so they round alike).
struct AdamWScalars {
  float decay;      // 1 - lr·wd
  float coeff;      // lerp: weight 1-β1 when < 0.5, else (1-β1) - 1
  bool from_m;      // lerp base: m when the weight is small, else g
  float beta2;      // β2
  float one_m_b2;   // 1 - β2
  float bc2_sqrt;   // sqrt(1 - β2^t)
  float eps;
  float neg_step;   // -lr / (1 - β1^t)
  float grad_scale;
};

AdamWScalars adamw_scalars(const AdamWHyper& hyper);

void adamw_step(float* params, float* m, float* v, uint16_t* params_bf16, const float* grads,
                int64_t n, const int64_t* seg_begin, const uint8_t* seg_decay, int64_t n_segments,
                const AdamWHyper& hyper, const Context& ctx);

/// L2 norm of grads[0..n), as double.
double global_grad_norm(const float* grads, int64_t n, const Context& ctx);

/// torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6); grads *= coef unless
/// coef >= 1 (a NaN norm therefore spreads to every gradient, as in torch). Returns the norm
/// before clipping.
double clip_grad_norm(float* grads, int64_t n, double max_norm, const Context& ctx);

}  // namespace growlm
