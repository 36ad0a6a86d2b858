// Top-k teacher targets and the coarsened distillation loss with its gradient
// (growlm/distill.h). One row at a time: the row's logsumexp of u = z·fl(1/T) streamed in
// blocks (the online max as xent.cpp does), then e_j = vexp(u_j − L) into a per-task scratch
// row, from which the teacher's top-k and rest mass, or the student's loss and gradient, are
// read. Checked against a float64 reference and its finite differences in
// test/kernels/distill.test.ts.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "growlm/distill.h"
#include "growlm/threads.h"
#include "isa.h"
#include "vmath.h"

namespace growlm::cpu::GROWLM_ISA_NS {

namespace {

constexpr int W = GROWLM_VLEN;
typedef double Vd __attribute__((vector_size(W * 8)));

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }

// u = z·inv into `u` and L = fl(logsumexp(u)): max first, then Σ exp(u − max) in double lanes.
float scaled_lse(float* u, const float* z, int64_t V, float inv) {
  const vf s = splat(inv);
  const int64_t nfull = V / W;
  vf mx = splat(-INFINITY);
  for (int64_t j = 0; j < nfull; ++j) {
    const vf x = load(z + j * W) * s;
    store(u + j * W, x);
    mx = vmax(mx, x);
  }
  float m = -INFINITY;
  for (int j = 0; j < W; ++j) m = mx[j] > m ? mx[j] : m;
  for (int64_t j = nfull * W; j < V; ++j) {
    u[j] = z[j] * inv;
    m = u[j] > m ? u[j] : m;
  }
  const float ref = m == -INFINITY ? 0.0f : m;
  Vd acc = Vd{};
  for (int64_t j = 0; j < nfull; ++j) acc += __builtin_convertvector(vexp(load(u + j * W) - splat(ref)), Vd);
  double sum = 0;
  for (int j = 0; j < W; ++j) sum += acc[j];
  for (int64_t j = nfull * W; j < V; ++j) sum += static_cast<double>(vexp(splat(u[j] - ref))[0]);
  return static_cast<float>(static_cast<double>(ref) + std::log(sum));
}

// e_j = exp(u_j − L) in place of u (lane by lane: a value's bits do not depend on its position).
void exponentials(float* u, int64_t V, float L) {
  const vf l = splat(L);
  const int64_t nfull = V / W;
  for (int64_t j = 0; j < nfull; ++j) store(u + j * W, vexp(load(u + j * W) - l));
  for (int64_t j = nfull * W; j < V; ++j) u[j] = vexp(splat(u[j] - L))[0];
}

// Σ_j e_j over j not marked (mark[j] != 0), in double, in index order of 4 interleaved lanes.
double rest_sum(const float* e, const uint8_t* mark, int64_t V) {
  double acc[4] = {0, 0, 0, 0};
  for (int64_t j = 0; j < V; ++j) {
    if (!mark[j]) acc[j & 3] += static_cast<double>(e[j]);
  }
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

inline float lq_rest_of(double rest) { return static_cast<float>(std::log(std::max(rest, DBL_MIN))); }

int64_t row_grain(int64_t V) { return std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(V, 1)); }

}  // namespace

void distill_teacher(int32_t* ids, float* logp, float* log_rest, const float* logits,
                     const int32_t* pos, int64_t N, int64_t V, int64_t k, float temperature,
                     const Context& ctx) {
  const float inv = 1.0f / temperature;
  parallel_for(ctx, N, row_grain(V), [&](int64_t lo, int64_t hi) {
    std::vector<float> u(static_cast<size_t>(V));
    std::vector<uint8_t> mark(static_cast<size_t>(V));
    std::vector<float> top(static_cast<size_t>(k));
    for (int64_t n = lo; n < hi; ++n) {
      const int32_t p = pos[n];
      if (p < 0) continue;
      const float L = scaled_lse(u.data(), logits + n * V, V, inv);
      int32_t* id = ids + static_cast<int64_t>(p) * k;
      // The k largest u, kept sorted (descending; an equal value never displaces an earlier id).
      int64_t filled = 0;
      for (int64_t j = 0; j < V; ++j) {
        const float v = u[static_cast<size_t>(j)];
        if (filled == k && !(v > top[static_cast<size_t>(k - 1)])) continue;
        int64_t at = filled < k ? filled++ : k - 1;
        while (at > 0 && v > top[static_cast<size_t>(at - 1)]) {
          top[static_cast<size_t>(at)] = top[static_cast<size_t>(at - 1)];
          id[at] = id[at - 1];
          --at;
        }
        top[static_cast<size_t>(at)] = v;
        id[at] = static_cast<int32_t>(j);
      }
      std::fill(mark.begin(), mark.end(), 0);
      float* lp = logp + static_cast<int64_t>(p) * k;
      for (int64_t i = 0; i < k; ++i) {
        mark[static_cast<size_t>(id[i])] = 1;
        lp[i] = top[static_cast<size_t>(i)] - L;
      }
      if (k == V) {
        log_rest[p] = -INFINITY;
        continue;
      }
      exponentials(u.data(), V, L);
      log_rest[p] = lq_rest_of(rest_sum(u.data(), mark.data(), V));
    }
  });
}

