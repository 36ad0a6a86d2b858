// Causal grouped-query self-attention on the GPU (growlm/attention.h and the bf16 variants in
// growlm/cuda/attention.inc), FlashAttention-2 style: tiled, online softmax in base 2, never
// the T×T score matrix. Layout as on the CPU: q, out, dq, dout [B, T, H, D]; k, v, dk, dv
// [B, T, Hkv, D]; lse [B, H, T] (natural log). Query head h reads kv head h / (H / Hkv).
//
// fp32 (attention_forward / attention_backward / attention_cached_forward, any D <= 256):
//   CUDA cores. A warp holds a few query rows; each lane scores one key of a 32-key tile
//   (a dot product over D from shared memory, K rows padded to an odd pitch so the 32 lanes
//   hit 32 banks), the row max and sum are warp butterflies, and the output row is held in
//   registers with lane l owning columns l, l + 32, ... (NJ of them, a template).
// bf16 (attention_forward_bf16 / attention_backward_bf16, D in {64, 128}): tensor cores
//   through nvcuda::wmma (bf16 16×16×16, fp32 accumulators). 64×64 tiles, four warps of 16
//   query (or key) rows. Scores go through a per-warp fp32 staging area in shared memory for
//   the softmax (fragment element layouts are not portable); P and dS are rounded to bf16 for
//   the second product of each pair, as FlashAttention-2 does. The forward keeps the output
//   accumulator in fragments and rescales it lazily: the reference max of a row moves only
//   when a tile's max exceeds it by more than 8 (so p <= 2^8), which spares the shared-memory
//   round trip of the accumulator on nearly every tile and changes no result beyond rounding.
//
// Backward (both precisions): dK, dV by (b, kv head, key tile), each block walking the query
// heads of its group in order and their query tiles in ascending order, accumulating in
// registers; dQ by (b, head, query tile) over the key tiles in ascending order. Every output
// element is written once by one block in a fixed order: no atomics, same bits run to run.
// delta = rowsum(dO ∘ O) is computed first into the dq buffer (free until the dQ pass: outputs
// never overlap inputs) for the dK/dV pass; the dQ pass recomputes its rows' delta with the
// same function before overwriting dq.
//
// Checked against the CPU backend in test/cuda/attention.test.ts.
#include "common.cuh"
#include "growlm/attention.h"

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "growlm/cuda.h"

namespace growlm::GROWLM_CUDA_NS {

namespace {

using namespace nvcuda;
typedef __nv_bfloat16 bf16;

// Loops over register arrays must be unrolled on the GPU (else the arrays go to local memory).
#if defined(__CUDACC__)
#define GROWLM_UNROLL _Pragma("unroll")
#else
#define GROWLM_UNROLL
#endif

constexpr unsigned FULL = 0xffffffffu;
constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.69314718055994531f;
// Masked scores and the initial running max: finite (-FLT_MAX), so a difference of two of
// them is never -inf - (-inf) = NaN, and 2^(MASKED - max) is 0 for any real max.
constexpr float MASKED = -3.402823466e38f;

__device__ __forceinline__ float warp_max(float x) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(FULL, x, o));
  return x;
}

// Butterfly sum: every lane ends with the same bits (a + b = b + a at each stage).
__device__ __forceinline__ float warp_sum(float x) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(FULL, x, o);
  return x;
}

template <class E>
__device__ __forceinline__ float to_float(E x);
template <>
__device__ __forceinline__ float to_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ float to_float<bf16>(bf16 x) { return __bfloat162float(x); }

// Σ_d dout[d]·out[d] for one row, by a whole warp: lane l sums columns l, l + 32, ... in
// order, then the butterfly. Both backward passes call it, so their delta agree bitwise.
template <class E>
__device__ __forceinline__ float row_delta(const E* dout, const E* out, int D, int lane) {
  float s = 0.0f;
  for (int d = lane; d < D; d += 32) s += to_float(dout[d]) * to_float(out[d]);
  return warp_sum(s);
}

// delta[(b·H + h)·T + t] = rowsum(dO ∘ O) for every row: one warp per row.
template <class E>
__global__ void __launch_bounds__(128) attention_delta_kernel(float* delta, const E* dout, const E* out,
                                                              int64_t rows, int T, int H, int D) {
  const int lane = threadIdx.x % 32;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (n >= rows) return;  // whole warps leave together
  const float s = row_delta(dout + n * D, out + n * D, D, lane);
  const int64_t h = n % H, t = n / H % T, b = n / H / T;
  if (lane == 0) delta[(b * H + h) * T + t] = s;
}

// ---------------------------------------------------------------------------------------
// fp32 kernels. Block = 4 warps; a query tile has 4 rows per warp (FR = 16 rows), a key
// tile 32 keys (one per lane). Lane l owns output columns l + 32·j, j < NJ (NJ·32 >= D).

constexpr int FW = 4;            // warps per block
constexpr int FROWS = 4;         // query rows per warp
constexpr int FR = FW * FROWS;   // query tile
constexpr int FK = 32;           // key tile
constexpr int FTHREADS = FW * 32;

// An odd row pitch: lane c reading row c, column d hits bank (c·pitch + d) mod 32, distinct
// over the 32 lanes.
__host__ __device__ __forceinline__ int odd_pitch(int D) { return D | 1; }

// rows × D floats from global rows `stride` apart into shared rows `pitch` apart, rows at or
// past `valid` zero-filled, each value times `factor`. Every thread of the block takes part.
__device__ __forceinline__ void load_rows_f32(float* dst, int pitch, const float* src, int64_t stride,
                                              int rows, int valid, int D, float factor) {
  for (int e = threadIdx.x; e < rows * D; e += blockDim.x) {
    const int r = e / D, d = e - r * D;
    dst[r * pitch + d] = r < valid ? src[r * stride + d] * factor : 0.0f;
  }
}

