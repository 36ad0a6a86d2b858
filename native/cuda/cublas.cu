// cuBLAS loaded at run time (nvcc's compilation), and its emulation (the emulated
// compilation); see cublas.h.
#include "common.cuh"

#include <algorithm>
#include <cstring>
#include <string>

#include "cublas.h"
#include "dynamic_library.h"

namespace growlm::cuda_libraries {

#ifndef GROWLM_CUDA_EMULATED

const CublasApi& cublas_library() {
  static LazyApi<CublasApi> lazy;
  return lazy.get([] {
    const LoadedLibrary library = open_library(
        {"cuBLAS", "GROWLM_CUBLAS_PATH", {"libcublas.so.13", "libcublas.so.12"},
         "Install cuBLAS for CUDA 13 or 12 (the CUDA toolkit, or pip's nvidia-cublas-cu12)"});
    // The library stays loaded for the life of the process: handles created from it are
    // destroyed when their device context is, which may be at exit.
    CublasApi api{};
    api.create = symbol<decltype(api.create)>(library, "cuBLAS", "cublasCreate_v2");
    api.destroy = symbol<decltype(api.destroy)>(library, "cuBLAS", "cublasDestroy_v2");
    api.set_stream = symbol<decltype(api.set_stream)>(library, "cuBLAS", "cublasSetStream_v2");
    api.set_math_mode = symbol<decltype(api.set_math_mode)>(library, "cuBLAS", "cublasSetMathMode");
    api.gemm_ex = symbol<decltype(api.gemm_ex)>(library, "cuBLAS", "cublasGemmEx");
    api.status_string = symbol<decltype(api.status_string)>(library, "cuBLAS", "cublasGetStatusString");
    static std::string origin;
    origin = library.path;
    api.origin = origin.c_str();
    return api;
  });
}

#else


// The emulated handle: what cublasSetStream and cublasSetMathMode record.
struct cublasContext {
  void* stream = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

namespace {

cublasStatus_t emulated_create(cublasHandle_t* handle) {
  if (handle == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = new cublasContext();
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t emulated_destroy(cublasHandle_t handle) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t emulated_set_stream(cublasHandle_t handle, void* stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t emulated_set_math_mode(cublasHandle_t handle, cublasMath_t mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode != CUBLAS_DEFAULT_MATH) return CUBLAS_STATUS_INVALID_VALUE;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

// fp32 to TF32 (8 exponent bits, 10 mantissa bits) as cvt.rna.tf32.f32 rounds: to nearest,
// ties away from zero; infinities and NaNs pass unchanged.
float round_tf32(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  if ((bits & 0x7f800000u) != 0x7f800000u) bits = (bits + 0x1000u) & 0xffffe000u;
  std::memcpy(&x, &bits, 4);
  return x;
}

// Element (row, col) of a column-major operand, widened to fp32.
struct Operand {
  const void* data;
  cudaDataType_t type;
  int64_t ld;
  bool transposed;
  bool tf32;
  float at(int64_t row, int64_t col) const {
    const int64_t i = transposed ? col + row * ld : row + col * ld;
    if (type == CUDA_R_16BF) {
      const uint32_t bits = static_cast<uint32_t>(static_cast<const uint16_t*>(data)[i]) << 16;
      float x;
      std::memcpy(&x, &bits, 4);
      return x;
    }
    const float x = static_cast<const float*>(data)[i];
    return tf32 ? round_tf32(x) : x;
  }
};

cublasStatus_t emulated_gemm_ex(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                                int n, int k, const void* alpha, const void* A, cudaDataType_t Atype, int lda,
                                const void* B, cudaDataType_t Btype, int ldb, const void* beta, void* C,
                                cudaDataType_t Ctype, int ldc, cublasComputeType_t computeType,
                                cublasGemmAlgo_t algo) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const auto is_op = [](cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T; };
  // The argument checks cublasGemmEx documents.
  if (!is_op(transa) || !is_op(transb) || m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (lda < std::max(1, transa == CUBLAS_OP_N ? m : k)) return CUBLAS_STATUS_INVALID_VALUE;
  if (ldb < std::max(1, transb == CUBLAS_OP_N ? k : n)) return CUBLAS_STATUS_INVALID_VALUE;
  if (ldc < std::max(1, m)) return CUBLAS_STATUS_INVALID_VALUE;
  if (alpha == nullptr || beta == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  // The combinations growlm uses, from the table of cublasGemmEx's supported types.
  const bool f32 = Atype == CUDA_R_32F && Btype == CUDA_R_32F;
  const bool bf16 = Atype == CUDA_R_16BF && Btype == CUDA_R_16BF;
  if (Ctype != CUDA_R_32F || algo != CUBLAS_GEMM_DEFAULT) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (!(computeType == CUBLAS_COMPUTE_32F && (f32 || bf16)) && !(computeType == CUBLAS_COMPUTE_32F_FAST_TF32 && f32)) {
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  const float a = *static_cast<const float*>(alpha);
  const float b = *static_cast<const float*>(beta);
  float* c = static_cast<float*>(C);
  // BLAS semantics: nothing to do when alpha or k vanish and beta is 1; neither A nor B is
  // read when alpha is 0; C is not read when beta is 0.
  if ((a == 0.0f || k == 0) && b == 1.0f) return CUBLAS_STATUS_SUCCESS;
  const bool tf32 = computeType == CUBLAS_COMPUTE_32F_FAST_TF32;
  const Operand opA{A, Atype, lda, transa == CUBLAS_OP_T, tf32};
  const Operand opB{B, Btype, ldb, transb == CUBLAS_OP_T, tf32};
  for (int64_t j = 0; j < n; j++) {
    for (int64_t i = 0; i < m; i++) {
      float sum = 0.0f;
      if (a != 0.0f) {
        for (int64_t p = 0; p < k; p++) sum += opA.at(i, p) * opB.at(p, j);
      }
      float& out = c[i + j * static_cast<int64_t>(ldc)];
      out = b == 0.0f ? a * sum : a * sum + b * out;
    }
  }
  return CUBLAS_STATUS_SUCCESS;
}

const char* emulated_status_string(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    default: return "unknown error";
  }
}

}  // namespace

const CublasApi& cublas_emulated() {
  static const CublasApi api{emulated_create, emulated_destroy, emulated_set_stream, emulated_set_math_mode,
                             emulated_gemm_ex, emulated_status_string, "emulated"};
  return api;
}

#endif

}  // namespace growlm::cuda_libraries
