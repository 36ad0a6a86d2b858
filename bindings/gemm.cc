// Bindings of growlm/gemm.h: sgemm and gemmBf16, row-major with BLAS-style strides, on the
// CPU and (binding.cuda, DeviceBuffers) on a device, where sgemmTf32 is the fp32 GEMM on TF32
// tensor cores (native/cuda/gemm.cu).
#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "addon.h"
#include "args.h"
#include "cuda_args.h"
#include "growlm/cuda_libraries.h"
#include "growlm/gemm.h"

namespace growlm::bindings {

namespace {

constexpr double MAX_SAFE = 9007199254740991.0;  // 2^53 - 1

// The arguments both GEMMs share, validated before any memory is touched.
struct GemmArgs {
  bool trans_a = false, trans_b = false;
  int64_t M = 0, N = 0, K = 0, lda = 0, ldb = 0, ldc = 0;
  float alpha = 0, beta = 0;
  int64_t a_length = 0, b_length = 0, c_length = 0;
  std::string a_what, b_what, c_what;
};

// A finite number that stays finite as a float.
float finite_float(const Args& args, size_t i, const char* name) {
  const double d = args.finite(i, name);
  if (std::fabs(d) > std::numeric_limits<float>::max()) {
    std::ostringstream s;
    s << "expected \"" << name << "\" within the float32 range but received " << d;
    args.range_error(s.str());
  }
  return static_cast<float>(d);
}

// A stored matrix of rows x cols (row stride ld >= max(1, cols)); returns the elements it
// spans, (rows - 1) * ld + cols, and describes it for messages.
int64_t span(const Args& args, const char* matrix, const char* ld_name, int64_t ld,
             const char* row_name, int64_t rows, const char* col_name, int64_t cols,
             std::string* what) {
  std::ostringstream d;
  d << matrix << " [" << row_name << ", " << col_name << "] = [" << rows << ", " << cols << "], "
    << ld_name << " = " << ld;
  *what = d.str();
  if (ld < std::max<int64_t>(1, cols)) {
    std::ostringstream s;
    s << "expected \"" << ld_name << "\" >= " << std::max<int64_t>(1, cols) << " (" << matrix << " is ["
      << row_name << ", " << col_name << "] = [" << rows << ", " << cols << "]) but received " << ld;
    args.range_error(s.str());
  }
  if (rows == 0 || cols == 0) return 0;
  const double length = static_cast<double>(rows - 1) * static_cast<double>(ld) + static_cast<double>(cols);
  if (length > MAX_SAFE) args.range_error(std::string(matrix) + " spans more elements than any array can hold");
  return static_cast<int64_t>(length);
}

// (transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
template <class A>
GemmArgs parse(const A& args) {
  GemmArgs g;
  g.trans_a = args.boolean(0, "transA");
  g.trans_b = args.boolean(1, "transB");
  g.M = args.size(2, "M", 1);
  g.N = args.size(3, "N", 1);
  g.K = args.size(4, "K", 0);
  g.alpha = finite_float(args, 5, "alpha");
  g.lda = args.size(7, "lda", 1);
  g.ldb = args.size(9, "ldb", 1);
  g.beta = finite_float(args, 10, "beta");
  g.ldc = args.size(12, "ldc", 1);
  g.a_length = g.trans_a ? span(args, "A", "lda", g.lda, "K", g.K, "M", g.M, &g.a_what)
                         : span(args, "A", "lda", g.lda, "M", g.M, "K", g.K, &g.a_what);
  g.b_length = g.trans_b ? span(args, "B", "ldb", g.ldb, "N", g.N, "K", g.K, &g.b_what)
                         : span(args, "B", "ldb", g.ldb, "K", g.K, "N", g.N, &g.b_what);
  g.c_length = span(args, "C", "ldc", g.ldc, "M", g.M, "N", g.N, &g.c_what);
  return g;
}

Trans trans(bool t) { return t ? Trans::T : Trans::N; }

// The fp32 GEMMs: sgemm everywhere, sgemm_tf32 on a device.
enum class Fp32 { exact, tf32 };

template <class A, Fp32 mode>
Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  A args(info, mode == Fp32::tf32 ? "sgemmTf32" : "sgemm", 13);
  const GemmArgs g = parse(args);
  const float* a = args.f32_at_least(6, "A", g.a_length, g.a_what);
  const float* b = args.f32_at_least(8, "B", g.b_length, g.b_what);
  float* c = args.f32_at_least(11, "C", g.c_length, g.c_what);
  if constexpr (A::on_device) {
    const CudaContext& ctx = args.context();
    if constexpr (mode == Fp32::tf32) {
      GROWLM_CUDA_CALL(ctx, sgemm_tf32, trans(g.trans_a), trans(g.trans_b), g.M, g.N, g.K, g.alpha, a, g.lda, b, g.ldb,
                       g.beta, c, g.ldc, ctx);
    } else {
      GROWLM_CUDA_CALL(ctx, sgemm, trans(g.trans_a), trans(g.trans_b), g.M, g.N, g.K, g.alpha, a, g.lda, b, g.ldb,
                       g.beta, c, g.ldc, ctx);
    }
  } else {
    sgemm(trans(g.trans_a), trans(g.trans_b), g.M, g.N, g.K, g.alpha, a, g.lda, b, g.ldb, g.beta, c, g.ldc,
          context(info.Env()));
  }
  return info.Env().Undefined();
}

template <class A>
Napi::Value GemmBf16(const Napi::CallbackInfo& info) {
  A args(info, "gemmBf16", 13);
  const GemmArgs g = parse(args);
  const uint16_t* a = args.u16_at_least(6, "A", g.a_length, g.a_what);
  const uint16_t* b = args.u16_at_least(8, "B", g.b_length, g.b_what);
  float* c = args.f32_at_least(11, "C", g.c_length, g.c_what);
  if constexpr (A::on_device) {
    const CudaContext& ctx = args.context();
    GROWLM_CUDA_CALL(ctx, gemm_bf16, trans(g.trans_a), trans(g.trans_b), g.M, g.N, g.K, g.alpha, a, g.lda, b, g.ldb,
                     g.beta, c, g.ldc, ctx);
  } else {
    gemm_bf16(trans(g.trans_a), trans(g.trans_b), g.M, g.N, g.K, g.alpha, a, g.lda, b, g.ldb, g.beta, c, g.ldc,
              context(info.Env()));
  }
  return info.Env().Undefined();
}

// cublasLibrary(): where cuBLAS loads from (the library a GPU context uses, whether or not
// the emulator is on); throws naming libcublas and every place searched when it is absent.
Napi::Value CublasLibrary(const Napi::CallbackInfo& info) {
  Args args(info, "cuda.cublasLibrary", 0);
#ifdef GROWLM_HAVE_CUDA
  return Napi::String::New(info.Env(), cuda::cublas_origin());
#else
  throw CudaError("the addon was built without nvcc, so it has no CUDA backend to use cuBLAS");
#endif
}

}  // namespace

void InitGemm(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "sgemm", Sgemm<Args, Fp32::exact>);
  bind(env, exports, "gemmBf16", GemmBf16<Args>);
  Napi::Object cuda = cuda_exports(env, exports);
  bind(env, cuda, "sgemm", Sgemm<CudaArgs, Fp32::exact>);
  bind(env, cuda, "sgemmTf32", Sgemm<CudaArgs, Fp32::tf32>);
  bind(env, cuda, "gemmBf16", GemmBf16<CudaArgs>);
  bind(env, cuda, "cublasLibrary", CublasLibrary);
}

}  // namespace growlm::bindings
