// SwiGLU on flat device buffers (growlm/swiglu.h): out = silu(gate) · up with
// silu(x) = x / (1 + e^-x), and its backward dgate = dout·up·σ(g)·(1 + g·(1 - σ(g))),
// dup = dout·silu(g), the CPU's formulas term for term. expf (not __expf: its error grows
// with |x|) saturates to +inf for very negative g, which gives silu = -0 and σ = 0, never
// NaN. Memory-bound grid-stride loops, four elements per access when every pointer is
// 16-byte aligned. Checked against the CPU backend in test/cuda/swiglu.test.ts.
#include "common.cuh"

namespace growlm::GROWLM_CUDA_NS {

namespace {

constexpr int THREADS = 256;
constexpr int64_t MAX_BLOCKS = 8192;  // grid-stride: several waves on any current GPU

// Blocks for `work` items of one thread each, capped (the loops are grid-stride).
unsigned grid_for(int64_t work) {
  const unsigned blocks = blocks_for(work, THREADS);
  return blocks < MAX_BLOCKS ? blocks : static_cast<unsigned>(MAX_BLOCKS);
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

__device__ __forceinline__ float silu_times(float g, float u) { return g / (1.0f + expf(-g)) * u; }

__device__ __forceinline__ void silu_backward(float d, float g, float u, float& dg, float& du) {
  const float denom = 1.0f + expf(-g);
  const float sigma = 1.0f / denom;
  dg = d * u * sigma * (1.0f + g * (1.0f - sigma));
  du = d * (g / denom);
}

__device__ __forceinline__ int64_t first_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// The first n4 quads as float4, the remaining n - 4·n4 elements one by one.
__global__ void swiglu_forward_kernel(float* out, const float* gate, const float* up, int64_t n,
                                      int64_t n4) {
  for (int64_t q = first_index(); q < n4; q += grid_stride()) {
    const float4 g = reinterpret_cast<const float4*>(gate)[q];
    const float4 u = reinterpret_cast<const float4*>(up)[q];
    reinterpret_cast<float4*>(out)[q] =
        make_float4(silu_times(g.x, u.x), silu_times(g.y, u.y), silu_times(g.z, u.z), silu_times(g.w, u.w));
  }
  for (int64_t i = 4 * n4 + first_index(); i < n; i += grid_stride()) out[i] = silu_times(gate[i], up[i]);
}

__global__ void swiglu_backward_kernel(float* dgate, float* dup, const float* dout, const float* gate,
                                       const float* up, int64_t n, int64_t n4) {
  for (int64_t q = first_index(); q < n4; q += grid_stride()) {
    const float4 d = reinterpret_cast<const float4*>(dout)[q];
    const float4 g = reinterpret_cast<const float4*>(gate)[q];
    const float4 u = reinterpret_cast<const float4*>(up)[q];
    float4 dg, du;
    silu_backward(d.x, g.x, u.x, dg.x, du.x);
    silu_backward(d.y, g.y, u.y, dg.y, du.y);
    silu_backward(d.z, g.z, u.z, dg.z, du.z);
    silu_backward(d.w, g.w, u.w, dg.w, du.w);
    reinterpret_cast<float4*>(dgate)[q] = dg;
    reinterpret_cast<float4*>(dup)[q] = du;
  }
  for (int64_t i = 4 * n4 + first_index(); i < n; i += grid_stride()) {
    silu_backward(dout[i], gate[i], up[i], dgate[i], dup[i]);
  }
}

}  // namespace

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n, const CudaContext& ctx) {
  if (n <= 0) return;
  const int64_t n4 = aligned16(out) && aligned16(gate) && aligned16(up) ? n / 4 : 0;
  launch("swigluForward", swiglu_forward_kernel, grid_for(n4 > 0 ? n4 : n), THREADS, 0, ctx, out, gate,
         up, n, n4);
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                     int64_t n, const CudaContext& ctx) {
  if (n <= 0) return;
  const bool vec = aligned16(dgate) && aligned16(dup) && aligned16(dout) && aligned16(gate) && aligned16(up);
  const int64_t n4 = vec ? n / 4 : 0;
  launch("swigluBackward", swiglu_backward_kernel, grid_for(n4 > 0 ? n4 : n), THREADS, 0, ctx, dgate, dup,
         dout, gate, up, n, n4);
}

}  // namespace growlm::GROWLM_CUDA_NS
