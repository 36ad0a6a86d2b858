// Counter-based random fills on the device (growlm/rng.h): the same Philox4x32-10 stream
// as native/cpu/kernels/rng.cpp, element j = offset + i (mod 2^64) being word j & 3 of the
// block with counter (j >> 2 mod 2^62, 0, 0) under key = seed. One thread computes one
// Philox block and writes the (up to) four elements of the fill that block holds, so a
// warp writes 128 consecutive floats.
// The float transforms are the CPU's portable path op for op, every product and sum
// rounded on its own (__fmul_rn / __fadd_rn: nvcc would otherwise contract them into FMAs,
// which the portable CPU build cannot emit), with the same Cephes ln polynomial and the
// same quadrant-reduced Taylor sin/cos: uniform and normal fills are bitwise the CPU's
// portable ones (test/cuda/rng.test.ts), and the Philox words are bitwise those of every
// CPU path.
#include "common.cuh"

#include <stdexcept>
#include <string>

#include "growlm/cuda.h"

namespace growlm::GROWLM_CUDA_NS {

namespace {

constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;  // Philox multipliers
constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;  // Weyl key increments
constexpr int THREADS = 256;

struct Words {
  uint32_t w[4];
};

__device__ inline Words philox(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                               uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    const uint32_t hi0 = __umulhi(c0, M0), lo0 = c0 * M0;
    const uint32_t hi1 = __umulhi(c2, M1), lo1 = c2 * M1;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += W0;
    k1 += W1;
  }
  return Words{{c0, c1, c2, c3}};
}

// The words of stream block `block` (any uint64: only block mod 2^62 counts, so the block
// after 2^62 - 1 is 0, as element 2^64 wraps to 0).
__device__ inline Words block_words(uint64_t seed, uint64_t block) {
  return philox(static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32) & 0x3fffffffu, 0u,
                0u, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// (w >> 8)·2^-24 in [0, 1): exact.
__device__ inline float unit24(uint32_t w) { return static_cast<float>(w >> 8) * 0x1p-24f; }

// ln x for normal x > 0: the CPU's Cephes logf, op for op.
__device__ inline float cephes_log(float x) {
  const int b = __float_as_int(x);
  int e = ((b >> 23) & 0xff) - 126;
  float m = __int_as_float((b & 0x007fffff) | 0x3f000000);
  if (m < 0.707106781186547524f) {
    e -= 1;
    m = __fadd_rn(__fadd_rn(m, m), -1.0f);
  } else {
    m = __fadd_rn(m, -1.0f);
  }
  const float z = __fmul_rn(m, m);
  float y = 7.0376836292e-2f;
  y = __fadd_rn(__fmul_rn(y, m), -1.1514610310e-1f);
  y = __fadd_rn(__fmul_rn(y, m), 1.1676998740e-1f);
  y = __fadd_rn(__fmul_rn(y, m), -1.2420140846e-1f);
  y = __fadd_rn(__fmul_rn(y, m), 1.4249322787e-1f);
  y = __fadd_rn(__fmul_rn(y, m), -1.6668057665e-1f);
  y = __fadd_rn(__fmul_rn(y, m), 2.0000714765e-1f);
  y = __fadd_rn(__fmul_rn(y, m), -2.4999993993e-1f);
  y = __fadd_rn(__fmul_rn(y, m), 3.3333331174e-1f);
  y = __fmul_rn(__fmul_rn(y, m), z);
  const float fe = static_cast<float>(e);
  y = __fadd_rn(y, __fmul_rn(fe, -2.12194440e-4f));
  y = __fadd_rn(y, -__fmul_rn(0.5f, z));
  return __fadd_rn(__fadd_rn(m, y), __fmul_rn(fe, 0.693359375f));
}

// cos and sin of 2π·(w >> 8)·2^-24: the CPU's exact quadrant reduction and Taylor
// polynomials, op for op.
__device__ inline void sincos_2pi(uint32_t w, float& cos_out, float& sin_out) {
  const uint32_t k = (w >> 8) + (1u << 21);
  const uint32_t q = (k >> 22) & 3u;
  const float f = static_cast<float>(static_cast<int>(k & 0x3fffffu) - (1 << 21)) * 0x1p-24f;
  const float f2 = __fmul_rn(f, f);
  float s = 42.058693944897634f;
  s = __fadd_rn(__fmul_rn(s, f2), -76.705859753061360f);
  s = __fadd_rn(__fmul_rn(s, f2), 81.605249276075040f);
  s = __fadd_rn(__fmul_rn(s, f2), -41.341702240399755f);
  s = __fadd_rn(__fmul_rn(s, f2), 6.2831853071795865f);
  s = __fmul_rn(s, f);
  float c = -26.426256783374388f;
  c = __fadd_rn(__fmul_rn(c, f2), 60.244641371876640f);
  c = __fadd_rn(__fmul_rn(c, f2), -85.456817206693710f);
  c = __fadd_rn(__fmul_rn(c, f2), 64.939394022668280f);
  c = __fadd_rn(__fmul_rn(c, f2), -19.739208802178716f);
  c = __fadd_rn(__fmul_rn(c, f2), 1.0f);
  const bool odd = (q & 1u) != 0;
  const uint32_t cos_sign = ((q + 1u) & 2u) << 30;  // quadrants 1 and 2
  const uint32_t sin_sign = (q & 2u) << 30;         // quadrants 2 and 3
  cos_out = __uint_as_float(__float_as_uint(odd ? s : c) ^ cos_sign);
  sin_out = __uint_as_float(__float_as_uint(odd ? c : s) ^ sin_sign);
}

// The four values of a block: uniforms low + scale·u.
struct UniformTransform {
  float low, scale;
  __device__ void operator()(const Words& w, float z[4]) const {
    for (int m = 0; m < 4; ++m) z[m] = __fadd_rn(low, __fmul_rn(scale, unit24(w.w[m])));
  }
};

// The four values of a block: two Box–Muller pairs, mean + std·(r·cos θ), mean + std·(r·sin θ).
struct NormalTransform {
  float mean, std;
  __device__ void operator()(const Words& w, float z[4]) const {
    for (int p = 0; p < 4; p += 2) {
      const float u1 = __fmul_rn(static_cast<float>(w.w[p] >> 8) + 1.0f, 0x1p-24f);
      const float r = __fsqrt_rn(__fmul_rn(-2.0f, cephes_log(u1)));
      float c, s;
      sincos_2pi(w.w[p + 1], c, s);
      z[p] = __fadd_rn(mean, __fmul_rn(std, __fmul_rn(r, c)));
      z[p + 1] = __fadd_rn(mean, __fmul_rn(std, __fmul_rn(r, s)));
    }
  }
};

// Fill block b of `blocks` (fill element e = 4b - head + m for word m), keeping e in [0, n).
template <class F>
__global__ void fill_kernel(float* out, int64_t n, int64_t blocks, uint64_t seed, uint64_t first,
                            int head, F f) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= blocks) return;
  float z[4];
  f(block_words(seed, first + static_cast<uint64_t>(b)), z);
  const int64_t begin = 4 * b - head;
  for (int m = 0; m < 4; ++m) {
    const int64_t e = begin + m;
    if (e >= 0 && e < n) out[e] = z[m];
  }
}

