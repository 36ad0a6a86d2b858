// GEMM (growlm/gemm.h): C[M,N] = alpha * op(A)·op(B) + beta * C, row-major, fp32 or bf16
// inputs, fp32 accumulation and output. Checked against float64 products in
// test/kernels/gemm.test.ts; tools/dev/gemm_dev.cpp times it against OpenBLAS.
//
// BLIS-style packed design. For each NC-column block of C and each KC-deep slice of K,
// op(A) is packed into MR-row slivers Ã [KC][MR] and op(B) into NR-column slivers
// B̃ [KC][NR] (contiguous, 64-byte aligned, zero-padded at the edges). One operand is
// packed once by all threads and shared; then each task packs its own part of the other
// and runs the micro-kernel over the tiles it covers (gemm_packed: tasks are chunks of
// about MC rows when M is large, chunks of NR slivers when it is small).
// Packing absorbs the transposes (and, for bf16, the conversion or the pair layout), so a
// single micro-kernel serves all four layouts. The micro-kernel keeps an MR x NR tile of C
// in registers and adds one rank-1 update per k: NR/VLEN vector loads of B̃, MR
// broadcasts of Ã, MR*NR/VLEN FMAs. Edge tiles run the same kernel on zero-padded slivers
// into a local tile that is then copied, so every element of C sees the same sequence of
// operations whatever its position.
//
// Determinism: each element of C is accumulated over k in the same order (k slices of
// the fixed KC, then k inside the micro-kernel) whichever task computes it, so results are
// bitwise independent of the thread count and of how tiles are split among tasks; tile
// origins are always multiples of MR and NR.
//
// Few rows (up to 32 on AVX-512, 8 on AVX2): a linear layer's forward at decode time,
// C[M, N] = A·Bᵀ with B [N, K] contiguous along k, skips the packing of B; one pool job for
// the whole product, A transposed once per call. Three tiles read B in place:
//  - small_m_rows_tile: vectors over the rows of C, one broadcast element of B per FMA, 8
//    rows of B streamed side by side while the next 8 are prefetched. fp32 B from 2 rows (1
//    on AVX2), and bf16 B widened (blocks of 16 widened, then broadcast) past the
//    transposing tile's rows or on AVX2;
//  - gemm_bf16dot_rows (gemm_bf16_avx512bf16.cpp): the same with vdpbf16ps, bf16 B from 9 rows;
//  - small_m_tile (AVX-512): 16 columns x 16 k loaded at a time and transposed in registers,
//    for fp32 B in a single row (where vectors over the rows would be mostly empty lanes) and
//    bf16 B up to 8 rows (with vdpbf16ps: gemm_bf16dot_small_m).
// Each element of C still gets exactly the packed path's operations (k ascending inside the
// same KC slices, one FMA or vdpbf16ps per k or k-pair, the same alpha/beta update per
// slice), so its bits do not depend on which path ran, nor on M.
//
// bf16: with AVX512_BF16 (Context::bf16_dot) Ã and B̃ hold k-pairs of bf16 in 32-bit words
// and gemm_bf16_avx512bf16.cpp's vdpbf16ps kernel consumes them; otherwise bf16 is widened
// exactly to fp32 while packing and the fp32 kernel runs, so the result is bitwise that of
// sgemm on the widened values.
#include "growlm/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "bf16.h"
#include "growlm/threads.h"
#include "isa.h"
#if defined(GROWLM_ISA_avx512)
#include <immintrin.h>

#include "gemm_bf16_avx512bf16.h"
#include "transpose16.h"
#endif

namespace growlm::cpu::GROWLM_ISA_NS {

namespace {

typedef float vec __attribute__((vector_size(GROWLM_VLEN * 4)));
// The same for rows of C, which carry no alignment guarantee.
typedef float vec_unaligned __attribute__((vector_size(GROWLM_VLEN * 4), aligned(4)));

// Register tile MR x (NV vectors): accumulators + NV loads of B̃ + one broadcast must fit
// the register file (32 zmm: 28 + 2 + 1; 16 ymm or xmm: 12 + 2 + 1).
#if defined(GROWLM_ISA_avx512)
constexpr int MR = 14;
constexpr int NV = 2;
#else
constexpr int MR = 6;
constexpr int NV = 2;
#endif
constexpr int NR = NV * GROWLM_VLEN;

// KC: 512 rank-1 updates per C-tile load/store, and per K slice two pool jobs (so two
// waits for the slowest thread); measured 2-5% faster than 256 on Zen 4 with 2 threads,
// 768 no better. A B̃ sliver (KC x NR, 64 KiB) and the Ã slivers streaming past it are
// read from L2. MC_SLIVERS: an Ã chunk of about 96 rows (192 KiB) is one task of the
// compute job: small enough for a dozen or more tasks per K slice at M >= 1024, so the
// pool's dynamic claiming balances threads that the OS slows down unequally. NC: B̃
// (KC x NC, 4 MiB) lives in L3; Ã is packed once per K slice for N <= NC.
constexpr int64_t KC = 512;
constexpr int64_t MC_SLIVERS = (96 + MR - 1) / MR;
constexpr int64_t NC = 2048;
// Slivers per task of a shared packing phase.
constexpr int64_t PACK_GRAIN = 4;
// Columns of C per task when tasks split N (small M): about 256, 8 or more tasks at
// N >= 2048.
constexpr int64_t TASK_COLUMNS = 256;
// The few-row path's tasks: about 128 columns (for K = 512, 256 KiB of fp32 B), so even
// N = 512 makes 4 tasks and a thread that the OS slows down hands part of its share over;
// a product there is a few tens of microseconds, so one late thread is felt.
constexpr int64_t SMALL_M_TASK_COLUMNS = 128;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

float widen(float x) { return x; }
float widen(uint16_t h) { return bf16_bits_to_f32(h); }

// ---------------------------------------------------------------------------------------
// fp32 micro-kernel: C[MR, NR] = alpha * Ã·B̃ + beta * C; beta == 0 does not read C.
template <int R, int V>
void micro_f32(int64_t kc, const float* __restrict a, const float* __restrict b,
               float* __restrict c, int64_t ldc, float alpha, float beta) {
  vec acc[R][V];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < V; ++j) acc[i][j] = vec{};
  // The C tile is needed right after the loop: start fetching its rows now.
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    __builtin_prefetch(c + i * ldc, 1);
    __builtin_prefetch(c + i * ldc + V * GROWLM_VLEN - 1, 1);
  }
  for (int64_t k = 0; k < kc; ++k) {
    vec bv[V];
#pragma GCC unroll 4
    for (int j = 0; j < V; ++j) bv[j] = *reinterpret_cast<const vec*>(b + j * GROWLM_VLEN);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      // scalar * vector broadcasts (vec{} + a[i] would add +0.0f first: -0.0f + 0.0f
      // is +0.0f, so the compiler must keep the add).
      const float ai = a[i];
#pragma GCC unroll 4
      for (int j = 0; j < V; ++j) acc[i][j] += ai * bv[j];
    }
    a += R;
    b += V * GROWLM_VLEN;
  }
  if (beta == 0.0f) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < V; ++j)
        *reinterpret_cast<vec_unaligned*>(c + i * ldc + j * GROWLM_VLEN) = alpha * acc[i][j];
  } else {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < V; ++j) {
        vec_unaligned* p = reinterpret_cast<vec_unaligned*>(c + i * ldc + j * GROWLM_VLEN);
        *p = alpha * acc[i][j] + beta * *p;
      }
  }
}