// One block per (query tile, head, b): grid (ceil(T / FR), H, B), the last (heaviest) query
// tiles first.
template <int NJ>
__global__ void __launch_bounds__(FTHREADS) attention_forward_f32_kernel(
    float* out, float* lse, const float* q, const float* k, const float* v, int T, int H, int Hkv, int D,
    float qscale) {
  GROWLM_DYNAMIC_SHARED(float, smem);
  const int ld = odd_pitch(D);
  float* qs = smem;         // FR × D, scaled by qscale = scale·log2(e)
  float* kv = qs + FR * D;  // FK × ld: the K tile, then the V tile
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int i = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);
  const int h = blockIdx.y, b = blockIdx.z, g = h / (H / Hkv);
  const int t0 = i * FR;
  const int64_t qstride = static_cast<int64_t>(H) * D, kvstride = static_cast<int64_t>(Hkv) * D;
  const float* qrows = q + (static_cast<int64_t>(b) * T * H + h) * D + t0 * qstride;
  const float* krows = k + (static_cast<int64_t>(b) * T * Hkv + g) * D;
  const float* vrows = v + (static_cast<int64_t>(b) * T * Hkv + g) * D;
  load_rows_f32(qs, D, qrows, qstride, FR, T - t0, D, qscale);

  float m[FROWS], l[FROWS], acc[FROWS][NJ];
  GROWLM_UNROLL
  for (int r = 0; r < FROWS; ++r) {
    m[r] = MASKED;
    l[r] = 0.0f;
    GROWLM_UNROLL
    for (int j = 0; j < NJ; ++j) acc[r][j] = 0.0f;
  }
  const int kend = min(T, t0 + FR);  // keys needed by the tile's last row
  for (int c0 = 0; c0 < kend; c0 += FK) {
    __syncthreads();  // the previous V tile is consumed (and qs is written)
    load_rows_f32(kv, ld, krows + c0 * kvstride, kvstride, FK, kend - c0, D, 1.0f);
    __syncthreads();
    float s[FROWS];
    GROWLM_UNROLL
    for (int r = 0; r < FROWS; ++r) s[r] = 0.0f;
    const float* kr = kv + lane * ld;
    const float* qr = qs + warp * FROWS * D;
    for (int d = 0; d < D; ++d) {
      const float kd = kr[d];
      GROWLM_UNROLL
      for (int r = 0; r < FROWS; ++r) s[r] += qr[r * D + d] * kd;
    }
    const int c = c0 + lane;
    GROWLM_UNROLL
    for (int r = 0; r < FROWS; ++r) {
      const int t = t0 + warp * FROWS + r;
      if (c > t || c >= kend) s[r] = MASKED;
    }
    __syncthreads();
    load_rows_f32(kv, ld, vrows + c0 * kvstride, kvstride, FK, kend - c0, D, 1.0f);
    __syncthreads();
    float p[FROWS];
    GROWLM_UNROLL
    for (int r = 0; r < FROWS; ++r) {
      const float top = fmaxf(m[r], warp_max(s[r]));
      p[r] = s[r] == MASKED ? 0.0f : exp2f(s[r] - top);
      const float alpha = exp2f(m[r] - top);
      l[r] = l[r] * alpha + warp_sum(p[r]);
      m[r] = top;
      GROWLM_UNROLL
      for (int j = 0; j < NJ; ++j) acc[r][j] *= alpha;
    }
    // acc += P·V, keys ascending; each V row is read once for all the warp's rows.
    for (int cc = 0; cc < FK; ++cc) {
      float vr[NJ];
      GROWLM_UNROLL
      for (int j = 0; j < NJ; ++j) vr[j] = lane + 32 * j < D ? kv[cc * ld + lane + 32 * j] : 0.0f;
      GROWLM_UNROLL
      for (int r = 0; r < FROWS; ++r) {
        const float pc = __shfl_sync(FULL, p[r], cc);
        GROWLM_UNROLL
        for (int j = 0; j < NJ; ++j) acc[r][j] += pc * vr[j];
      }
    }
  }
  GROWLM_UNROLL
  for (int r = 0; r < FROWS; ++r) {
    const int t = t0 + warp * FROWS + r;
    if (t >= T) continue;
    float* orow = out + ((static_cast<int64_t>(b) * T + t) * H + h) * D;
    GROWLM_UNROLL
    for (int j = 0; j < NJ; ++j) {
      const int d = lane + 32 * j;
      if (d < D) orow[d] = acc[r][j] / l[r];
    }
    if (lane == 0) lse[(static_cast<int64_t>(b) * H + h) * T + t] = (m[r] + log2f(l[r])) * LN2;
  }
}

// dQ: one block per (query tile, head, b), key tiles ascending. Scores are recomputed
// unscaled and multiplied by qscale, as in the dK/dV pass, so both see the same P.
template <int NJ>
__global__ void __launch_bounds__(FTHREADS) attention_backward_dq_f32_kernel(
    float* dq, const float* dout, const float* q, const float* k, const float* v, const float* out,
    const float* lse, int T, int H, int Hkv, int D, float qscale, float scale) {
  GROWLM_DYNAMIC_SHARED(float, smem);
  const int ld = odd_pitch(D);
  float* qs = smem;          // FR × D
  float* dos = qs + FR * D;  // FR × D
  float* ks = dos + FR * D;  // FK × ld
  float* vs = ks + FK * ld;  // FK × ld
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int i = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);
  const int h = blockIdx.y, b = blockIdx.z, g = h / (H / Hkv);
  const int t0 = i * FR;
  const int64_t qstride = static_cast<int64_t>(H) * D, kvstride = static_cast<int64_t>(Hkv) * D;
  const int64_t qoff = (static_cast<int64_t>(b) * T * H + h) * D + t0 * qstride;
  const float* krows = k + (static_cast<int64_t>(b) * T * Hkv + g) * D;
  const float* vrows = v + (static_cast<int64_t>(b) * T * Hkv + g) * D;
  load_rows_f32(qs, D, q + qoff, qstride, FR, T - t0, D, 1.0f);
  load_rows_f32(dos, D, dout + qoff, qstride, FR, T - t0, D, 1.0f);

  float lse2[FROWS], delta[FROWS], acc[FROWS][NJ];
  GROWLM_UNROLL
  for (int r = 0; r < FROWS; ++r) {
    const int t = t0 + warp * FROWS + r;
    const bool real = t < T;
    const int64_t row = qoff + (warp * FROWS + r) * qstride;
    delta[r] = real ? row_delta(dout + row, out + row, D, lane) : 0.0f;
    lse2[r] = real ? lse[(static_cast<int64_t>(b) * H + h) * T + t] * LOG2E : 0.0f;
    GROWLM_UNROLL
    for (int j = 0; j < NJ; ++j) acc[r][j] = 0.0f;
  }
  const int kend = min(T, t0 + FR);
  for (int c0 = 0; c0 < kend; c0 += FK) {
    __syncthreads();
    load_rows_f32(ks, ld, krows + c0 * kvstride, kvstride, FK, kend - c0, D, 1.0f);
    load_rows_f32(vs, ld, vrows + c0 * kvstride, kvstride, FK, kend - c0, D, 1.0f);
    __syncthreads();
    float s[FROWS], dp[FROWS];
    GROWLM_UNROLL
    for (int r = 0; r < FROWS; ++r) s[r] = dp[r] = 0.0f;
    const float* kr = ks + lane * ld;
    const float* vr = vs + lane * ld;
    const float* qr = qs + warp * FROWS * D;
    const float* dr = dos + warp * FROWS * D;
    for (int d = 0; d < D; ++d) {
      const float kd = kr[d], vd = vr[d];
      GROWLM_UNROLL
      for (int r = 0; r < FROWS; ++r) {
        s[r] += qr[r * D + d] * kd;
        dp[r] += dr[r * D + d] * vd;
      }
    }
    const int c = c0 + lane;
    float ds[FROWS];
    GROWLM_UNROLL
    for (int r = 0; r < FROWS; ++r) {
      const int t = t0 + warp * FROWS + r;
      const float p = c <= t && c < kend ? exp2f(s[r] * qscale - lse2[r]) : 0.0f;
      ds[r] = p * (dp[r] - delta[r]);
    }
    // acc += dS·K, keys ascending; each K row is read once for all the warp's rows.
    for (int cc = 0; cc < FK; ++cc) {
      float kr2[NJ];
      GROWLM_UNROLL
      for (int j = 0; j < NJ; ++j) kr2[j] = lane + 32 * j < D ? ks[cc * ld + lane + 32 * j] : 0.0f;
      GROWLM_UNROLL
      for (int r = 0; r < FROWS; ++r) {
        const float dsc = __shfl_sync(FULL, ds[r], cc);
        GROWLM_UNROLL
        for (int j = 0; j < NJ; ++j) acc[r][j] += dsc * kr2[j];
      }
    }
  }
  GROWLM_UNROLL
  for (int r = 0; r < FROWS; ++r) {
    const int t = t0 + warp * FROWS + r;
    if (t >= T) continue;
    float* row = dq + qoff + (warp * FROWS + r) * qstride;
    GROWLM_UNROLL
    for (int j = 0; j < NJ; ++j) {
      const int d = lane + 32 * j;
      if (d < D) row[d] = acc[r][j] * scale;
    }
  }
}

