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
  const ShapeText what = shape("n", {n});
  float* out = args.f32(0, "out", n, what);
  const float* a = args.f32(1, "a", n, what);
  const float* b = args.f32(2, "b", n, what);
  add(out, a, b, n, context(info.Env()));
  return info.Env().Undefined();
}

template <typename T>
T* array_arg(const Args& args, size_t i, const char* name, int64_t n, const ShapeText& what);
template <>
float* array_arg<float>(const Args& args, size_t i, const char* name, int64_t n, const ShapeText& what) {
  return args.f32(i, name, n, what);
}
template <>
uint16_t* array_arg<uint16_t>(const Args& args, size_t i, const char* name, int64_t n, const ShapeText& what) {
  return args.u16(i, name, n, what);
}

// <op>(dst, src, n) for the kernels dst[i] = f(src[i]).
template <const char* Op, typename Out, typename In, void (*Kernel)(Out*, const In*, int64_t, const Context&)>
Napi::Value Unary(const Napi::CallbackInfo& info) {
  Args args(info, Op, 3);
  const int64_t n = args.size(2, "n", 0);
  const ShapeText what = shape("n", {n});
  Out* dst = array_arg<Out>(args, 0, "dst", n, what);
  const In* src = array_arg<In>(args, 1, "src", n, what);
  Kernel(dst, src, n, context(info.Env()));
  return info.Env().Undefined();
}

constexpr char COPY[] = "copy";
constexpr char F32_TO_BF16[] = "f32ToBf16";
constexpr char BF16_TO_F32[] = "bf16ToF32";
constexpr char EXP_F32[] = "expF32";
constexpr char EXP2_F32[] = "exp2F32";

// scale(x, s, n)
Napi::Value Scale(const Napi::CallbackInfo& info) {
  Args args(info, "scale", 3);
  const int64_t n = args.size(2, "n", 0);
  float* x = args.f32(0, "x", n, shape("n", {n}));
  const float s = static_cast<float>(args.finite(1, "s"));
  scale(x, s, n, context(info.Env()));
  return info.Env().Undefined();
}

}  // namespace

void InitElementwise(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "add", Add);
  bind(env, exports, COPY, Unary<COPY, float, float, copy>);
  bind(env, exports, "scale", Scale);
  bind(env, exports, F32_TO_BF16, Unary<F32_TO_BF16, uint16_t, float, f32_to_bf16>);
  bind(env, exports, BF16_TO_F32, Unary<BF16_TO_F32, float, uint16_t, bf16_to_f32>);
  bind(env, exports, EXP_F32, Unary<EXP_F32, float, float, exp_f32>);
  bind(env, exports, EXP2_F32, Unary<EXP2_F32, float, float, exp2_f32>);
}

}  // namespace growlm::bindings
