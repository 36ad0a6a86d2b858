// Fused AdamW step, global gradient norm and clipping on the device (growlm/adamw.h).
// AdamW: one streaming pass, a tile of 1024 elements per block (float4 loads and stores
// when every buffer is 16-byte aligned and the tile is whole), each op rounded where torch's float32 sequence
// rounds: __fmul_rn / __fadd_rn / __fdiv_rn / __fsqrt_rn keep nvcc from contracting
// products into FMAs, and the lerp is the one FMA ATen itself issues (__fmaf_rn), so an
// update is bitwise the CPU's FMA paths (AVX2 / AVX-512) given the same scalars, which the
// host derives once for both backends (adamw_scalars). The segment of an element is a binary
// search in seg_begin, narrowed per tile to the segments the tile touches.
// Gradient norm: the CPU's canonical sum, reproduced bit for bit: blocks of 2^16
// elements, in each one 32 lanes (a warp) summing exact double squares of elements
// i ≡ lane (mod 32) in order, folded by the CPU's tree (shfl_down by 16, 8, 4, 2, 1); the
// block sums come back to the host and are added in block order there.
// Compared with the CPU backend (bitwise) in test/cuda/adamw.test.ts.
#include "common.cuh"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "growlm/cuda.h"

namespace growlm::GROWLM_CUDA_NS {

namespace {

constexpr int THREADS = 256;
constexpr int64_t TILE = 4 * THREADS;
constexpr int64_t NORM_GRAIN = 1 << 16;  // the CPU's block of the canonical sum
constexpr int NORM_WARPS = 8;            // blocks of the sum per thread block

__device__ inline void update(float& p, float& m, float& v, float g, float decay, const AdamWScalars& s) {
  const float gi = __fmul_rn(g, s.grad_scale);
  const float mi = __fmaf_rn(s.coeff, __fsub_rn(gi, m), s.from_m ? m : gi);
  const float vi = __fadd_rn(__fmul_rn(v, s.beta2), __fmul_rn(__fmul_rn(s.one_m_b2, gi), gi));
  const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), s.bc2_sqrt), s.eps);
  p = __fadd_rn(__fmul_rn(p, decay), __fdiv_rn(__fmul_rn(s.neg_step, mi), denom));
  m = mi;
  v = vi;
}

// The last segment in [lo, hi] whose begin is <= i (seg_begin[lo] <= i is given).
__device__ inline int64_t segment_in(const int64_t* seg_begin, int64_t lo, int64_t hi, int64_t i) {
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (seg_begin[mid] <= i) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

__global__ void adamw_kernel(float* params, float* m, float* v, uint16_t* params_bf16,
                             const float* grads, int64_t n, const int64_t* seg_begin,
                             const uint8_t* seg_decay, int64_t n_segments, AdamWScalars s, bool vec4) {
  __shared__ int64_t tile_segments[2];
  const int64_t tile = static_cast<int64_t>(blockIdx.x) * TILE;
  const int64_t tile_end = tile + TILE < n ? tile + TILE : n;
  if (threadIdx.x == 0) {
    const int64_t first = segment_in(seg_begin, 0, n_segments - 1, tile);
    tile_segments[0] = first;
    tile_segments[1] = segment_in(seg_begin, first, n_segments - 1, tile_end - 1);
  }
  __syncthreads();
  const int64_t seg_lo = tile_segments[0], seg_hi = tile_segments[1];
  const float decay_on = s.decay;
  auto decay_of = [=](int64_t i) {
    return seg_decay[segment_in(seg_begin, seg_lo, seg_hi, i)] ? decay_on : 1.0f;
  };
  // The layout is the tile's: float4s for a whole tile of aligned buffers, else element
  // k·THREADS + thread (coalesced), never a mix (the two would overlap).
  if (vec4 && tile_end - tile == TILE) {
    const int64_t i4 = tile + 4 * static_cast<int64_t>(threadIdx.x);
    float4 p = *reinterpret_cast<const float4*>(params + i4);
    float4 mm = *reinterpret_cast<const float4*>(m + i4);
    float4 vv = *reinterpret_cast<const float4*>(v + i4);
    const float4 g = *reinterpret_cast<const float4*>(grads + i4);
    update(p.x, mm.x, vv.x, g.x, decay_of(i4), s);
    update(p.y, mm.y, vv.y, g.y, decay_of(i4 + 1), s);
    update(p.z, mm.z, vv.z, g.z, decay_of(i4 + 2), s);
    update(p.w, mm.w, vv.w, g.w, decay_of(i4 + 3), s);
    *reinterpret_cast<float4*>(params + i4) = p;
    *reinterpret_cast<float4*>(m + i4) = mm;
    *reinterpret_cast<float4*>(v + i4) = vv;
    if (params_bf16) {
      const uint32_t lo = f32_to_bf16_rne(p.x) | static_cast<uint32_t>(f32_to_bf16_rne(p.y)) << 16;
      const uint32_t hi = f32_to_bf16_rne(p.z) | static_cast<uint32_t>(f32_to_bf16_rne(p.w)) << 16;
      *reinterpret_cast<uint2*>(params_bf16 + i4) = uint2{lo, hi};
    }
    return;
  }
  for (int k = 0; k < 4; ++k) {
    const int64_t i = tile + k * THREADS + threadIdx.x;
    if (i >= tile_end) break;
    float p = params[i], mi = m[i], vi = v[i];
    update(p, mi, vi, grads[i], decay_of(i), s);
    params[i] = p;
    m[i] = mi;
    v[i] = vi;
    if (params_bf16) params_bf16[i] = f32_to_bf16_rne(p);
  }
}

// Block b of the canonical sum by warp b: lane j sums x[i]² over i ≡ j (mod 32) in order,
// then lanes fold as lanes[j] += lanes[j + w] for w = 16 .. 1.
__global__ void sum_squares_kernel(double* partial, const float* x, int64_t n, int64_t blocks) {
  WarpBlock w;
  if (!warp_block(NORM_WARPS, NORM_GRAIN, n, blocks, w)) return;
  const int64_t hi = w.hi;
  double acc = 0.0;
  int64_t i = w.lo + w.lane;
  constexpr int UNROLL = 8;  // loads in flight per lane; the sum itself stays in order
  for (; i + (UNROLL - 1) * 32 < hi; i += UNROLL * 32) {
    float xs[UNROLL];
    for (int u = 0; u < UNROLL; ++u) xs[u] = x[i + u * 32];
    for (int u = 0; u < UNROLL; ++u) {
      const double d = xs[u];
      acc += d * d;  // exact square: an FMA gives the same bits
    }
  }
  for (; i < hi; i += 32) {
    const double d = x[i];
    acc += d * d;
  }
  acc = fold_lanes(acc);
  if (w.lane == 0) partial[w.b] = acc;
}

__global__ void scale_kernel(float* x, int64_t n, float c) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = __fmul_rn(x[i], c);
}

