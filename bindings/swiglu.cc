// Bindings of growlm/swiglu.h.
#include "addon.h"
#include "args.h"
#include "cuda_args.h"
#include "growlm/swiglu.h"

namespace growlm::bindings {

namespace {

// swigluForward(out, gate, up, n), on the CPU (Args) or a device (CudaArgs).
template <class A>
Napi::Value SwigluForward(const Napi::CallbackInfo& info) {
  A args(info, "swigluForward", 4);
  const int64_t n = args.size(3, "n", 0);
  const ShapeText what = shape("n", {n});
  float* out = args.f32(0, "out", n, what);
  const float* gate = args.f32(1, "gate", n, what);
  const float* up = args.f32(2, "up", n, what);
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), swiglu_forward, out, gate, up, n, args.context());
  } else {
    swiglu_forward(out, gate, up, n, context(info.Env()));
  }
  return info.Env().Undefined();
}

// swigluBackward(dgate, dup, dout, gate, up, n)
template <class A>
Napi::Value SwigluBackward(const Napi::CallbackInfo& info) {
  A args(info, "swigluBackward", 6);
  const int64_t n = args.size(5, "n", 0);
  const ShapeText what = shape("n", {n});
  float* dgate = args.f32(0, "dgate", n, what);
  float* dup = args.f32(1, "dup", n, what);
  const float* dout = args.f32(2, "dout", n, what);
  const float* gate = args.f32(3, "gate", n, what);
  const float* up = args.f32(4, "up", n, what);
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), swiglu_backward, dgate, dup, dout, gate, up, n, args.context());
  } else {
    swiglu_backward(dgate, dup, dout, gate, up, n, context(info.Env()));
  }
  return info.Env().Undefined();
}

}  // namespace

void InitSwiglu(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "swigluForward", SwigluForward<Args>);
  bind(env, exports, "swigluBackward", SwigluBackward<Args>);
  Napi::Object cuda = cuda_exports(env, exports);
  bind(env, cuda, "swigluForward", SwigluForward<CudaArgs>);
  bind(env, cuda, "swigluBackward", SwigluBackward<CudaArgs>);
}

}  // namespace growlm::bindings
