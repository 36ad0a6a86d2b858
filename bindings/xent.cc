// Bindings of growlm/xent.h.
#include <cfloat>
#include <climits>
#include <cmath>

#include "addon.h"
#include "args.h"
#include "cuda_args.h"
#include "growlm/xent.h"

namespace growlm::bindings {

namespace {

// crossEntropyForward(losses | null, lse, logits, targets, N, V, ignoreIndex) -> {lossSum, count},
// on the CPU (Args) or a device (CudaArgs). Device targets cannot be range-checked here: the
// CUDA forward flags them in its kernel and throws after the row loop.
template <class A>
Napi::Value CrossEntropyForward(const Napi::CallbackInfo& info) {
  A args(info, "crossEntropyForward", 7);
  const int64_t N = args.size(4, "N", 0);
  const int64_t V = args.size(5, "V", 1);
  const int32_t ignore = static_cast<int32_t>(args.integer(6, "ignoreIndex", INT32_MIN, INT32_MAX));
  const ShapeText rows = shape("N", {N});
  float* losses = args.f32_or_null(0, "losses", N, rows);
  float* lse = args.f32(1, "lse", N, rows);
  const float* logits = args.f32(2, "logits", args.count("N, V", {N, V}), shape("N, V", {N, V}));
  const int32_t* targets = args.i32(3, "targets", N, rows);
  CrossEntropyResult r;
  if constexpr (A::on_device) {
    r = GROWLM_CUDA_CALL(args.context(), cross_entropy_forward, losses, lse, logits, targets, N, V, ignore,
                         args.context());
  } else {
    args.check_ids(targets, N, "targets", V, &ignore);
    r = cross_entropy_forward(losses, lse, logits, targets, N, V, ignore, context(info.Env()));
  }
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("lossSum", Napi::Number::New(info.Env(), r.loss_sum));
  out.Set("count", Napi::Number::New(info.Env(), static_cast<double>(r.count)));
  return out;
}

// crossEntropyBackward(dlogits, logits, lse, targets, N, V, ignoreIndex, dloss); dlogits may
// be logits itself (the gradient replaces the logits). On a device the targets are not
// checked (the forward did); an out-of-range one loses only its one-hot, never reads outside.
template <class A>
Napi::Value CrossEntropyBackward(const Napi::CallbackInfo& info) {
  A args(info, "crossEntropyBackward", 8);
  const int64_t N = args.size(4, "N", 0);
  const int64_t V = args.size(5, "V", 1);
  const int32_t ignore = static_cast<int32_t>(args.integer(6, "ignoreIndex", INT32_MIN, INT32_MAX));
  const double dloss64 = args.finite(7, "dloss");
  if (std::fabs(dloss64) > FLT_MAX) args.range_error("\"dloss\" does not fit in float32");
  const float dloss = static_cast<float>(dloss64);
  const ShapeText rows = shape("N", {N});
  const ShapeText full = shape("N, V", {N, V});
  const int64_t length = args.count("N, V", {N, V});
  float* dlogits = args.f32(0, "dlogits", length, full);
  const float* logits = args.f32(1, "logits", length, full);
  const float* lse = args.f32(2, "lse", N, rows);
  const int32_t* targets = args.i32(3, "targets", N, rows);
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), cross_entropy_backward, dlogits, logits, lse, targets, N, V, ignore, dloss,
                     args.context());
  } else {
    args.check_ids(targets, N, "targets", V, &ignore);
    cross_entropy_backward(dlogits, logits, lse, targets, N, V, ignore, dloss, context(info.Env()));
  }
  return info.Env().Undefined();
}

}  // namespace

void InitXent(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "crossEntropyForward", CrossEntropyForward<Args>);
  bind(env, exports, "crossEntropyBackward", CrossEntropyBackward<Args>);
  Napi::Object cuda = cuda_exports(env, exports);
  bind(env, cuda, "crossEntropyForward", CrossEntropyForward<CudaArgs>);
  bind(env, cuda, "crossEntropyBackward", CrossEntropyBackward<CudaArgs>);
}

}  // namespace growlm::bindings
