// Bindings of growlm/attention.h.
#include <cmath>
#include <sstream>

#include "addon.h"
#include "args.h"
#include "cuda_args.h"
#include "growlm/attention.h"
#include "growlm/cuda.h"

namespace growlm::bindings {

namespace {

struct Dims {
  int64_t B, T, H, Hkv, D;
  int64_t q, kv, stats;  // elements of q-shaped, kv-shaped and lse-shaped buffers
};

// Reads B, T, H, Hkv, D starting at argument `first`; H must be a multiple of Hkv and
// every buffer length must be representable (< 2^53) before any length is compared.
// A is Args (typed arrays) or CudaArgs (device buffers).
template <class A>
Dims dims(const A& args, size_t first) {
  Dims d{};
  d.B = args.size(first, "B");
  d.T = args.size(first + 1, "T");
  d.H = args.size(first + 2, "H");
  d.Hkv = args.size(first + 3, "Hkv");
  d.D = args.size(first + 4, "D");
  if (d.H % d.Hkv != 0) {
    std::ostringstream s;
    s << "H = " << d.H << " must be a multiple of Hkv = " << d.Hkv;
    args.range_error(s.str());
  }
  d.q = args.count("B, T, H, D", {d.B, d.T, d.H, d.D});
  d.kv = args.count("B, T, Hkv, D", {d.B, d.T, d.Hkv, d.D});
  d.stats = args.count("B, H, T", {d.B, d.H, d.T});
  return d;
}

template <class A>
float scale_of(const A& args, size_t i) {
  const double scale = args.finite(i, "scale");
  if (!(scale > 0) || !std::isfinite(static_cast<float>(scale))) {
    std::ostringstream s;
    s << "expected \"scale\" > 0 (and finite in float32) but received " << scale;
    args.range_error(s.str());
  }
  return static_cast<float>(scale);
}

// attentionForward(out, lse, q, k, v, B, T, H, Hkv, D, scale), on the CPU (Args) or a device
// (CudaArgs).
template <class A>
Napi::Value AttentionForward(const Napi::CallbackInfo& info) {
  A args(info, "attentionForward", 11);
  const Dims d = dims(args, 5);
  const float scale = scale_of(args, 10);
  const ShapeText q_shape = shape("B, T, H, D", {d.B, d.T, d.H, d.D});
  const ShapeText kv_shape = shape("B, T, Hkv, D", {d.B, d.T, d.Hkv, d.D});
  float* out = args.f32(0, "out", d.q, q_shape);
  float* lse = args.f32(1, "lse", d.stats, shape("B, H, T", {d.B, d.H, d.T}));
  const float* q = args.f32(2, "q", d.q, q_shape);
  const float* k = args.f32(3, "k", d.kv, kv_shape);
  const float* v = args.f32(4, "v", d.kv, kv_shape);
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), attention_forward, out, lse, q, k, v, d.B, d.T, d.H, d.Hkv, d.D, scale,
                     args.context());
  } else {
    attention_forward(out, lse, q, k, v, d.B, d.T, d.H, d.Hkv, d.D, scale, context(info.Env()));
  }
  return info.Env().Undefined();
}

// attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, Hkv, D, scale)
template <class A>
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  A args(info, "attentionBackward", 15);
  const Dims d = dims(args, 9);
  const float scale = scale_of(args, 14);
  const ShapeText q_shape = shape("B, T, H, D", {d.B, d.T, d.H, d.D});
  const ShapeText kv_shape = shape("B, T, Hkv, D", {d.B, d.T, d.Hkv, d.D});
  float* dq = args.f32(0, "dq", d.q, q_shape);
  float* dk = args.f32(1, "dk", d.kv, kv_shape);
  float* dv = args.f32(2, "dv", d.kv, kv_shape);
  const float* dout = args.f32(3, "dout", d.q, q_shape);
  const float* q = args.f32(4, "q", d.q, q_shape);
  const float* k = args.f32(5, "k", d.kv, kv_shape);
  const float* v = args.f32(6, "v", d.kv, kv_shape);
  const float* out = args.f32(7, "out", d.q, q_shape);
  const float* lse = args.f32(8, "lse", d.stats, shape("B, H, T", {d.B, d.H, d.T}));
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), attention_backward, dq, dk, dv, dout, q, k, v, out, lse, d.B, d.T, d.H, d.Hkv,
                     d.D, scale, args.context());
  } else {
    attention_backward(dq, dk, dv, dout, q, k, v, out, lse, d.B, d.T, d.H, d.Hkv, d.D, scale, context(info.Env()));
  }
  return info.Env().Undefined();
}