// dK, dV: one block per (key tile, kv head, b), the first (heaviest) key tiles first. Warp w
// accumulates keys 8w .. 8w + 7 of the tile (lane l: columns l + 32·j).
constexpr int FKW = FK / FW;  // keys per warp in the accumulation

template <int NJ>
__global__ void __launch_bounds__(FTHREADS) attention_backward_dkdv_f32_kernel(
    float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v,
    const float* lse, const float* delta, int T, int H, int Hkv, int D, float qscale, float scale) {
  GROWLM_DYNAMIC_SHARED(float, smem);
  const int ld = odd_pitch(D);
  float* ks = smem;              // FK × ld
  float* vs = ks + FK * ld;      // FK × ld
  float* qs = vs + FK * ld;      // FR × D
  float* dos = qs + FR * D;      // FR × D
  float* ps = dos + FR * D;      // FR × (FK + 1): P of the pair
  float* dss = ps + FR * (FK + 1);      // FR × (FK + 1): dS of the pair
  float* lse2s = dss + FR * (FK + 1);   // FR
  float* deltas = lse2s + FR;           // FR
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int c0 = blockIdx.x * FK;
  const int g = blockIdx.y, b = blockIdx.z, G = H / Hkv;
  const int64_t qstride = static_cast<int64_t>(H) * D, kvstride = static_cast<int64_t>(Hkv) * D;
  const int64_t kvoff = (static_cast<int64_t>(b) * T * Hkv + g) * D + c0 * kvstride;
  load_rows_f32(ks, ld, k + kvoff, kvstride, FK, T - c0, D, 1.0f);
  load_rows_f32(vs, ld, v + kvoff, kvstride, FK, T - c0, D, 1.0f);

  float dka[FKW][NJ], dva[FKW][NJ];
  GROWLM_UNROLL
  for (int kk = 0; kk < FKW; ++kk)
    GROWLM_UNROLL
    for (int j = 0; j < NJ; ++j) dka[kk][j] = dva[kk][j] = 0.0f;
  const int c = c0 + lane;
  for (int hh = 0; hh < G; ++hh) {
    const int h = g * G + hh;
    const float* lrow = lse + (static_cast<int64_t>(b) * H + h) * T;
    const float* drow = delta + (static_cast<int64_t>(b) * H + h) * T;
    for (int t0 = c0; t0 < T; t0 += FR) {
      __syncthreads();  // the previous pair's qs, dos, ps, dss are consumed
      const int64_t qoff = (static_cast<int64_t>(b) * T * H + h) * D + t0 * qstride;
      load_rows_f32(qs, D, q + qoff, qstride, FR, T - t0, D, 1.0f);
      load_rows_f32(dos, D, dout + qoff, qstride, FR, T - t0, D, 1.0f);
      if (threadIdx.x < FR) {
        const int t = t0 + threadIdx.x;
        lse2s[threadIdx.x] = t < T ? lrow[t] * LOG2E : 0.0f;
        deltas[threadIdx.x] = t < T ? drow[t] : 0.0f;
      }
      __syncthreads();
      float s[FROWS], dp[FROWS];
      GROWLM_UNROLL
      for (int r = 0; r < FROWS; ++r) s[r] = dp[r] = 0.0f;
      const float* kr = ks + lane * ld;
      const float* vr = vs + lane * ld;
      const float* qr = qs + warp * FROWS * D;
      const float* dr = dos + warp * FROWS * D;
      for (int d = 0; d < D; ++d) {
        const float kd = kr[d], vd = vr[d];
        GROWLM_UNROLL
        for (int r = 0; r < FROWS; ++r) {
          s[r] += qr[r * D + d] * kd;
          dp[r] += dr[r * D + d] * vd;
        }
      }
      GROWLM_UNROLL
      for (int r = 0; r < FROWS; ++r) {
        const int rr = warp * FROWS + r, t = t0 + rr;
        const float p = c <= t && t < T ? exp2f(s[r] * qscale - lse2s[rr]) : 0.0f;
        ps[rr * (FK + 1) + lane] = p;
        dss[rr * (FK + 1) + lane] = p * (dp[r] - deltas[rr]);
      }
      __syncthreads();
      // Query rows ascending; each row of dO and Q is read once for the warp's 8 keys.
      for (int r = 0; r < FR; ++r) {
        float dor[NJ], qr2[NJ];
        GROWLM_UNROLL
        for (int j = 0; j < NJ; ++j) {
          const int d = lane + 32 * j;
          dor[j] = d < D ? dos[r * D + d] : 0.0f;
          qr2[j] = d < D ? qs[r * D + d] : 0.0f;
        }
        GROWLM_UNROLL
        for (int kk = 0; kk < FKW; ++kk) {
          const int key = warp * FKW + kk;
          const float pr = ps[r * (FK + 1) + key], dsr = dss[r * (FK + 1) + key];
          GROWLM_UNROLL
          for (int j = 0; j < NJ; ++j) {
            dva[kk][j] += pr * dor[j];
            dka[kk][j] += dsr * qr2[j];
          }
        }
      }
    }
  }
  GROWLM_UNROLL
  for (int kk = 0; kk < FKW; ++kk) {
    const int key = warp * FKW + kk;
    if (c0 + key >= T) continue;
    float* krow = dk + kvoff + key * kvstride;
    float* vrow = dv + kvoff + key * kvstride;
    GROWLM_UNROLL
    for (int j = 0; j < NJ; ++j) {
      const int d = lane + 32 * j;
      if (d < D) {
        krow[d] = dka[kk][j] * scale;
        vrow[d] = dva[kk][j];
      }
    }
  }
}

