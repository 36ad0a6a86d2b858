// Fused softmax cross-entropy on the device (growlm/xent.h), one thread block per row.
// Forward: each thread runs an online logsumexp over its strided share of the row (float4
// loads where the rows are 16-byte aligned; a running max, rescaling its double sum of
// exponentials only when the max grows), then the block combines the (max, sum) pairs in a
// fixed butterfly and warp order, so the row reads memory once and its lse has the same
// bits run to run. A second single-block kernel sums the rows' double losses in a fixed
// order and counts the counted rows (and any target outside [0, V), which the host turns
// into an exception: the binding cannot range-check device targets, so the forward does).
// Backward: one block per row writes dloss · (exp(x - lse) - onehot), each element read and
// written by the same thread, so dlogits may alias logits; an out-of-range target only
// loses its one-hot (no element is read at the target's index).
// Compared with the CPU backend and float64 references in test/cuda/xent.test.ts.
#include "common.cuh"

#include <cmath>
#include <stdexcept>
#include <string>

#include "growlm/cuda.h"

namespace growlm::GROWLM_CUDA_NS {

namespace {

constexpr int BACKWARD_THREADS = 512;
constexpr int REDUCE_THREADS = 1024;

// Row states written by the forward for the loss reduction.
constexpr uint8_t ROW_IGNORED = 0, ROW_COUNTED = 1, ROW_BAD_TARGET = 2;

struct LossTotals {
  double loss_sum;
  long long count;
  long long bad;
};

// A thread's (or a group's) online logsumexp state: max m and s = Σ exp(x - ref(m)) in
// double, ref(m) = m, or 0 while every value seen is -inf (their exp(-inf) = 0, not NaN).
// s is 0 only while nothing but -inf was seen, and NaN once a NaN was.
__device__ inline float ref_of(float m) { return m == -INFINITY ? 0.0f : m; }

// s (relative to ref(m)) re-expressed relative to ref(M), M >= m.
__device__ inline double rescale(double s, float m, float M) {
  return s == 0.0 ? 0.0 : s * exp(static_cast<double>(ref_of(m)) - static_cast<double>(ref_of(M)));
}

// Adds values of which bm is the largest: raises the max first.
__device__ inline void raise_max(float& m, double& s, float bm) {
  if (bm > m) {
    s = rescale(s, m, bm);
    m = bm;
  }
}

__device__ inline void combine(float& m, double& s, float m_other, double s_other) {
  const float M = fmaxf(m, m_other);
  s = rescale(s, m, M) + rescale(s_other, m_other, M);
  m = M;
}

// Every thread of the warp ends with the warp's combined state (fixed butterfly order).
__device__ inline void warp_combine(float& m, double& s) {
  for (int k = 16; k >= 1; k >>= 1) {
    const float mo = __shfl_xor_sync(0xffffffffu, m, k);
    const double so = __shfl_xor_sync(0xffffffffu, s, k);
    combine(m, s, mo, so);
  }
}

__global__ void xent_forward_kernel(float* losses, float* lse, double* row_loss, uint8_t* row_state,
                                    const float* logits, const int32_t* targets, int64_t V,
                                    int32_t ignore_index, bool vec4) {
  __shared__ float warp_m[32];
  __shared__ double warp_s[32];
  const int64_t n = blockIdx.x;
  const int32_t t = targets[n];
  if (t == ignore_index) {
    if (threadIdx.x == 0) {
      lse[n] = 0.0f;
      if (losses) losses[n] = 0.0f;
      row_loss[n] = 0.0;
      row_state[n] = ROW_IGNORED;
    }
    return;
  }
  const float* x = logits + n * V;
  float m = -INFINITY;
  double s = 0.0;
  if (vec4) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
    for (int64_t j = threadIdx.x; j < V / 4; j += blockDim.x) {
      const float4 q = x4[j];
      raise_max(m, s, fmaxf(fmaxf(q.x, q.y), fmaxf(q.z, q.w)));
      const float r = ref_of(m);
      s += static_cast<double>((expf(q.x - r) + expf(q.y - r)) + (expf(q.z - r) + expf(q.w - r)));
    }
  } else {
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) {
      const float xj = x[j];
      raise_max(m, s, xj);
      s += static_cast<double>(expf(xj - ref_of(m)));
    }
  }
  warp_combine(m, s);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    warp_m[warp] = m;
    warp_s[warp] = s;
  }
  __syncthreads();
  if (warp != 0) return;
  const int warps = blockDim.x / 32;
  m = lane < warps ? warp_m[lane] : -INFINITY;
  s = lane < warps ? warp_s[lane] : 0.0;
  warp_combine(m, s);
  if (lane != 0) return;
  const double l = static_cast<double>(ref_of(m)) + log(s);
  const bool valid = t >= 0 && static_cast<int64_t>(t) < V;
  const double loss = valid ? l - static_cast<double>(x[t]) : NAN;
  lse[n] = static_cast<float>(l);
  if (losses) losses[n] = static_cast<float>(loss);
  row_loss[n] = loss;
  row_state[n] = valid ? ROW_COUNTED : ROW_BAD_TARGET;
}

