// Top-k teacher targets and the coarsened distillation loss with its gradient on the device
// (growlm/distill.h), one thread block per row, the block's size a function of V alone (so the
// teacher and the student reduce a row of the same length in the same order).
// Row statistics: u_j = fl(z_j·fl(1/T)); the max by a block max, then Σ expf(u_j − max) in
// double (each thread its strided share in order, then a fixed butterfly and warp order):
// L = fl(max + log Σ), the same bits run to run and in the teacher and the student.
// Teacher: k rounds of a block arg-max in the order (u descending, ids ascending; NaN sorts as
// −inf), each round taking the first element after the previous round's, so ids[p] are the
// CPU's k largest with ties to the lower id; an element is in the top-k exactly when it does
// not come after the k-th, which is how the rest mass Σ_{j∉top} e_j (e_j = expf(u_j − L), in
// double, reduced as above) is taken without a mark array.
// Student: the row's ids are marked in a per-row bitmask (integer compare-and-swap: the bits do
// not depend on the order), the KL's top-k terms are a fixed-order block sum, the rest mass is
// the teacher's sum over the unmarked elements (same elements, same order, same bits: a student
// whose logits are bitwise the teacher's gets exactly 0 and adds exactly 0, as on the CPU). The
// gradient of the top-k elements is added by one thread per entry, or by one thread in entry
// order when a row's ids repeat (as the CPU adds repeats one after the other). Row losses come
// back to the host and are summed in row order, as the CPU sums them.
// Exponentials are expf (the CPU uses its own vexp): values agree with the CPU's within a few
// ulp, not bitwise. Compared with the CPU backend in test/cuda/distill.test.ts.
#include "common.cuh"

#include <cfloat>
#include <climits>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "growlm/cuda.h"

namespace growlm::GROWLM_CUDA_NS {

namespace {

constexpr int CHECK_THREADS = 256;

// What distill_check finds in a row (kinds as in growlm/cuda/distill.inc).
struct RowCheck {
  int32_t what;
  int32_t value;
  int64_t index;
};

// Threads per row: about 16 values each, a power of two in [32, 1024].
int row_threads(int64_t V) {
  int threads = 32;
  while (threads < 1024 && threads * int64_t{16} < V) threads *= 2;
  return threads;
}

__device__ inline float order_key(float u) { return u != u ? -INFINITY : u; }

// (v1, j1) comes before (v2, j2): the larger value, then the lower id.
__device__ inline bool before(float v1, int32_t j1, float v2, int32_t j2) { return v1 > v2 || (v1 == v2 && j1 < j2); }

// Every thread of the block gets the block's max (sh: 32 floats of shared memory).
__device__ float block_max(float x, float* sh) {
  for (int w = 16; w >= 1; w /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, w));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) sh[warp] = x;
  __syncthreads();
  x = lane < static_cast<int>(blockDim.x / 32) ? sh[lane] : -INFINITY;
  for (int w = 16; w >= 1; w /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, w));
  __syncthreads();  // sh may be reused
  return x;
}

// Every thread gets the block's sum, formed in a fixed order (sh: 32 doubles of shared memory).
__device__ double block_sum(double x, double* sh) {
  for (int w = 16; w >= 1; w /= 2) x = __dadd_rn(x, __shfl_xor_sync(0xffffffffu, x, w));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) sh[warp] = x;
  __syncthreads();
  x = lane < static_cast<int>(blockDim.x / 32) ? sh[lane] : 0.0;
  for (int w = 16; w >= 1; w /= 2) x = __dadd_rn(x, __shfl_xor_sync(0xffffffffu, x, w));
  __syncthreads();
  return x;
}

// Every thread gets the block's first (v, j) in the order of before().
__device__ void block_first(float& v, int32_t& j, float* shv, int32_t* shj) {
  for (int w = 16; w >= 1; w /= 2) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, w);
    const int32_t oj = __shfl_xor_sync(0xffffffffu, j, w);
    if (before(ov, oj, v, j)) v = ov, j = oj;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) shv[warp] = v, shj[warp] = j;
  __syncthreads();
  const bool live = lane < static_cast<int>(blockDim.x / 32);
  v = live ? shv[lane] : -INFINITY;
  j = live ? shj[lane] : INT_MAX;
  for (int w = 16; w >= 1; w /= 2) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, w);
    const int32_t oj = __shfl_xor_sync(0xffffffffu, j, w);
    if (before(ov, oj, v, j)) v = ov, j = oj;
  }
  __syncthreads();
}