// Cached attention: one warp per (head, query, b), grid (H, Tq, B). Keys from key_begin[b]
// in chunks of 32 slots, so a row's result depends only on its q and its valid keys.
// key_begin cannot be checked on the host (it is device memory): the kernel clamps it to
// [0, Tk], which is the identity for every valid value.
template <int NJ>
__global__ void __launch_bounds__(32) attention_cached_forward_f32_kernel(
    float* out, const float* q, const float* k, const float* v, const int32_t* key_begin, int Tq, int Tk,
    int S, int H, int Hkv, int D, float qscale) {
  GROWLM_DYNAMIC_SHARED(float, smem);
  const int ld = odd_pitch(D);
  float* qs = smem;      // D, scaled
  float* kv = qs + D;    // FK × ld: a chunk of K, then of V
  const int lane = threadIdx.x;
  const int h = blockIdx.x, i = blockIdx.y, b = blockIdx.z, g = h / (H / Hkv);
  const int begin = min(max(key_begin[b], 0), Tk);
  const int p = Tk - Tq + i;
  float* orow = out + ((static_cast<int64_t>(b) * Tq + i) * H + h) * D;
  if (p < begin) {
    for (int d = lane; d < D; d += 32) orow[d] = 0.0f;
    return;  // the whole block leaves
  }
  const float* qrow = q + ((static_cast<int64_t>(b) * Tq + i) * H + h) * D;
  for (int d = lane; d < D; d += 32) qs[d] = qrow[d] * qscale;
  const int64_t kvstride = static_cast<int64_t>(Hkv) * D;
  const int64_t kvbase = static_cast<int64_t>(b) * S * kvstride + static_cast<int64_t>(g) * D;
  float m = MASKED, l = 0.0f, acc[NJ];
  GROWLM_UNROLL
  for (int j = 0; j < NJ; ++j) acc[j] = 0.0f;
  for (int c0 = begin; c0 <= p; c0 += FK) {
    const int n = min(FK, p + 1 - c0);
    __syncwarp();
    load_rows_f32(kv, ld, k + kvbase + c0 * kvstride, kvstride, FK, n, D, 1.0f);
    __syncwarp();
    float s = 0.0f;
    const float* kr = kv + lane * ld;
    for (int d = 0; d < D; ++d) s += qs[d] * kr[d];
    if (lane >= n) s = MASKED;
    const float top = fmaxf(m, warp_max(s));
    const float pr = lane < n ? exp2f(s - top) : 0.0f;
    const float alpha = exp2f(m - top);
    l = l * alpha + warp_sum(pr);
    m = top;
    GROWLM_UNROLL
    for (int j = 0; j < NJ; ++j) acc[j] *= alpha;
    __syncwarp();
    load_rows_f32(kv, ld, v + kvbase + c0 * kvstride, kvstride, FK, n, D, 1.0f);
    __syncwarp();
    for (int cc = 0; cc < n; ++cc) {
      const float pc = __shfl_sync(FULL, pr, cc);
      GROWLM_UNROLL
      for (int j = 0; j < NJ; ++j) {
        const int d = lane + 32 * j;
        if (d < D) acc[j] += pc * kv[cc * ld + d];
      }
    }
  }
  GROWLM_UNROLL
  for (int j = 0; j < NJ; ++j) {
    const int d = lane + 32 * j;
    if (d < D) orow[d] = acc[j] / l;
  }
}

// ---------------------------------------------------------------------------------------
// bf16 kernels (tensor cores). 64×64 tiles, 4 warps of 16 rows. Shared-memory pitches:
// bf16 tiles D + 8 (16-byte pad: consecutive rows start in different banks, rows stay
// 16-byte aligned for vector loads and 32-byte fragment pointers stay aligned), fp32 score
// staging 64 + 4, bf16 P / dS 64 + 8, fp32 output staging D + 4.

constexpr int TB = 64;  // tile rows (queries) and columns (keys)
constexpr int BW = 4;   // warps
constexpr int BTHREADS = BW * 32;
constexpr int LDS = TB + 4;  // fp32 score staging pitch
constexpr int LDP = TB + 8;  // bf16 P / dS pitch

template <int D>
struct Bf16Tiles {
  static constexpr int LDH = D + 8;                        // bf16 tile pitch
  static constexpr int LDO = D + 4;                        // fp32 output staging pitch
  static constexpr size_t TILE = size_t(TB) * LDH * 2;     // bytes of one bf16 tile
  static constexpr size_t STAGE = size_t(BW) * 16 * LDS * 4;   // per-block score staging
  static constexpr size_t PTILE = size_t(BW) * 16 * LDP * 2;   // per-block P or dS
  static constexpr size_t OSTAGE = size_t(BW) * 16 * LDO * 4;  // per-block output staging
  static constexpr int FD = D / 16;                       // fragments along D
};

struct alignas(16) Pack16 {
  uint32_t w[4];
};

// TB rows × D bf16 from global rows `stride` elements apart into shared rows D + 8 apart,
// 16 bytes per access; rows at or past `valid` zero-filled.
template <int D>
__device__ __forceinline__ void load_tile_bf16(bf16* dst, const bf16* src, int64_t stride, int valid) {
  constexpr int VPR = D / 8;  // 16-byte vectors per row
  for (int e = threadIdx.x; e < TB * VPR; e += blockDim.x) {
    const int r = e / VPR, c = e - r * VPR;
    Pack16 x{};
    if (r < valid) x = *reinterpret_cast<const Pack16*>(src + r * stride + c * 8);
    *reinterpret_cast<Pack16*>(dst + r * Bf16Tiles<D>::LDH + c * 8) = x;
  }
}

typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> FragA;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> FragB;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> FragBt;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> FragC;

// acc[n] (16 rows × 16 columns n) = A (16 rows × D at a, pitch lda) · Bᵀ where B is TB rows
// × D at bm (pitch ldb): scores of 16 rows against the TB rows of a tile.
template <int D>
__device__ __forceinline__ void scores_16xTB(FragC (&acc)[TB / 16], const bf16* a, int lda, const bf16* bm,
                                             int ldb) {
  GROWLM_UNROLL
  for (int n = 0; n < TB / 16; ++n) wmma::fill_fragment(acc[n], 0.0f);
  GROWLM_UNROLL
  for (int kk = 0; kk < D / 16; ++kk) {
    FragA fa;
    wmma::load_matrix_sync(fa, a + kk * 16, lda);
    GROWLM_UNROLL
    for (int n = 0; n < TB / 16; ++n) {
      FragBt fb;
      wmma::load_matrix_sync(fb, bm + n * 16 * ldb + kk * 16, ldb);
      wmma::mma_sync(acc[n], fa, fb, acc[n]);
    }
  }
}

// acc[n] += P (16 × TB bf16 at p, pitch LDP) · M (TB rows × D at m, pitch ldm).
template <int D>
__device__ __forceinline__ void product_16xD(FragC (&acc)[D / 16], const bf16* p, const bf16* m, int ldm) {
  for (int kc = 0; kc < TB / 16; ++kc) {
    FragA fa;
    wmma::load_matrix_sync(fa, p + kc * 16, LDP);
    GROWLM_UNROLL
    for (int n = 0; n < D / 16; ++n) {
      FragB fb;
      wmma::load_matrix_sync(fb, m + kc * 16 * ldm + n * 16, ldm);
      wmma::mma_sync(acc[n], fa, fb, acc[n]);
    }
  }
}

// Writes 16 rows × D of fragments through the warp's fp32 staging (pitch D + 4), times
// rowscale[r] when given, as bf16 to global rows `stride` apart (rows >= valid skipped).
template <int D>
__device__ __forceinline__ void write_rows_bf16(bf16* dst, int64_t stride, int valid, FragC (&acc)[D / 16],
                                                float* stage, const float* rowscale, int lane) {
  constexpr int LDO = Bf16Tiles<D>::LDO;
  GROWLM_UNROLL
  for (int n = 0; n < D / 16; ++n) wmma::store_matrix_sync(stage + n * 16, acc[n], LDO, wmma::mem_row_major);
  __syncwarp();
  for (int e = lane; e < 16 * D; e += 32) {
    const int r = e / D, d = e - r * D;
    if (r < valid) dst[r * stride + d] = __float2bfloat16(stage[r * LDO + d] * (rowscale ? rowscale[r] : 1.0f));
  }
  __syncwarp();
}