// One block: thread k sums rows k, k + blockDim, ... in order, then a fixed tree.
__global__ void xent_reduce_kernel(LossTotals* totals, const double* row_loss, const uint8_t* row_state,
                                   int64_t N) {
  __shared__ double sums[REDUCE_THREADS];
  __shared__ long long counts[REDUCE_THREADS];
  __shared__ long long bads[REDUCE_THREADS];
  double sum = 0.0;
  long long count = 0, bad = 0;
  for (int64_t n = threadIdx.x; n < N; n += blockDim.x) {
    const uint8_t state = row_state[n];
    if (state == ROW_COUNTED) {
      sum += row_loss[n];
      ++count;
    } else if (state == ROW_BAD_TARGET) {
      ++bad;
    }
  }
  sums[threadIdx.x] = sum;
  counts[threadIdx.x] = count;
  bads[threadIdx.x] = bad;
  __syncthreads();
  for (unsigned w = blockDim.x / 2; w >= 1; w /= 2) {
    if (threadIdx.x < w) {
      sums[threadIdx.x] += sums[threadIdx.x + w];
      counts[threadIdx.x] += counts[threadIdx.x + w];
      bads[threadIdx.x] += bads[threadIdx.x + w];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) *totals = LossTotals{sums[0], counts[0], bads[0]};
}

__global__ void xent_backward_kernel(float* dlogits, const float* logits, const float* lse,
                                     const int32_t* targets, int64_t V, int32_t ignore_index,
                                     float dloss, bool vec4) {
  const int64_t n = blockIdx.x;
  const int32_t t = targets[n];
  float* d = dlogits + n * V;
  const float* x = logits + n * V;
  const bool ignored = t == ignore_index;
  const float l = ignored ? 0.0f : lse[n];
  // The target's gradient: the same exponential, minus the one-hot, as the CPU rounds it.
  auto grad = [=](float xj, int64_t j) -> float {
    if (ignored) return 0.0f;
    const float e = expf(xj - l);
    return j == t ? __fmul_rn(dloss, __fsub_rn(e, 1.0f)) : __fmul_rn(dloss, e);
  };
  if (vec4) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
    float4* d4 = reinterpret_cast<float4*>(d);
    for (int64_t j = threadIdx.x; j < V / 4; j += blockDim.x) {
      const float4 q = x4[j];
      d4[j] = make_float4(grad(q.x, 4 * j), grad(q.y, 4 * j + 1), grad(q.z, 4 * j + 2), grad(q.w, 4 * j + 3));
    }
  } else {
    for (int64_t j = threadIdx.x; j < V; j += blockDim.x) d[j] = grad(x[j], j);
  }
}

// Threads per forward row: about 16 values each, a power of two in [32, 1024].
int forward_threads(int64_t V) {
  int threads = 32;
  while (threads < 1024 && threads * int64_t{16} < V) threads *= 2;
  return threads;
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

void check_sizes(const char* op, int64_t N, int64_t V) {
  if (N < 0 || V < 1) {
    throw std::invalid_argument(std::string(op) + ": need N >= 0 and V >= 1, got N = " + std::to_string(N) +
                                ", V = " + std::to_string(V));
  }
  if (N > 0x7fffffff) {
    throw std::invalid_argument(std::string(op) + ": N = " + std::to_string(N) + " rows exceed the launch grid");
  }
}

}  // namespace

CrossEntropyResult cross_entropy_forward(float* losses, float* lse, const float* logits,
                                         const int32_t* targets, int64_t N, int64_t V,
                                         int32_t ignore_index, const CudaContext& ctx) {
  check_sizes("cross_entropy_forward", N, V);
  CrossEntropyResult result;
  if (N == 0) return result;
  // Per-row losses and states, then the totals, in one allocation (each part 8-byte aligned).
  const size_t loss_bytes = static_cast<size_t>(N) * sizeof(double);
  const DeviceScratch scratch(ctx, loss_bytes + sizeof(LossTotals) + static_cast<size_t>(N));
  auto* row_loss = scratch.as<double>();
  auto* totals = scratch.as<LossTotals>(loss_bytes);
  uint8_t* row_state = scratch.as<uint8_t>(loss_bytes + sizeof(LossTotals));
  LossTotals host{};
  const bool vec4 = V % 4 == 0 && aligned16(logits);
  launch("cross_entropy_forward", xent_forward_kernel, dim3(static_cast<unsigned>(N)), dim3(forward_threads(V)), 0,
         ctx, losses, lse, row_loss, row_state, logits, targets, V, ignore_index, vec4);
  launch("cross_entropy_forward", xent_reduce_kernel, dim3(1), dim3(REDUCE_THREADS), 0, ctx, totals, row_loss,
         row_state, N);
  synchronize(ctx, "cross_entropy_forward");  // a kernel fault is reported under this op
  copy_to_host(&host, totals, sizeof host, ctx);
  if (host.bad > 0) {
    throw std::invalid_argument("cross_entropy_forward: " + std::to_string(host.bad) +
                                " targets outside [0, " + std::to_string(V) + ") and not ignore_index " +
                                std::to_string(ignore_index));
  }
  result.loss_sum = host.loss_sum;
  result.count = host.count;
  return result;
}

void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                            const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index,
                            float dloss, const CudaContext& ctx) {
  check_sizes("cross_entropy_backward", N, V);
  if (N == 0) return;
  const bool vec4 = V % 4 == 0 && aligned16(logits) && aligned16(dlogits);
  launch("cross_entropy_backward", xent_backward_kernel, dim3(static_cast<unsigned>(N)),
         dim3(BACKWARD_THREADS), 0, ctx, dlogits, logits, lse, targets, V, ignore_index, dloss, vec4);
}

}  // namespace growlm::GROWLM_CUDA_NS