// ---------------------------------------------------------------------------------------
// Packing. A panel of n lines (rows of op(A) or columns of op(B)) starting at line w0, by
// kc values of k from k0, becomes ceil(n / W) slivers of W lines, each stored [kc][W] (one
// after the other); lines past n are zero. The source is either contiguous along k
// (`along_k`: line r starts at src + (w0 + r) * ld + k0, as for A not transposed and B
// transposed) or contiguous along the lines (value k of every line starts at
// src + (k0 + k) * ld + w0): then a whole panel row is read at once, so each source row
// is touched once per panel instead of once per sliver.

#if defined(GROWLM_ISA_avx512)
// GCC 12 reports the _mm512_undefined_*() placeholders inside its own shuffle and
// conversion intrinsics as "may be used uninitialized"; they are never read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// How a source line is read 16 lanes at a time: fp32, bf16 widened to fp32, or bf16
// pairs as 32-bit words. Masked-off lanes are zero and never touch memory.
enum class Lanes { f32, bf16, pairs };

template <Lanes L, class S>
__m512 load16(const S* p, __mmask16 m) {
  if constexpr (L == Lanes::f32) {
    return _mm512_maskz_loadu_ps(m, p);
  } else if constexpr (L == Lanes::bf16) {
    const __m256i h = _mm256_maskz_loadu_epi16(m, p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    return _mm512_castsi512_ps(_mm512_maskz_loadu_epi32(m, p));
  }
}

// The along-k packing with 16 x 16 register transposes: for each sliver and each block of
// 16 lanes along k, 16 lines are loaded, transposed and stored as 16 rows of the sliver
// (masked to W lines). `lanes` 32-bit values per line (element t at 2t for pairs); slivers
// are `stride` lanes apart.
template <int W, Lanes L, class S>
void pack_transposed(float* __restrict dst, const S* __restrict src, int64_t ld, int64_t w0,
                     int64_t n, int64_t k0, int64_t lanes, int64_t stride) {
  constexpr int STEP = L == Lanes::pairs ? 2 : 1;
  constexpr int GROUPS = (W + 15) / 16;
  const int64_t slivers = ceil_div(n, W);
  for (int64_t s = 0; s < slivers; ++s, dst += stride) {
    const int64_t lines = std::min<int64_t>(W, n - s * W);
    for (int64_t t0 = 0; t0 < lanes; t0 += 16) {
      const int count = static_cast<int>(std::min<int64_t>(16, lanes - t0));
      const __mmask16 load_mask = static_cast<__mmask16>((1u << count) - 1);
#pragma GCC unroll 2
      for (int g = 0; g < GROUPS; ++g) {
        __m512 r[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i) {
          const int64_t line = g * 16 + i;
          r[i] = line < lines ? load16<L>(src + (w0 + s * W + line) * ld + k0 + t0 * STEP, load_mask)
                              : _mm512_setzero_ps();
        }
        transpose16(r);
        constexpr int tail = W % 16;
        const __mmask16 store_mask =
            g * 16 + 16 <= W ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << tail) - 1);
        for (int t = 0; t < count; ++t) _mm512_mask_storeu_ps(dst + (t0 + t) * W + g * 16, store_mask, r[t]);
      }
    }
  }
}
#endif

#if defined(GROWLM_ISA_avx512)
// ---------------------------------------------------------------------------------------
constexpr int SMALL_M = 8;  // rows of the transposing few-row path: R accumulators + 16 transposed rows fit 32 zmm
// fp32 B: from this many rows on, vectors over the rows (small_m_rows_tile) beat the register
// transposes (measured on config M's shapes: at one row the transposes win, 161 vs 127
// tokens/s generating at batch 1).
constexpr int64_t SMALL_M_ROWS_MIN = 2;
// bf16 B without vdpbf16ps (AVX-512): up to this many rows the register transposes (which
// widen B as they go), past it vectors over the rows (blocks of B widened, then broadcast).
// config M's decode products with bf16 weights: 3.3-3.8 ms transposed at 2 to 8 rows against
// 4.9 through the rows, and 10 packed.
constexpr int64_t SMALL_M_BF16_TRANSPOSED = 8;

