// Fused softmax cross-entropy (growlm/xent.h). logits [N, V] row-major, targets int32 [N].
// Forward: one pass over each row with an online logsumexp in blocks of BV vectors (the
// block's max first, read again from L1 for the exponentials), so a 128 KiB vocabulary row
// streams from memory once. Backward: one pass writing dloss · (exp(x - lse) - onehot),
// safe in place. Rows are independent, so any thread count gives the same bits.
// Checked against float64 logsumexp / softmax and finite differences in
// test/kernels/xent.test.ts. The exponentials are vmath.h's vexp (within 1 ulp).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "growlm/threads.h"
#include "growlm/xent.h"
#include "isa.h"
#include "vmath.h"

namespace growlm::cpu::GROWLM_ISA_NS {

namespace {

constexpr int W = GROWLM_VLEN;
typedef double Vd __attribute__((vector_size(W * 8)));
// Vd is wider than a register below AVX-512: passed by reference, never returned.
inline void add_widened(Vd& s, vf v) { s += __builtin_convertvector(v, Vd); }

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }

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
  vf mx = at(0);
  for (int64_t k = 1; k < nv; ++k) mx = vmax(mx, at(k));
  float bm = mx[0];
  for (int j = 1; j < W; ++j) bm = mx[j] > bm ? mx[j] : bm;
  if (bm > st.M) {
    st.S = st.S * std::exp(static_cast<double>(st.ref()) - static_cast<double>(bm));
    st.M = bm;
  }
  const vf ref = splat(st.ref());
  vf a0 = vf{}, a1 = vf{}, a2 = vf{}, a3 = vf{};
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
  for (int j = 0; j < W; ++j) s += st.S[j];
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
      const vf l = splat(lse[n]);
      const vf g = splat(dloss);
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
      d[t] = dloss * (vexp(splat(xt) - l)[0] - 1.0f);
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
