// RMSNorm on the GPU (growlm/norm.h's semantics, growlm/cuda/norm.inc's API), plain and
// followed by FiLM-Ensemble's per-member affine map.
//   forward: one block per row; the row's mean square is a fixed-order block reduction.
//   backward: one block per row for dinp; dweight as per-chunk partial sums over fixed row
//   chunks, then an in-order sum of the chunks per channel (no atomics: same bits every run).
//   FiLM: the plain kernels instantiated with the member's γ, β (γ = 1, β = 0 gives the plain
//   bits: x·1 and x + 0 are exact); dgamma and dbeta as float64 partial sums over fixed
//   chunks of each member's rows, then an in-order sum of a member's chunks per channel.
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

// Rows come in runs of `group` rows; run s belongs to member s mod M (growlm/norm.h).
__device__ int64_t member_of(int64_t row, int64_t group, int64_t M) { return (row / group) % M; }

// FILM: out = ((x·r)·w)·γ[m] + β[m]; else out = (x·r)·w (gamma, beta, group, M unused).
template <bool FILM>
__global__ void rmsnorm_forward_kernel(float* out, float* rstd, const float* inp, const float* weight,
                                       const float* gamma, const float* beta, int64_t C, int64_t group, int64_t M,
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
  if constexpr (FILM) {
    const int64_t m = member_of(row, group, M);
    const float* g = gamma + m * C;
    const float* b = beta + m * C;
    for (int64_t c = threadIdx.x; c < C; c += ROW_THREADS) {
      const float normed = (x[c] * r) * weight[c];
      y[c] = normed * g[c] + b[c];
    }
  } else {
    for (int64_t c = threadIdx.x; c < C; c += ROW_THREADS) y[c] = (x[c] * r) * weight[c];
  }
}

// dout of row `row` at channel c as the norm sees it: dout·γ[m] with FiLM.
template <bool FILM>
__device__ float norm_grad(const float* dout, const float* gamma, int64_t row, int64_t c, int64_t C, int64_t group,
                           int64_t M) {
  if constexpr (FILM) return dout[row * C + c] * gamma[member_of(row, group, M) * C + c];
  return dout[row * C + c];
}

// dinp = rstd·(w·dy) − x·rstd³·mean_c(w·dy·x), dy = dout (·γ[m] with FiLM)
template <bool FILM>
__global__ void rmsnorm_backward_input_kernel(float* dinp, const float* dout, const float* inp, const float* weight,
                                              const float* gamma, const float* rstd, int64_t C, int64_t group,
                                              int64_t M) {
  __shared__ float scratch[ROW_THREADS / 32];
  const int64_t row = blockIdx.x;
  const float* x = inp + row * C;
  float dot = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += ROW_THREADS) {
    dot += norm_grad<FILM>(dout, gamma, row, c, C, group, M) * weight[c] * x[c];
  }
  const float mean = block_sum(dot, scratch) / static_cast<float>(C);
  const float r = rstd[row];
  const float coef = mean * r * r * r;
  float* dx = dinp + row * C;
  for (int64_t c = threadIdx.x; c < C; c += ROW_THREADS) {
    dx[c] = r * (norm_grad<FILM>(dout, gamma, row, c, C, group, M) * weight[c]) - x[c] * coef;
  }
}

// partial[chunk, c] = Σ over the chunk's rows of dy·x·rstd (rows in order).
template <bool FILM>
__global__ void rmsnorm_backward_weight_partial_kernel(float* partial, const float* dout, const float* inp,
                                                       const float* gamma, const float* rstd, int64_t N, int64_t C,
                                                       int64_t group, int64_t M) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * CHANNEL_THREADS + threadIdx.x;
  const int64_t chunk = blockIdx.y;
  if (c >= C) return;
  const int64_t end = (chunk + 1) * ROWS_PER_CHUNK < N ? (chunk + 1) * ROWS_PER_CHUNK : N;
  float s = 0.0f;
  for (int64_t n = chunk * ROWS_PER_CHUNK; n < end; ++n) {
    s += norm_grad<FILM>(dout, gamma, n, c, C, group, M) * (inp[n * C + c] * rstd[n]);
  }
  partial[chunk * C + c] = s;
}