// Few-row product without packing B (see the file comment): C[m, j0 .. j0 + 16) for m < R
// over one K slice [k0, k0 + kc), B read in place as [N, K] (row stride ldb, rows past N
// read as zero), A given transposed as at[k·R + m] (the slice's part of gemm_small_m_transposed's
// copy, so that every broadcast comes from one base pointer). `cols` (1..16) columns are
// stored. (One tile at a time: the transposes, not the FMA chains, bound it.)
template <int R, class S>
void small_m_tile(int cols, int64_t kc, const float* __restrict at, const S* __restrict b,
                  int64_t ldb, float* __restrict c, int64_t ldc, float alpha, float beta) {
  constexpr Lanes L = sizeof(S) == 4 ? Lanes::f32 : Lanes::bf16;
  vec acc[R];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) acc[i] = vec{};
  // 16 values of k (or the `count` < 16 left at the end of the slice) from k0.
  auto block = [&](int64_t k0, auto whole) {
    constexpr bool WHOLE = decltype(whole)::value;
    const int count = WHOLE ? 16 : static_cast<int>(kc - k0);
    const __mmask16 mask = static_cast<__mmask16>((1u << count) - 1);
    // The next tile's lines at the same k, into L2 (as small_m_rows_tile does; past the end
    // of B a prefetch is a no-op).
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) __builtin_prefetch(b + (16 + i) * ldb + k0, 0, 2);
    __m512 r[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) r[i] = i < cols ? load16<L>(b + i * ldb + k0, mask) : _mm512_setzero_ps();
    transpose16(r);
    // Whole blocks unroll fully, so r[] stays in registers.
#pragma GCC unroll 16
    for (int t = 0; t < (WHOLE ? 16 : count); ++t) {
      const vec bv = (vec)r[t];
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) {
        const float ai = at[(k0 + t) * R + i];
        acc[i] += ai * bv;
      }
    }
  };
  int64_t k0 = 0;
  for (; k0 + 16 <= kc; k0 += 16) block(k0, std::true_type{});
  if (k0 < kc) block(k0, std::false_type{});
  const __mmask16 store = static_cast<__mmask16>((1u << cols) - 1);
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
    float* row = c + i * ldc;
    vec out;
    if (beta == 0.0f) {
      out = alpha * acc[i];
    } else {
      // GCC contracts micro_f32's alpha·acc + beta·C to fma(beta, C, alpha·acc); spelled out
      // here (test/kernels/gemm.test.ts checks the two paths bitwise).
      const __m512 old = _mm512_maskz_loadu_ps(store, row);
      out = (vec)_mm512_fmadd_ps(_mm512_set1_ps(beta), old, _mm512_mul_ps(_mm512_set1_ps(alpha), (__m512)acc[i]));
    }
    _mm512_mask_storeu_ps(row, store, (__m512)out);
  }
}
#endif

#if defined(GROWLM_ISA_avx512) || defined(GROWLM_ISA_avx2)
#define GROWLM_FEW_ROWS 1
// fp32 B, vectors over the rows (small_m_rows_tile): up to this many rows. Its FMAs are the
// packed path's (one lane per row), but it reads B once, in place, where the packed path
// packs the weights on every call: config M's decode products (8 layers and the head, cold)
// took 7.1-7.6 ms at 16 rows against 16.3 packed, 14.1 at 32 rows against about 22. AVX2
// (16 ymm) keeps to 8 rows, one ymm per column, and takes single rows too (4 lanes: the
// transposing tile is AVX-512's): config M generated 180 tokens/s at batch 1 on the AVX-512
// path against 71 on AVX2's packed path.
#if defined(GROWLM_ISA_avx512)
constexpr int64_t SMALL_M_ROWS_MAX = 32;
#else
constexpr int64_t SMALL_M_ROWS_MAX = 8;
#endif

// Few rows, fp32 B: vectors run over the R >= M rows of C instead of its columns, so B is
// read in place, one broadcast element per FMA, and nothing is transposed (the transposes
// bound small_m_tile below the memory bandwidth). A tile is J columns of C over one K slice:
// J accumulators, each R rows of one column, fed by J rows of B read front to back. `at`
// is A transposed and zero-padded to R rows, at[k·R + m]. Columns past `cols` repeat the
// last one (never stored), so every load stays inside B. Each row is prefetched at the same
// k on the row J further, which the next tile reads (past the end of B a prefetch is a
// no-op, it cannot fault), into L2 only: a core has far more L2 than L1 misses in flight,
// and config M's decode products (8 layers and the head, 118 MB of weights on huge pages,
// Zen 4, 2 threads) took 3.9 ms with prefetcht1 against 5.2 ms with prefetcht0 (30 against
// 22.5 GB/s, the read bandwidth being about 30). J = 8 streams of B: 8 independent FMA
// chains still cover the FMA latency, and the same products took 3.9 ms against 4.7 with J
// = 16 (also prefetching into L2).
// Per element of C the operations are small_m_tile's: one FMA per k ascending, then
// alpha·acc (and beta·C fused).
constexpr int ROWS_TILE = 8;  // J: 8 accumulators (8 streams of B), enough FMA chains to hide the latency

// R-lane vectors (GCC ignores vector_size on a type that depends on a template parameter).
// 32 rows are two zmm per column, spelled out: GCC's code for a 128-byte vector type spills.
template <int R> struct RowVec;
template <> struct RowVec<4> { typedef float type __attribute__((vector_size(16))); };
template <> struct RowVec<8> { typedef float type __attribute__((vector_size(32))); };
#if defined(GROWLM_ISA_avx512)
template <> struct RowVec<16> { typedef float type __attribute__((vector_size(64))); };
#endif