// Forward: one block per (query tile, head, b), grid (ceil(T / 64), H, B), heaviest first.
// Shared: Q, K, V tiles; per warp the fp32 staging (16 × (D + 4): scores, then the rescaled
// or final output), P in bf16 (16 × 72) and 16 row factors.
template <int D>
__global__ void __launch_bounds__(BTHREADS) attention_forward_bf16_kernel(
    bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, int T, int H, int Hkv, float qscale) {
  using L = Bf16Tiles<D>;
  GROWLM_DYNAMIC_SHARED(unsigned char, smem);
  bf16* qs = reinterpret_cast<bf16*>(smem);
  bf16* ks = qs + TB * L::LDH;
  bf16* vs = ks + TB * L::LDH;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* st = reinterpret_cast<float*>(smem + 3 * L::TILE) + warp * 16 * L::LDO;
  bf16* ps = reinterpret_cast<bf16*>(smem + 3 * L::TILE + L::OSTAGE) + warp * 16 * LDP;
  float* rowf = reinterpret_cast<float*>(smem + 3 * L::TILE + L::OSTAGE + L::PTILE) + warp * 16;

  const int i = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);
  const int h = blockIdx.y, b = blockIdx.z, g = h / (H / Hkv);
  const int t0 = i * TB;
  const int64_t qstride = static_cast<int64_t>(H) * D, kvstride = static_cast<int64_t>(Hkv) * D;
  const int64_t qoff = (static_cast<int64_t>(b) * T * H + h) * D + t0 * qstride;
  const bf16* krows = k + (static_cast<int64_t>(b) * T * Hkv + g) * D;
  const bf16* vrows = v + (static_cast<int64_t>(b) * T * Hkv + g) * D;
  load_tile_bf16<D>(qs, q + qoff, qstride, T - t0);
  __syncthreads();
  FragA qf[L::FD];
  GROWLM_UNROLL
  for (int kk = 0; kk < L::FD; ++kk) wmma::load_matrix_sync(qf[kk], qs + warp * 16 * L::LDH + kk * 16, L::LDH);
  FragC o[L::FD];
  GROWLM_UNROLL
  for (int n = 0; n < L::FD; ++n) wmma::fill_fragment(o[n], 0.0f);

  // Softmax: lanes 2r and 2r + 1 share row r of the warp's 16, taking columns 2c + half.
  const int row = lane >> 1, half = lane & 1;
  const int tq = t0 + warp * 16 + row;
  float m = MASKED, l = 0.0f;
  for (int j = 0; j <= i; ++j) {
    const int c0 = j * TB;
    __syncthreads();  // every warp is done with the previous K and V tiles
    load_tile_bf16<D>(ks, krows + c0 * kvstride, kvstride, T - c0);
    load_tile_bf16<D>(vs, vrows + c0 * kvstride, kvstride, T - c0);
    __syncthreads();
    {
      FragC s[TB / 16];
      GROWLM_UNROLL
      for (int n = 0; n < TB / 16; ++n) wmma::fill_fragment(s[n], 0.0f);
      GROWLM_UNROLL
      for (int kk = 0; kk < L::FD; ++kk) {
        GROWLM_UNROLL
        for (int n = 0; n < TB / 16; ++n) {
          FragBt fb;
          wmma::load_matrix_sync(fb, ks + n * 16 * L::LDH + kk * 16, L::LDH);
          wmma::mma_sync(s[n], qf[kk], fb, s[n]);
        }
      }
      GROWLM_UNROLL
      for (int n = 0; n < TB / 16; ++n) wmma::store_matrix_sync(st + n * 16, s[n], L::LDO, wmma::mem_row_major);
    }
    __syncwarp();
    float sv[TB / 2];
    float mx = MASKED;
    GROWLM_UNROLL
    for (int cc = 0; cc < TB / 2; ++cc) {
      const int c = 2 * cc + half, key = c0 + c;
      const bool valid = key <= tq && key < T;
      sv[cc] = valid ? st[row * L::LDO + c] * qscale : MASKED;
      mx = fmaxf(mx, sv[cc]);
    }
    mx = fmaxf(mx, __shfl_xor_sync(FULL, mx, 1));
    // Lazy rescaling: the reference max moves only when the tile's max exceeds it by > 8.
    const bool grow = mx > m + 8.0f;
    const float ref = grow ? mx : m;
    const float alpha = exp2f(m - ref);
    float sum = 0.0f;
    GROWLM_UNROLL
    for (int cc = 0; cc < TB / 2; ++cc) {
      const float p = sv[cc] == MASKED ? 0.0f : exp2f(sv[cc] - ref);
      sum += p;
      ps[row * LDP + 2 * cc + half] = __float2bfloat16(p);
    }
    sum += __shfl_xor_sync(FULL, sum, 1);
    l = l * alpha + sum;
    m = ref;
    int any = grow ? 1 : 0;
    for (int o2 = 16; o2 > 0; o2 >>= 1) any |= __shfl_xor_sync(FULL, any, o2);
    if (any && j > 0) {  // warp-uniform; on the first tile the accumulator is still zero
      if (half == 0) rowf[row] = alpha;
      GROWLM_UNROLL
      for (int n = 0; n < L::FD; ++n) wmma::store_matrix_sync(st + n * 16, o[n], L::LDO, wmma::mem_row_major);
      __syncwarp();
      for (int e = lane; e < 16 * D; e += 32) {
        const int r = e / D, d = e - r * D;
        st[r * L::LDO + d] *= rowf[r];
      }
      __syncwarp();
      GROWLM_UNROLL
      for (int n = 0; n < L::FD; ++n) wmma::load_matrix_sync(o[n], st + n * 16, L::LDO, wmma::mem_row_major);
    }
    __syncwarp();  // P is complete before it is read as fragments
    product_16xD<D>(o, ps, vs, L::LDH);
  }
  if (half == 0) rowf[row] = 1.0f / l;
  if (half == 0 && tq < T) lse[(static_cast<int64_t>(b) * H + h) * T + tq] = (m + log2f(l)) * LN2;
  __syncwarp();
  write_rows_bf16<D>(out + qoff + warp * 16 * qstride, qstride, T - t0 - warp * 16, o, st, rowf, lane);
}

