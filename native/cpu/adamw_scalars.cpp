// adamw_scalars (growlm/adamw.h): compiled once, for the CPU kernels of every code path and the
// CUDA kernels alike.
#include <cmath>

#include "growlm/adamw.h"

namespace growlm {

AdamWScalars adamw_scalars(const AdamWHyper& h) {
  AdamWScalars s;
  s.decay = static_cast<float>(1.0 - h.lr * h.weight_decay);
  // torch's lerp_(end, weight) with a float32 weight: small weights interpolate from m,
  // large ones from g (ATen's lerp_vec: fmadd(coeff, end - self, base)).
  const float w = static_cast<float>(1.0 - h.beta1);
  s.from_m = std::fabs(w) < 0.5f;
  s.coeff = s.from_m ? w : w - 1.0f;
  s.beta2 = static_cast<float>(h.beta2);
  s.one_m_b2 = static_cast<float>(1.0 - h.beta2);
  const double t = static_cast<double>(h.step);
  s.bc2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(h.beta2, t)));
  s.eps = static_cast<float>(h.eps);
  s.neg_step = static_cast<float>(-(h.lr / (1.0 - std::pow(h.beta1, t))));
  s.grad_scale = h.grad_scale;
  return s;
}

}  // namespace growlm
