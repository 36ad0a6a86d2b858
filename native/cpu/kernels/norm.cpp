// RMSNorm (growlm/norm.h), Hugging Face's LlamaRMSNorm in fp32:
//   rstd[n] = 1 / sqrt(fp32(mean_c inp[n,c]²) + eps),  out[n,c] = (inp[n,c] · rstd[n]) · weight[c]
// Rows of C contiguous floats. The row sums (sum of squares; Σ dout·weight·inp in the
// backward) are accumulated in double over vector lanes: each fp32 square is exact in
// double, so the mean is correctly rounded to fp32 except in vanishingly rare ties, and
// rstd is then computed with fp32 operations as PyTorch does (add eps, sqrt, divide).
// dweight's reduction over rows uses fixed blocks of ROWS rows: an fp32 partial sum per
// block (at most ROWS - 1 additions), then the partials added in double in block order.
// Neither depends on the thread count. Checked against float64 references and finite
// differences in test/kernels/norm.test.ts; the FiLM-fused variant (FiLM-Ensemble's
// per-member affine after the norm) in test/kernels/norm-film.test.ts.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "growlm/norm.h"
#include "growlm/threads.h"
#include "isa.h"

#if defined(GROWLM_ISA_avx512) || defined(GROWLM_ISA_avx2)
#include <immintrin.h>
#endif

namespace growlm::cpu::GROWLM_ISA_NS {

namespace {

constexpr int H = GROWLM_VLEN / 2;  // doubles per vector
typedef float vhalf __attribute__((vector_size(H * 4)));
typedef double vdouble __attribute__((vector_size(H * 8)));

// H floats widened to doubles. GCC splits __builtin_convertvector of 8 floats into
// 128-bit pieces, so the x86 paths name the one-instruction conversion (AVX-512 in its
// zero-masked form: GCC 12's plain _mm512_cvtps_pd warns about an undefined operand).
inline vdouble widen(const float* p) {
#if defined(GROWLM_ISA_avx512)
  return (vdouble)_mm512_maskz_cvtps_pd(0xff, _mm256_loadu_ps(p));
#elif defined(GROWLM_ISA_avx2)
  return (vdouble)_mm256_cvtps_pd(_mm_loadu_ps(p));
#else
  vhalf v;
  std::memcpy(&v, p, sizeof v);
  return __builtin_convertvector(v, vdouble);
#endif
}

inline double lanes_sum(vdouble a) {
  double s = 0;
  for (int i = 0; i < H; ++i) s += a[i];
  return s;
}

// Σ x[c]² in double: four independent vector accumulators hide the add latency.
double sum_squares(const float* x, int64_t C) {
  vdouble a0 = {}, a1 = {}, a2 = {}, a3 = {};
  int64_t c = 0;
  for (; c + 4 * H <= C; c += 4 * H) {
    const vdouble x0 = widen(x + c), x1 = widen(x + c + H), x2 = widen(x + c + 2 * H),
                  x3 = widen(x + c + 3 * H);
    a0 += x0 * x0;
    a1 += x1 * x1;
    a2 += x2 * x2;
    a3 += x3 * x3;
  }
  for (; c + H <= C; c += H) {
    const vdouble x0 = widen(x + c);
    a0 += x0 * x0;
  }
  double s = lanes_sum((a0 + a1) + (a2 + a3));
  for (; c < C; ++c) s += static_cast<double>(x[c]) * x[c];
  return s;
}

// Σ g[c]·w[c]·x[c] in double (exact products of three fp32 values up to one rounding).
double sum_products(const float* g, const float* w, const float* x, int64_t C) {
  vdouble a0 = {}, a1 = {};
  int64_t c = 0;
  for (; c + 2 * H <= C; c += 2 * H) {
    a0 += widen(g + c) * widen(w + c) * widen(x + c);
    a1 += widen(g + c + H) * widen(w + c + H) * widen(x + c + H);
  }
  for (; c + H <= C; c += H) a0 += widen(g + c) * widen(w + c) * widen(x + c);
  double s = lanes_sum(a0 + a1);
  for (; c < C; ++c) s += static_cast<double>(g[c]) * w[c] * x[c];
  return s;
}

// Rows per forward task: about 32K elements amortise a wake-up.
int64_t forward_grain(int64_t C) { return std::max<int64_t>(1, 32768 / C); }

// Rows per dweight block: few enough for an accurate fp32 partial sum, enough that the
// partials are 1/32 of dout's bytes. A task takes whole blocks, about 16K elements.
constexpr int64_t ROWS = 32;
// Columns per task of the weight-gradient reductions.
constexpr int64_t COLS = 512;
int64_t blocks_per_task(int64_t C) { return std::max<int64_t>(1, 16384 / (ROWS * C)); }

// One row of the RMSNorm backward: dx = r·(w·g) − k·x with k = r³·Σ(g·w·x)/C, and the row's
// share g·(x·r) of dweight added into acc.
void row_backward(float* dx, float* acc, const float* g, const float* x, const float* weight, float r, int64_t C) {
  const double rd = r;
  const float k = static_cast<float>(rd * rd * rd * sum_products(g, weight, x, C) / static_cast<double>(C));
  for (int64_t c = 0; c < C; ++c) {
    dx[c] = r * (weight[c] * g[c]) - k * x[c];
    acc[c] += g[c] * (x[c] * r);
  }
}

// dweight += the sum of the row blocks' partials [blocks][C], in block order and in double:
// column chunks own their dweight entries, so any thread count gives the same bits.
void add_block_partials(float* dweight, const float* partial, int64_t blocks, int64_t C, const Context& ctx) {
  parallel_for(ctx, C, std::max<int64_t>(COLS, 65536 / blocks / COLS * COLS), [&](int64_t lo, int64_t hi) {
    for (int64_t c0 = lo; c0 < hi; c0 += COLS) {
      const int64_t c1 = std::min(hi, c0 + COLS);
      double sum[COLS] = {};
      for (int64_t b = 0; b < blocks; ++b) {
        const float* p = partial + b * C;
        for (int64_t c = c0; c < c1; ++c) sum[c - c0] += p[c];
      }
      for (int64_t c = c0; c < c1; ++c) dweight[c] = static_cast<float>(static_cast<double>(dweight[c]) + sum[c - c0]);
    }
  });
}

}  // namespace

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N,
                     int64_t C, float eps, const Context& ctx) {
  parallel_for(ctx, N, forward_grain(C), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) {
      const float* x = inp + n * C;
      float* y = out + n * C;
      const float mean = static_cast<float>(sum_squares(x, C) / static_cast<double>(C));
      const float r = 1.0f / std::sqrt(mean + eps);
      rstd[n] = r;
      for (int64_t c = 0; c < C; ++c) y[c] = (x[c] * r) * weight[c];
    }
  });
}

