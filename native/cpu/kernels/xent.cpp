// Fused softmax cross-entropy (growlm/xent.h). logits [N, V] row-major, targets int32 [N].
// Forward: one pass over each row with an online logsumexp in blocks of BV vectors (the
// block's max first, read again from L1 for the exponentials), so a 128 KiB vocabulary row
// streams from memory once. Backward: one pass writing dloss · (exp(x - lse) - onehot),
// safe in place. Rows are independent, so any thread count gives the same bits.
// Checked against float64 logsumexp / softmax and finite differences in
// test/kernels/xent.test.ts; the vector exp is checked there against Math.exp in ulps.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "growlm/threads.h"
#include "growlm/xent.h"
#include "isa.h"

#if defined(GROWLM_ISA_avx2) || defined(GROWLM_ISA_avx512)
#include <immintrin.h>
#endif

namespace growlm::cpu::GROWLM_ISA_NS {

namespace {

#if defined(GROWLM_ISA_portable)
// The portable path stays plain C++ with std::exp, one float per "vector".
constexpr int W = 1;
using Vf = float;
using Vd = double;
inline float lane(Vf v, int) { return v; }
inline double lane(const Vd& v, int) { return v; }
inline void add_widened(Vd& s, Vf v) { s += v; }
inline Vf vexp(Vf x) { return std::exp(x); }
inline Vf vmax(Vf a, Vf b) { return a > b ? a : b; }
#else
constexpr int W = GROWLM_VLEN;
typedef float Vf __attribute__((vector_size(W * 4)));
typedef int32_t Vi __attribute__((vector_size(W * 4)));
typedef double Vd __attribute__((vector_size(W * 8)));
inline float lane(Vf v, int j) { return v[j]; }
// Vd is wider than a register with AVX2: passed by reference, never returned.
inline double lane(const Vd& v, int j) { return v[j]; }
inline void add_widened(Vd& s, Vf v) { s += __builtin_convertvector(v, Vd); }

// vmax(a, b) = a > b ? a : b (the second operand when either is NaN), one instruction.
// u·2^q for integral q in [-150, 129], rounded once (subnormal results and overflow to inf
// come out right). AVX-512's zero-masked forms compile to the plain instructions; the
// unmasked intrinsics trip GCC 12's -Wmaybe-uninitialized on an undefined operand.
#if defined(GROWLM_ISA_avx512)
inline Vf vmax(Vf a, Vf b) { return (Vf)_mm512_maskz_max_ps(0xFFFF, (__m512)a, (__m512)b); }
inline Vf vmin(Vf a, Vf b) { return (Vf)_mm512_maskz_min_ps(0xFFFF, (__m512)a, (__m512)b); }
inline Vf scale2(Vf u, Vf q) { return (Vf)_mm512_maskz_scalef_ps(0xFFFF, (__m512)u, (__m512)q); }
#else
inline Vf vmax(Vf a, Vf b) { return (Vf)_mm256_max_ps((__m256)a, (__m256)b); }
inline Vf vmin(Vf a, Vf b) { return (Vf)_mm256_min_ps((__m256)a, (__m256)b); }
inline Vf from_bits(Vi i) {
  Vf f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}
// 2^q as two normal factors, so the product rounds once, like vscalefps.
inline Vf scale2(Vf u, Vf q) {
  const Vi qi = __builtin_convertvector(q, Vi);
  const Vi h = qi >> 1;
  return u * from_bits((h + 127) << 23) * from_bits((qi - h + 127) << 23);
}
#endif

// expf to within 1 ulp over the whole float range (SLEEF's xexpf reduction and polynomial):
// exp(x) = 2^q · exp(s), q = rint(x / ln 2), s = x - q·ln 2 in two parts. NaN propagates
// (vmax/vmin return it as their second operand).
inline Vf vexp(Vf x) {
  x = vmax(Vf{} - 104.0f, x);  // exp(-104) rounds to 0; keeps q in range
  x = vmin(Vf{} + 89.0f, x);   // exp(89) overflows to inf
  const float magic = 12582912.0f;  // 1.5·2^23: adding it rounds to an integer
  const Vf q = (x * 1.442695040888963407f + magic) - magic;
  Vf s = x - q * 0.693145751953125f;
  s = s - q * 1.428606765330187045e-06f;
  Vf u = Vf{} + 0.000198527617612853646278381f;
  u = u * s + 0.00139304355252534151077271f;
  u = u * s + 0.00833336077630519866943359f;
  u = u * s + 0.0416664853692054748535156f;
  u = u * s + 0.166666671633720397949219f;
  u = u * s + 0.5f;
  u = 1.0f + ((s * s) * u + s);
  return scale2(u, q);
}
#endif

inline Vf load(const float* p) {
  Vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, Vf v) { std::memcpy(p, &v, sizeof v); }
inline Vf splat(float x) { return Vf{} + x; }

constexpr int64_t BV = 16;  // vectors per block: one block (1 KiB with AVX-512) stays in L1

// Online logsumexp state of one row: running max M (scalar, shared by all lanes) and per-
// lane sums S of exp(x - ref(M)) in double, ref(M) = M, or 0 while every value seen is -inf
// (so those contribute exp(-inf) = 0 instead of NaN).
struct Lse {
  float M = -INFINITY;
  Vd S = Vd{};
  float ref() const { return M == -INFINITY ? 0.0f : M; }
};

// Adds vectors at(0..nv) to the state: their max first, then their exponentials into four
// independent accumulators.
template <class At>
inline void lse_block(Lse& st, int64_t nv, At&& at) {
  Vf mx = at(0);
  for (int64_t k = 1; k < nv; ++k) mx = vmax(mx, at(k));
  float bm = lane(mx, 0);
  for (int j = 1; j < W; ++j) bm = lane(mx, j) > bm ? lane(mx, j) : bm;
  if (bm > st.M) {
    st.S = st.S * std::exp(static_cast<double>(st.ref()) - static_cast<double>(bm));
    st.M = bm;
  }
  const Vf ref = splat(st.ref());
  Vf a0 = Vf{}, a1 = Vf{}, a2 = Vf{}, a3 = Vf{};
  int64_t k = 0;
  for (; k + 4 <= nv; k += 4) {
    a0 += vexp(at(k) - ref);
    a1 += vexp(at(k + 1) - ref);
    a2 += vexp(at(k + 2) - ref);
    a3 += vexp(at(k + 3) - ref);
  }
  if (k < nv) a0 += vexp(at(k) - ref);
  if (k + 1 < nv) a1 += vexp(at(k + 1) - ref);
  if (k + 2 < nv) a2 += vexp(at(k + 2) - ref);
  add_widened(st.S, (a0 + a1) + (a2 + a3));
}

// logsumexp(x[0..V)) in double.
double row_logsumexp(const float* x, int64_t V) {
  Lse st;
  const int64_t nfull = V / W;
  const int64_t rem = V - nfull * W;
  const int64_t main_blocks = nfull / BV;
  for (int64_t b = 0; b < main_blocks; ++b) {
    const float* xb = x + b * BV * W;
    lse_block(st, BV, [xb](int64_t k) { return load(xb + k * W); });
  }
  // The rest: fewer than BV full vectors and a partial one padded with -inf.
  const int64_t v0 = main_blocks * BV;
  const int64_t nv = nfull - v0 + (rem > 0 ? 1 : 0);
  if (nv > 0) {
    float tail[W];
    for (int j = 0; j < W; ++j) tail[j] = j < rem ? x[nfull * W + j] : -INFINITY;
    lse_block(st, nv, [&](int64_t k) { return v0 + k < nfull ? load(x + (v0 + k) * W) : load(tail); });
  }
  double s = 0;
  for (int j = 0; j < W; ++j) s += lane(st.S, j);
  return static_cast<double>(st.ref()) + std::log(s);
}

// Rows per parallel task: about 32 Ki logits, so short rows do not pay a task each.
int64_t row_grain(int64_t V) { return std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(V, 1)); }

}  // namespace

