// Bindings of growlm/norm.h.
#include <cmath>
#include <sstream>

#include "addon.h"
#include "args.h"
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

// rmsnormForward(out, rstd, inp, weight, N, C, eps)
Napi::Value RmsnormForward(const Napi::CallbackInfo& info) {
  Args args(info, "rmsnormForward", 7);
  const int64_t N = args.size(4, "N", 0);
  const int64_t C = args.size(5, "C", 1);
  const float eps = positive_eps(args, 6);
  const int64_t NC = args.count("N, C", {N, C});
  const ShapeText nc = shape("N, C", {N, C});
  float* out = args.f32(0, "out", NC, nc);
  float* rstd = args.f32(1, "rstd", N, shape("N", {N}));
  const float* inp = args.f32(2, "inp", NC, nc);
  const float* weight = args.f32(3, "weight", C, shape("C", {C}));
  rmsnorm_forward(out, rstd, inp, weight, N, C, eps, context(info.Env()));
  return info.Env().Undefined();
}

// rmsnormBackward(dinp, dweight, dout, inp, weight, rstd, N, C)
Napi::Value RmsnormBackward(const Napi::CallbackInfo& info) {
  Args args(info, "rmsnormBackward", 8);
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
  rmsnorm_backward(dinp, dweight, dout, inp, weight, rstd, N, C, context(info.Env()));
  return info.Env().Undefined();
}

}  // namespace

void InitNorm(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "rmsnormForward", RmsnormForward);
  bind(env, exports, "rmsnormBackward", RmsnormBackward);
}

}  // namespace growlm::bindings
