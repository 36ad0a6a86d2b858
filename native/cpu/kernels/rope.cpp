// Rotary position embedding (growlm/rope.h) in Hugging Face's LLaMA convention
// (rotate_half): the pair (x[i], x[i + D/2]) of every head is rotated by angle
// positions[b,t] · inv_freq[i]. x is [B, T, H, D], positions int32 [B, T].
// inv_freq and the angles are fp32 values computed as HF computes them
// (1 / fp32(theta ** fp32(2i / D)), fp32(pos · inv_freq)); cos and sin of each fp32 angle
// are evaluated in double (vectorised fdlibm: Cody-Waite reduction by pi/2 in three parts,
// degree 13/14 polynomials; libm beyond 2^20·pi/2) and rounded to fp32, which makes them
// correctly rounded but for rare near-ties. cos/sin are computed once per distinct
// position (a table when the positions are few, else once per (b, t) row) and applied to
// all H heads. Checked against float64 references and a fixture of HF's formulas in
// test/kernels/rope.test.ts.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "growlm/rope.h"
#include "growlm/threads.h"
#include "isa.h"

#if defined(GROWLM_ISA_avx512) || defined(GROWLM_ISA_avx2)
#include <immintrin.h>
#endif

namespace growlm::cpu::GROWLM_ISA_NS {

namespace {

typedef float vf __attribute__((vector_size(GROWLM_VLEN * 4)));

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }

constexpr int LANES = GROWLM_VLEN / 2;  // doubles per vector
typedef float vhalf __attribute__((vector_size(LANES * 4)));
typedef double vd __attribute__((vector_size(LANES * 8)));
typedef int64_t vl __attribute__((vector_size(LANES * 8)));

// LANES floats widened to doubles with the one-instruction conversion where GCC would split it.
inline vd widen(const float* p) {
#if defined(GROWLM_ISA_avx512)
  return (vd)_mm512_maskz_cvtps_pd(0xff, _mm256_loadu_ps(p));
#elif defined(GROWLM_ISA_avx2)
  return (vd)_mm256_cvtps_pd(_mm_loadu_ps(p));
#else
  vhalf v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, vd);
#endif
}

// Largest angle reduced in vector code: n·(33-bit part of pi/2) is exact for n < 2^20.
constexpr double REDUCE_LIMIT = 1647099.0;  // < 2^20 · pi/2

// sin and cos of LANES angles in [0, REDUCE_LIMIT) (fdlibm's __kernel_sin/__kernel_cos after
// x = n·pi/2 + r, |r| <= pi/4 + tiny).
inline void sincos_vec(vd x, vd& sin_out, vd& cos_out) {
  const vd magic = vd{} + 6755399441055744.0;  // 1.5·2^52: rounds to an integer in the low bits
  const vd t = x * 6.36619772367581382433e-01 + magic;
  const vd n = t - magic;
  const vl q = (vl)t & 3;
  vd r = x - n * 1.57079632673412561417e+00;  // exact: 33-bit head of pi/2
  r = r - n * 6.07710050630396597660e-11;
  r = r - n * 2.02226624871116645580e-21;
  const vd z = r * r;
  const vd sr = 8.33333333332248946124e-03 +
                z * (-1.98412698298579493134e-04 +
                     z * (2.75573137070700676789e-06 +
                          z * (-2.50507602534068634195e-08 + z * 1.58969099521155010221e-10)));
  const vd s = r + (z * r) * (-1.66666666666666324348e-01 + z * sr);
  const vd cr = z * (4.16666666666666019037e-02 +
                     z * (-1.38888888888741095749e-03 +
                          z * (2.48015872894767294178e-05 +
                               z * (-2.75573143513906633035e-07 +
                                    z * (2.08757232129817482790e-09 +
                                         z * -1.13596475577881948265e-11)))));
  const vd c = 1.0 - (0.5 * z - z * cr);
  // Quadrant q: sin = s, c, -s, -c and cos = c, -s, -c, s.
  const vl swap = (q & 1) != 0;
  const vd sv = swap ? c : s, cv = swap ? s : c;
  sin_out = (q & 2) != 0 ? -sv : sv;
  cos_out = ((q + 1) & 2) != 0 ? -cv : cv;
}

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
// angles: scratch of half rounded up to LANES floats.
void cos_sin(float* cs, float* angles, int32_t pos, const float* inv, int64_t half, float sign) {
  const float p = static_cast<float>(pos);
  const int64_t padded = (half + LANES - 1) / LANES * LANES;
  for (int64_t i = 0; i < half; ++i) angles[i] = p * inv[i];  // fp32 products, as HF
  for (int64_t i = half; i < padded; ++i) angles[i] = 0.0f;
  for (int64_t i = 0; i < padded; i += LANES) {
    const vd a = widen(angles + i);
    vd sn, cn;
    sincos_vec(a, sn, cn);
    for (int k = 0; k < LANES && i + k < half; ++k) {
      double sk = sn[k], ck = cn[k];
      if (!(a[k] < REDUCE_LIMIT)) {
        sk = std::sin(a[k]);
        ck = std::cos(a[k]);
      }
      cs[i + k] = static_cast<float>(ck);
      cs[half + i + k] = sign * static_cast<float>(sk);
    }
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
    parallel_for(ctx, distinct, std::max<int64_t>(1, 8192 / half), [&](int64_t lo, int64_t hi) {
      std::vector<float> angles(half + LANES);
      for (int64_t p = lo; p < hi; ++p) {
        cos_sin(table.data() + p * D, angles.data(), static_cast<int32_t>(p), inv.data(), half, sign);
      }
    });
  }
  parallel_for(ctx, rows, std::max<int64_t>(1, 65536 / (H * D)), [&](int64_t lo, int64_t hi) {
    std::vector<float> scratch(table.empty() ? D + half + LANES : 0);
    for (int64_t r = lo; r < hi; ++r) {
      const float* cs;
      if (table.empty()) {
        cos_sin(scratch.data(), scratch.data() + D, positions[r], inv.data(), half, sign);
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