double distill_student(float* grad, const float* logits, const int32_t* ids, const float* logp,
                       const float* log_rest, const int32_t* pos, int64_t N, int64_t V, int64_t k,
                       float temperature, float scale, const Context& ctx) {
  const float inv = 1.0f / temperature;
  const float c = scale * temperature;
  const double t2 = static_cast<double>(temperature) * static_cast<double>(temperature);
  std::vector<double> row_loss(static_cast<size_t>(N));
  parallel_for(ctx, N, row_grain(V), [&](int64_t lo, int64_t hi) {
    std::vector<float> e(static_cast<size_t>(V));
    std::vector<uint8_t> mark(static_cast<size_t>(V));
    for (int64_t n = lo; n < hi; ++n) {
      const int32_t p = pos[n];
      row_loss[static_cast<size_t>(n)] = 0;
      if (p < 0) continue;
      float* u = e.data();
      const float L = scaled_lse(u, logits + n * V, V, inv);
      const int32_t* id = ids + static_cast<int64_t>(p) * k;
      const float* lp = logp + static_cast<int64_t>(p) * k;
      // The student's top-k log-probabilities, formed as the teacher's: fl(u_id − L).
      double kl = 0;
      for (int64_t i = 0; i < k; ++i) {
        const float lq = u[id[i]] - L;
        kl += std::exp(static_cast<double>(lp[i])) * (static_cast<double>(lp[i]) - static_cast<double>(lq));
      }
      exponentials(u, V, L);
      float* g = grad + n * V;
      if (k < V) {
        std::fill(mark.begin(), mark.end(), 0);
        for (int64_t i = 0; i < k; ++i) mark[static_cast<size_t>(id[i])] = 1;
        const float lq_rest = lq_rest_of(rest_sum(u, mark.data(), V));
        const float lr = log_rest[p];
        if (lr != -INFINITY) kl += std::exp(static_cast<double>(lr)) * (static_cast<double>(lr) - static_cast<double>(lq_rest));
        // c·e_j·(1 − p_rest/q_rest) in double: the ratio may be far above float32's range when
        // the student's rest mass is tiny, while e_j·ratio stays below 1. Equal logs give exactly 0.
        const double ck = static_cast<double>(c) * (1.0 - std::exp(static_cast<double>(lr) - static_cast<double>(lq_rest)));
        for (int64_t j = 0; j < V; ++j) {
          if (!mark[static_cast<size_t>(j)]) g[j] += static_cast<float>(ck * static_cast<double>(u[j]));
        }
      }
      for (int64_t i = 0; i < k; ++i) {
        const int32_t j = id[i];
        g[j] += c * (u[j] - vexp(splat(lp[i]))[0]);
      }
      row_loss[static_cast<size_t>(n)] = t2 * kl;
    }
  });
  double total = 0;
  for (const double l : row_loss) total += l;
  return total;
}

}  // namespace growlm::cpu::GROWLM_ISA_NS

#if defined(GROWLM_ISA_portable)
namespace growlm {
namespace cpu {
GROWLM_DECLARE_ISA(void distill_teacher(int32_t*, float*, float*, const float*, const int32_t*,
                                        int64_t, int64_t, int64_t, float, const Context&))
GROWLM_DECLARE_ISA(double distill_student(float*, const float*, const int32_t*, const float*,
                                          const float*, const int32_t*, int64_t, int64_t, int64_t,
                                          float, float, const Context&))
}  // namespace cpu

void distill_teacher(int32_t* ids, float* logp, float* log_rest, const float* logits,
                     const int32_t* pos, int64_t N, int64_t V, int64_t k, float temperature,
                     const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, distill_teacher, ids, logp, log_rest, logits, pos, N, V, k, temperature, ctx);
}

double distill_student(float* grad, const float* logits, const int32_t* ids, const float* logp,
                       const float* log_rest, const int32_t* pos, int64_t N, int64_t V, int64_t k,
                       float temperature, float scale, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, distill_student, grad, logits, ids, logp, log_rest, pos, N, V, k, temperature,
                  scale, ctx);
}
}  // namespace growlm
#endif
