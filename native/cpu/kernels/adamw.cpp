// Fused AdamW step, global gradient norm and clipping (growlm/adamw.h) over flat fp32
// buffers. AdamW is one streaming pass (read p, g, m, v; write p, m, v and optionally the
// bf16 copy), a plain loop the compiler vectorises for each ISA, rounding exactly where
// torch's float32 op sequence rounds: every path is bitwise equal to a Math.fround
// emulation of torch (and close to a float64 AdamW) in test/kernels/adamw.test.ts.
// The gradient norm sums exact double squares in 32 fixed lanes per block and a fixed
// reduction tree, so it is bitwise the same for every thread count and every ISA.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "bf16.h"
#include "growlm/adamw.h"
#include "growlm/threads.h"
#include "isa.h"

namespace growlm::cpu::GROWLM_ISA_NS {

namespace {

constexpr int64_t GRAIN = 1 << 16;  // elements per task (1.8 MiB of state): amortises a wake-up

// One contiguous piece of one segment. `decay` is 1 outside decaying segments (exact).
// Contraction is off: torch rounds every op (p·decay, v·β2, (1-β2)·g·g are separate
// kernels or separate vector ops) except lerp, where ATen calls fmadd explicitly, which
// the FMA code paths reproduce with fmaf (the portable path rounds twice, as ATen's
// SSE2 build does).
template <bool FromM, bool Bf16>
__attribute__((optimize("fp-contract=off"))) void update(
    float* __restrict p, float* __restrict m, float* __restrict v, uint16_t* __restrict pb,
    const float* __restrict g, int64_t n, float decay, const AdamWScalars& s) {
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] * s.grad_scale;
    const float mi0 = m[i];
#if defined(__FMA__)
    const float mi = __builtin_fmaf(s.coeff, gi - mi0, FromM ? mi0 : gi);
#else
    const float mi = s.coeff * (gi - mi0) + (FromM ? mi0 : gi);
#endif
    const float vi = v[i] * s.beta2 + s.one_m_b2 * gi * gi;
    const float denom = std::sqrt(vi) / s.bc2_sqrt + s.eps;
    const float pi = p[i] * decay + s.neg_step * mi / denom;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi;
    if (Bf16) pb[i] = f32_to_bf16_bits(pi);
  }
}

template <bool FromM>
void update_piece(float* p, float* m, float* v, uint16_t* pb, const float* g, int64_t n,
                  float decay, const AdamWScalars& s) {
  if (pb) {
    update<FromM, true>(p, m, v, pb, g, n, decay, s);
  } else {
    update<FromM, false>(p, m, v, pb, g, n, decay, s);
  }
}

// Canonical sum of squares of x[0..n): element i goes to lane i % LANES (exact double
// squares, so FMA or not gives the same bits), lanes fold in a fixed tree.
constexpr int LANES = 32;
typedef double Vd8 __attribute__((vector_size(64)));
typedef float Vf8 __attribute__((vector_size(32)));

double sum_squares(const float* x, int64_t n) {
  Vd8 acc[LANES / 8] = {};
  int64_t i = 0;
  for (; i + LANES <= n; i += LANES) {
    for (int k = 0; k < LANES / 8; ++k) {
      Vf8 f;
      std::memcpy(&f, x + i + 8 * k, sizeof f);
      const Vd8 d = __builtin_convertvector(f, Vd8);
      acc[k] += d * d;
    }
  }
  double lanes[LANES];
  std::memcpy(lanes, acc, sizeof lanes);
  for (int j = 0; i < n; ++i, ++j) {
    const double d = x[i];
    lanes[j] += d * d;
  }
  for (int w = LANES / 2; w >= 1; w /= 2) {
    for (int j = 0; j < w; ++j) lanes[j] += lanes[j + w];
  }
  return lanes[0];
}

}  // namespace

void adamw_step(float* params, float* m, float* v, uint16_t* params_bf16, const float* grads,
                int64_t n, const int64_t* seg_begin, const uint8_t* seg_decay, int64_t n_segments,
                const AdamWHyper& hyper, const Context& ctx) {
  const AdamWScalars s = adamw_scalars(hyper);
  parallel_for(ctx, n, GRAIN, [&](int64_t lo, int64_t hi) {
    // The segment holding lo: the last one whose begin is <= lo (skips empty segments).
    int64_t seg = std::upper_bound(seg_begin, seg_begin + n_segments + 1, lo) - seg_begin - 1;
    for (int64_t i = lo; i < hi; ++seg) {
      const int64_t end = std::min(hi, seg_begin[seg + 1]);
      const float decay = seg_decay[seg] ? s.decay : 1.0f;
      uint16_t* pb = params_bf16 ? params_bf16 + i : nullptr;
      if (s.from_m) {
        update_piece<true>(params + i, m + i, v + i, pb, grads + i, end - i, decay, s);
      } else {
        update_piece<false>(params + i, m + i, v + i, pb, grads + i, end - i, decay, s);
      }
      i = end;
    }
  });
}

double global_grad_norm(const float* grads, int64_t n, const Context& ctx) {
  const int64_t blocks = (n + GRAIN - 1) / GRAIN;
  std::vector<double> partial(static_cast<size_t>(blocks));
  parallel_for(ctx, n, GRAIN, [&](int64_t lo, int64_t hi) {
    partial[static_cast<size_t>(lo / GRAIN)] = sum_squares(grads + lo, hi - lo);
  });
  double total = 0;
  for (const double b : partial) total += b;
  return std::sqrt(total);
}

double clip_grad_norm(float* grads, int64_t n, double max_norm, const Context& ctx) {
  const double norm = GROWLM_ISA_NS::global_grad_norm(grads, n, ctx);
  const double coef = max_norm / (norm + 1e-6);
  // torch multiplies by clamp(coef, max=1): a NaN norm makes every gradient NaN, as there.
  if (!(coef >= 1.0)) {
    const float c = static_cast<float>(coef);
    parallel_for(ctx, n, GRAIN, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) grads[i] *= c;
    });
  }
  return norm;
}

}  // namespace growlm::cpu::GROWLM_ISA_NS

#if defined(GROWLM_ISA_portable)
namespace growlm {
namespace cpu {
GROWLM_DECLARE_ISA(void adamw_step(float*, float*, float*, uint16_t*, const float*, int64_t,
                                   const int64_t*, const uint8_t*, int64_t, const AdamWHyper&,
                                   const Context&))
GROWLM_DECLARE_ISA(double global_grad_norm(const float*, int64_t, const Context&))
GROWLM_DECLARE_ISA(double clip_grad_norm(float*, int64_t, double, const Context&))
}  // namespace cpu

void adamw_step(float* params, float* m, float* v, uint16_t* params_bf16, const float* grads,
                int64_t n, const int64_t* seg_begin, const uint8_t* seg_decay, int64_t n_segments,
                const AdamWHyper& hyper, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, adamw_step, params, m, v, params_bf16, grads, n, seg_begin, seg_decay,
                  n_segments, hyper, ctx);
}
double global_grad_norm(const float* grads, int64_t n, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, global_grad_norm, grads, n, ctx);
}
double clip_grad_norm(float* grads, int64_t n, double max_norm, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, clip_grad_norm, grads, n, max_norm, ctx);
}
}  // namespace growlm
#endif
