// Elementwise kernels on flat device buffers (growlm/elementwise.h): residual add, copy,
// scale and fp32 <-> bf16 conversion. Memory-bound grid-stride loops; when every pointer
// of a call is aligned (16 bytes for fp32, 8 for bf16; pool allocations are, views at odd
// offsets may not be)
// the body moves four elements per access (float4 / 8-byte bf16 quads), the tail one by
// one. The bf16 rounding is the CPU's bit recipe (round to nearest even, NaN kept quiet
// with its sign and high payload), so both backends give the same bits.
// Checked against the CPU backend in test/cuda/elementwise.test.ts.
#include "common.cuh"

namespace growlm::GROWLM_CUDA_NS {

namespace {

constexpr int THREADS = 256;
// Grid-stride loops: enough blocks to fill any current GPU several times over.
constexpr int64_t MAX_BLOCKS = 8192;

// Blocks for `work` items of one thread each, capped (the loops are grid-stride).
unsigned grid_for(int64_t work) {
  const unsigned blocks = blocks_for(work, THREADS);
  return blocks < MAX_BLOCKS ? blocks : static_cast<unsigned>(MAX_BLOCKS);
}

bool aligned(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

__device__ __forceinline__ float bf16_bits_to_f32(uint16_t h) {
  return __uint_as_float(static_cast<uint32_t>(h) << 16);
}

// First element of this thread and the grid's stride, in units of `width` elements.
__device__ __forceinline__ int64_t first_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// vec4: the first n4 quads as float4, the rest (n - 4·n4) scalar.
__global__ void add_kernel(float* out, const float* a, const float* b, int64_t n, int64_t n4) {
  for (int64_t q = first_index(); q < n4; q += grid_stride()) {
    const float4 x = reinterpret_cast<const float4*>(a)[q];
    const float4 y = reinterpret_cast<const float4*>(b)[q];
    reinterpret_cast<float4*>(out)[q] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
  }
  for (int64_t i = 4 * n4 + first_index(); i < n; i += grid_stride()) out[i] = a[i] + b[i];
}

__global__ void scale_kernel(float* x, float s, int64_t n, int64_t n4) {
  for (int64_t q = first_index(); q < n4; q += grid_stride()) {
    float4 v = reinterpret_cast<float4*>(x)[q];
    v.x *= s;
    v.y *= s;
    v.z *= s;
    v.w *= s;
    reinterpret_cast<float4*>(x)[q] = v;
  }
  for (int64_t i = 4 * n4 + first_index(); i < n; i += grid_stride()) x[i] *= s;
}

// Quads of bf16 travel as uint2 (8 bytes, so the bf16 side needs 8-byte alignment).
__global__ void f32_to_bf16_kernel(uint16_t* dst, const float* src, int64_t n, int64_t n4) {
  for (int64_t q = first_index(); q < n4; q += grid_stride()) {
    const float4 v = reinterpret_cast<const float4*>(src)[q];
    uint2 packed;
    packed.x = static_cast<uint32_t>(f32_to_bf16_rne(v.x)) | (static_cast<uint32_t>(f32_to_bf16_rne(v.y)) << 16);
    packed.y = static_cast<uint32_t>(f32_to_bf16_rne(v.z)) | (static_cast<uint32_t>(f32_to_bf16_rne(v.w)) << 16);
    reinterpret_cast<uint2*>(dst)[q] = packed;
  }
  for (int64_t i = 4 * n4 + first_index(); i < n; i += grid_stride()) dst[i] = f32_to_bf16_rne(src[i]);
}

__global__ void bf16_to_f32_kernel(float* dst, const uint16_t* src, int64_t n, int64_t n4) {
  for (int64_t q = first_index(); q < n4; q += grid_stride()) {
    const uint2 packed = reinterpret_cast<const uint2*>(src)[q];
    reinterpret_cast<float4*>(dst)[q] =
        make_float4(bf16_bits_to_f32(static_cast<uint16_t>(packed.x & 0xffffu)),
                    bf16_bits_to_f32(static_cast<uint16_t>(packed.x >> 16)),
                    bf16_bits_to_f32(static_cast<uint16_t>(packed.y & 0xffffu)),
                    bf16_bits_to_f32(static_cast<uint16_t>(packed.y >> 16)));
  }
  for (int64_t i = 4 * n4 + first_index(); i < n; i += grid_stride()) dst[i] = bf16_bits_to_f32(src[i]);
}

}  // namespace

void add(float* out, const float* a, const float* b, int64_t n, const CudaContext& ctx) {
  if (n <= 0) return;
  const int64_t n4 = aligned(out, 16) && aligned(a, 16) && aligned(b, 16) ? n / 4 : 0;
  launch("add", add_kernel, grid_for(n4 > 0 ? n4 : n), THREADS, 0, ctx, out, a, b, n, n4);
}

// A device-to-device cudaMemcpyAsync: the copy engine path whose bandwidth the benchmarks
// use as their baseline.
void copy(float* dst, const float* src, int64_t n, const CudaContext& ctx) {
  if (n <= 0) return;
  GROWLM_CUDA_CHECK("copy", cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * sizeof(float),
                                            cudaMemcpyDeviceToDevice, cuda_stream(ctx)));
}

void scale(float* x, float s, int64_t n, const CudaContext& ctx) {
  if (n <= 0) return;
  const int64_t n4 = aligned(x, 16) ? n / 4 : 0;
  launch("scale", scale_kernel, grid_for(n4 > 0 ? n4 : n), THREADS, 0, ctx, x, s, n, n4);
}

void f32_to_bf16(uint16_t* dst, const float* src, int64_t n, const CudaContext& ctx) {
  if (n <= 0) return;
  const int64_t n4 = aligned(dst, 8) && aligned(src, 16) ? n / 4 : 0;
  launch("f32ToBf16", f32_to_bf16_kernel, grid_for(n4 > 0 ? n4 : n), THREADS, 0, ctx, dst, src, n, n4);
}

void bf16_to_f32(float* dst, const uint16_t* src, int64_t n, const CudaContext& ctx) {
  if (n <= 0) return;
  const int64_t n4 = aligned(dst, 16) && aligned(src, 8) ? n / 4 : 0;
  launch("bf16ToF32", bf16_to_f32_kernel, grid_for(n4 > 0 ? n4 : n), THREADS, 0, ctx, dst, src, n, n4);
}

}  // namespace growlm::GROWLM_CUDA_NS