__device__ inline float scaled(const float* z, int64_t j, float inv) { return __fmul_rn(z[j], inv); }

// L = fl(logsumexp(u)) of row z, the same bits in every kernel of this file.
__device__ float row_lse(const float* z, int64_t V, float inv, float* shf, double* shd) {
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) m = fmaxf(m, scaled(z, j, inv));
  m = block_max(m, shf);
  const float ref = m == -INFINITY ? 0.0f : m;
  double s = 0.0;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) s = __dadd_rn(s, static_cast<double>(expf(__fsub_rn(scaled(z, j, inv), ref))));
  s = block_sum(s, shd);
  return static_cast<float>(static_cast<double>(ref) + log(s));
}

__device__ inline float log_rest_of(double rest) { return static_cast<float>(log(fmax(rest, DBL_MIN))); }

__global__ void distill_teacher_kernel(int32_t* ids, float* logp, float* log_rest, const float* logits,
                                       const int32_t* pos, int64_t V, int64_t k, float inv) {
  __shared__ float shf[32];
  __shared__ double shd[32];
  __shared__ int32_t shj[32];
  const int64_t n = blockIdx.x;
  const int32_t p = pos[n];
  if (p < 0) return;  // the whole block
  const float* z = logits + n * V;
  const float L = row_lse(z, V, inv, shf, shd);
  int32_t* id = ids + static_cast<int64_t>(p) * k;
  float* lp = logp + static_cast<int64_t>(p) * k;
  // The previous round's element; (+inf, -1) comes before every element.
  float pv = INFINITY;
  int32_t pj = -1;
  for (int64_t i = 0; i < k; ++i) {
    float bv = -INFINITY;
    int32_t bj = INT_MAX;  // after every element
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
      const float key = order_key(scaled(z, j, inv));
      const int32_t jj = static_cast<int32_t>(j);
      if (before(pv, pj, key, jj) && before(key, jj, bv, bj)) bv = key, bj = jj;
    }
    block_first(bv, bj, shf, shj);
    pv = bv;
    pj = bj;
    if (threadIdx.x == 0) {
      id[i] = bj;
      lp[i] = __fsub_rn(scaled(z, bj, inv), L);
    }
  }
  if (k == V) {
    if (threadIdx.x == 0) log_rest[p] = -INFINITY;
    return;
  }
  double rest = 0.0;
  for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
    const float u = scaled(z, j, inv);
    if (before(pv, pj, order_key(u), static_cast<int32_t>(j))) rest = __dadd_rn(rest, static_cast<double>(expf(__fsub_rn(u, L))));
  }
  rest = block_sum(rest, shd);
  if (threadIdx.x == 0) log_rest[p] = log_rest_of(rest);
}

// Sets bit j of `words`; true when it was set already.
__device__ inline bool mark(uint32_t* words, int32_t j) {
  uint32_t* w = words + (j >> 5);
  const uint32_t bit = 1u << (j & 31);
  uint32_t old = *w;
  for (;;) {
    if (old & bit) return true;
    const uint32_t seen = atomicCAS(w, old, old | bit);
    if (seen == old) return false;
    old = seen;
  }
}

__device__ inline bool marked(const uint32_t* words, int64_t j) { return (words[j >> 5] >> (j & 31)) & 1u; }