// dinp[c] = r·w[c]·dout[c] - (r³/C)·inp[c]·Σ_k dout[k]·w[k]·inp[k]
// dweight[c] += Σ_n dout[n,c]·(inp[n,c]·r[n])
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                      const float* weight, const float* rstd, int64_t N, int64_t C,
                      const Context& ctx) {
  if (N <= 0) return;
  const int64_t blocks = (N + ROWS - 1) / ROWS;
  std::unique_ptr<float[]> partial(new float[blocks * C]);
  parallel_for(ctx, blocks, blocks_per_task(C), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      float* acc = partial.get() + b * C;
      std::fill(acc, acc + C, 0.0f);
      for (int64_t n = b * ROWS; n < std::min(N, (b + 1) * ROWS); ++n) {
        const float* x = inp + n * C;
        const float* g = dout + n * C;
        float* dx = dinp + n * C;
        row_backward(dx, acc, g, x, weight, rstd[n], C);
      }
    }
  });
  add_block_partials(dweight, partial.get(), blocks, C, ctx);
}

// FiLM-fused RMSNorm (growlm/norm.h). The row statistics and dinp/dweight are the plain
// kernels' expressions with dout·gamma[m] in place of dout, so M = 1, gamma = 1, beta = 0
// reproduces them bit for bit (test/kernels/norm-film.test.ts checks it on every code path).
void rmsnorm_film_forward(float* out, float* rstd, const float* inp, const float* weight,
                          const float* gamma, const float* beta, int64_t N, int64_t C,
                          int64_t group, int64_t M, float eps, const Context& ctx) {
  parallel_for(ctx, N, forward_grain(C), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) {
      const float* x = inp + n * C;
      float* y = out + n * C;
      const int64_t m = (n / group) % M;
      const float* g = gamma + m * C;
      const float* b = beta + m * C;
      const float mean = static_cast<float>(sum_squares(x, C) / static_cast<double>(C));
      const float r = 1.0f / std::sqrt(mean + eps);
      rstd[n] = r;
      for (int64_t c = 0; c < C; ++c) y[c] = ((x[c] * r) * weight[c]) * g[c] + b[c];
    }
  });
}

