// bf16 GEMM micro-kernel with AVX512_BF16 (vdpbf16ps): a 14x32 fp32 register tile
// (28 zmm accumulators) updated per k-pair by two aligned loads of B̃, 14 32-bit
// broadcasts of Ã pairs and 28 dot-product instructions. The packing and the blocking
// around it live in kernels/gemm.cpp; test/kernels/gemm.test.ts checks the result against
// the float64 product of the bf16 values. Also the few-row tiles of gemm.cpp's
// gemm_small_m, which read B in place: up to 8 rows by transposing 16 x 16 k-pair words in
// registers, 9 to 32 rows with vectors over the rows of C and B's pair words broadcast.
//
// This file alone is compiled with -mavx512bf16 (CMakeLists.txt) and is only reached
// after the CPU reported the feature, so it defines nothing but the kernels and their
// local helpers (named bf16dot_*, or of internal linkage as transpose16.h's): no inline
// function of external linkage could be emitted here with AVX-512 code and picked by the
// linker for another file.
#include "gemm_bf16_avx512bf16.h"
#include "transpose16.h"

#include <immintrin.h>

#include <type_traits>

// (transpose16.h also silences GCC 12's false "uninitialized" reports on its intrinsics.)

namespace growlm::cpu {

namespace {


// acc += the pair products of b and the word *w broadcast to every lane, with the broadcast
// folded into vdpbf16ps as its m32bcst operand (GCC 12 emits a separate vpbroadcastd for
// _mm512_set1_epi32, which here doubled the instructions of the inner loop). The products of
// a pair do not depend on which operand holds which factor, so this is bitwise
// _mm512_dpbf16_ps(acc, set1(*w), b).
__attribute__((always_inline)) inline void bf16dot_fma_bcst(__m512& acc, __m512 b, const uint32_t* w) {
  asm("vdpbf16ps %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(b), "m"(*w));
}

template <int R, int T>
void bf16dot_small_m(int cols, int64_t kc, const uint32_t* aw, const uint16_t* b, int64_t ldb,
                     float* c, int64_t ldc, float alpha, float beta) {
  const int64_t pairs = kc / 2, words = (kc + 1) / 2;
  __m512 acc[T][R];
#pragma GCC unroll 4
  for (int u = 0; u < T; ++u)
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) acc[u][i] = _mm512_setzero_ps();
  // 16 words of k-pairs from w0 (or the `count` < 16 left at the end, the last possibly a
  // lone k), for each of the T column tiles. Whole blocks unroll fully, so r[] stays in
  // registers.
  auto block = [&](int64_t w0, auto whole) {
    constexpr bool WHOLE = decltype(whole)::value;
    const int count = WHOLE ? 16 : static_cast<int>(words - w0);
    const int full = WHOLE ? 16 : static_cast<int>(pairs - w0);
    const __mmask16 mask = static_cast<__mmask16>((1u << full) - 1);
#pragma GCC unroll 4
    for (int u = 0; u < T; ++u) {
      const int cu = cols - 16 * u < 16 ? cols - 16 * u : 16;
      if (cu <= 0) break;
      // The next tile's lines at the same k, into L2 (as the fp32 few-row tiles do; past
      // the end of B a prefetch is a no-op).
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) __builtin_prefetch(b + (16 * (T + u) + i) * ldb + 2 * w0, 0, 2);
      __m512 r[16];
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) {
        __m512i w = _mm512_setzero_si512();
        if (i < cu) {
          const uint16_t* row = b + (16 * u + i) * ldb;
          w = _mm512_maskz_loadu_epi32(mask, row + 2 * w0);
          if (!WHOLE && full < count) w = _mm512_mask_set1_epi32(w, static_cast<__mmask16>(1u << full), row[kc - 1]);
        }
        r[i] = _mm512_castsi512_ps(w);
      }
      transpose16(r);
#pragma GCC unroll 16
      for (int t = 0; t < (WHOLE ? 16 : count); ++t) {
#pragma GCC unroll 8
        for (int i = 0; i < R; ++i) bf16dot_fma_bcst(acc[u][i], r[t], aw + (w0 + t) * R + i);
      }
    }
  };
  int64_t w0 = 0;
  for (; w0 + 16 <= pairs; w0 += 16) block(w0, std::true_type{});
  if (w0 < words) block(w0, std::false_type{});
  const __m512 va = _mm512_set1_ps(alpha);
#pragma GCC unroll 4
  for (int u = 0; u < T; ++u) {
    const int cu = cols - 16 * u < 16 ? cols - 16 * u : 16;
    if (cu <= 0) break;
    const __mmask16 store = static_cast<__mmask16>((1u << cu) - 1);
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      float* row = c + i * ldc + 16 * u;
      const __m512 out = beta == 0.0f
                             ? _mm512_mul_ps(va, acc[u][i])
                             : _mm512_fmadd_ps(va, acc[u][i], _mm512_mul_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(store, row)));
      _mm512_mask_storeu_ps(row, store, out);
    }
  }
}

