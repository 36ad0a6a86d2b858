// General matrix multiply, row-major: C[M,N] = alpha * op(A) · op(B) + beta * C.
// op(A) is [M,K]: A itself stored [M, lda >= K] (Trans::N) or Aᵀ with A stored
// [K, lda >= M] (Trans::T); likewise op(B) is [K,N]. beta == 0 overwrites C without
// reading it; K == 0 or alpha == 0 gives C = beta * C without reading A or B (the BLAS
// convention). Results do not depend on the thread count (fixed K blocking).
#pragma once
#include <cstdint>

#include "growlm/context.h"

namespace growlm {

enum class Trans : int { N = 0, T = 1 };

/// The size and stride checks of sgemm and gemm_bf16 (both backends): throws
/// std::invalid_argument naming `op` for sizes and strides that would read or write out of bounds.
void check_gemm_sizes(const char* op, Trans trans_a, Trans trans_b, int64_t M, int64_t N, int64_t K, int64_t lda,
                      int64_t ldb, int64_t ldc);

void sgemm(Trans trans_a, Trans trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc, const Context& ctx);

/// The same with bf16 inputs (raw bit patterns) and fp32 accumulation and output. With
/// Context::bf16_dot the products go through AVX512_BF16 vdpbf16ps: exact products, summed
/// in pairs into fp32 with round-to-nearest, bf16 subnormal inputs read as zero and
/// subnormal results flushed to zero. Otherwise the inputs are widened exactly and the
/// result is bitwise that of sgemm on the widened values.
void gemm_bf16(Trans trans_a, Trans trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const uint16_t* A, int64_t lda, const uint16_t* B, int64_t ldb, float beta,
               float* C, int64_t ldc, const Context& ctx);

}  // namespace growlm
