// Bindings of growlm/xent.h.
#include <cfloat>
#include <climits>
#include <cmath>

#include "addon.h"
#include "args.h"
#include "growlm/xent.h"

namespace growlm::bindings {

namespace {

// crossEntropyForward(losses | null, lse, logits, targets, N, V, ignoreIndex) -> {lossSum, count}
Napi::Value CrossEntropyForward(const Napi::CallbackInfo& info) {
  Args args(info, "crossEntropyForward", 7);
  const int64_t N = args.size(4, "N", 0);
  const int64_t V = args.size(5, "V", 1);
  const int32_t ignore = static_cast<int32_t>(args.integer(6, "ignoreIndex", INT32_MIN, INT32_MAX));
  const ShapeText rows = shape("N", {N});
  float* losses = args.f32_or_null(0, "losses", N, rows);
  float* lse = args.f32(1, "lse", N, rows);
  const float* logits = args.f32(2, "logits", args.count("N, V", {N, V}), shape("N, V", {N, V}));
  const int32_t* targets = args.i32(3, "targets", N, rows);
  args.check_ids(targets, N, "targets", V, &ignore);
  const CrossEntropyResult r =
      cross_entropy_forward(losses, lse, logits, targets, N, V, ignore, context(info.Env()));
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("lossSum", Napi::Number::New(info.Env(), r.loss_sum));
  out.Set("count", Napi::Number::New(info.Env(), static_cast<double>(r.count)));
  return out;
}

// crossEntropyBackward(dlogits, logits, lse, targets, N, V, ignoreIndex, dloss); dlogits may
// be logits itself (the gradient replaces the logits).
Napi::Value CrossEntropyBackward(const Napi::CallbackInfo& info) {
  Args args(info, "crossEntropyBackward", 8);
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
  args.check_ids(targets, N, "targets", V, &ignore);
  cross_entropy_backward(dlogits, logits, lse, targets, N, V, ignore, dloss, context(info.Env()));
  return info.Env().Undefined();
}

}  // namespace

void InitXent(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "crossEntropyForward", CrossEntropyForward);
  bind(env, exports, "crossEntropyBackward", CrossEntropyBackward);
}

}  // namespace growlm::bindings