// A k-pair word of B read in place: two bf16 at any even or odd element offset.
typedef uint32_t bf16dot_pair_word __attribute__((aligned(2), may_alias));

// gemm_bf16dot_rows for R = 16·NV lanes: J accumulators of NV vectors (the rows of one column
// each), one broadcast pair word of B per vdpbf16ps, J rows of B streamed side by side while
// the next J are prefetched into L2 (as kernels/gemm.cpp's small_m_rows_tile does for fp32).
template <int NV, int J>
void bf16dot_rows(int M, int cols, int64_t kc, const uint32_t* __restrict aw, const uint16_t* __restrict b,
                  int64_t ldb, float* __restrict c, int64_t ldc, float alpha, float beta) {
  constexpr int R = 16 * NV;
  const int64_t pairs = kc / 2;
  const uint16_t* row[J];
#pragma GCC unroll 16
  for (int j = 0; j < J; ++j) row[j] = b + (j < cols ? j : cols - 1) * ldb;  // past `cols`: repeat the last (never stored)
  __m512 acc[J][NV];
#pragma GCC unroll 16
  for (int j = 0; j < J; ++j)
#pragma GCC unroll 2
    for (int u = 0; u < NV; ++u) acc[j][u] = _mm512_setzero_ps();
  auto step = [&](int64_t p) {
    __m512 a[NV];
#pragma GCC unroll 2
    for (int u = 0; u < NV; ++u) a[u] = _mm512_load_ps(reinterpret_cast<const float*>(aw + p * R + 16 * u));
#pragma GCC unroll 16
    for (int j = 0; j < J; ++j) {
      const auto* w = reinterpret_cast<const bf16dot_pair_word*>(row[j] + 2 * p);
#pragma GCC unroll 2
      for (int u = 0; u < NV; ++u) bf16dot_fma_bcst(acc[j][u], a[u], w);
    }
  };
  int64_t p = 0;
  for (; p + 16 <= pairs; p += 16) {
#pragma GCC unroll 16
    for (int j = 0; j < J; ++j) __builtin_prefetch(row[j] + J * ldb + 2 * p, 0, 2);
#pragma GCC unroll 16
    for (int t = 0; t < 16; ++t) step(p + t);
  }
  for (; p < pairs; ++p) step(p);
  if (kc % 2 != 0) {
    // The lone last k: its word of A has a zero high half; B's must too (the next element
    // may be anything, or past the end).
    __m512 a[NV];
#pragma GCC unroll 2
    for (int u = 0; u < NV; ++u) a[u] = _mm512_load_ps(reinterpret_cast<const float*>(aw + pairs * R + 16 * u));
#pragma GCC unroll 16
    for (int j = 0; j < J; ++j) {
      const uint32_t w = row[j][kc - 1];
#pragma GCC unroll 2
      for (int u = 0; u < NV; ++u) bf16dot_fma_bcst(acc[j][u], a[u], &w);
    }
  }
  alignas(64) float out[R];
  // Unrolled, so that acc is only ever indexed by constants and stays in registers (a
  // run-time index would put it in memory, and the asm above would then store it after
  // every vdpbf16ps).
#pragma GCC unroll 16
  for (int j = 0; j < J; ++j) {
    if (j >= cols) break;
#pragma GCC unroll 2
    for (int u = 0; u < NV; ++u) _mm512_store_ps(out + 16 * u, acc[j][u]);
    for (int m = 0; m < M; ++m) {
      float* q = c + m * ldc + j;
      // As gemm_bf16dot_micro: alpha·acc, or fma(alpha, acc, beta·C).
      *q = beta == 0.0f ? alpha * out[m] : __builtin_fmaf(alpha, out[m], beta * *q);
    }
  }
}

}  // namespace

