// Bindings of growlm/elementwise.h.
#include "addon.h"
#include "args.h"
#include "growlm/elementwise.h"

namespace growlm::bindings {

namespace {

// add(out, a, b, n)
Napi::Value Add(const Napi::CallbackInfo& info) {
  Args args(info, "add", 4);
  const int64_t n = args.size(3, "n", 0);
  const std::string what = shape("n", {n});
  float* out = args.f32(0, "out", n, what);
  const float* a = args.f32(1, "a", n, what);
  const float* b = args.f32(2, "b", n, what);
  add(out, a, b, n, context(info.Env()));
  return info.Env().Undefined();
}

// copy(dst, src, n)
Napi::Value Copy(const Napi::CallbackInfo& info) {
  Args args(info, "copy", 3);
  const int64_t n = args.size(2, "n", 0);
  const std::string what = shape("n", {n});
  float* dst = args.f32(0, "dst", n, what);
  const float* src = args.f32(1, "src", n, what);
  copy(dst, src, n, context(info.Env()));
  return info.Env().Undefined();
}

// scale(x, s, n)
Napi::Value Scale(const Napi::CallbackInfo& info) {
  Args args(info, "scale", 3);
  const int64_t n = args.size(2, "n", 0);
  float* x = args.f32(0, "x", n, shape("n", {n}));
  const float s = static_cast<float>(args.finite(1, "s"));
  scale(x, s, n, context(info.Env()));
  return info.Env().Undefined();
}

// f32ToBf16(dst, src, n)
Napi::Value F32ToBf16(const Napi::CallbackInfo& info) {
  Args args(info, "f32ToBf16", 3);
  const int64_t n = args.size(2, "n", 0);
  const std::string what = shape("n", {n});
  uint16_t* dst = args.u16(0, "dst", n, what);
  const float* src = args.f32(1, "src", n, what);
  f32_to_bf16(dst, src, n, context(info.Env()));
  return info.Env().Undefined();
}

// bf16ToF32(dst, src, n)
Napi::Value Bf16ToF32(const Napi::CallbackInfo& info) {
  Args args(info, "bf16ToF32", 3);
  const int64_t n = args.size(2, "n", 0);
  const std::string what = shape("n", {n});
  float* dst = args.f32(0, "dst", n, what);
  const uint16_t* src = args.u16(1, "src", n, what);
  bf16_to_f32(dst, src, n, context(info.Env()));
  return info.Env().Undefined();
}

// expF32(out, inp, n)
Napi::Value ExpF32(const Napi::CallbackInfo& info) {
  Args args(info, "expF32", 3);
  const int64_t n = args.size(2, "n", 0);
  const std::string what = shape("n", {n});
  float* out = args.f32(0, "out", n, what);
  const float* inp = args.f32(1, "inp", n, what);
  exp_f32(out, inp, n, context(info.Env()));
  return info.Env().Undefined();
}

// exp2F32(out, inp, n)
Napi::Value Exp2F32(const Napi::CallbackInfo& info) {
  Args args(info, "exp2F32", 3);
  const int64_t n = args.size(2, "n", 0);
  const std::string what = shape("n", {n});
  float* out = args.f32(0, "out", n, what);
  const float* inp = args.f32(1, "inp", n, what);
  exp2_f32(out, inp, n, context(info.Env()));
  return info.Env().Undefined();
}

}  // namespace

void InitElementwise(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "add", Add);
  bind(env, exports, "copy", Copy);
  bind(env, exports, "scale", Scale);
  bind(env, exports, "f32ToBf16", F32ToBf16);
  bind(env, exports, "bf16ToF32", Bf16ToF32);
  bind(env, exports, "expF32", ExpF32);
  bind(env, exports, "exp2F32", Exp2F32);
}

}  // namespace growlm::bindings