bool aligned(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

void check_grid(const char* op, int64_t n, int64_t grid) {
  if (grid > 0x7fffffff) throw std::invalid_argument(std::string(op) + ": n = " + std::to_string(n) + " exceeds the launch grid");
}

}  // namespace

void adamw_step(float* params, float* m, float* v, uint16_t* params_bf16, const float* grads,
                int64_t n, const int64_t* seg_begin, const uint8_t* seg_decay, int64_t n_segments,
                const AdamWHyper& hyper, const CudaContext& ctx) {
  if (n < 0 || n_segments < 0 || (n > 0 && n_segments < 1)) {
    throw std::invalid_argument("adamw_step: need n >= 0 and at least one segment, got n = " +
                                std::to_string(n) + ", n_segments = " + std::to_string(n_segments));
  }
  if (n == 0) return;
  const int64_t grid = (n + TILE - 1) / TILE;
  check_grid("adamw_step", n, grid);
  const bool vec4 = aligned(params, 16) && aligned(m, 16) && aligned(v, 16) && aligned(grads, 16) &&
                    (!params_bf16 || aligned(params_bf16, 8));
  launch("adamw_step", adamw_kernel, dim3(static_cast<unsigned>(grid)), dim3(THREADS), 0, ctx, params, m,
         v, params_bf16, grads, n, seg_begin, seg_decay, n_segments, adamw_scalars(hyper), vec4);
}

double global_grad_norm(const float* grads, int64_t n, const CudaContext& ctx) {
  if (n < 0) throw std::invalid_argument("global_grad_norm: n must be >= 0, got " + std::to_string(n));
  if (n == 0) return 0.0;
  const int64_t blocks = (n + NORM_GRAIN - 1) / NORM_GRAIN;
  const DeviceScratch partial(ctx, static_cast<size_t>(blocks) * sizeof(double));
  launch("global_grad_norm", sum_squares_kernel, dim3(blocks_for(blocks, NORM_WARPS)), dim3(32 * NORM_WARPS), 0, ctx,
         partial.as<double>(), grads, n, blocks);
  return std::sqrt(host_sum_in_order("global_grad_norm", partial.as<double>(), blocks, ctx));
}

double clip_grad_norm(float* grads, int64_t n, double max_norm, const CudaContext& ctx) {
  const double norm = global_grad_norm(grads, n, ctx);
  const double coef = max_norm / (norm + 1e-6);
  // torch multiplies by clamp(coef, max=1): a NaN norm makes every gradient NaN, as there.
  if (n > 0 && !(coef >= 1.0)) {
    const int64_t grid = (n + THREADS - 1) / THREADS;
    check_grid("clip_grad_norm", n, grid);
    launch("clip_grad_norm", scale_kernel, dim3(static_cast<unsigned>(grid)), dim3(THREADS), 0, ctx, grads, n,
           static_cast<float>(coef));
  }
  return norm;
}

}  // namespace growlm::GROWLM_CUDA_NS