void gemm_bf16dot_rows(int rows, int cols, int64_t kc, const uint32_t* aw, const uint16_t* b,
                       int64_t ldb, float* c, int64_t ldc, float alpha, float beta) {
  if (rows <= 16) return bf16dot_rows<1, BF16DOT_ROWS_TILE>(rows, cols, kc, aw, b, ldb, c, ldc, alpha, beta);
  bf16dot_rows<2, BF16DOT_ROWS_TILE>(rows, cols, kc, aw, b, ldb, c, ldc, alpha, beta);
}

void gemm_bf16dot_micro(int64_t pairs, const uint32_t* a, const uint32_t* b, float* c,
                        int64_t ldc, float alpha, float beta) {
  constexpr int MR = BF16DOT_MR;
  __m512 acc[MR][2];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  // The C tile is read (or written) right after the loop: start fetching its rows now.
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    __builtin_prefetch(c + i * ldc, 1);
    __builtin_prefetch(c + i * ldc + 16, 1);
  }
  for (int64_t p = 0; p < pairs; ++p) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(b);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(b + 16);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[i]));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
    }
    a += MR;
    b += BF16DOT_NR;
  }
  const __m512 va = _mm512_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      _mm512_storeu_ps(c + i * ldc, _mm512_mul_ps(va, acc[i][0]));
      _mm512_storeu_ps(c + i * ldc + 16, _mm512_mul_ps(va, acc[i][1]));
    }
  } else {
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      float* row = c + i * ldc;
      _mm512_storeu_ps(row, _mm512_fmadd_ps(va, acc[i][0], _mm512_mul_ps(vb, _mm512_loadu_ps(row))));
      _mm512_storeu_ps(row + 16, _mm512_fmadd_ps(va, acc[i][1], _mm512_mul_ps(vb, _mm512_loadu_ps(row + 16))));
    }
  }
}

void gemm_bf16dot_small_m(int rows, int cols, int64_t kc, const uint32_t* aw, const uint16_t* b,
                          int64_t ldb, float* c, int64_t ldc, float alpha, float beta) {
  switch (rows) {
    case 1: return bf16dot_small_m<1, bf16dot_small_tiles(1)>(cols, kc, aw, b, ldb, c, ldc, alpha, beta);
    case 2: return bf16dot_small_m<2, bf16dot_small_tiles(2)>(cols, kc, aw, b, ldb, c, ldc, alpha, beta);
    case 3: return bf16dot_small_m<3, bf16dot_small_tiles(3)>(cols, kc, aw, b, ldb, c, ldc, alpha, beta);
    case 4: return bf16dot_small_m<4, bf16dot_small_tiles(4)>(cols, kc, aw, b, ldb, c, ldc, alpha, beta);
    case 5: return bf16dot_small_m<5, bf16dot_small_tiles(5)>(cols, kc, aw, b, ldb, c, ldc, alpha, beta);
    case 6: return bf16dot_small_m<6, bf16dot_small_tiles(6)>(cols, kc, aw, b, ldb, c, ldc, alpha, beta);
    case 7: return bf16dot_small_m<7, bf16dot_small_tiles(7)>(cols, kc, aw, b, ldb, c, ldc, alpha, beta);
    default: return bf16dot_small_m<8, bf16dot_small_tiles(8)>(cols, kc, aw, b, ldb, c, ldc, alpha, beta);
  }
}

}  // namespace growlm::cpu