// S: B's elements, float or bf16 (widened exactly, as the packed path widens them).
template <int R, int J, class S>
void small_m_rows_tile(int M, int cols, int64_t kc, const float* __restrict at,
                       const S* __restrict b, int64_t ldb, float* __restrict c,
                       int64_t ldc, float alpha, float beta) {
  constexpr int W = R < 16 ? R : 16;  // lanes per vector
  constexpr int NV = R / W;           // vectors per column
  using rvec = typename RowVec<W>::type;
  const S* row[J];
#pragma GCC unroll 32
  for (int j = 0; j < J; ++j) row[j] = b + std::min(j, cols - 1) * ldb;
  rvec acc[J][NV];
#pragma GCC unroll 32
  for (int j = 0; j < J; ++j)
#pragma GCC unroll 2
    for (int u = 0; u < NV; ++u) acc[j][u] = rvec{};
  // acc += B's elements src[j][t] (j < J: the tile's rows of B, or their widened block)
  // times A's rows at k.
  auto step = [&](int64_t k, auto src, int64_t t) {
    rvec a[NV];
#pragma GCC unroll 2
    for (int u = 0; u < NV; ++u) a[u] = *reinterpret_cast<const rvec*>(at + k * R + u * W);
#pragma GCC unroll 32
    for (int j = 0; j < J; ++j) {
      const float bj = widen(src[j][t]);
#pragma GCC unroll 2
      for (int u = 0; u < NV; ++u) acc[j][u] += bj * a[u];
    }
  };
  int64_t k = 0;
  for (; k + 16 <= kc; k += 16) {
#pragma GCC unroll 32
    for (int j = 0; j < J; ++j) __builtin_prefetch(row[j] + J * ldb + k, 0, 2);
    if constexpr (sizeof(S) == 4) {
      const S* cur[J];
#pragma GCC unroll 32
      for (int j = 0; j < J; ++j) cur[j] = row[j] + k;
#pragma GCC unroll 16
      for (int t = 0; t < 16; ++t) step(k + t, cur, t);
    } else {
      // bf16: the block's 16 values of each row widened together (vector shifts), then
      // broadcast from there, instead of a scalar widening per FMA.
      typedef uint16_t bf16x16 __attribute__((vector_size(32), aligned(2)));
      typedef uint32_t u32x16 __attribute__((vector_size(64)));
      alignas(64) float wide[J][16];
#pragma GCC unroll 32
      for (int j = 0; j < J; ++j) {
        const u32x16 bits = __builtin_convertvector(*reinterpret_cast<const bf16x16*>(row[j] + k), u32x16) << 16;
        std::memcpy(wide[j], &bits, sizeof bits);
      }
      // In memory, so that each FMA broadcasts its element from there (held in registers,
      // every element would cost lane shuffles).
      asm("" : "+m"(wide));
#pragma GCC unroll 16
      for (int t = 0; t < 16; ++t) step(k + t, wide, t);
    }
  }
  for (; k < kc; ++k) step(k, row, k);
  for (int j = 0; j < cols; ++j) {
    rvec out[NV];
    for (int u = 0; u < NV; ++u) out[u] = alpha * acc[j][u];
    for (int m = 0; m < M; ++m) {
      float* p = c + m * ldc + j;
      // beta·C + alpha·acc fused as small_m_tile and micro_f32 do.
      const float v = out[m / W][m % W];
      *p = beta == 0.0f ? v : std::fma(beta, *p, v);
    }
  }
}
#endif

template <int W, class S>
void pack_f32(float* __restrict dst, const S* __restrict src, int64_t ld, bool along_k,
              int64_t w0, int64_t n, int64_t k0, int64_t kc) {
  const int64_t slivers = ceil_div(n, W);
  if (along_k) {
#if defined(GROWLM_ISA_avx512)
    constexpr Lanes L = sizeof(S) == 4 ? Lanes::f32 : Lanes::bf16;
    pack_transposed<W, L>(dst, src, ld, w0, n, k0, kc, kc * W);
#else
    for (int64_t s = 0; s < slivers; ++s, dst += kc * W) {
      const int64_t lines = std::min<int64_t>(W, n - s * W);
      // Blocks of 16 k keep the written part of the sliver (16 x W) in L1 while the
      // source lines are read sequentially.
      for (int64_t kb = 0; kb < kc; kb += 16) {
        const int64_t ke = std::min<int64_t>(kc, kb + 16);
        for (int64_t r = 0; r < lines; ++r) {
          const S* line = src + (w0 + s * W + r) * ld + k0;
          for (int64_t k = kb; k < ke; ++k) dst[k * W + r] = widen(line[k]);
        }
        for (int64_t r = lines; r < W; ++r)
          for (int64_t k = kb; k < ke; ++k) dst[k * W + r] = 0.0f;
      }
    }
#endif
  } else {
    for (int64_t k = 0; k < kc; ++k) {
      const S* line = src + (k0 + k) * ld + w0;
      for (int64_t s = 0; s < slivers; ++s) {
        float* out = dst + s * kc * W + k * W;
        const S* in = line + s * W;
        const int64_t lines = std::min<int64_t>(W, n - s * W);
        if (lines == W) {
#pragma GCC unroll 4
          for (int r = 0; r < W; ++r) out[r] = widen(in[r]);
        } else {
          for (int64_t r = 0; r < lines; ++r) out[r] = widen(in[r]);
          for (int64_t r = lines; r < W; ++r) out[r] = 0.0f;
        }
      }
    }
  }
}

