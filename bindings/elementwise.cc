// Bindings of growlm/elementwise.h.
#include <type_traits>

#include "addon.h"
#include "args.h"
#include "cuda_args.h"
#include "growlm/elementwise.h"

namespace growlm::bindings {

namespace {

// add(out, a, b, n), on the CPU (Args) or a device (CudaArgs).
template <class A>
Napi::Value Add(const Napi::CallbackInfo& info) {
  A args(info, "add", 4);
  const int64_t n = args.size(3, "n", 0);
  const ShapeText what = shape("n", {n});
  float* out = args.f32(0, "out", n, what);
  const float* a = args.f32(1, "a", n, what);
  const float* b = args.f32(2, "b", n, what);
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), add, out, a, b, n, args.context());
  } else {
    add(out, a, b, n, context(info.Env()));
  }
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

// The CUDA twin of Unary: <op>(dst, src, n) on device buffers, `run` calling the kernel of
// the context's backend.
template <typename Out, typename In, class Run>
Napi::Value UnaryCuda(const Napi::CallbackInfo& info, const char* op, Run run) {
  CudaArgs args(info, op, 3);
  const int64_t n = args.size(2, "n", 0);
  const ShapeText what = shape("n", {n});
  Out* dst;
  const In* src;
  if constexpr (std::is_same_v<Out, float>) {
    dst = args.f32(0, "dst", n, what);
  } else {
    dst = args.u16(0, "dst", n, what);
  }
  if constexpr (std::is_same_v<In, float>) {
    src = args.f32(1, "src", n, what);
  } else {
    src = args.u16(1, "src", n, what);
  }
  run(args.context(), dst, src, n);
  return info.Env().Undefined();
}

Napi::Value CopyCuda(const Napi::CallbackInfo& info) {
  return UnaryCuda<float, float>(info, "copy", [](const CudaContext& ctx, float* dst, const float* src, int64_t n) {
    GROWLM_CUDA_CALL(ctx, copy, dst, src, n, ctx);
  });
}

Napi::Value F32ToBf16Cuda(const Napi::CallbackInfo& info) {
  return UnaryCuda<uint16_t, float>(info, "f32ToBf16",
                                    [](const CudaContext& ctx, uint16_t* dst, const float* src, int64_t n) {
                                      GROWLM_CUDA_CALL(ctx, f32_to_bf16, dst, src, n, ctx);
                                    });
}

Napi::Value Bf16ToF32Cuda(const Napi::CallbackInfo& info) {
  return UnaryCuda<float, uint16_t>(info, "bf16ToF32",
                                    [](const CudaContext& ctx, float* dst, const uint16_t* src, int64_t n) {
                                      GROWLM_CUDA_CALL(ctx, bf16_to_f32, dst, src, n, ctx);
                                    });
}

constexpr char COPY[] = "copy";
constexpr char F32_TO_BF16[] = "f32ToBf16";
constexpr char BF16_TO_F32[] = "bf16ToF32";
constexpr char EXP_F32[] = "expF32";
constexpr char EXP2_F32[] = "exp2F32";

// scale(x, s, n)
template <class A>
Napi::Value Scale(const Napi::CallbackInfo& info) {
  A args(info, "scale", 3);
  const int64_t n = args.size(2, "n", 0);
  float* x = args.f32(0, "x", n, shape("n", {n}));
  const float s = static_cast<float>(args.finite(1, "s"));
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), scale, x, s, n, args.context());
  } else {
    scale(x, s, n, context(info.Env()));
  }
  return info.Env().Undefined();
}

}  // namespace

void InitElementwise(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "add", Add<Args>);
  bind(env, exports, COPY, Unary<COPY, float, float, copy>);
  bind(env, exports, "scale", Scale<Args>);
  bind(env, exports, F32_TO_BF16, Unary<F32_TO_BF16, uint16_t, float, f32_to_bf16>);
  bind(env, exports, BF16_TO_F32, Unary<BF16_TO_F32, float, uint16_t, bf16_to_f32>);
  bind(env, exports, EXP_F32, Unary<EXP_F32, float, float, exp_f32>);
  bind(env, exports, EXP2_F32, Unary<EXP2_F32, float, float, exp2_f32>);
  // exp and exp2 have no CUDA twin: the CPU's 1-ulp guarantee would need more than expf's.
  Napi::Object cuda = cuda_exports(env, exports);
  bind(env, cuda, "add", Add<CudaArgs>);
  bind(env, cuda, COPY, CopyCuda);
  bind(env, cuda, "scale", Scale<CudaArgs>);
  bind(env, cuda, F32_TO_BF16, F32ToBf16Cuda);
  bind(env, cuda, BF16_TO_F32, Bf16ToF32Cuda);
}

}  // namespace growlm::bindings
