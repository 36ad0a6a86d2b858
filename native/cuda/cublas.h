// The subset of cuBLAS growlm calls, declared here because the build has no cuBLAS headers
// (the library is loaded at run time, dynamic_library.h), and an emulated implementation of
// the same subset for the CUDA emulator (GROWLM_CUDA_EMULATE=1), so the call sites in
// native/cuda/gemm.cu (the row-major to column-major mapping, op flags, leading dimensions)
// run and are tested on machines without a GPU.
//
// Every value below is the one in NVIDIA's headers, checked against:
//   cudaDataType_t: library_types.h of the CUDA 13.0 toolkit (/usr/local/cuda-13.0/include,
//     CUDA_R_32F = 0, CUDA_R_16BF = 14);
//   cublasStatus_t, cublasOperation_t, cublasMath_t, cublasComputeType_t, cublasGemmAlgo_t and
//     the signatures: cublas_api.h as NVIDIA's nvmath-python transcribes it for cuBLAS 11.0.3
//     to 12.6.2 (github.com/NVIDIA/nvmath-python, nvmath/bindings/cycublas.pxd);
//   the exported names (cublasCreate_v2, cublasDestroy_v2, cublasSetStream_v2; cublasSetMathMode,
//     cublasGemmEx and cublasGetStatusString have no _v2 suffix): cublas_api.h's declarations
//     and the cuBLAS documentation (docs.nvidia.com/cuda/cublas, "cuBLAS Helper Function
//     Reference" and "cublasGemmEx").
// Plain C++, no CUDA types: the stream is passed as void* (cudaStream_t is a pointer).
#pragma once
#include <cstdint>
#include <mutex>

#include "growlm/cuda.h"

namespace growlm::cuda_libraries {

struct cublasContext;
using cublasHandle_t = cublasContext*;

enum cublasStatus_t : int {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_MAPPING_ERROR = 11,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
  CUBLAS_STATUS_LICENSE_ERROR = 16,
};

enum cublasOperation_t : int { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };

enum cublasMath_t : int { CUBLAS_DEFAULT_MATH = 0 };

enum cudaDataType_t : int { CUDA_R_32F = 0, CUDA_R_16BF = 14 };

enum cublasComputeType_t : int {
  /// fp32 products and sums; inputs are not rounded.
  CUBLAS_COMPUTE_32F = 68,
  /// fp32 accumulation, fp32 inputs rounded to TF32 (10 mantissa bits) for the tensor cores.
  CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
};

enum cublasGemmAlgo_t : int { CUBLAS_GEMM_DEFAULT = -1 };

/// The functions, as loaded from libcublas or provided by the emulation.
struct CublasApi {
  cublasStatus_t (*create)(cublasHandle_t* handle);
  cublasStatus_t (*destroy)(cublasHandle_t handle);
  cublasStatus_t (*set_stream)(cublasHandle_t handle, void* stream);
  cublasStatus_t (*set_math_mode)(cublasHandle_t handle, cublasMath_t mode);
  cublasStatus_t (*gemm_ex)(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m,
                            int n, int k, const void* alpha, const void* A, cudaDataType_t Atype, int lda,
                            const void* B, cudaDataType_t Btype, int ldb, const void* beta, void* C,
                            cudaDataType_t Ctype, int ldc, cublasComputeType_t computeType,
                            cublasGemmAlgo_t algo);
  const char* (*status_string)(cublasStatus_t status);
  /// Where the library came from ("libcublas.so.13", a path, or "emulated").
  const char* origin;
};

/// cuBLAS loaded from GROWLM_CUBLAS_PATH, libcublas.so.13 or libcublas.so.12 (defined by
/// nvcc's compilation of cublas.cu); throws CudaError naming the library and every attempt
/// when none loads.
const CublasApi& cublas_library();

/// The emulator's cuBLAS (defined by the emulated compilation of cublas.cu): the same semantics on host memory, computed at once
/// (the emulator runs everything in stream order on the calling thread). GemmEx: column-major,
/// C = alpha·op(A)·op(B) + beta·C with op N or T, A/B fp32 or bf16, C fp32, fp32 accumulation
/// in ascending k; CUBLAS_COMPUTE_32F_FAST_TF32 rounds fp32 inputs to TF32 first (round to
/// nearest, ties away from zero, as cvt.rna.tf32.f32 does); beta == 0 does not read C; the
/// argument checks cuBLAS documents return CUBLAS_STATUS_INVALID_VALUE.
const CublasApi& cublas_emulated();

}  // namespace growlm::cuda_libraries

namespace growlm {

/// A context's library handles (growlm/cuda.h declares it; create_context makes one per
/// context, destroy_context deletes it). The cuBLAS handle is created on first use
/// (native/cuda/gemm.cu) and destroyed with the context.
struct CudaLibraries {
  std::mutex mutex;
  const cuda_libraries::CublasApi* cublas_api = nullptr;
  cuda_libraries::cublasHandle_t cublas = nullptr;
  CudaLibraries() = default;
  CudaLibraries(const CudaLibraries&) = delete;
  CudaLibraries& operator=(const CudaLibraries&) = delete;
  ~CudaLibraries() {
    if (cublas != nullptr) cublas_api->destroy(cublas);
  }
};

}  // namespace growlm