#if defined(GROWLM_ISA_avx512)
// The same into bf16 pairs for vdpbf16ps: a sliver is [ceil(kc/2)][W] 32-bit words, word p
// of line r holding k = 2p (low half) and 2p + 1 (high half); an odd kc pads the last
// word's high half with zero.
template <int W>
void pack_bf16_pairs(uint32_t* __restrict dst, const uint16_t* __restrict src, int64_t ld,
                     bool along_k, int64_t w0, int64_t n, int64_t k0, int64_t kc) {
  const int64_t slivers = ceil_div(n, W);
  const int64_t pairs = kc / 2, words = ceil_div(kc, 2);
  if (along_k) {
    pack_transposed<W, Lanes::pairs>(reinterpret_cast<float*>(dst), src, ld, w0, n, k0, pairs, words * W);
    if (words == pairs) return;
    // Odd kc: the last word holds k = kc - 1 alone.
    for (int64_t s = 0; s < slivers; ++s) {
      uint32_t* out = dst + s * words * W + pairs * W;
      const int64_t lines = std::min<int64_t>(W, n - s * W);
      for (int64_t r = 0; r < lines; ++r) out[r] = src[(w0 + s * W + r) * ld + k0 + 2 * pairs];
      for (int64_t r = lines; r < W; ++r) out[r] = 0;
    }
  } else {
    // Rows k = 2p and 2p + 1 interleaved: 16 lines at a time, zero-extended to 32 bits,
    // the odd row shifted into the high halves (absent for the last word of an odd kc).
    for (int64_t p = 0; p < words; ++p) {
      const uint16_t* lo = src + (k0 + 2 * p) * ld + w0;
      const bool has_hi = 2 * p + 1 < kc;
      for (int64_t s = 0; s < slivers; ++s) {
        uint32_t* out = dst + s * words * W + p * W;
        const int64_t lines = std::min<int64_t>(W, n - s * W);
#pragma GCC unroll 2
        for (int g = 0; g < W; g += 16) {
          const int64_t valid = std::min<int64_t>(16, std::max<int64_t>(0, lines - g));
          const __mmask16 m = static_cast<__mmask16>((1u << valid) - 1);
          const int64_t at = s * W + g;
          __m512i word = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, lo + at));
          if (has_hi) {
            const __m256i h = _mm256_maskz_loadu_epi16(m, lo + ld + at);
            word = _mm512_or_si512(word, _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
          }
          const __mmask16 store = W - g >= 16 ? static_cast<__mmask16>(0xffff)
                                              : static_cast<__mmask16>((1u << (W - g)) - 1);
          _mm512_mask_storeu_epi32(out + g, store, word);
        }
      }
    }
  }
}
#endif

// ---------------------------------------------------------------------------------------
// Code paths: packed element type, tile, K slice, packing and micro-kernel.

template <class S>
struct F32Path {
  using Src = S;
  using Packed = float;
  static constexpr int mr = MR, nr = NR, kstep = 1;
  static constexpr int64_t kc = KC, mc_slivers = MC_SLIVERS, nc = NC;
  template <int W>
  static void pack(float* dst, const S* src, int64_t ld, bool along_k, int64_t w0, int64_t n,
                   int64_t k0, int64_t depth) {
    pack_f32<W>(dst, src, ld, along_k, w0, n, k0, depth);
  }
  static void micro(int64_t kp, const float* a, const float* b, float* c, int64_t ldc,
                    float alpha, float beta) {
    micro_f32<MR, NV>(kp, a, b, c, ldc, alpha, beta);
  }
};

#if defined(GROWLM_ISA_avx512)
struct Bf16DotPath {
  using Src = uint16_t;
  using Packed = uint32_t;
  static constexpr int mr = BF16DOT_MR, nr = BF16DOT_NR, kstep = 2;
  // KC words of pairs (2 KC values of k): the same bytes per sliver as the fp32 path;
  // measured about 5% faster than KC values of k.
  static constexpr int64_t kc = 2 * KC, mc_slivers = (96 + BF16DOT_MR - 1) / BF16DOT_MR, nc = NC;
  template <int W>
  static void pack(uint32_t* dst, const uint16_t* src, int64_t ld, bool along_k, int64_t w0,
                   int64_t n, int64_t k0, int64_t depth) {
    pack_bf16_pairs<W>(dst, src, ld, along_k, w0, n, k0, depth);
  }
  static void micro(int64_t kp, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc,
                    float alpha, float beta) {
    gemm_bf16dot_micro(kp, a, b, c, ldc, alpha, beta);
  }
};
#endif

// Packing buffers of the calling thread, kept between calls so that repeated calls do not
// page-fault fresh memory. Bounded by the blocking: the shared operand (at most KC x NC,
// 4 MiB) plus a few hundred KiB per pool thread. Allocated before any parallel work, so
// no worker can throw.
class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { std::free(data_); }
  void* get(size_t bytes) {
    if (bytes > size_) {
      std::free(data_);
      data_ = nullptr;
      size_ = 0;
      void* p = std::aligned_alloc(64, static_cast<size_t>(round_up(static_cast<int64_t>(bytes), 64)));
      if (p == nullptr) throw std::bad_alloc();
      data_ = p;
      size_ = bytes;
    }
    return data_;
  }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

thread_local Scratch scratch;

// C = beta * C (K == 0 or alpha == 0); beta == 0 writes zeros without reading C.
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc, const Context& ctx) {
  parallel_for(ctx, M, std::max<int64_t>(1, (1 << 14) / N), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      float* row = C + i * ldc;
      if (beta == 0.0f) {
        for (int64_t j = 0; j < N; ++j) row[j] = 0.0f;
      } else {
        for (int64_t j = 0; j < N; ++j) row[j] *= beta;
      }
    }
  });
}