CrossEntropyResult cross_entropy_forward(float* losses, float* lse, const float* logits,
                                         const int32_t* targets, int64_t N, int64_t V,
                                         int32_t ignore_index, const Context& ctx) {
  std::vector<double> row_loss(static_cast<size_t>(N));
  parallel_for(ctx, N, row_grain(V), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) {
      const int32_t t = targets[n];
      double loss = 0;
      if (t == ignore_index) {
        lse[n] = 0;
      } else {
        const float* x = logits + n * V;
        const double l = row_logsumexp(x, V);
        lse[n] = static_cast<float>(l);
        loss = l - static_cast<double>(x[t]);
      }
      row_loss[n] = loss;
      if (losses) losses[n] = static_cast<float>(loss);
    }
  });
  CrossEntropyResult result;
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] == ignore_index) continue;
    result.loss_sum += row_loss[n];
    ++result.count;
  }
  return result;
}

void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                            const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index,
                            float dloss, const Context& ctx) {
  parallel_for(ctx, N, row_grain(V), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) {
      const float* x = logits + n * V;
      float* d = dlogits + n * V;
      const int32_t t = targets[n];
      if (t == ignore_index) {
        std::memset(d, 0, static_cast<size_t>(V) * sizeof(float));
        continue;
      }
      // Read before the row is overwritten when d aliases x.
      const float xt = x[t];
      const Vf l = splat(lse[n]);
      const Vf g = splat(dloss);
      const int64_t nfull = V / W;
      for (int64_t j = 0; j < nfull; ++j) store(d + j * W, g * vexp(load(x + j * W) - l));
      const int64_t rem = V - nfull * W;
      if (rem > 0) {
        float tail[W] = {};
        std::memcpy(tail, x + nfull * W, static_cast<size_t>(rem) * sizeof(float));
        store(tail, g * vexp(load(tail) - l));
        std::memcpy(d + nfull * W, tail, static_cast<size_t>(rem) * sizeof(float));
      }
      // The same exp as the loop computed for this lane, minus the one-hot.
      d[t] = dloss * (lane(vexp(splat(xt) - l), 0) - 1.0f);
    }
  });
}

}  // namespace growlm::cpu::GROWLM_ISA_NS

#if defined(GROWLM_ISA_portable)
namespace growlm {
namespace cpu {
GROWLM_DECLARE_ISA(CrossEntropyResult cross_entropy_forward(float*, float*, const float*,
                                                            const int32_t*, int64_t, int64_t,
                                                            int32_t, const Context&))
GROWLM_DECLARE_ISA(void cross_entropy_backward(float*, const float*, const float*, const int32_t*,
                                               int64_t, int64_t, int32_t, float, const Context&))
}  // namespace cpu

CrossEntropyResult cross_entropy_forward(float* losses, float* lse, const float* logits,
                                         const int32_t* targets, int64_t N, int64_t V,
                                         int32_t ignore_index, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, cross_entropy_forward, losses, lse, logits, targets, N, V, ignore_index, ctx);
}

void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                            const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index,
                            float dloss, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, cross_entropy_backward, dlogits, logits, lse, targets, N, V, ignore_index,
                  dloss, ctx);
}
}  // namespace growlm
#endif
