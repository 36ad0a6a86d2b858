// Baselines for the benchmarks only: OpenBLAS's cblas_sgemm, opened with dlopen when the
// benchmark asks for it. The product never needs OpenBLAS; nothing links against it.
#include <dlfcn.h>

#include <climits>
#include <cstdint>

#include <string>

#include "addon.h"
#include "args.h"

namespace growlm::bindings {

namespace {

// CBLAS enums (cblas.h): row-major 101; no transpose 111, transpose 112.
using CblasSgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*,
                            int, float, float*, int);
using SetThreads = void (*)(int);

struct OpenBlas {
  void* handle = nullptr;
  CblasSgemm sgemm = nullptr;
  SetThreads set_threads = nullptr;
};

// One handle per process is what dlopen gives anyway; the library is never closed.
OpenBlas& openblas() {
  static OpenBlas lib;
  return lib;
}

// openblasLoad(path, threads) -> boolean
Napi::Value OpenblasLoad(const Napi::CallbackInfo& info) {
  Args args(info, "openblasLoad", 2);
  const std::string path = args.string(0, "path");
  const int64_t threads = args.integer(1, "threads", 1, 1024);
  OpenBlas& lib = openblas();
  if (!lib.handle) {
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) return Napi::Boolean::New(info.Env(), false);
    auto sgemm = reinterpret_cast<CblasSgemm>(dlsym(handle, "cblas_sgemm"));
    auto set_threads = reinterpret_cast<SetThreads>(dlsym(handle, "openblas_set_num_threads"));
    if (!sgemm || !set_threads) {
      dlclose(handle);
      return Napi::Boolean::New(info.Env(), false);
    }
    lib = OpenBlas{handle, sgemm, set_threads};
  }
  lib.set_threads(static_cast<int>(threads));
  return Napi::Boolean::New(info.Env(), true);
}

// openblasSgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
Napi::Value OpenblasSgemm(const Napi::CallbackInfo& info) {
  Args args(info, "openblasSgemm", 13);
  const OpenBlas& lib = openblas();
  if (!lib.sgemm) args.type_error("OpenBLAS is not loaded (call openblasLoad first)");
  const bool ta = args.boolean(0, "transA"), tb = args.boolean(1, "transB");
  const int64_t M = args.integer(2, "M", 1, INT32_MAX), N = args.integer(3, "N", 1, INT32_MAX),
                K = args.integer(4, "K", 1, INT32_MAX);
  const float alpha = static_cast<float>(args.finite(5, "alpha"));
  const int64_t lda = args.integer(7, "lda", ta ? M : K, INT32_MAX);
  const int64_t ldb = args.integer(9, "ldb", tb ? K : N, INT32_MAX);
  const float beta = static_cast<float>(args.finite(10, "beta"));
  const int64_t ldc = args.integer(12, "ldc", N, INT32_MAX);
  const ShapeText what = shape("M, N, K", {M, N, K});
  const float* A = args.f32_at_least(6, "A", ((ta ? K : M) - 1) * lda + (ta ? M : K), what);
  const float* B = args.f32_at_least(8, "B", ((tb ? N : K) - 1) * ldb + (tb ? K : N), what);
  float* C = args.f32_at_least(11, "C", (M - 1) * ldc + N, what);
  lib.sgemm(101, ta ? 112 : 111, tb ? 112 : 111, static_cast<int>(M), static_cast<int>(N),
            static_cast<int>(K), alpha, A, static_cast<int>(lda), B, static_cast<int>(ldb), beta, C,
            static_cast<int>(ldc));
  return info.Env().Undefined();
}

}  // namespace

void InitBaseline(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "openblasLoad", OpenblasLoad);
  bind(env, exports, "openblasSgemm", OpenblasSgemm);
}

}  // namespace growlm::bindings