// One K slice of one NC block runs in two pool jobs: the first packs one operand once,
// shared by every task; in the second each task packs its own part of the other operand
// and runs the micro-kernels over it. Two schedules, chosen by the size of M:
//   by rows (M >= threads * MC): B̃ is shared; a task is a chunk of Ã (MR slivers) packed
//     in its thread's buffer, multiplied by every B̃ sliver (NR slivers outer, so each B̃
//     sliver is reused across the chunk from L1);
//   by columns (smaller M: too few Ã chunks to feed the threads): Ã, all of M, is shared;
//     a task is a chunk of NR slivers, packed a few at a time into its thread's buffer
//     right before the micro-kernels read them, so packing B costs no second pass over
//     memory.
// Both give every element of C the same operations, so the choice never changes results.
template <class P>
void gemm_packed(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                 const typename P::Src* A, int64_t lda, const typename P::Src* B, int64_t ldb,
                 float beta, float* C, int64_t ldc, const Context& ctx) {
  using Packed = typename P::Packed;
  constexpr int mr = P::mr, nr = P::nr;
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0.0f) return scale_c(M, N, beta, C, ldc, ctx);

  const int64_t threads = ctx.pool->size();
  const int64_t m_slivers = ceil_div(M, mr);
  const bool by_rows = m_slivers >= threads * P::mc_slivers;
  // Chunks of slivers: a multiple of the thread count (when there are enough slivers) of
  // at most `max_slivers` each, sizes within one sliver of each other.
  auto chunk_count = [threads](int64_t slivers, int64_t max_slivers) {
    return std::min(slivers, round_up(ceil_div(slivers, max_slivers), threads));
  };
  const int64_t m_chunks = chunk_count(m_slivers, P::mc_slivers);

  const int64_t kp_max = ceil_div(std::min(P::kc, K), P::kstep);
  const int64_t nc_max = std::min(P::nc, round_up(N, nr));
  const int64_t shared_elems = round_up(by_rows ? kp_max * nc_max : m_slivers * mr * kp_max, 16);
  const int64_t own_elems =
      round_up(by_rows ? ceil_div(m_slivers, m_chunks) * mr * kp_max : PACK_GRAIN * nr * kp_max, 16);
  auto* buffer = static_cast<Packed*>(
      scratch.get(static_cast<size_t>(shared_elems + threads * own_elems) * sizeof(Packed)));
  Packed* shared = buffer;
  Packed* own = buffer + shared_elems;

  // A (not transposed) is contiguous along k; B is contiguous along k when transposed.
  const bool a_along_k = !trans_a, b_along_k = trans_b;

  // C[i : i + MR, j : j + NR] from packed slivers; edge tiles go through a local tile.
  auto tile = [&](const Packed* a, const Packed* b, int64_t i, int64_t j, int64_t kp, float beta_k) {
    const int64_t m = std::min<int64_t>(mr, M - i), n = std::min<int64_t>(nr, N - j);
    float* c = C + i * ldc + j;
    if (m == mr && n == nr) return P::micro(kp, a, b, c, ldc, alpha, beta_k);
    alignas(64) float t[mr * nr];
    if (beta_k != 0.0f)
      for (int64_t y = 0; y < m; ++y) std::memcpy(t + y * nr, c + y * ldc, n * sizeof(float));
    P::micro(kp, a, b, t, nr, alpha, beta_k);
    for (int64_t y = 0; y < m; ++y) std::memcpy(c + y * ldc, t + y * nr, n * sizeof(float));
  };

  for (int64_t jc = 0; jc < N; jc += P::nc) {
    const int64_t nc = std::min(P::nc, N - jc);
    const int64_t n_slivers = ceil_div(nc, nr);
    const int64_t n_chunks = chunk_count(n_slivers, TASK_COLUMNS / nr);
    for (int64_t pc = 0; pc < K; pc += P::kc) {
      const int64_t kc = std::min(P::kc, K - pc);
      const int64_t kp = ceil_div(kc, P::kstep);
      const float beta_k = pc == 0 ? beta : 1.0f;
      if (by_rows) {
        parallel_for(ctx, n_slivers, PACK_GRAIN, [&](int64_t lo, int64_t hi) {
          const int64_t j = jc + lo * nr;
          P::template pack<nr>(shared + lo * nr * kp, B, ldb, b_along_k, j,
                               std::min<int64_t>((hi - lo) * nr, N - j), pc, kc);
        });
        ctx.pool->run(m_chunks, [&](int64_t task, int thread) {
          const int64_t s0 = task * m_slivers / m_chunks, s1 = (task + 1) * m_slivers / m_chunks;
          Packed* a = own + thread * own_elems;
          P::template pack<mr>(a, A, lda, a_along_k, s0 * mr,
                               std::min<int64_t>((s1 - s0) * mr, M - s0 * mr), pc, kc);
          for (int64_t r = 0; r < n_slivers; ++r)
            for (int64_t s = s0; s < s1; ++s)
              tile(a + (s - s0) * mr * kp, shared + r * nr * kp, s * mr, jc + r * nr, kp, beta_k);
        });
      } else {
        parallel_for(ctx, m_slivers, PACK_GRAIN, [&](int64_t lo, int64_t hi) {
          P::template pack<mr>(shared + lo * mr * kp, A, lda, a_along_k, lo * mr,
                               std::min<int64_t>((hi - lo) * mr, M - lo * mr), pc, kc);
        });
        ctx.pool->run(n_chunks, [&](int64_t task, int thread) {
          const int64_t r0 = task * n_slivers / n_chunks, r1 = (task + 1) * n_slivers / n_chunks;
          Packed* b = own + thread * own_elems;
          for (int64_t g = r0; g < r1; g += PACK_GRAIN) {
            const int64_t j = jc + g * nr, ge = std::min(r1, g + PACK_GRAIN);
            P::template pack<nr>(b, B, ldb, b_along_k, j, std::min<int64_t>((ge - g) * nr, N - j), pc, kc);
            for (int64_t r = g; r < ge; ++r)
              for (int64_t s = 0; s < m_slivers; ++s)
                tile(shared + s * mr * kp, b + (r - g) * nr * kp, s * mr, jc + r * nr, kp, beta_k);
          }
        });
      }
    }
  }
}

#if GROWLM_FEW_ROWS
// Whether gemm_small_m takes the product: A not transposed, B transposed, 1 <= M <= max_rows
// and something to compute.
bool small_m(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, int64_t max_rows) {
  return !trans_a && trans_b && M >= 1 && M <= max_rows && N >= 1 && K >= 1 && alpha != 0.0f;
}