// dK, dV: one block per (key tile, kv head, b), grid (ceil(T / 64), Hkv, B). Warp w owns keys
// 16w .. 16w + 15 of the tile and their dK, dV fragments; query heads of the group in order,
// their query tiles ascending. Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ per warp (16 keys × 64 queries);
// dV += Pᵀ·dO, dK += dSᵀ·Q.
template <int D>
__global__ void __launch_bounds__(BTHREADS) attention_backward_dkdv_bf16_kernel(
    bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k, const bf16* v, const float* lse,
    const float* delta, int T, int H, int Hkv, float qscale, float scale) {
  using L = Bf16Tiles<D>;
  GROWLM_DYNAMIC_SHARED(unsigned char, smem);
  bf16* ks = reinterpret_cast<bf16*>(smem);
  bf16* vs = ks + TB * L::LDH;
  bf16* qs = vs + TB * L::LDH;
  bf16* dos = qs + TB * L::LDH;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* st = reinterpret_cast<float*>(smem + 4 * L::TILE) + warp * 16 * LDS;
  bf16* pt = reinterpret_cast<bf16*>(smem + 4 * L::TILE + L::STAGE) + warp * 16 * LDP;
  bf16* dst = reinterpret_cast<bf16*>(smem + 4 * L::TILE + L::STAGE + L::PTILE) + warp * 16 * LDP;
  float* lse2s = reinterpret_cast<float*>(smem + 4 * L::TILE + L::STAGE + 2 * L::PTILE);
  float* deltas = lse2s + TB;

  const int j = blockIdx.x, g = blockIdx.y, b = blockIdx.z, G = H / Hkv;
  const int c0 = j * TB;
  const int64_t qstride = static_cast<int64_t>(H) * D, kvstride = static_cast<int64_t>(Hkv) * D;
  const int64_t kvoff = (static_cast<int64_t>(b) * T * Hkv + g) * D + c0 * kvstride;
  load_tile_bf16<D>(ks, k + kvoff, kvstride, T - c0);
  load_tile_bf16<D>(vs, v + kvoff, kvstride, T - c0);

  FragC dka[L::FD], dva[L::FD];
  GROWLM_UNROLL
  for (int n = 0; n < L::FD; ++n) {
    wmma::fill_fragment(dka[n], 0.0f);
    wmma::fill_fragment(dva[n], 0.0f);
  }
  const int row = lane >> 1, half = lane & 1;
  const int key = c0 + warp * 16 + row;
  const int nblk = (T + TB - 1) / TB;
  for (int hh = 0; hh < G; ++hh) {
    const int h = g * G + hh;
    const float* lrow = lse + (static_cast<int64_t>(b) * H + h) * T;
    const float* drow = delta + (static_cast<int64_t>(b) * H + h) * T;
    for (int i = j; i < nblk; ++i) {
      const int t0 = i * TB;
      __syncthreads();  // every warp is done with the previous Q and dO tiles
      const int64_t qoff = (static_cast<int64_t>(b) * T * H + h) * D + t0 * qstride;
      load_tile_bf16<D>(qs, q + qoff, qstride, T - t0);
      load_tile_bf16<D>(dos, dout + qoff, qstride, T - t0);
      if (threadIdx.x < TB) {
        const int t = t0 + threadIdx.x;
        lse2s[threadIdx.x] = t < T ? lrow[t] * LOG2E : 0.0f;
        deltas[threadIdx.x] = t < T ? drow[t] : 0.0f;
      }
      __syncthreads();
      float pv[TB / 2];
      {
        FragC s[TB / 16];
        scores_16xTB<D>(s, ks + warp * 16 * L::LDH, L::LDH, qs, L::LDH);
        GROWLM_UNROLL
        for (int n = 0; n < TB / 16; ++n) wmma::store_matrix_sync(st + n * 16, s[n], LDS, wmma::mem_row_major);
      }
      __syncwarp();
      GROWLM_UNROLL
      for (int cc = 0; cc < TB / 2; ++cc) {
        const int c = 2 * cc + half, tq = t0 + c;
        const bool valid = key <= tq && tq < T;
        pv[cc] = valid ? exp2f(st[row * LDS + c] * qscale - lse2s[c]) : 0.0f;
        pt[row * LDP + c] = __float2bfloat16(pv[cc]);
      }
      __syncwarp();
      {
        FragC s[TB / 16];
        scores_16xTB<D>(s, vs + warp * 16 * L::LDH, L::LDH, dos, L::LDH);
        GROWLM_UNROLL
        for (int n = 0; n < TB / 16; ++n) wmma::store_matrix_sync(st + n * 16, s[n], LDS, wmma::mem_row_major);
      }
      __syncwarp();
      GROWLM_UNROLL
      for (int cc = 0; cc < TB / 2; ++cc) {
        const int c = 2 * cc + half;
        dst[row * LDP + c] = __float2bfloat16(pv[cc] * (st[row * LDS + c] - deltas[c]));
      }
      __syncwarp();
      product_16xD<D>(dva, pt, dos, L::LDH);
      product_16xD<D>(dka, dst, qs, L::LDH);
    }
  }
  GROWLM_UNROLL
  for (int n = 0; n < L::FD; ++n)
    GROWLM_UNROLL
    for (int e = 0; e < dka[n].num_elements; ++e) dka[n].x[e] *= scale;
  __syncthreads();  // the Q and dO tiles become the output staging
  float* ost = reinterpret_cast<float*>(smem + 2 * L::TILE) + warp * 16 * L::LDO;
  const int valid = T - c0 - warp * 16;
  write_rows_bf16<D>(dk + kvoff + warp * 16 * kvstride, kvstride, valid, dka, ost, nullptr, lane);
  write_rows_bf16<D>(dv + kvoff + warp * 16 * kvstride, kvstride, valid, dva, ost, nullptr, lane);
}

// dQ: one block per (query tile, head, b), grid (ceil(T / 64), H, B), heaviest first; key
// tiles ascending. Each warp first computes delta of its 16 rows (row_delta, as the delta
// kernel did for the dK/dV pass).
template <int D>
__global__ void __launch_bounds__(BTHREADS) attention_backward_dq_bf16_kernel(
    bf16* dq, const bf16* dout, const bf16* q, const bf16* k, const bf16* v, const bf16* out, const float* lse,
    int T, int H, int Hkv, float qscale, float scale) {
  using L = Bf16Tiles<D>;
  GROWLM_DYNAMIC_SHARED(unsigned char, smem);
  bf16* qs = reinterpret_cast<bf16*>(smem);
  bf16* dos = qs + TB * L::LDH;
  bf16* ks = dos + TB * L::LDH;
  bf16* vs = ks + TB * L::LDH;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* st = reinterpret_cast<float*>(smem + 4 * L::TILE) + warp * 16 * LDS;
  bf16* dst = reinterpret_cast<bf16*>(smem + 4 * L::TILE + L::STAGE) + warp * 16 * LDP;
  float* rows = reinterpret_cast<float*>(smem + 4 * L::TILE + L::STAGE + L::PTILE) + warp * 32;

  const int i = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);
  const int h = blockIdx.y, b = blockIdx.z, g = h / (H / Hkv);
  const int t0 = i * TB;
  const int64_t qstride = static_cast<int64_t>(H) * D, kvstride = static_cast<int64_t>(Hkv) * D;
  const int64_t qoff = (static_cast<int64_t>(b) * T * H + h) * D + t0 * qstride;
  const bf16* krows = k + (static_cast<int64_t>(b) * T * Hkv + g) * D;
  const bf16* vrows = v + (static_cast<int64_t>(b) * T * Hkv + g) * D;
  load_tile_bf16<D>(qs, q + qoff, qstride, T - t0);
  load_tile_bf16<D>(dos, dout + qoff, qstride, T - t0);
  // rows[r]: lse·log2(e) of the warp's row r, rows[16 + r]: its delta (0 past T).
  for (int r = 0; r < 16; ++r) {
    const int t = t0 + warp * 16 + r;
    const int64_t off = qoff + (warp * 16 + r) * qstride;
    const float dl = t < T ? row_delta(dout + off, out + off, D, lane) : 0.0f;
    if (lane == 0) {
      rows[r] = t < T ? lse[(static_cast<int64_t>(b) * H + h) * T + t] * LOG2E : 0.0f;
      rows[16 + r] = dl;
    }
  }
  const int row = lane >> 1, half = lane & 1;
  const int tq = t0 + warp * 16 + row;
  FragC dqa[L::FD];
  GROWLM_UNROLL
  for (int n = 0; n < L::FD; ++n) wmma::fill_fragment(dqa[n], 0.0f);
  for (int j = 0; j <= i; ++j) {
    const int c0 = j * TB;
    __syncthreads();
    load_tile_bf16<D>(ks, krows + c0 * kvstride, kvstride, T - c0);
    load_tile_bf16<D>(vs, vrows + c0 * kvstride, kvstride, T - c0);
    __syncthreads();
    const float lse2 = rows[row], dl = rows[16 + row];
    float pv[TB / 2];
    {
      FragC s[TB / 16];
      scores_16xTB<D>(s, qs + warp * 16 * L::LDH, L::LDH, ks, L::LDH);
      GROWLM_UNROLL
      for (int n = 0; n < TB / 16; ++n) wmma::store_matrix_sync(st + n * 16, s[n], LDS, wmma::mem_row_major);
    }
    __syncwarp();
    GROWLM_UNROLL
    for (int cc = 0; cc < TB / 2; ++cc) {
      const int c = 2 * cc + half, key = c0 + c;
      const bool valid = key <= tq && key < T;
      pv[cc] = valid ? exp2f(st[row * LDS + c] * qscale - lse2) : 0.0f;
    }
    __syncwarp();
    {
      FragC s[TB / 16];
      scores_16xTB<D>(s, dos + warp * 16 * L::LDH, L::LDH, vs, L::LDH);
      GROWLM_UNROLL
      for (int n = 0; n < TB / 16; ++n) wmma::store_matrix_sync(st + n * 16, s[n], LDS, wmma::mem_row_major);
    }
    __syncwarp();
    GROWLM_UNROLL
    for (int cc = 0; cc < TB / 2; ++cc) {
      const int c = 2 * cc + half;
      dst[row * LDP + c] = __float2bfloat16(pv[cc] * (st[row * LDS + c] - dl));
    }
    __syncwarp();
    product_16xD<D>(dqa, dst, ks, L::LDH);
  }
  GROWLM_UNROLL
  for (int n = 0; n < L::FD; ++n)
    GROWLM_UNROLL
    for (int e = 0; e < dqa[n].num_elements; ++e) dqa[n].x[e] *= scale;
  __syncthreads();  // the K and V tiles become the output staging
  float* ost = reinterpret_cast<float*>(smem + 2 * L::TILE) + warp * 16 * L::LDO;
  write_rows_bf16<D>(dq + qoff + warp * 16 * qstride, qstride, T - t0 - warp * 16, dqa, ost, nullptr, lane);
}

