// The 16 x 16 in-register transpose shared by the AVX-512 GEMM (kernels/gemm.cpp) and the
// AVX512_BF16 kernel file (gemm_bf16_avx512bf16.cpp). It has internal linkage on purpose:
// the two files are compiled with different instruction sets, and an ordinary inline
// function would become one COMDAT copy that the linker could pick from either of them.
// Include it only from code compiled for AVX-512.
#pragma once

#include <immintrin.h>

// GCC 12 reports the _mm512_undefined_*() placeholders inside its own shuffle intrinsics as
// "(may be) used uninitialized"; they are never read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace growlm::cpu {
namespace {

// 16 x 16 transpose of 32-bit lanes in registers (lane j of r[i] -> lane i of r[j]):
// interleave pairs of rows, then pairs of pairs, then 4 x 4 blocks of 128 bits. Only bit
// moves, so it serves fp32 values and bf16 pairs alike.
__attribute__((always_inline)) inline void transpose16(__m512 r[16]) {
  __m512 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  // u[4g + q], 128-bit block b: column 4b + q of rows 4g .. 4g + 3.
#pragma GCC unroll 4
  for (int i = 0; i < 16; i += 4) {
    const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
    const __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // Column 4b + q gathers block b of u[q], u[4 + q], u[8 + q], u[12 + q].
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q) {
    const __m512 x0 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x44);
    const __m512 x1 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xee);
    const __m512 x2 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x44);
    const __m512 x3 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xee);
    t[q] = _mm512_shuffle_f32x4(x0, x2, 0x88);
    t[4 + q] = _mm512_shuffle_f32x4(x0, x2, 0xdd);
    t[8 + q] = _mm512_shuffle_f32x4(x1, x3, 0x88);
    t[12 + q] = _mm512_shuffle_f32x4(x1, x3, 0xdd);
  }
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

}  // namespace
}  // namespace growlm::cpu
