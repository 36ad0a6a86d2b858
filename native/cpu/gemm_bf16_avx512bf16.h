// The AVX512_BF16 GEMM micro-kernel (gemm_bf16_avx512bf16.cpp, compiled alone with
// -mavx512bf16) and the packed layout it reads. Only the avx512 compilation of
// kernels/gemm.cpp calls it, and only when Context::bf16_dot is set.
#pragma once
#include <cstdint>

namespace growlm::cpu {

/// Register tile: BF16DOT_MR rows of C by BF16DOT_NR columns (two zmm per row).
constexpr int BF16DOT_MR = 14;
constexpr int BF16DOT_NR = 32;

/// C[MR, NR] (row stride ldc) = alpha * Ã·B̃ + beta * C over `pairs` k-pairs; beta == 0
/// does not read C. `a` holds [pairs][MR] and `b` [pairs][NR] 32-bit words, each word the
/// bf16 values of k = 2p (low half) and k = 2p + 1 (high half); `b` is 64-byte aligned.
/// vdpbf16ps multiplies exactly and adds both products of a pair to the fp32 accumulator.
void gemm_bf16dot_micro(int64_t pairs, const uint32_t* a, const uint32_t* b, float* c,
                        int64_t ldc, float alpha, float beta);

/// Column tiles of 16 that gemm_bf16dot_small_m takes at once for `rows` rows: enough
/// independent vdpbf16ps chains to hide its latency.
constexpr int bf16dot_small_tiles(int64_t rows) { return rows == 1 ? 4 : rows == 2 ? 2 : 1; }

/// The few-row product of kernels/gemm.cpp's gemm_small_m with vdpbf16ps, B read in place:
/// C[m, 0 .. cols) (row stride ldc, 1 <= cols <= 16 · bf16dot_small_tiles(rows)) for m < rows
/// (1 <= rows <= 8) =
/// alpha · Σ_{k < kc} A[m][k] · b[j·ldb + k] + beta · C, k taken in pairs as the packed path
/// takes them (an odd kc ends with k = kc - 1 alone), so each element is bitwise what
/// gemm_bf16dot_micro gives it. A comes as k-pair words aw[p·rows + m] (k = 2p low, 2p + 1
/// high). beta == 0 does not read C.
void gemm_bf16dot_small_m(int rows, int cols, int64_t kc, const uint32_t* aw, const uint16_t* b,
                          int64_t ldb, float* c, int64_t ldc, float alpha, float beta);

/// Columns of C per tile of gemm_bf16dot_rows (streams of B read side by side).
constexpr int BF16DOT_ROWS_TILE = 8;

/// The few-row product for 9 to 32 rows, vectors over the rows of C: C[m, 0 .. cols) (1 <=
/// cols <= BF16DOT_ROWS_TILE) for m < rows, each element bitwise what gemm_bf16dot_micro
/// gives it (the same vdpbf16ps per k-pair, k ascending, the lone last k of an odd kc paired
/// with zero, the same alpha/beta update). A comes as k-pair words aw[p·R + m] with R = 16
/// (rows <= 16) or 32 lanes, rows past `rows` zero. beta == 0 does not read C.
void gemm_bf16dot_rows(int rows, int cols, int64_t kc, const uint32_t* aw, const uint16_t* b,
                       int64_t ldb, float* c, int64_t ldc, float alpha, float beta);

}  // namespace growlm::cpu