// ---------------------------------------------------------------------------------------
// Host side.

// The CPU API's checks, then the grid's.
void check_attention(const char* op, int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, float scale) {
  check_attention_sizes(op, B, T, H, Hkv, D, scale);
  // Grid limits (y and z <= 65535) and int positions inside the kernels.
  if (B > 65535 || H > 65535 || T > (int64_t(1) << 30))
    throw std::invalid_argument(std::string(op) + ": B and H must be <= 65535 and T <= 2^30 on CUDA, got B = " +
                                std::to_string(B) + ", H = " + std::to_string(H) + ", T = " + std::to_string(T));
}

constexpr int64_t MAX_D_F32 = 256;

// Columns per lane of the fp32 kernels (NJ): D <= 32·NJ, NJ in {2, 4, 8}.
int columns_per_lane(const char* op, int64_t D) {
  if (D > MAX_D_F32)
    throw std::invalid_argument(std::string(op) + ": the CUDA fp32 attention supports D <= " +
                                std::to_string(MAX_D_F32) + ", got D = " + std::to_string(D));
  return D <= 64 ? 2 : D <= 128 ? 4 : 8;
}

void check_bf16(const char* op, int64_t D, std::initializer_list<const void*> pointers) {
  if (D != 64 && D != 128)
    throw std::invalid_argument(std::string(op) + ": the bf16 flash attention supports D = 64 or 128, got D = " +
                                std::to_string(D) + " (use the fp32 attention for other head sizes)");
  for (const void* p : pointers) {
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0)
      throw std::invalid_argument(std::string(op) + ": every bf16 buffer must be 16-byte aligned");
  }
}

float log2_scale(float scale) { return static_cast<float>(static_cast<double>(scale) * 1.4426950408889634074); }

template <class E>
void launch_delta(const char* op, float* delta, const E* dout, const E* out, int64_t B, int64_t T, int64_t H,
                  int64_t D, const CudaContext& ctx) {
  const int64_t rows = B * T * H;
  const int64_t blocks = (rows + 3) / 4;
  launch(op, attention_delta_kernel<E>, dim3(static_cast<unsigned>(blocks)), dim3(128), 0, ctx, delta, dout, out,
         rows, static_cast<int>(T), static_cast<int>(H), static_cast<int>(D));
}

template <int NJ>
void forward_f32(float* out, float* lse, const float* q, const float* k, const float* v, int64_t B, int64_t T,
                 int64_t H, int64_t Hkv, int64_t D, float scale, const CudaContext& ctx) {
  const size_t shared = sizeof(float) * (FR * D + FK * odd_pitch(static_cast<int>(D)));
  const dim3 grid(static_cast<unsigned>((T + FR - 1) / FR), static_cast<unsigned>(H), static_cast<unsigned>(B));
  launch("attention_forward", attention_forward_f32_kernel<NJ>, grid, dim3(FTHREADS), shared, ctx, out,
                     lse, q, k, v, static_cast<int>(T), static_cast<int>(H), static_cast<int>(Hkv),
                     static_cast<int>(D), log2_scale(scale));
}

template <int NJ>
void backward_f32(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                  const float* v, const float* out, const float* lse, int64_t B, int64_t T, int64_t H,
                  int64_t Hkv, int64_t D, float scale, const CudaContext& ctx) {
  const char* op = "attention_backward";
  const int ld = odd_pitch(static_cast<int>(D));
  const int Ti = static_cast<int>(T), Hi = static_cast<int>(H), Hkvi = static_cast<int>(Hkv),
            Di = static_cast<int>(D);
  const float qscale = log2_scale(scale);
  // delta lives in dq until the dQ pass overwrites it (B·H·T <= B·T·H·D floats).
  float* delta = dq;
  launch_delta(op, delta, dout, out, B, T, H, D, ctx);
  const size_t kv_shared = sizeof(float) * (2 * FK * ld + 2 * FR * D + 2 * FR * (FK + 1) + 2 * FR);
  launch(op, attention_backward_dkdv_f32_kernel<NJ>,
                     dim3(static_cast<unsigned>((T + FK - 1) / FK), static_cast<unsigned>(Hkv), static_cast<unsigned>(B)),
                     dim3(FTHREADS), kv_shared, ctx, dk, dv, dout, q, k, v, lse, static_cast<const float*>(delta), Ti,
                     Hi, Hkvi, Di, qscale, scale);
  const size_t q_shared = sizeof(float) * (2 * FR * D + 2 * FK * ld);
  launch(op, attention_backward_dq_f32_kernel<NJ>,
                     dim3(static_cast<unsigned>((T + FR - 1) / FR), static_cast<unsigned>(H), static_cast<unsigned>(B)),
                     dim3(FTHREADS), q_shared, ctx, dq, dout, q, k, v, out, lse, Ti, Hi, Hkvi, Di, qscale, scale);
}

template <int NJ>
void cached_forward_f32(float* out, const float* q, const float* k, const float* v, const int32_t* key_begin,
                        int64_t B, int64_t Tq, int64_t Tk, int64_t S, int64_t H, int64_t Hkv, int64_t D, float scale,
                        const CudaContext& ctx) {
  const size_t shared = sizeof(float) * (D + FK * odd_pitch(static_cast<int>(D)));
  launch("attention_cached_forward", attention_cached_forward_f32_kernel<NJ>,
                     dim3(static_cast<unsigned>(H), static_cast<unsigned>(Tq), static_cast<unsigned>(B)), dim3(32),
                     shared, ctx, out, q, k, v, key_begin, static_cast<int>(Tq), static_cast<int>(Tk),
                     static_cast<int>(S), static_cast<int>(H), static_cast<int>(Hkv), static_cast<int>(D),
                     log2_scale(scale));
}