// Tasks are chunks of tiles of `width` columns (about SMALL_M_TASK_COLUMNS columns, a
// multiple of the thread count where there are enough tiles); each walks its tiles and, per
// tile, the K slices. `tile(cols, pc, kc, b, c, beta_k)` computes one tile over the slice
// [pc, pc + kc).
template <class S, class Tile>
void gemm_small_m(int64_t N, int64_t K, int64_t width, int64_t kc_max, const S* B, int64_t ldb,
                  float beta, float* C, const Context& ctx, Tile tile) {
  const int64_t threads = ctx.pool->size();
  const int64_t tiles = ceil_div(N, width);
  const int64_t chunks = std::min(tiles, round_up(ceil_div(tiles, std::max<int64_t>(1, SMALL_M_TASK_COLUMNS / width)), threads));
  ctx.pool->run(chunks, [&](int64_t task, int) {
    const int64_t t0 = task * tiles / chunks, t1 = (task + 1) * tiles / chunks;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t j = t * width;
      const int cols = static_cast<int>(std::min<int64_t>(width, N - j));
      for (int64_t pc = 0; pc < K; pc += kc_max)
        tile(cols, pc, std::min(kc_max, K - pc), B + j * ldb + pc, C + j, pc == 0 ? beta : 1.0f);
    }
  });
}

// fp32 (or bf16 widened): A transposed once into the calling thread's buffer, [K][R] with
// R = 4, 8, 16 or 32 lanes (rows past M zero), then tiles of ROWS_TILE columns.
template <class S>
void gemm_small_m_rows(int64_t M, int64_t N, int64_t K, float alpha, const S* A,
                       int64_t lda, const S* B, int64_t ldb, float beta, float* C,
                       int64_t ldc, const Context& ctx) {
  const int64_t R = M <= 4 ? 4 : M <= 8 ? 8 : M <= 16 ? 16 : 32;  // at most SMALL_M_ROWS_MAX
  auto* at = static_cast<float*>(scratch.get(static_cast<size_t>(R * K) * sizeof(float)));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t i = 0; i < R; ++i) at[k * R + i] = i < M ? widen(A[i * lda + k]) : 0.0f;
  const int m = static_cast<int>(M);
  gemm_small_m(N, K, ROWS_TILE, KC, B, ldb, beta, C, ctx,
               [&](int cols, int64_t pc, int64_t kc, const S* b, float* c, float beta_k) {
                 switch (R) {
                   case 4: return small_m_rows_tile<4, ROWS_TILE>(m, cols, kc, at + pc * 4, b, ldb, c, ldc, alpha, beta_k);
#if defined(GROWLM_ISA_avx512)
                   case 16: return small_m_rows_tile<16, ROWS_TILE>(m, cols, kc, at + pc * 16, b, ldb, c, ldc, alpha, beta_k);
                   case 32: return small_m_rows_tile<32, ROWS_TILE>(m, cols, kc, at + pc * 32, b, ldb, c, ldc, alpha, beta_k);
#endif
                   default: return small_m_rows_tile<8, ROWS_TILE>(m, cols, kc, at + pc * 8, b, ldb, c, ldc, alpha, beta_k);
                 }
               });
}

#if defined(GROWLM_ISA_avx512)
// B transposed in registers (small_m_tile): A transposed (and widened, for bf16) once, [K][M],
// in the calling thread's buffer; the in-register transposes widen bf16 B as they go. The
// path of bf16 B without vdpbf16ps, and of fp32 B below SMALL_M_ROWS_MIN rows, where the rows
// path's vectors over the rows would be mostly empty lanes.
template <class S>
void gemm_small_m_transposed(int64_t M, int64_t N, int64_t K, float alpha, const S* A,
                             int64_t lda, const S* B, int64_t ldb, float beta, float* C,
                             int64_t ldc, const Context& ctx) {
  auto* at = static_cast<float*>(scratch.get(static_cast<size_t>(M * K) * sizeof(float)));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k) {
      if constexpr (sizeof(S) == 4) {
        at[k * M + i] = A[i * lda + k];
      } else {
        at[k * M + i] = widen(A[i * lda + k]);
      }
    }
  gemm_small_m(N, K, 16, KC, B, ldb, beta, C, ctx,
               [&](int cols, int64_t pc, int64_t kc, const S* b, float* c, float beta_k) {
                 const float* a = at + pc * M;
                 switch (M) {
                   case 1: return small_m_tile<1>(cols, kc, a, b, ldb, c, ldc, alpha, beta_k);
                   case 2: return small_m_tile<2>(cols, kc, a, b, ldb, c, ldc, alpha, beta_k);
                   case 3: return small_m_tile<3>(cols, kc, a, b, ldb, c, ldc, alpha, beta_k);
                   case 4: return small_m_tile<4>(cols, kc, a, b, ldb, c, ldc, alpha, beta_k);
                   case 5: return small_m_tile<5>(cols, kc, a, b, ldb, c, ldc, alpha, beta_k);
                   case 6: return small_m_tile<6>(cols, kc, a, b, ldb, c, ldc, alpha, beta_k);
                   case 7: return small_m_tile<7>(cols, kc, a, b, ldb, c, ldc, alpha, beta_k);
                   default: return small_m_tile<8>(cols, kc, a, b, ldb, c, ldc, alpha, beta_k);
                 }
               });
}