// marks: [N, words] zeros, row n's bitmask of its ids.
__global__ void distill_student_kernel(double* row_loss, uint32_t* marks, int64_t words, float* grad, const float* logits,
                                       const int32_t* ids, const float* logp, const float* log_rest, const int32_t* pos,
                                       int64_t V, int64_t k, float inv, float c, double t2) {
  __shared__ float shf[32];
  __shared__ double shd[32];
  __shared__ int repeated[1];
  const int64_t n = blockIdx.x;
  const int32_t p = pos[n];
  if (p < 0) {
    if (threadIdx.x == 0) row_loss[n] = 0.0;
    return;
  }
  const float* z = logits + n * V;
  float* g = grad + n * V;
  uint32_t* row_marks = marks + n * words;
  const int32_t* id = ids + static_cast<int64_t>(p) * k;
  const float* lp = logp + static_cast<int64_t>(p) * k;
  if (threadIdx.x == 0) repeated[0] = 0;
  const float L = row_lse(z, V, inv, shf, shd);  // its barriers order repeated[0] = 0 before the marks
  // The top-k terms of the KL, with the student's log-probabilities formed as the teacher's.
  double kl = 0.0;
  for (int64_t i = threadIdx.x; i < k; i += blockDim.x) {
    const int32_t j = id[i];
    const double l = lp[i];
    const double lq = __fsub_rn(scaled(z, j, inv), L);
    kl = __dadd_rn(kl, __dmul_rn(exp(l), l - lq));
    if (mark(row_marks, j)) repeated[0] = 1;
  }
  kl = block_sum(kl, shd);  // its barriers make the marks and `repeated` visible to the block
  if (k < V) {
    double rest = 0.0;
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
      if (!marked(row_marks, j)) rest = __dadd_rn(rest, static_cast<double>(expf(__fsub_rn(scaled(z, j, inv), L))));
    }
    rest = block_sum(rest, shd);
    const float lq_rest = log_rest_of(rest);
    const float lr = log_rest[p];
    if (lr != -INFINITY) kl = __dadd_rn(kl, __dmul_rn(exp(static_cast<double>(lr)), static_cast<double>(lr) - static_cast<double>(lq_rest)));
    // c·e_j·(1 − p_rest/q_rest) in double, as the CPU (the ratio may overflow float32).
    const double ck = static_cast<double>(c) * (1.0 - exp(static_cast<double>(lr) - static_cast<double>(lq_rest)));
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
      if (marked(row_marks, j)) continue;
      const float e = expf(__fsub_rn(scaled(z, j, inv), L));
      g[j] = __fadd_rn(g[j], static_cast<float>(__dmul_rn(ck, static_cast<double>(e))));
    }
  }
  auto add_top = [&](int64_t i) {
    const int32_t j = id[i];
    const float e = expf(__fsub_rn(scaled(z, j, inv), L));
    g[j] = __fadd_rn(g[j], __fmul_rn(c, __fsub_rn(e, expf(lp[i]))));
  };
  if (!repeated[0]) {
    for (int64_t i = threadIdx.x; i < k; i += blockDim.x) add_top(i);
  } else if (threadIdx.x == 0) {
    for (int64_t i = 0; i < k; ++i) add_top(i);
  }
  if (threadIdx.x == 0) row_loss[n] = t2 * kl;
}

// first[p] = the lowest row n with pos[n] = p (first: [P], filled with bytes 0x7f first).
__global__ void first_row_kernel(int32_t* first, const int32_t* pos, int64_t N, int64_t P) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const int32_t p = pos[n];
  if (p < 0 || p >= P) return;
  int32_t old = first[p];
  while (n < old) {
    const int32_t seen = atomicCAS(first + p, old, static_cast<int32_t>(n));
    if (seen == old) break;
    old = seen;
  }
}

__global__ void check_rows_kernel(RowCheck* out, const int32_t* first, const int32_t* pos, int64_t N, int64_t P,
                                  const int32_t* ids, int64_t k, int64_t V) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const int32_t p = pos[n];
  RowCheck r{0, p, -1};
  if (p < -1 || p >= P) {
    r.what = 1;
  } else if (first && p >= 0 && first[p] != n) {
    r.what = 2;
  } else if (ids && p >= 0) {
    for (int64_t i = static_cast<int64_t>(p) * k; i < (static_cast<int64_t>(p) + 1) * k; ++i) {
      if (ids[i] < 0 || ids[i] >= V) {
        r = RowCheck{3, ids[i], i};
        break;
      }
    }
  }
  out[n] = r;
}

void check_sizes(const char* op, int64_t N, int64_t V, int64_t k) {
  if (N < 0 || V < 1 || k < 1 || k > V || V > INT_MAX) {
    throw std::invalid_argument(std::string(op) + ": need N >= 0, 1 <= k <= V <= 2^31 - 1, got N = " + std::to_string(N) +
                                ", V = " + std::to_string(V) + ", k = " + std::to_string(k));
  }
  if (N > 0x7fffffff) throw std::invalid_argument(std::string(op) + ": N = " + std::to_string(N) + " rows exceed the launch grid");
}

}  // namespace

