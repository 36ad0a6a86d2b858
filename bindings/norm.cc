// Bindings of growlm/norm.h.
#include <cmath>
#include <sstream>

#include "addon.h"
#include "args.h"
#include "cuda_args.h"
#include "growlm/norm.h"

namespace growlm::bindings {

namespace {

// eps must stay a positive finite number once rounded to fp32.
float positive_eps(const Args& args, size_t i) {
  const double eps = args.finite(i, "eps");
  const float f = static_cast<float>(eps);
  if (!(f > 0.0f) || !std::isfinite(f)) {
    std::ostringstream s;
    s << "expected \"eps\" > 0 and finite in fp32 but received " << eps;
    args.range_error(s.str());
  }
  return f;
}

// rmsnormForward(out, rstd, inp, weight, N, C, eps), on the CPU (Args) or a device (CudaArgs).
template <class A>
Napi::Value RmsnormForward(const Napi::CallbackInfo& info) {
  A args(info, "rmsnormForward", 7);
  const int64_t N = args.size(4, "N", 0);
  const int64_t C = args.size(5, "C", 1);
  const float eps = positive_eps(args, 6);
  const int64_t NC = args.count("N, C", {N, C});
  const ShapeText nc = shape("N, C", {N, C});
  float* out = args.f32(0, "out", NC, nc);
  float* rstd = args.f32(1, "rstd", N, shape("N", {N}));
  const float* inp = args.f32(2, "inp", NC, nc);
  const float* weight = args.f32(3, "weight", C, shape("C", {C}));
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), rmsnorm_forward, out, rstd, inp, weight, N, C, eps, args.context());
  } else {
    rmsnorm_forward(out, rstd, inp, weight, N, C, eps, context(info.Env()));
  }
  return info.Env().Undefined();
}

// rmsnormBackward(dinp, dweight, dout, inp, weight, rstd, N, C)
template <class A>
Napi::Value RmsnormBackward(const Napi::CallbackInfo& info) {
  A args(info, "rmsnormBackward", 8);
  const int64_t N = args.size(6, "N", 0);
  const int64_t C = args.size(7, "C", 1);
  const int64_t NC = args.count("N, C", {N, C});
  const ShapeText nc = shape("N, C", {N, C});
  const ShapeText c = shape("C", {C});
  float* dinp = args.f32(0, "dinp", NC, nc);
  float* dweight = args.f32(1, "dweight", C, c);
  const float* dout = args.f32(2, "dout", NC, nc);
  const float* inp = args.f32(3, "inp", NC, nc);
  const float* weight = args.f32(4, "weight", C, c);
  const float* rstd = args.f32(5, "rstd", N, shape("N", {N}));
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), rmsnorm_backward, dinp, dweight, dout, inp, weight, rstd, N, C, args.context());
  } else {
    rmsnorm_backward(dinp, dweight, dout, inp, weight, rstd, N, C, context(info.Env()));
  }
  return info.Env().Undefined();
}

// rmsnormFilmForward(out, rstd, inp, weight, gamma, beta, N, C, group, M, eps)
template <class A>
Napi::Value RmsnormFilmForward(const Napi::CallbackInfo& info) {
  A args(info, "rmsnormFilmForward", 11);
  const int64_t N = args.size(6, "N", 0);
  const int64_t C = args.size(7, "C", 1);
  const int64_t group = args.size(8, "group", 1);
  const int64_t M = args.size(9, "M", 1);
  const float eps = positive_eps(args, 10);
  const int64_t NC = args.count("N, C", {N, C});
  const int64_t MC = args.count("M, C", {M, C});
  const ShapeText nc = shape("N, C", {N, C});
  const ShapeText mc = shape("M, C", {M, C});
  float* out = args.f32(0, "out", NC, nc);
  float* rstd = args.f32(1, "rstd", N, shape("N", {N}));
  const float* inp = args.f32(2, "inp", NC, nc);
  const float* weight = args.f32(3, "weight", C, shape("C", {C}));
  const float* gamma = args.f32(4, "gamma", MC, mc);
  const float* beta = args.f32(5, "beta", MC, mc);
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), rmsnorm_film_forward, out, rstd, inp, weight, gamma, beta, N, C, group, M, eps,
                     args.context());
  } else {
    rmsnorm_film_forward(out, rstd, inp, weight, gamma, beta, N, C, group, M, eps, context(info.Env()));
  }
  return info.Env().Undefined();
}

// rmsnormFilmBackward(dinp, dweight, dgamma, dbeta, dout, inp, weight, gamma, rstd, N, C, group, M)
template <class A>
Napi::Value RmsnormFilmBackward(const Napi::CallbackInfo& info) {
  A args(info, "rmsnormFilmBackward", 13);
  const int64_t N = args.size(9, "N", 0);
  const int64_t C = args.size(10, "C", 1);
  const int64_t group = args.size(11, "group", 1);
  const int64_t M = args.size(12, "M", 1);
  const int64_t NC = args.count("N, C", {N, C});
  const int64_t MC = args.count("M, C", {M, C});
  const ShapeText nc = shape("N, C", {N, C});
  const ShapeText mc = shape("M, C", {M, C});
  const ShapeText c = shape("C", {C});
  float* dinp = args.f32(0, "dinp", NC, nc);
  float* dweight = args.f32(1, "dweight", C, c);
  float* dgamma = args.f32(2, "dgamma", MC, mc);
  float* dbeta = args.f32(3, "dbeta", MC, mc);
  const float* dout = args.f32(4, "dout", NC, nc);
  const float* inp = args.f32(5, "inp", NC, nc);
  const float* weight = args.f32(6, "weight", C, c);
  const float* gamma = args.f32(7, "gamma", MC, mc);
  const float* rstd = args.f32(8, "rstd", N, shape("N", {N}));
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), rmsnorm_film_backward, dinp, dweight, dgamma, dbeta, dout, inp, weight, gamma,
                     rstd, N, C, group, M, args.context());
  } else {
    rmsnorm_film_backward(dinp, dweight, dgamma, dbeta, dout, inp, weight, gamma, rstd, N, C, group, M,
                          context(info.Env()));
  }
  return info.Env().Undefined();
}

}  // namespace

void InitNorm(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "rmsnormForward", RmsnormForward<Args>);
  bind(env, exports, "rmsnormBackward", RmsnormBackward<Args>);
  Napi::Object cuda = cuda_exports(env, exports);
  bind(env, cuda, "rmsnormForward", RmsnormForward<CudaArgs>);
  bind(env, cuda, "rmsnormBackward", RmsnormBackward<CudaArgs>);
  bind(env, exports, "rmsnormFilmForward", RmsnormFilmForward<Args>);
  bind(env, exports, "rmsnormFilmBackward", RmsnormFilmBackward<Args>);
  bind(env, cuda, "rmsnormFilmForward", RmsnormFilmForward<CudaArgs>);
  bind(env, cuda, "rmsnormFilmBackward", RmsnormFilmBackward<CudaArgs>);
}

}  // namespace growlm::bindings