// Member m's k-th row (k = 0, 1, ...): row k mod group of its (k / group)-th run, run m + M·(k / group).
__device__ int64_t member_row(int64_t m, int64_t k, int64_t group, int64_t M) {
  return (m + M * (k / group)) * group + k % group;
}

// For member m = blockIdx.z and chunk j = blockIdx.y of its rows (its rows k in
// [j·ROWS_PER_CHUNK, (j + 1)·ROWS_PER_CHUNK), in order), in float64 (each fp32 product exact):
//   pg[m, j, c] = Σ dout·((x·rstd)·w),  pb[m, j, c] = Σ dout.
__global__ void film_partial_kernel(double* pg, double* pb, const float* dout, const float* inp, const float* weight,
                                    const float* rstd, int64_t N, int64_t C, int64_t group, int64_t M,
                                    int64_t chunks) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * CHANNEL_THREADS + threadIdx.x;
  const int64_t chunk = blockIdx.y;
  const int64_t m = blockIdx.z;
  if (c >= C) return;
  double sg = 0.0, sb = 0.0;
  for (int64_t k = chunk * ROWS_PER_CHUNK; k < (chunk + 1) * ROWS_PER_CHUNK; ++k) {
    const int64_t n = member_row(m, k, group, M);
    if (n >= N) break;  // a member's rows increase with k
    const float d = dout[n * C + c];
    const float normed = (inp[n * C + c] * rstd[n]) * weight[c];  // the forward's value before FiLM
    sg += static_cast<double>(d) * static_cast<double>(normed);
    sb += static_cast<double>(d);
  }
  const int64_t at = (m * chunks + chunk) * C + c;
  pg[at] = sg;
  pb[at] = sb;
}

// dgamma[m, c] += Σ_j pg[m, j, c] and dbeta likewise, the chunks in order, in float64.
__global__ void film_sum_kernel(float* dgamma, float* dbeta, const double* pg, const double* pb, int64_t chunks,
                                int64_t C) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * CHANNEL_THREADS + threadIdx.x;
  const int64_t m = blockIdx.y;
  if (c >= C) return;
  double sg = 0.0, sb = 0.0;
  for (int64_t j = 0; j < chunks; ++j) {
    sg += pg[(m * chunks + j) * C + c];
    sb += pb[(m * chunks + j) * C + c];
  }
  dgamma[m * C + c] = static_cast<float>(static_cast<double>(dgamma[m * C + c]) + sg);
  dbeta[m * C + c] = static_cast<float>(static_cast<double>(dbeta[m * C + c]) + sb);
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


void check_film_sizes(const char* op, int64_t group, int64_t M) {
  if (group < 1 || M < 1) throw std::invalid_argument(std::string(op) + ": expected group >= 1 and M >= 1");
  if (M > 65535) throw std::invalid_argument(std::string(op) + ": M above 65535 members");
}

template <bool FILM>
void forward(const char* op, float* out, float* rstd, const float* inp, const float* weight, const float* gamma,
             const float* beta, int64_t N, int64_t C, int64_t group, int64_t M, float eps, const CudaContext& ctx) {
  check_sizes(op, N, C);
  if (!(eps > 0.0f)) throw std::invalid_argument(std::string(op) + ": expected eps > 0");
  if (N == 0) return;
  launch(op, rmsnorm_forward_kernel<FILM>, dim3(static_cast<unsigned>(N)), dim3(ROW_THREADS), 0, ctx, out, rstd, inp,
         weight, gamma, beta, C, group, M, eps);
}