void rmsnorm_film_backward(float* dinp, float* dweight, float* dgamma, float* dbeta,
                           const float* dout, const float* inp, const float* weight,
                           const float* gamma, const float* rstd, int64_t N, int64_t C,
                           int64_t group, int64_t M, const Context& ctx) {
  if (N <= 0) return;
  const int64_t blocks = (N + ROWS - 1) / ROWS;
  std::unique_ptr<float[]> partial(new float[blocks * C]);
  parallel_for(ctx, blocks, blocks_per_task(C), [&](int64_t b0, int64_t b1) {
    std::unique_ptr<float[]> scaled(new float[C]);  // dout·gamma[m] of one row
    float* g = scaled.get();
    for (int64_t b = b0; b < b1; ++b) {
      float* acc = partial.get() + b * C;
      std::fill(acc, acc + C, 0.0f);
      for (int64_t n = b * ROWS; n < std::min(N, (b + 1) * ROWS); ++n) {
        const float* x = inp + n * C;
        const float* d = dout + n * C;
        const float* gm = gamma + ((n / group) % M) * C;
        float* dx = dinp + n * C;
        for (int64_t c = 0; c < C; ++c) g[c] = d[c] * gm[c];
        row_backward(dx, acc, g, x, weight, rstd[n], C);
      }
    }
  });
  add_block_partials(dweight, partial.get(), blocks, C, ctx);
  // dgamma and dbeta: one task per (member, column chunk) sums that member's rows in row
  // order in double (each fp32 product dout·ŷ is exact there), so no partials are needed.
  const int64_t runs = (N + group - 1) / group;
  const int64_t chunks = (C + COLS - 1) / COLS;
  parallel_for(ctx, M * chunks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t m = task / chunks;
      const int64_t c0 = (task % chunks) * COLS;
      const int64_t c1 = std::min(C, c0 + COLS);
      double sg[COLS] = {};
      double sb[COLS] = {};
      for (int64_t s = m; s < runs; s += M) {
        for (int64_t n = s * group; n < std::min(N, (s + 1) * group); ++n) {
          const float* x = inp + n * C;
          const float* d = dout + n * C;
          const float r = rstd[n];
          for (int64_t c = c0; c < c1; ++c) {
            const float normed = (x[c] * r) * weight[c];  // the forward's value before FiLM
            sg[c - c0] += static_cast<double>(d[c]) * static_cast<double>(normed);
            sb[c - c0] += static_cast<double>(d[c]);
          }
        }
      }
      for (int64_t c = c0; c < c1; ++c) {
        float& dg = dgamma[m * C + c];
        float& db = dbeta[m * C + c];
        dg = static_cast<float>(static_cast<double>(dg) + sg[c - c0]);
        db = static_cast<float>(static_cast<double>(db) + sb[c - c0]);
      }
    }
  });
}

}  // namespace growlm::cpu::GROWLM_ISA_NS

#if defined(GROWLM_ISA_portable)
namespace growlm {
namespace cpu {
GROWLM_DECLARE_ISA(void rmsnorm_forward(float*, float*, const float*, const float*, int64_t,
                                        int64_t, float, const Context&))
GROWLM_DECLARE_ISA(void rmsnorm_backward(float*, float*, const float*, const float*,
                                         const float*, const float*, int64_t, int64_t,
                                         const Context&))
GROWLM_DECLARE_ISA(void rmsnorm_film_forward(float*, float*, const float*, const float*,
                                             const float*, const float*, int64_t, int64_t,
                                             int64_t, int64_t, float, const Context&))
GROWLM_DECLARE_ISA(void rmsnorm_film_backward(float*, float*, float*, float*, const float*,
                                              const float*, const float*, const float*,
                                              const float*, int64_t, int64_t, int64_t, int64_t,
                                              const Context&))
}  // namespace cpu

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N,
                     int64_t C, float eps, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, rmsnorm_forward, out, rstd, inp, weight, N, C, eps, ctx);
}
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                      const float* weight, const float* rstd, int64_t N, int64_t C,
                      const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, rmsnorm_backward, dinp, dweight, dout, inp, weight, rstd, N, C, ctx);
}
void rmsnorm_film_forward(float* out, float* rstd, const float* inp, const float* weight,
                          const float* gamma, const float* beta, int64_t N, int64_t C,
                          int64_t group, int64_t M, float eps, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, rmsnorm_film_forward, out, rstd, inp, weight, gamma, beta, N, C, group, M,
                  eps, ctx);
}
void rmsnorm_film_backward(float* dinp, float* dweight, float* dgamma, float* dbeta,
                           const float* dout, const float* inp, const float* weight,
                           const float* gamma, const float* rstd, int64_t N, int64_t C,
                           int64_t group, int64_t M, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, rmsnorm_film_backward, dinp, dweight, dgamma, dbeta, dout, inp, weight,
                  gamma, rstd, N, C, group, M, ctx);
}
}  // namespace growlm
#endif
