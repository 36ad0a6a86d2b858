// EWC's penalty with its gradient, and the Fisher accumulation, on the device (growlm/ewc.h).
// Penalty: the CPU's canonical sum reproduced bit for bit, as global_grad_norm does (adamw.cu):
// blocks of 2^16 elements, each summed by one warp, lane j taking the elements i ≡ j (mod 32)
// of the block in order (lanes[j] += fl(fl(F·d)·d) in double, F·d exact), folded by the CPU's
// tree (shfl_down by 16, 8, 4, 2, 1); the block sums come back to the host and are added in
// block order there. The gradient update grads += fl(fl(λ·F)·d), d = fl(θ − θ*), rides in
// the same pass, every op rounded on its own (__f*_rn: no contraction), so each element is
// bitwise the CPU's. Fisher: F = fl(F + fl(scale·fl(g·g))) elementwise, bitwise the CPU's.
// Compared with the CPU backend (bitwise) in test/cuda/ewc.test.ts.
#include "common.cuh"

#include <stdexcept>
#include <string>
#include <vector>

#include "growlm/cuda.h"

namespace growlm::GROWLM_CUDA_NS {

namespace {

constexpr int64_t GRAIN = 1 << 16;  // the CPU's block of the canonical sum (ewc.cpp)
constexpr int PENALTY_WARPS = 8;    // blocks of the sum per thread block
constexpr int THREADS = 256;

// Block b of the canonical sum by warp b; writes partial[b].
__global__ void ewc_penalty_kernel(double* partial, float* g, const float* p, const float* a, const float* f, float lambda,
                                   int64_t n, int64_t blocks) {
  WarpBlock w;
  if (!warp_block(PENALTY_WARPS, GRAIN, n, blocks, w)) return;
  double acc = 0.0;
  for (int64_t i = w.lo + w.lane; i < w.hi; i += 32) {
    const float d = __fsub_rn(p[i], a[i]);
    const float fi = f[i];
    if (g) g[i] = __fadd_rn(g[i], __fmul_rn(__fmul_rn(lambda, fi), d));
    const double fd = __dmul_rn(static_cast<double>(fi), static_cast<double>(d));  // exact
    acc = __dadd_rn(acc, __dmul_rn(fd, static_cast<double>(d)));
  }
  acc = fold_lanes(acc);
  if (w.lane == 0) partial[w.b] = acc;
}

__global__ void ewc_fisher_kernel(float* f, const float* g, int64_t n, float scale) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) f[i] = __fadd_rn(f[i], __fmul_rn(scale, __fmul_rn(g[i], g[i])));
}

void check_n(const char* op, int64_t n) {
  if (n < 0) throw std::invalid_argument(std::string(op) + ": n must be >= 0, got " + std::to_string(n));
  if ((n + THREADS - 1) / THREADS > 0x7fffffff) throw std::invalid_argument(std::string(op) + ": n = " + std::to_string(n) + " exceeds the launch grid");
}

}  // namespace

double ewc_penalty(float* grads, const float* params, const float* anchor, const float* fisher,
                   int64_t n, float lambda, const CudaContext& ctx) {
  check_n("ewc_penalty", n);
  if (n == 0) return 0.0;
  const int64_t blocks = (n + GRAIN - 1) / GRAIN;
  const DeviceScratch partial(ctx, static_cast<size_t>(blocks) * sizeof(double));
  launch("ewc_penalty", ewc_penalty_kernel, dim3(blocks_for(blocks, PENALTY_WARPS)), dim3(32 * PENALTY_WARPS), 0, ctx,
         partial.as<double>(), grads, params, anchor, fisher, lambda, n, blocks);
  return 0.5 * static_cast<double>(lambda) * host_sum_in_order("ewc_penalty", partial.as<double>(), blocks, ctx);
}

void ewc_fisher_accumulate(float* fisher, const float* grads, int64_t n, float scale,
                           const CudaContext& ctx) {
  check_n("ewc_fisher_accumulate", n);
  if (n == 0) return;
  launch("ewc_fisher_accumulate", ewc_fisher_kernel, dim3(blocks_for(n, THREADS)), dim3(THREADS), 0, ctx, fisher,
         grads, n, scale);
}

}  // namespace growlm::GROWLM_CUDA_NS