// dinp and dweight (dout·γ[m] in place of dout with FiLM).
template <bool FILM>
void backward(const char* op, float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
              const float* gamma, const float* rstd, int64_t N, int64_t C, int64_t group, int64_t M,
              const CudaContext& ctx) {
  launch(op, rmsnorm_backward_input_kernel<FILM>, dim3(static_cast<unsigned>(N)), dim3(ROW_THREADS), 0, ctx, dinp,
         dout, inp, weight, gamma, rstd, C, group, M);
  const int64_t chunks = (N + ROWS_PER_CHUNK - 1) / ROWS_PER_CHUNK;
  const DeviceScratch partial(ctx, static_cast<size_t>(chunks * C) * sizeof(float));
  launch(op, rmsnorm_backward_weight_partial_kernel<FILM>,
         dim3(blocks_for(C, CHANNEL_THREADS), static_cast<unsigned>(chunks)), dim3(CHANNEL_THREADS), 0, ctx,
         partial.as<float>(), dout, inp, gamma, rstd, N, C, group, M);
  launch(op, sum_chunks_into_kernel, dim3(blocks_for(C, CHANNEL_THREADS)), dim3(CHANNEL_THREADS), 0, ctx, dweight,
         partial.as<float>(), chunks, C);
}

}  // namespace

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C, float eps,
                     const CudaContext& ctx) {
  forward<false>("rmsnorm_forward", out, rstd, inp, weight, nullptr, nullptr, N, C, 1, 1, eps, ctx);
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C, const CudaContext& ctx) {
  check_sizes("rmsnorm_backward", N, C);
  if (N == 0) return;
  backward<false>("rmsnorm_backward", dinp, dweight, dout, inp, weight, nullptr, rstd, N, C, 1, 1, ctx);
}

void rmsnorm_film_forward(float* out, float* rstd, const float* inp, const float* weight, const float* gamma,
                          const float* beta, int64_t N, int64_t C, int64_t group, int64_t M, float eps,
                          const CudaContext& ctx) {
  check_film_sizes("rmsnorm_film_forward", group, M);
  forward<true>("rmsnorm_film_forward", out, rstd, inp, weight, gamma, beta, N, C, group, M, eps, ctx);
}

void rmsnorm_film_backward(float* dinp, float* dweight, float* dgamma, float* dbeta, const float* dout,
                           const float* inp, const float* weight, const float* gamma, const float* rstd, int64_t N,
                           int64_t C, int64_t group, int64_t M, const CudaContext& ctx) {
  const char* op = "rmsnorm_film_backward";
  check_sizes(op, N, C);
  check_film_sizes(op, group, M);
  if (N == 0) return;
  backward<true>(op, dinp, dweight, dout, inp, weight, gamma, rstd, N, C, group, M, ctx);
  // Member 0 has the most rows: ceil(runs / M) runs of at most `group` rows.
  const int64_t runs = (N + group - 1) / group;
  const int64_t member_rows = ((runs + M - 1) / M) * group;
  const int64_t chunks = (member_rows + ROWS_PER_CHUNK - 1) / ROWS_PER_CHUNK;
  const size_t count = static_cast<size_t>(M * chunks * C);
  const DeviceScratch pg(ctx, count * sizeof(double)), pb(ctx, count * sizeof(double));
  launch(op, film_partial_kernel,
         dim3(blocks_for(C, CHANNEL_THREADS), static_cast<unsigned>(chunks), static_cast<unsigned>(M)),
         dim3(CHANNEL_THREADS), 0, ctx, pg.as<double>(), pb.as<double>(), dout, inp, weight, rstd, N, C, group, M,
         chunks);
  launch(op, film_sum_kernel, dim3(blocks_for(C, CHANNEL_THREADS), static_cast<unsigned>(M)), dim3(CHANNEL_THREADS), 0,
         ctx, dgamma, dbeta, pg.as<double>(), pb.as<double>(), chunks, C);
}

}  // namespace growlm::GROWLM_CUDA_NS