// attentionCachedForward(out, q, k, v, keyBegin, B, Tq, Tk, S, H, Hkv, D, scale). On a device
// keyBegin cannot be range-checked here: the kernel clamps it to [0, Tk] (the TS side checks
// it where it has the values on the host).
template <class A>
Napi::Value AttentionCachedForward(const Napi::CallbackInfo& info) {
  A args(info, "attentionCachedForward", 13);
  const int64_t B = args.size(5, "B");
  const int64_t Tq = args.size(6, "Tq");
  const int64_t Tk = args.size(7, "Tk", Tq);
  const int64_t S = args.size(8, "S", Tk);
  const int64_t H = args.size(9, "H");
  const int64_t Hkv = args.size(10, "Hkv");
  const int64_t D = args.size(11, "D");
  if (H % Hkv != 0) {
    std::ostringstream s;
    s << "H = " << H << " must be a multiple of Hkv = " << Hkv;
    args.range_error(s.str());
  }
  const float scale = scale_of(args, 12);
  const ShapeText q_shape = shape("B, Tq, H, D", {B, Tq, H, D});
  const ShapeText kv_shape = shape("B, S, Hkv, D", {B, S, Hkv, D});
  const int64_t q_len = args.count("B, Tq, H, D", {B, Tq, H, D});
  const int64_t kv_len = args.count("B, S, Hkv, D", {B, S, Hkv, D});
  float* out = args.f32(0, "out", q_len, q_shape);
  const float* q = args.f32(1, "q", q_len, q_shape);
  const float* k = args.f32(2, "k", kv_len, kv_shape);
  const float* v = args.f32(3, "v", kv_len, kv_shape);
  const int32_t* begin = args.i32(4, "keyBegin", B, shape("B", {B}));
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), attention_cached_forward, out, q, k, v, begin, B, Tq, Tk, S, H, Hkv, D, scale,
                     args.context());
  } else {
    for (int64_t b = 0; b < B; ++b) {
      if (begin[b] < 0 || begin[b] > Tk) {
        std::ostringstream s;
        s << "\"keyBegin\"[" << b << "] = " << begin[b] << " is outside [0, Tk = " << Tk << "]";
        args.range_error(s.str());
      }
    }
    attention_cached_forward(out, q, k, v, begin, B, Tq, Tk, S, H, Hkv, D, scale, context(info.Env()));
  }
  return info.Env().Undefined();
}

// attentionForwardBf16(out, lse, q, k, v, B, T, H, Hkv, D, scale): bf16 (uint16 bits) tensors,
// fp32 lse; D in {64, 128}.
Napi::Value AttentionForwardBf16Cuda(const Napi::CallbackInfo& info) {
  CudaArgs args(info, "attentionForwardBf16", 11);
  const Dims d = dims(args, 5);
  const float scale = scale_of(args, 10);
  const ShapeText q_shape = shape("B, T, H, D", {d.B, d.T, d.H, d.D});
  const ShapeText kv_shape = shape("B, T, Hkv, D", {d.B, d.T, d.Hkv, d.D});
  uint16_t* out = args.u16(0, "out", d.q, q_shape);
  float* lse = args.f32(1, "lse", d.stats, shape("B, H, T", {d.B, d.H, d.T}));
  const uint16_t* q = args.u16(2, "q", d.q, q_shape);
  const uint16_t* k = args.u16(3, "k", d.kv, kv_shape);
  const uint16_t* v = args.u16(4, "v", d.kv, kv_shape);
  GROWLM_CUDA_CALL(args.context(), attention_forward_bf16, out, lse, q, k, v, d.B, d.T, d.H, d.Hkv, d.D, scale,
                   args.context());
  return info.Env().Undefined();
}

// attentionBackwardBf16(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, Hkv, D, scale)
Napi::Value AttentionBackwardBf16Cuda(const Napi::CallbackInfo& info) {
  CudaArgs args(info, "attentionBackwardBf16", 15);
  const Dims d = dims(args, 9);
  const float scale = scale_of(args, 14);
  const ShapeText q_shape = shape("B, T, H, D", {d.B, d.T, d.H, d.D});
  const ShapeText kv_shape = shape("B, T, Hkv, D", {d.B, d.T, d.Hkv, d.D});
  uint16_t* dq = args.u16(0, "dq", d.q, q_shape);
  uint16_t* dk = args.u16(1, "dk", d.kv, kv_shape);
  uint16_t* dv = args.u16(2, "dv", d.kv, kv_shape);
  const uint16_t* dout = args.u16(3, "dout", d.q, q_shape);
  const uint16_t* q = args.u16(4, "q", d.q, q_shape);
  const uint16_t* k = args.u16(5, "k", d.kv, kv_shape);
  const uint16_t* v = args.u16(6, "v", d.kv, kv_shape);
  const uint16_t* out = args.u16(7, "out", d.q, q_shape);
  const float* lse = args.f32(8, "lse", d.stats, shape("B, H, T", {d.B, d.H, d.T}));
  GROWLM_CUDA_CALL(args.context(), attention_backward_bf16, dq, dk, dv, dout, q, k, v, out, lse, d.B, d.T, d.H,
                   d.Hkv, d.D, scale, args.context());
  return info.Env().Undefined();
}

}  // namespace

void InitAttention(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "attentionForward", AttentionForward<Args>);
  bind(env, exports, "attentionBackward", AttentionBackward<Args>);
  bind(env, exports, "attentionCachedForward", AttentionCachedForward<Args>);
  Napi::Object cuda = cuda_exports(env, exports);
  bind(env, cuda, "attentionForward", AttentionForward<CudaArgs>);
  bind(env, cuda, "attentionBackward", AttentionBackward<CudaArgs>);
  bind(env, cuda, "attentionCachedForward", AttentionCachedForward<CudaArgs>);
  bind(env, cuda, "attentionForwardBf16", AttentionForwardBf16Cuda);
  bind(env, cuda, "attentionBackwardBf16", AttentionBackwardBf16Cuda);
}

}  // namespace growlm::bindings
