// RMSNorm on the GPU (growlm/norm.h's semantics, growlm/cuda/norm.inc's API).
//   forward: one block per row; the row's mean square is a fixed-order block reduction.
//   backward: one block per row for dinp; dweight as per-chunk partial sums over fixed row
//   chunks, then an in-order sum of the chunks per channel (no atomics: same bits every run).
#include "common.cuh"

namespace growlm::GROWLM_CUDA_NS {

namespace {

constexpr int ROW_THREADS = 256;
constexpr int ROWS_PER_CHUNK = 64;
constexpr int CHANNEL_THREADS = 256;

// Sum of v over the block (ROW_THREADS threads), the same at every thread. Fixed order: each
// warp's butterfly, then warp 0 sums the warps' results.
__device__ float block_sum(float v, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < ROW_THREADS / 32; ++w) total += scratch[w];
  __syncthreads();  // scratch is reused by the next call
  return total;
}

__global__ void rmsnorm_forward_kernel(float* out, float* rstd, const float* inp, const float* weight, int64_t C,
                                       float eps) {
  __shared__ float scratch[ROW_THREADS / 32];
  const int64_t row = blockIdx.x;
  const float* x = inp + row * C;
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += ROW_THREADS) ss += x[c] * x[c];
  const float mean = block_sum(ss, scratch) / static_cast<float>(C);
  const float r = 1.0f / sqrtf(mean + eps);
  if (threadIdx.x == 0) rstd[row] = r;
  float* y = out + row * C;
  for (int64_t c = threadIdx.x; c < C; c += ROW_THREADS) y[c] = (x[c] * r) * weight[c];
}

// dinp = rstd·(w·dout) − x·rstd³·mean_c(w·dout·x)
__global__ void rmsnorm_backward_input_kernel(float* dinp, const float* dout, const float* inp, const float* weight,
                                              const float* rstd, int64_t C) {
  __shared__ float scratch[ROW_THREADS / 32];
  const int64_t row = blockIdx.x;
  const float* x = inp + row * C;
  const float* dy = dout + row * C;
  float dot = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += ROW_THREADS) dot += dy[c] * weight[c] * x[c];
  const float mean = block_sum(dot, scratch) / static_cast<float>(C);
  const float r = rstd[row];
  const float coef = mean * r * r * r;
  float* dx = dinp + row * C;
  for (int64_t c = threadIdx.x; c < C; c += ROW_THREADS) dx[c] = r * (dy[c] * weight[c]) - x[c] * coef;
}

// partial[chunk, c] = Σ over the chunk's rows of dout·x·rstd (rows in order).
__global__ void rmsnorm_backward_weight_partial_kernel(float* partial, const float* dout, const float* inp,
                                                       const float* rstd, int64_t N, int64_t C) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * CHANNEL_THREADS + threadIdx.x;
  const int64_t chunk = blockIdx.y;
  if (c >= C) return;
  const int64_t end = (chunk + 1) * ROWS_PER_CHUNK < N ? (chunk + 1) * ROWS_PER_CHUNK : N;
  float s = 0.0f;
  for (int64_t n = chunk * ROWS_PER_CHUNK; n < end; ++n) s += dout[n * C + c] * (inp[n * C + c] * rstd[n]);
  partial[chunk * C + c] = s;
}

__global__ void sum_chunks_into_kernel(float* dweight, const float* partial, int64_t chunks, int64_t C) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * CHANNEL_THREADS + threadIdx.x;
  if (c >= C) return;
  float s = 0.0f;
  for (int64_t k = 0; k < chunks; ++k) s += partial[k * C + c];
  dweight[c] += s;
}

void check_sizes(const char* op, int64_t N, int64_t C) {
  if (N < 0 || C < 1) throw std::invalid_argument(std::string(op) + ": expected N >= 0 and C >= 1");
  if (N > 0x7fffffff) throw std::invalid_argument(std::string(op) + ": N above 2^31 - 1 rows");
}

}  // namespace

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C, float eps,
                     const CudaContext& ctx) {
  check_sizes("rmsnorm_forward", N, C);
  if (!(eps > 0.0f)) throw std::invalid_argument("rmsnorm_forward: expected eps > 0");
  if (N == 0) return;
  launch("rmsnorm_forward", rmsnorm_forward_kernel, dim3(static_cast<unsigned>(N)), dim3(ROW_THREADS), 0, ctx, out,
         rstd, inp, weight, C, eps);
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C, const CudaContext& ctx) {
  check_sizes("rmsnorm_backward", N, C);
  if (N == 0) return;
  launch("rmsnorm_backward", rmsnorm_backward_input_kernel, dim3(static_cast<unsigned>(N)), dim3(ROW_THREADS), 0, ctx,
         dinp, dout, inp, weight, rstd, C);
  const int64_t chunks = (N + ROWS_PER_CHUNK - 1) / ROWS_PER_CHUNK;
  float* partial = static_cast<float*>(device_alloc(ctx.device, static_cast<size_t>(chunks * C) * sizeof(float)));
  try {
    launch("rmsnorm_backward", rmsnorm_backward_weight_partial_kernel,
           dim3(blocks_for(C, CHANNEL_THREADS), static_cast<unsigned>(chunks)), dim3(CHANNEL_THREADS), 0, ctx, partial,
           dout, inp, rstd, N, C);
    launch("rmsnorm_backward", sum_chunks_into_kernel, dim3(blocks_for(C, CHANNEL_THREADS)), dim3(CHANNEL_THREADS), 0,
           ctx, dweight, partial, chunks, C);
  } catch (...) {
    device_free(ctx.device, partial);
    throw;
  }
  device_free(ctx.device, partial);  // stream-ordered: the pool reuses it only for later work
}

}  // namespace growlm::GROWLM_CUDA_NS
