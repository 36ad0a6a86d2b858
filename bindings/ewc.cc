// Bindings of growlm/ewc.h.
#include <cfloat>
#include <cmath>
#include <string>

#include "addon.h"
#include "args.h"
#include "cuda_args.h"
#include "growlm/ewc.h"

namespace growlm::bindings {

namespace {

// The kernels read through restrict pointers (the CUDA ones stream each element once, but
// alike): an output may not overlap any other buffer. Device pointers share one address
// space per process, so the same comparison holds for them.
void check_apart(const Args& args, const char* out_name, const float* out, int64_t n,
                 std::initializer_list<std::pair<const char*, const float*>> inputs) {
  if (!out || n == 0) return;
  for (const auto& [name, in] : inputs) {
    if (in < out + n && out < in + n) {
      args.range_error(std::string("\"") + out_name + "\" and \"" + name + "\" share memory");
    }
  }
}

float float32_scalar(const Args& args, size_t i, const char* name) {
  const double v = args.finite(i, name);
  if (v < 0) args.range_error(std::string("\"") + name + "\" must be >= 0");
  if (v > FLT_MAX) args.range_error(std::string("\"") + name + "\" does not fit in float32");
  return static_cast<float>(v);
}

// ewcPenalty(grads | null, params, anchor, fisher, n, lambda) -> (λ/2)·Σ F·(θ − θ*)², on the
// CPU (Args) or a device (CudaArgs).
template <class A>
Napi::Value EwcPenalty(const Napi::CallbackInfo& info) {
  A args(info, "ewcPenalty", 6);
  const int64_t n = args.size(4, "n", 0);
  const ShapeText what = shape("n", {n});
  float* grads = args.f32_or_null(0, "grads", n, what);
  const float* params = args.f32(1, "params", n, what);
  const float* anchor = args.f32(2, "anchor", n, what);
  const float* fisher = args.f32(3, "fisher", n, what);
  const float lambda = float32_scalar(args, 5, "lambda");
  check_apart(args, "grads", grads, n, {{"params", params}, {"anchor", anchor}, {"fisher", fisher}});
  double penalty;
  if constexpr (A::on_device) {
    penalty = GROWLM_CUDA_CALL(args.context(), ewc_penalty, grads, params, anchor, fisher, n, lambda, args.context());
  } else {
    penalty = ewc_penalty(grads, params, anchor, fisher, n, lambda, context(info.Env()));
  }
  return Napi::Number::New(info.Env(), penalty);
}

// ewcFisherAccumulate(fisher, grads, n, scale): fisher += scale · grads²
template <class A>
Napi::Value EwcFisherAccumulate(const Napi::CallbackInfo& info) {
  A args(info, "ewcFisherAccumulate", 4);
  const int64_t n = args.size(2, "n", 0);
  const ShapeText what = shape("n", {n});
  float* fisher = args.f32(0, "fisher", n, what);
  const float* grads = args.f32(1, "grads", n, what);
  const float scale = float32_scalar(args, 3, "scale");
  check_apart(args, "fisher", fisher, n, {{"grads", grads}});
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), ewc_fisher_accumulate, fisher, grads, n, scale, args.context());
  } else {
    ewc_fisher_accumulate(fisher, grads, n, scale, context(info.Env()));
  }
  return info.Env().Undefined();
}

}  // namespace

void InitEwc(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "ewcPenalty", EwcPenalty<Args>);
  bind(env, exports, "ewcFisherAccumulate", EwcFisherAccumulate<Args>);
  Napi::Object cuda = cuda_exports(env, exports);
  bind(env, cuda, "ewcPenalty", EwcPenalty<CudaArgs>);
  bind(env, cuda, "ewcFisherAccumulate", EwcFisherAccumulate<CudaArgs>);
}

}  // namespace growlm::bindings