template <class F>
void fill(const char* op, float* out, int64_t n, uint64_t seed, uint64_t offset, F f,
          const CudaContext& ctx) {
  if (n < 0) throw std::invalid_argument(std::string(op) + ": n must be >= 0, got " + std::to_string(n));
  if (n == 0) return;
  const int head = static_cast<int>(offset & 3);
  const int64_t blocks = (head + n + 3) >> 2;
  const int64_t grid = (blocks + THREADS - 1) / THREADS;
  if (grid > 0x7fffffff) throw std::invalid_argument(std::string(op) + ": n = " + std::to_string(n) + " exceeds the launch grid");
  launch(op, fill_kernel<F>, dim3(static_cast<unsigned>(grid)), dim3(THREADS), 0, ctx, out, n,
         blocks, seed, offset >> 2, head, f);
}

// Rows can exceed gridDim.y's 65535, so rows run along x and the Philox blocks of a row
// along y. inp and out may alias: each element is read and written by one thread.
__global__ void dropout_kernel(float* out, const float* inp, int64_t C, float p, float scale,
                               uint64_t seed, const uint64_t* row_offsets) {
  const int64_t r = blockIdx.x;
  const int64_t b = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  const uint64_t offset = row_offsets[r];
  const int head = static_cast<int>(offset & 3);
  if (b >= (head + C + 3) >> 2) return;
  const Words w = block_words(seed, (offset >> 2) + static_cast<uint64_t>(b));
  const int64_t begin = 4 * b - head;
  float* o = out + r * C;
  const float* x = inp + r * C;
  for (int m = 0; m < 4; ++m) {
    const int64_t e = begin + m;
    if (e >= 0 && e < C) o[e] = __fmul_rn(x[e], unit24(w.w[m]) >= p ? scale : 0.0f);
  }
}

}  // namespace

void rng_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset, float low, float high,
                 const CudaContext& ctx) {
  const float scale = static_cast<float>(static_cast<double>(high) - static_cast<double>(low));
  fill("rng_uniform", out, n, seed, offset, UniformTransform{low, scale}, ctx);
}

void rng_normal(float* out, int64_t n, uint64_t seed, uint64_t offset, float mean, float std,
                const CudaContext& ctx) {
  fill("rng_normal", out, n, seed, offset, NormalTransform{mean, std}, ctx);
}

void rng_dropout(float* out, const float* inp, int64_t rows, int64_t C, float p, uint64_t seed,
                 const uint64_t* row_offsets, const CudaContext& ctx) {
  if (rows < 0 || C < 1) {
    throw std::invalid_argument("rng_dropout: need rows >= 0 and C >= 1, got rows = " +
                                std::to_string(rows) + ", C = " + std::to_string(C));
  }
  if (!(p >= 0.0f && p < 1.0f)) {
    throw std::invalid_argument("rng_dropout: p must be in [0, 1), got " + std::to_string(p));
  }
  if (rows == 0) return;
  const float scale = static_cast<float>(1.0 / (1.0 - static_cast<double>(p)));
  // A row of C elements starting anywhere in a block spans at most (C + 6) / 4 blocks.
  const int64_t row_blocks = (C + 6) / 4;
  const int64_t grid_y = (row_blocks + THREADS - 1) / THREADS;
  if (rows > 0x7fffffff || grid_y > 65535) {
    throw std::invalid_argument("rng_dropout: rows = " + std::to_string(rows) + ", C = " +
                                std::to_string(C) + " exceed the launch grid");
  }
  launch("rng_dropout", dropout_kernel, dim3(static_cast<unsigned>(rows), static_cast<unsigned>(grid_y)),
         dim3(THREADS), 0, ctx, out, inp, C, p, scale, seed, row_offsets);
}

}  // namespace growlm::GROWLM_CUDA_NS
