// GEMM on the device (growlm/gemm.h's API, row-major): C[M,N] = alpha·op(A)·op(B) + beta·C
// through cuBLAS's cublasGemmEx, fp32 or bf16 inputs, fp32 accumulation and output; and
// sgemm_tf32, the fp32 GEMM on TF32 tensor cores (inputs rounded to 10 mantissa bits,
// products summed in fp32), what PyTorch's allow_tf32 gives. Checked against the CPU backend
// in test/cuda/gemm.test.ts (under the emulator, whose cuBLAS is native/cuda/cublas.cc's).
//
// Row-major to column-major: a row-major [R, C] matrix with row stride ld is, in the same
// memory, the column-major [C, R] matrix with leading dimension ld: its transpose. So
// row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: cuBLAS is called with the
// operands swapped (B first), m = N, n = M, the same k, the same op flags and the same
// leading dimensions (a row-major operand that is not transposed is, column-major, the
// transpose that the op flag N then leaves in place).
//
// The handle: one per device context, created on first use, bound to the context's stream,
// math mode CUBLAS_DEFAULT_MATH (fp32 stays fp32 unless the compute type asks for TF32).
// BLAS edge cases are handled here, identically on every cuBLAS version: M or N = 0 does
// nothing; K = 0 or alpha = 0 gives C = beta·C by a kernel that reads neither A nor B (nor
// C when beta = 0), as the CPU backend does.
#include "common.cuh"

#include <climits>
#include <mutex>
#include <stdexcept>
#include <string>

#include "cublas.h"
#include "growlm/cuda.h"
#ifndef GROWLM_CUDA_EMULATED
#include "growlm/cuda_libraries.h"
#endif

namespace growlm::GROWLM_CUDA_NS {

namespace {

using namespace growlm::cuda_libraries;

// C = beta·C over the M x N row-major block with row stride ldc; beta = 0 writes zeros
// without reading (NaNs there do not survive, as with BLAS).
__global__ void scale_kernel(float* C, int64_t M, int64_t N, int64_t ldc, float beta) {
  const int64_t total = M * N;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float& c = C[(i / N) * ldc + i % N];
    c = beta == 0.0f ? 0.0f : beta * c;
  }
}

// The CPU API's checks, then cuBLAS's: cublasGemmEx takes int sizes and strides.
void check_gemm(const char* op, Trans trans_a, Trans trans_b, int64_t M, int64_t N, int64_t K, int64_t lda,
                int64_t ldb, int64_t ldc) {
  check_gemm_sizes(op, trans_a, trans_b, M, N, K, lda, ldb, ldc);
  auto fail = [op](const std::string& what) { throw std::invalid_argument(std::string(op) + ": " + what); };
  const struct {
    const char* name;
    int64_t value;
  } ints[] = {{"M", M}, {"N", N}, {"K", K}, {"lda", lda}, {"ldb", ldb}, {"ldc", ldc}};
  for (const auto& v : ints) {
    if (v.value > INT_MAX) fail(std::string(v.name) + " = " + std::to_string(v.value) + " exceeds cuBLAS's int range (2^31 - 1)");
  }
}

void cublas_check(const CublasApi& api, const char* op, const char* call, cublasStatus_t status) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw CudaError(std::string(op) + ": " + call + " failed: " + api.status_string(status) + " (cublasStatus_t " +
                  std::to_string(static_cast<int>(status)) + ", cuBLAS from " + api.origin + ")");
}

// The context's handle, created on first use and bound to its stream.
cublasHandle_t cublas_handle(const char* op, const CublasApi& api, const CudaContext& ctx) {
  CudaLibraries& libs = *ctx.libs;
  std::lock_guard<std::mutex> lock(libs.mutex);
  if (libs.cublas == nullptr) {
    // A handle belongs to the device current when it is created.
    GROWLM_CUDA_CHECK(op, cudaSetDevice(ctx.device));
    cublasHandle_t handle = nullptr;
    cublas_check(api, op, "cublasCreate_v2", api.create(&handle));
    libs.cublas = handle;
    libs.cublas_api = &api;
    cublas_check(api, op, "cublasSetStream_v2", api.set_stream(handle, ctx.stream));
    cublas_check(api, op, "cublasSetMathMode", api.set_math_mode(handle, CUBLAS_DEFAULT_MATH));
  }
  return libs.cublas;
}

const CublasApi& cublas_api() {
#ifdef GROWLM_CUDA_EMULATED
  return cublas_emulated();
#else
  return cublas_library();
#endif
}

void gemm(const char* op, Trans trans_a, Trans trans_b, int64_t M, int64_t N, int64_t K, float alpha, const void* A,
          int64_t lda, const void* B, int64_t ldb, float beta, float* C, int64_t ldc, cudaDataType_t input_type,
          cublasComputeType_t compute, const CudaContext& ctx) {
  check_gemm(op, trans_a, trans_b, M, N, K, lda, ldb, ldc);
  if (M == 0 || N == 0) return;
  if (K == 0 || alpha == 0.0f) {
    if (beta == 1.0f) return;
    const int64_t blocks = std::min<int64_t>((M * N + 255) / 256, 4096);
    launch(op, scale_kernel, dim3(static_cast<unsigned>(blocks)), dim3(256), 0, ctx, C, M, N, ldc, beta);
    return;
  }
  const CublasApi& api = cublas_api();
  cublasHandle_t handle = cublas_handle(op, api, ctx);
  const cublasOperation_t op_a = trans_a == Trans::T ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_b == Trans::T ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublas_check(api, op, "cublasGemmEx",
               api.gemm_ex(handle, op_b, op_a, static_cast<int>(N), static_cast<int>(M), static_cast<int>(K), &alpha,
                           B, input_type, static_cast<int>(ldb), A, input_type, static_cast<int>(lda), &beta, C,
                           CUDA_R_32F, static_cast<int>(ldc), compute, CUBLAS_GEMM_DEFAULT));
}

}  // namespace

#ifndef GROWLM_CUDA_EMULATED
const char* cublas_origin() { return cublas_library().origin; }
#endif

void sgemm(Trans trans_a, Trans trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const CudaContext& ctx) {
  gemm("sgemm", trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, CUDA_R_32F, CUBLAS_COMPUTE_32F, ctx);
}

void sgemm_tf32(Trans trans_a, Trans trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const CudaContext& ctx) {
  gemm("sgemm_tf32", trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, CUDA_R_32F,
       CUBLAS_COMPUTE_32F_FAST_TF32, ctx);
}

void gemm_bf16(Trans trans_a, Trans trans_b, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
               int64_t lda, const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc, const CudaContext& ctx) {
  gemm("gemm_bf16", trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, CUDA_R_16BF, CUBLAS_COMPUTE_32F,
       ctx);
}

}  // namespace growlm::GROWLM_CUDA_NS
