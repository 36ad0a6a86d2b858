// Bindings of growlm/adamw.h.
#include <cfloat>
#include <cmath>
#include <sstream>

#include "addon.h"
#include "args.h"
#include "cuda_args.h"
#include "growlm/adamw.h"

namespace growlm::bindings {

namespace {

struct Span {
  const char* name;
  const void* data;
  int64_t bytes;
};

// The kernel reads its buffers through restrict pointers: refuse any two that overlap.
void check_disjoint(const Args& args, std::initializer_list<Span> spans) {
  for (auto a = spans.begin(); a != spans.end(); ++a) {
    for (auto b = a + 1; b != spans.end(); ++b) {
      if (!a->data || !b->data || a->bytes == 0 || b->bytes == 0) continue;
      const auto* pa = static_cast<const uint8_t*>(a->data);
      const auto* pb = static_cast<const uint8_t*>(b->data);
      if (pa < pb + b->bytes && pb < pa + a->bytes) {
        args.range_error(std::string("\"") + a->name + "\" and \"" + b->name + "\" share memory");
      }
    }
  }
}

// adamwStep(params, m, v, paramsBf16 | null, grads, n, segBegin, segDecay, lr, beta1, beta2,
//           eps, weightDecay, step, gradScale), on the CPU (Args: typed arrays) or a device
// (CudaArgs: DeviceBuffers, segBegin and segDecay included). S = the length of segDecay.
// Device segment starts cannot be read here: the TS wrapper validates them before upload,
// and the kernel only ever indexes segBegin[0..S] whatever they hold.
template <class A>
Napi::Value AdamwStep(const Napi::CallbackInfo& info) {
  A args(info, "adamwStep", 15);
  const int64_t n = args.size(5, "n", 0);
  const ShapeText what = shape("n", {n});
  float* params = args.f32(0, "params", n, what);
  float* m = args.f32(1, "m", n, what);
  float* v = args.f32(2, "v", n, what);
  uint16_t* params_bf16 = args.u16_or_null(3, "paramsBf16", n, what);
  const float* grads = args.f32(4, "grads", n, what);
  check_disjoint(args, {{"params", params, n * 4}, {"m", m, n * 4}, {"v", v, n * 4},
                        {"paramsBf16", params_bf16, n * 2}, {"grads", grads, n * 4}});

  const Napi::Value decay_value = info[7];
  int64_t S = 0;
  if constexpr (A::on_device) {
    const DeviceRange* r = device_range(decay_value);
    if (!r) args.type_error("expected a DeviceBuffer (uint8) for \"segDecay\"");
    S = static_cast<int64_t>(r->byte_length);
    if (n > 0 && S < 1) args.range_error("expected at least one segment for n = " + std::to_string(n));
  } else {
    if (!decay_value.IsTypedArray() ||
        decay_value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      args.type_error("expected Uint8Array for \"segDecay\"");
    }
    S = static_cast<int64_t>(decay_value.As<Napi::TypedArray>().ElementLength());
  }
  const uint8_t* seg_decay = args.u8(7, "segDecay", S, shape("S", {S}));
  const int64_t* seg_begin = args.i64(6, "segBegin", S + 1, shape("S + 1", {S + 1}));
  if constexpr (!A::on_device) {
    for (int64_t s = 0; s <= S; ++s) {
      const bool bad = s == 0 ? seg_begin[0] != 0 : seg_begin[s] < seg_begin[s - 1];
      if (bad || (s == S && seg_begin[S] != n)) {
        std::ostringstream msg;
        msg << "\"segBegin\" must start at 0, not decrease and end at n = " << n << ", but segBegin["
            << s << "] = " << seg_begin[s];
        args.range_error(msg.str());
      }
    }
  }

  AdamWHyper h;
  h.lr = args.finite(8, "lr");
  h.beta1 = args.finite(9, "beta1");
  h.beta2 = args.finite(10, "beta2");
  h.eps = args.finite(11, "eps");
  h.weight_decay = args.finite(12, "weightDecay");
  h.step = args.integer(13, "step", 1, 9007199254740991);
  const double grad_scale = args.finite(14, "gradScale");
  if (h.lr < 0) args.range_error("\"lr\" must be >= 0");
  if (!(h.beta1 >= 0 && h.beta1 < 1)) args.range_error("\"beta1\" must be in [0, 1)");
  if (!(h.beta2 >= 0 && h.beta2 < 1)) args.range_error("\"beta2\" must be in [0, 1)");
  if (!(h.eps > 0)) args.range_error("\"eps\" must be > 0");
  if (h.weight_decay < 0) args.range_error("\"weightDecay\" must be >= 0");
  if (std::fabs(grad_scale) > FLT_MAX) args.range_error("\"gradScale\" does not fit in float32");
  h.grad_scale = static_cast<float>(grad_scale);

  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), adamw_step, params, m, v, params_bf16, grads, n, seg_begin, seg_decay, S, h,
                     args.context());
  } else {
    adamw_step(params, m, v, params_bf16, grads, n, seg_begin, seg_decay, S, h, context(info.Env()));
  }
  return info.Env().Undefined();
}

// globalGradNorm(grads, n) -> number
template <class A>
Napi::Value GlobalGradNorm(const Napi::CallbackInfo& info) {
  A args(info, "globalGradNorm", 2);
  const int64_t n = args.size(1, "n", 0);
  const float* grads = args.f32(0, "grads", n, shape("n", {n}));
  if constexpr (A::on_device) {
    return Napi::Number::New(info.Env(), GROWLM_CUDA_CALL(args.context(), global_grad_norm, grads, n, args.context()));
  } else {
    return Napi::Number::New(info.Env(), global_grad_norm(grads, n, context(info.Env())));
  }
}

// clipGradNorm(grads, n, maxNorm) -> the norm before clipping
template <class A>
Napi::Value ClipGradNorm(const Napi::CallbackInfo& info) {
  A args(info, "clipGradNorm", 3);
  const int64_t n = args.size(1, "n", 0);
  float* grads = args.f32(0, "grads", n, shape("n", {n}));
  const double max_norm = args.finite(2, "maxNorm");
  if (max_norm < 0) args.range_error("\"maxNorm\" must be >= 0");
  if constexpr (A::on_device) {
    return Napi::Number::New(info.Env(),
                             GROWLM_CUDA_CALL(args.context(), clip_grad_norm, grads, n, max_norm, args.context()));
  } else {
    return Napi::Number::New(info.Env(), clip_grad_norm(grads, n, max_norm, context(info.Env())));
  }
}

}  // namespace

void InitAdamw(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "adamwStep", AdamwStep<Args>);
  bind(env, exports, "globalGradNorm", GlobalGradNorm<Args>);
  bind(env, exports, "clipGradNorm", ClipGradNorm<Args>);
  Napi::Object cuda = cuda_exports(env, exports);
  bind(env, cuda, "adamwStep", AdamwStep<CudaArgs>);
  bind(env, cuda, "globalGradNorm", GlobalGradNorm<CudaArgs>);
  bind(env, cuda, "clipGradNorm", ClipGradNorm<CudaArgs>);
}

}  // namespace growlm::bindings