// The same with vdpbf16ps: A as k-pair words, [ceil(K / 2)][M] (k = 2p in the low half,
// k = 2p + 1 in the high half, zero past K), in the calling thread's buffer.
void gemm_small_m_bf16dot(int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
                          int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C,
                          int64_t ldc, const Context& ctx) {
  const int64_t words = ceil_div(K, 2);
  if (M > SMALL_M) {
    // Vectors over the rows (gemm_bf16dot_rows): A's words [words][R], R = 16 or 32 lanes,
    // rows past M zero.
    const int64_t R = M <= 16 ? 16 : 32;
    auto* aw = static_cast<uint32_t*>(scratch.get(static_cast<size_t>(R * words) * sizeof(uint32_t)));
    for (int64_t p = 0; p < words; ++p)
      for (int64_t i = 0; i < R; ++i) {
        const uint16_t* row = A + i * lda;
        aw[p * R + i] = i >= M ? 0u : static_cast<uint32_t>(row[2 * p]) | (2 * p + 1 < K ? static_cast<uint32_t>(row[2 * p + 1]) << 16 : 0u);
      }
    gemm_small_m(N, K, BF16DOT_ROWS_TILE, 2 * KC, B, ldb, beta, C, ctx,
                 [&](int cols, int64_t pc, int64_t kc, const uint16_t* b, float* c, float beta_k) {
                   gemm_bf16dot_rows(static_cast<int>(M), cols, kc, aw + pc / 2 * R, b, ldb, c, ldc, alpha, beta_k);
                 });
    return;
  }
  auto* aw = static_cast<uint32_t*>(scratch.get(static_cast<size_t>(M * words) * sizeof(uint32_t)));
  for (int64_t i = 0; i < M; ++i) {
    const uint16_t* row = A + i * lda;
    for (int64_t p = 0; p < words; ++p)
      aw[p * M + i] = static_cast<uint32_t>(row[2 * p]) | (2 * p + 1 < K ? static_cast<uint32_t>(row[2 * p + 1]) << 16 : 0u);
  }
  gemm_small_m(N, K, 16 * bf16dot_small_tiles(M), 2 * KC, B, ldb, beta, C, ctx,
               [&](int cols, int64_t pc, int64_t kc, const uint16_t* b, float* c, float beta_k) {
                 gemm_bf16dot_small_m(static_cast<int>(M), cols, kc, aw + pc / 2 * M, b, ldb, c, ldc, alpha, beta_k);
               });
}
#endif  // GROWLM_ISA_avx512
#endif  // GROWLM_FEW_ROWS

}  // namespace

void sgemm(Trans trans_a, Trans trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc, const Context& ctx) {
#if GROWLM_FEW_ROWS
  if (small_m(trans_a == Trans::T, trans_b == Trans::T, M, N, K, alpha, SMALL_M_ROWS_MAX)) {
#if defined(GROWLM_ISA_avx512)
    if (M < SMALL_M_ROWS_MIN) return gemm_small_m_transposed(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ctx);
#endif
    return gemm_small_m_rows(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ctx);
  }
#endif
  gemm_packed<F32Path<float>>(trans_a == Trans::T, trans_b == Trans::T, M, N, K, alpha, A, lda,
                              B, ldb, beta, C, ldc, ctx);
}

void gemm_bf16(Trans trans_a, Trans trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const uint16_t* A, int64_t lda, const uint16_t* B, int64_t ldb, float beta,
               float* C, int64_t ldc, const Context& ctx) {
#if GROWLM_FEW_ROWS
  if (small_m(trans_a == Trans::T, trans_b == Trans::T, M, N, K, alpha, SMALL_M_ROWS_MAX)) {
#if defined(GROWLM_ISA_avx512)
    if (ctx.bf16_dot) return gemm_small_m_bf16dot(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ctx);
    if (M <= SMALL_M_BF16_TRANSPOSED) return gemm_small_m_transposed(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ctx);
#endif
    return gemm_small_m_rows(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ctx);
  }
#endif
#if defined(GROWLM_ISA_avx512)
  if (ctx.bf16_dot) {
    return gemm_packed<Bf16DotPath>(trans_a == Trans::T, trans_b == Trans::T, M, N, K, alpha,
                                    A, lda, B, ldb, beta, C, ldc, ctx);
  }
#endif
  gemm_packed<F32Path<uint16_t>>(trans_a == Trans::T, trans_b == Trans::T, M, N, K, alpha, A,
                                 lda, B, ldb, beta, C, ldc, ctx);
}

}  // namespace growlm::cpu::GROWLM_ISA_NS

#if defined(GROWLM_ISA_portable)
namespace growlm {
namespace cpu {
GROWLM_DECLARE_ISA(void sgemm(Trans, Trans, int64_t, int64_t, int64_t, float, const float*,
                              int64_t, const float*, int64_t, float, float*, int64_t,
                              const Context&))
GROWLM_DECLARE_ISA(void gemm_bf16(Trans, Trans, int64_t, int64_t, int64_t, float,
                                  const uint16_t*, int64_t, const uint16_t*, int64_t, float,
                                  float*, int64_t, const Context&))
}  // namespace cpu

void check_gemm_sizes(const char* op, Trans trans_a, Trans trans_b, int64_t M, int64_t N, int64_t K,
                      int64_t lda, int64_t ldb, int64_t ldc) {
  auto fail = [op](const std::string& what) { throw std::invalid_argument(std::string(op) + ": " + what); };
  if (M < 0 || N < 0 || K < 0) fail("M, N and K must be >= 0");
  const int64_t a_cols = trans_a == Trans::N ? K : M;
  const int64_t b_cols = trans_b == Trans::N ? N : K;
  if (lda < std::max<int64_t>(1, a_cols)) fail("lda is smaller than a row of A");
  if (ldb < std::max<int64_t>(1, b_cols)) fail("ldb is smaller than a row of B");
  if (ldc < std::max<int64_t>(1, N)) fail("ldc is smaller than a row of C");
}

void sgemm(Trans trans_a, Trans trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc, const Context& ctx) {
  check_gemm_sizes("sgemm", trans_a, trans_b, M, N, K, lda, ldb, ldc);
  using namespace cpu;
  GROWLM_DISPATCH(ctx, sgemm, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ctx);
}

void gemm_bf16(Trans trans_a, Trans trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const uint16_t* A, int64_t lda, const uint16_t* B, int64_t ldb, float beta,
               float* C, int64_t ldc, const Context& ctx) {
  check_gemm_sizes("gemm_bf16", trans_a, trans_b, M, N, K, lda, ldb, ldc);
  using namespace cpu;
  GROWLM_DISPATCH(ctx, gemm_bf16, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C,
                  ldc, ctx);
}
}  // namespace growlm
#endif