void distill_teacher(int32_t* ids, float* logp, float* log_rest, const float* logits,
                     const int32_t* pos, int64_t N, int64_t V, int64_t k, float temperature,
                     const CudaContext& ctx) {
  check_sizes("distill_teacher", N, V, k);
  if (N == 0) return;
  launch("distill_teacher", distill_teacher_kernel, dim3(static_cast<unsigned>(N)), dim3(row_threads(V)), 0, ctx, ids,
         logp, log_rest, logits, pos, V, k, 1.0f / temperature);
}

double distill_student(float* grad, const float* logits, const int32_t* ids, const float* logp,
                       const float* log_rest, const int32_t* pos, int64_t N, int64_t V, int64_t k,
                       float temperature, float scale, const CudaContext& ctx) {
  check_sizes("distill_student", N, V, k);
  if (N == 0) return 0.0;
  const int64_t words = (V + 31) / 32;
  const size_t loss_bytes = static_cast<size_t>(N) * sizeof(double);
  const size_t mark_bytes = static_cast<size_t>(N * words) * sizeof(uint32_t);
  const DeviceScratch scratch(ctx, loss_bytes + mark_bytes);
  auto* row_loss = scratch.as<double>();
  auto* marks = scratch.as<uint32_t>(loss_bytes);
  fill_bytes(marks, 0, mark_bytes, ctx);
  launch("distill_student", distill_student_kernel, dim3(static_cast<unsigned>(N)), dim3(row_threads(V)), 0, ctx,
         row_loss, marks, words, grad, logits, ids, logp, log_rest, pos, V, k, 1.0f / temperature, scale * temperature,
         static_cast<double>(temperature) * static_cast<double>(temperature));
  return host_sum_in_order("distill_student", row_loss, N, ctx);
}

int64_t distill_check(int32_t* what, int32_t* value, int64_t* index, const int32_t* pos, int64_t N,
                      int64_t P, bool distinct, const int32_t* ids, int64_t k, int64_t V,
                      const CudaContext& ctx) {
  if (N < 0 || P < 0 || k < 1) {
    throw std::invalid_argument("distill_check: need N, P >= 0 and k >= 1, got N = " + std::to_string(N) + ", P = " +
                                std::to_string(P) + ", k = " + std::to_string(k));
  }
  if (N == 0) return -1;
  if (N >= 0x7f7f7f7f) throw std::invalid_argument("distill_check: N = " + std::to_string(N) + " rows exceed the row numbers it tracks");
  const size_t check_bytes = static_cast<size_t>(N) * sizeof(RowCheck);
  const size_t first_bytes = distinct ? static_cast<size_t>(P) * sizeof(int32_t) : 0;
  const DeviceScratch scratch(ctx, check_bytes + first_bytes);
  auto* checks = scratch.as<RowCheck>();
  auto* first = distinct ? scratch.as<int32_t>(check_bytes) : nullptr;
  std::vector<RowCheck> host(static_cast<size_t>(N));
  const dim3 grid(blocks_for(N, CHECK_THREADS));
  if (first && P > 0) {
    fill_bytes(first, 0x7f, first_bytes, ctx);  // 0x7f7f7f7f: after every row (N < 0x7f7f7f7f)
    launch("distill_check", first_row_kernel, grid, dim3(CHECK_THREADS), 0, ctx, first, pos, N, P);
  }
  launch("distill_check", check_rows_kernel, grid, dim3(CHECK_THREADS), 0, ctx, checks, first, pos, N, P, ids, k, V);
  synchronize(ctx, "distill_check");
  copy_to_host(host.data(), checks, check_bytes, ctx);
  // Positions are checked over every row before any id, as the CPU binding does.
  for (const int pass : {0, 1}) {
    for (int64_t n = 0; n < N; ++n) {
      const RowCheck& r = host[static_cast<size_t>(n)];
      if (r.what == 0 || (pass == 0) != (r.what < 3)) continue;
      *what = r.what;
      *value = r.value;
      *index = r.index;
      return n;
    }
  }
  return -1;
}

}  // namespace growlm::GROWLM_CUDA_NS
