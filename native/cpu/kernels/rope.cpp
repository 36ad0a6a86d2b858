// Rotary position embedding (growlm/rope.h) in Hugging Face's LLaMA convention
// (rotate_half): the pair (x[i], x[i + D/2]) of every head is rotated by angle
// positions[b,t] · inv_freq[i]. x is [B, T, H, D], positions int32 [B, T].
// inv_freq and the angles are fp32 values computed as HF computes them
// (1 / fp32(theta ** fp32(2i / D)), fp32(pos · inv_freq)); cos and sin of each fp32 angle
// are evaluated in double and rounded, i.e. correctly rounded fp32 values. cos/sin are
// computed once per distinct position (a table when the positions are few, else once per
// (b, t) row) and applied to all H heads. Checked against float64 references and a
// fixture of HF's formulas in test/kernels/rope.test.ts.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "growlm/rope.h"
#include "growlm/threads.h"
#include "isa.h"

namespace growlm::cpu::GROWLM_ISA_NS {

namespace {

typedef float vf __attribute__((vector_size(GROWLM_VLEN * 4)));

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }

// HF: inv_freq = 1.0 / (base ** (torch.arange(0, D, 2).float() / D)), every step in fp32.
std::vector<float> inverse_frequencies(int64_t D, float theta) {
  std::vector<float> inv(D / 2);
  for (int64_t i = 0; i < D / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(D);
    const float power = static_cast<float>(std::pow(static_cast<double>(theta), exponent));
    inv[i] = 1.0f / power;
  }
  return inv;
}

// cs[0, half) = cos, cs[half, D) = sign · sin of the fp32 angles pos · inv[i].
void cos_sin(float* cs, int32_t pos, const float* inv, int64_t half, float sign) {
  const float p = static_cast<float>(pos);
  for (int64_t i = 0; i < half; ++i) {
    const double angle = p * inv[i];  // fp32 product, widened exactly
    cs[i] = static_cast<float>(std::cos(angle));
    cs[half + i] = sign * static_cast<float>(std::sin(angle));
  }
}

// out = x rotated by the angles whose cos/sin are in cs, for H heads of D values.
// Both halves are loaded before either is stored, so out may be x.
void rotate_row(float* out, const float* x, const float* cs, int64_t H, int64_t D) {
  const int64_t half = D / 2;
  const float* c = cs;
  const float* s = cs + half;
  for (int64_t h = 0; h < H; ++h) {
    const float* x1 = x + h * D;
    const float* x2 = x1 + half;
    float* o1 = out + h * D;
    float* o2 = o1 + half;
    int64_t i = 0;
    for (; i + GROWLM_VLEN <= half; i += GROWLM_VLEN) {
      const vf a = load(x1 + i), b = load(x2 + i), cv = load(c + i), sv = load(s + i);
      store(o1 + i, a * cv - b * sv);
      store(o2 + i, b * cv + a * sv);
    }
    for (; i < half; ++i) {
      const float a = x1[i], b = x2[i];
      o1[i] = a * c[i] - b * s[i];
      o2[i] = b * c[i] + a * s[i];
    }
  }
}

// sign = +1 rotates by +angle (forward), -1 by -angle (backward: the transpose).
void rope(float* out, const float* inp, const int32_t* positions, int64_t B, int64_t T,
          int64_t H, int64_t D, float theta, float sign, const Context& ctx) {
  const int64_t rows = B * T;
  if (rows <= 0 || H <= 0 || D <= 0) return;
  const int64_t half = D / 2;
  const std::vector<float> inv = inverse_frequencies(D, theta);
  int32_t max_pos = 0;
  for (int64_t r = 0; r < rows; ++r) max_pos = std::max(max_pos, positions[r]);
  // A table over [0, max_pos] costs no more cos/sin than one set per row when the
  // positions repeat (every batch row at 0..T-1): then each value is computed once.
  const int64_t distinct = static_cast<int64_t>(max_pos) + 1;
  std::vector<float> table;
  if (distinct < rows) {
    table.resize(distinct * D);
    parallel_for(ctx, distinct, std::max<int64_t>(1, 1024 / half), [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        cos_sin(table.data() + p * D, static_cast<int32_t>(p), inv.data(), half, sign);
      }
    });
  }
  parallel_for(ctx, rows, std::max<int64_t>(1, 65536 / (H * D)), [&](int64_t lo, int64_t hi) {
    std::vector<float> scratch(table.empty() ? D : 0);
    for (int64_t r = lo; r < hi; ++r) {
      const float* cs;
      if (table.empty()) {
        cos_sin(scratch.data(), positions[r], inv.data(), half, sign);
        cs = scratch.data();
      } else {
        cs = table.data() + static_cast<int64_t>(positions[r]) * D;
      }
      rotate_row(out + r * H * D, inp + r * H * D, cs, H, D);
    }
  });
}

}  // namespace

void rope_forward(float* out, const float* inp, const int32_t* positions, int64_t B, int64_t T,
                  int64_t H, int64_t D, float theta, const Context& ctx) {
  rope(out, inp, positions, B, T, H, D, theta, 1.0f, ctx);
}

void rope_backward(float* dinp, const float* dout, const int32_t* positions, int64_t B,
                   int64_t T, int64_t H, int64_t D, float theta, const Context& ctx) {
  rope(dinp, dout, positions, B, T, H, D, theta, -1.0f, ctx);
}

}  // namespace growlm::cpu::GROWLM_ISA_NS

#if defined(GROWLM_ISA_portable)
namespace growlm {
namespace cpu {
GROWLM_DECLARE_ISA(void rope_forward(float*, const float*, const int32_t*, int64_t, int64_t,
                                     int64_t, int64_t, float, const Context&))
GROWLM_DECLARE_ISA(void rope_backward(float*, const float*, const int32_t*, int64_t, int64_t,
                                      int64_t, int64_t, float, const Context&))
}  // namespace cpu

void rope_forward(float* out, const float* inp, const int32_t* positions, int64_t B, int64_t T,
                  int64_t H, int64_t D, float theta, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, rope_forward, out, inp, positions, B, T, H, D, theta, ctx);
}
void rope_backward(float* dinp, const float* dout, const int32_t* positions, int64_t B,
                   int64_t T, int64_t H, int64_t D, float theta, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, rope_backward, dinp, dout, positions, B, T, H, D, theta, ctx);
}
}  // namespace growlm
#endif
