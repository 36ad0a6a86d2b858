// bf16 GEMM micro-kernel with AVX512_BF16 (vdpbf16ps): a 14x32 fp32 register tile
// (28 zmm accumulators) updated per k-pair by two aligned loads of B̃, 14 32-bit
// broadcasts of Ã pairs and 28 dot-product instructions. The packing and the blocking
// around it live in kernels/gemm.cpp; test/kernels/gemm.test.ts checks the result against
// the float64 product of the bf16 values.
//
// This file alone is compiled with -mavx512bf16 (CMakeLists.txt) and is only reached
// after the CPU reported the feature, so it defines nothing but the kernel: no inline
// function of a shared header could be emitted here with AVX-512 code and picked by the
// linker for another file.
#include "gemm_bf16_avx512bf16.h"

#include <immintrin.h>

namespace growlm::cpu {

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

}  // namespace growlm::cpu