template <int D>
void forward_bf16(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v, int64_t B, int64_t T,
                  int64_t H, int64_t Hkv, float scale, const CudaContext& ctx) {
  using L = Bf16Tiles<D>;
  const size_t shared = 3 * L::TILE + L::OSTAGE + L::PTILE + BW * 16 * sizeof(float);
  launch("attention_forward_bf16", attention_forward_bf16_kernel<D>,
                     dim3(static_cast<unsigned>((T + TB - 1) / TB), static_cast<unsigned>(H), static_cast<unsigned>(B)),
                     dim3(BTHREADS), shared, ctx, out, lse, q, k, v, static_cast<int>(T), static_cast<int>(H),
                     static_cast<int>(Hkv), log2_scale(scale));
}

template <int D>
void backward_bf16(bf16* dq, bf16* dk, bf16* dv, const bf16* dout, const bf16* q, const bf16* k, const bf16* v,
                   const bf16* out, const float* lse, int64_t B, int64_t T, int64_t H, int64_t Hkv, float scale,
                   const CudaContext& ctx) {
  using L = Bf16Tiles<D>;
  const char* op = "attention_backward_bf16";
  const int Ti = static_cast<int>(T), Hi = static_cast<int>(H), Hkvi = static_cast<int>(Hkv);
  const float qscale = log2_scale(scale);
  // delta (fp32, B·H·T) lives in dq (B·T·H·D bf16, D >= 64) until the dQ pass overwrites it.
  float* delta = reinterpret_cast<float*>(dq);
  launch_delta(op, delta, dout, out, B, T, H, static_cast<int64_t>(D), ctx);
  const unsigned tiles = static_cast<unsigned>((T + TB - 1) / TB);
  const size_t kv_shared = 4 * L::TILE + L::STAGE + 2 * L::PTILE + 2 * TB * sizeof(float);
  launch(op, attention_backward_dkdv_bf16_kernel<D>,
                     dim3(tiles, static_cast<unsigned>(Hkv), static_cast<unsigned>(B)), dim3(BTHREADS), kv_shared, ctx,
                     dk, dv, dout, q, k, v, lse, static_cast<const float*>(delta), Ti, Hi, Hkvi, qscale, scale);
  const size_t q_shared = 4 * L::TILE + L::STAGE + L::PTILE + BW * 32 * sizeof(float);
  launch(op, attention_backward_dq_bf16_kernel<D>,
                     dim3(tiles, static_cast<unsigned>(H), static_cast<unsigned>(B)), dim3(BTHREADS), q_shared, ctx, dq,
                     dout, q, k, v, out, lse, Ti, Hi, Hkvi, qscale, scale);
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, int64_t B, int64_t T,
                       int64_t H, int64_t Hkv, int64_t D, float scale, const CudaContext& ctx) {
  const char* op = "attention_forward";
  check_attention(op, B, T, H, Hkv, D, scale);
  switch (columns_per_lane(op, D)) {
    case 2: forward_f32<2>(out, lse, q, k, v, B, T, H, Hkv, D, scale, ctx); break;
    case 4: forward_f32<4>(out, lse, q, k, v, B, T, H, Hkv, D, scale, ctx); break;
    default: forward_f32<8>(out, lse, q, k, v, B, T, H, Hkv, D, scale, ctx); break;
  }
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, int64_t B, int64_t T, int64_t H,
                        int64_t Hkv, int64_t D, float scale, const CudaContext& ctx) {
  const char* op = "attention_backward";
  check_attention(op, B, T, H, Hkv, D, scale);
  switch (columns_per_lane(op, D)) {
    case 2: backward_f32<2>(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, Hkv, D, scale, ctx); break;
    case 4: backward_f32<4>(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, Hkv, D, scale, ctx); break;
    default: backward_f32<8>(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, Hkv, D, scale, ctx); break;
  }
}

void attention_cached_forward(float* out, const float* q, const float* k, const float* v, const int32_t* key_begin,
                              int64_t B, int64_t Tq, int64_t Tk, int64_t S, int64_t H, int64_t Hkv, int64_t D,
                              float scale, const CudaContext& ctx) {
  const char* op = "attention_cached_forward";
  check_attention(op, B, Tq, H, Hkv, D, scale);
  if (Tk < Tq || S < Tk)
    throw std::invalid_argument(std::string(op) + ": need Tq <= Tk <= S but Tq = " + std::to_string(Tq) +
                                ", Tk = " + std::to_string(Tk) + ", S = " + std::to_string(S));
  if (S > (int64_t(1) << 30) || Tq > 65535)
    throw std::invalid_argument(std::string(op) + ": on CUDA Tq must be <= 65535 and S <= 2^30, got Tq = " +
                                std::to_string(Tq) + ", S = " + std::to_string(S));
  switch (columns_per_lane(op, D)) {
    case 2: cached_forward_f32<2>(out, q, k, v, key_begin, B, Tq, Tk, S, H, Hkv, D, scale, ctx); break;
    case 4: cached_forward_f32<4>(out, q, k, v, key_begin, B, Tq, Tk, S, H, Hkv, D, scale, ctx); break;
    default: cached_forward_f32<8>(out, q, k, v, key_begin, B, Tq, Tk, S, H, Hkv, D, scale, ctx); break;
  }
}

void attention_forward_bf16(uint16_t* out, float* lse, const uint16_t* q, const uint16_t* k, const uint16_t* v,
                            int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, float scale,
                            const CudaContext& ctx) {
  const char* op = "attention_forward_bf16";
  check_attention(op, B, T, H, Hkv, D, scale);
  check_bf16(op, D, {out, q, k, v});
  auto* o = reinterpret_cast<bf16*>(out);
  const auto* qb = reinterpret_cast<const bf16*>(q);
  const auto* kb = reinterpret_cast<const bf16*>(k);
  const auto* vb = reinterpret_cast<const bf16*>(v);
  if (D == 64) forward_bf16<64>(o, lse, qb, kb, vb, B, T, H, Hkv, scale, ctx);
  else forward_bf16<128>(o, lse, qb, kb, vb, B, T, H, Hkv, scale, ctx);
}

void attention_backward_bf16(uint16_t* dq, uint16_t* dk, uint16_t* dv, const uint16_t* dout, const uint16_t* q,
                             const uint16_t* k, const uint16_t* v, const uint16_t* out, const float* lse, int64_t B,
                             int64_t T, int64_t H, int64_t Hkv, int64_t D, float scale, const CudaContext& ctx) {
  const char* op = "attention_backward_bf16";
  check_attention(op, B, T, H, Hkv, D, scale);
  check_bf16(op, D, {dq, dk, dv, dout, q, k, v, out});
  auto cast = [](const uint16_t* p) { return reinterpret_cast<const bf16*>(p); };
  auto* dqb = reinterpret_cast<bf16*>(dq);
  auto* dkb = reinterpret_cast<bf16*>(dk);
  auto* dvb = reinterpret_cast<bf16*>(dv);
  if (D == 64)
    backward_bf16<64>(dqb, dkb, dvb, cast(dout), cast(q), cast(k), cast(v), cast(out), lse, B, T, H, Hkv, scale, ctx);
  else
    backward_bf16<128>(dqb, dkb, dvb, cast(dout), cast(q), cast(k), cast(v), cast(out), lse, B, T, H, Hkv, scale, ctx);
}

}  // namespace growlm::GROWLM_CUDA_NS
