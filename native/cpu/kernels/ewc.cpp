// EWC's quadratic penalty with its gradient, and the Fisher accumulation (growlm/ewc.h),
// over the flat parameter buffer. Checked against a float64 penalty and a Math.fround
// emulation of the per-element float32 ops in test/kernels/ewc.test.ts.
#include <cstring>
#include <vector>

#include "growlm/ewc.h"
#include "growlm/threads.h"
#include "isa.h"

namespace growlm::cpu::GROWLM_ISA_NS {

namespace {

constexpr int64_t GRAIN = 1 << 16;  // elements per task, as adamw.cpp
constexpr int LANES = 32;

// One block: the gradient update (when grads is set) and the block's Σ F·d² in fixed lanes.
// Contraction is off so that fl(λF)·d and g + t round the same way on every code path.
template <bool Grad>
__attribute__((optimize("fp-contract=off"))) double penalty_block(
    float* __restrict g, const float* __restrict p, const float* __restrict a,
    const float* __restrict f, int64_t n, float lambda) {
  double lanes[LANES] = {};
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES) {
    for (int j = 0; j < LANES; ++j) {
      const float d = p[i + j] - a[i + j];
      if (Grad) g[i + j] = g[i + j] + (lambda * f[i + j]) * d;
      const double fd = static_cast<double>(f[i + j]) * static_cast<double>(d);
      lanes[j] += fd * static_cast<double>(d);
    }
  }
  for (int j = 0; i < n; ++i, ++j) {
    const float d = p[i] - a[i];
    if (Grad) g[i] = g[i] + (lambda * f[i]) * d;
    const double fd = static_cast<double>(f[i]) * static_cast<double>(d);
    lanes[j] += fd * static_cast<double>(d);
  }
  for (int w = LANES / 2; w >= 1; w /= 2) {
    for (int j = 0; j < w; ++j) lanes[j] += lanes[j + w];
  }
  return lanes[0];
}

__attribute__((optimize("fp-contract=off"))) void accumulate_block(
    float* __restrict f, const float* __restrict g, int64_t n, float scale) {
  for (int64_t i = 0; i < n; ++i) f[i] = f[i] + scale * (g[i] * g[i]);
}

}  // namespace

double ewc_penalty(float* grads, const float* params, const float* anchor, const float* fisher,
                   int64_t n, float lambda, const Context& ctx) {
  const int64_t blocks = (n + GRAIN - 1) / GRAIN;
  std::vector<double> partial(static_cast<size_t>(blocks));
  parallel_for(ctx, n, GRAIN, [&](int64_t lo, int64_t hi) {
    partial[static_cast<size_t>(lo / GRAIN)] =
        grads ? penalty_block<true>(grads + lo, params + lo, anchor + lo, fisher + lo, hi - lo, lambda)
              : penalty_block<false>(nullptr, params + lo, anchor + lo, fisher + lo, hi - lo, lambda);
  });
  double total = 0;
  for (const double b : partial) total += b;
  return 0.5 * static_cast<double>(lambda) * total;
}

void ewc_fisher_accumulate(float* fisher, const float* grads, int64_t n, float scale,
                           const Context& ctx) {
  parallel_for(ctx, n, GRAIN, [&](int64_t lo, int64_t hi) {
    accumulate_block(fisher + lo, grads + lo, hi - lo, scale);
  });
}

}  // namespace growlm::cpu::GROWLM_ISA_NS

#if defined(GROWLM_ISA_portable)
namespace growlm {
namespace cpu {
GROWLM_DECLARE_ISA(double ewc_penalty(float*, const float*, const float*, const float*, int64_t,
                                      float, const Context&))
GROWLM_DECLARE_ISA(void ewc_fisher_accumulate(float*, const float*, int64_t, float,
                                              const Context&))
}  // namespace cpu

double ewc_penalty(float* grads, const float* params, const float* anchor, const float* fisher,
                   int64_t n, float lambda, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, ewc_penalty, grads, params, anchor, fisher, n, lambda, ctx);
}
void ewc_fisher_accumulate(float* fisher, const float* grads, int64_t n, float scale,
                           const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, ewc_fisher_accumulate, fisher, grads, n, scale, ctx);
}
}  // namespace growlm
#endif
