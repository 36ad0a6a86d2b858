// Introspection and settings: compiled backends, CPU features, code path, thread count.
#include "addon.h"
#include "args.h"
#include "growlm/peak.h"

#include <string>

namespace growlm::bindings {

namespace {

Napi::Value Info(const Napi::CallbackInfo& info) {
  Args args(info, "info", 0);
  Napi::Env env = info.Env();
  const AddonState& s = state(env);
  const CpuFeatures& f = cpu_features();
  Napi::Object out = Napi::Object::New(env);
  // Compiled backends: the CPU kernels, the CUDA backend when nvcc built it, and the CUDA
  // backend's emulated twin, which is always there (native/cuda/emu/).
  Napi::Array backends = Napi::Array::New(env);
  backends.Set(backends.Length(), Napi::String::New(env, "cpu"));
#ifdef GROWLM_HAVE_CUDA
  backends.Set(backends.Length(), Napi::String::New(env, "cuda"));
#endif
  backends.Set(backends.Length(), Napi::String::New(env, "cuda-emulated"));
  out.Set("backends", backends);
  out.Set("isa", Napi::String::New(env, isa_name(s.ctx.isa)));
  out.Set("bestIsa", Napi::String::New(env, isa_name(best_isa())));
  out.Set("bf16Dot", Napi::Boolean::New(env, s.ctx.bf16_dot));
  out.Set("threads", Napi::Number::New(env, s.pool->size()));
  Napi::Object features = Napi::Object::New(env);
  features.Set("avx2", f.avx2);
  features.Set("fma", f.fma);
  features.Set("avx512f", f.avx512f);
  features.Set("avx512vl", f.avx512vl);
  features.Set("avx512bw", f.avx512bw);
  features.Set("avx512dq", f.avx512dq);
  features.Set("avx512bf16", f.avx512bf16);
  out.Set("cpuFeatures", features);
  Napi::Array isas = Napi::Array::New(env);
  for (int i = 0; i <= static_cast<int>(best_isa()); ++i) {
    isas.Set(static_cast<uint32_t>(i), Napi::String::New(env, isa_name(static_cast<Isa>(i))));
  }
  out.Set("availableIsas", isas);
  return out;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Args args(info, "setThreads", 1);
  const int64_t n = args.integer(0, "threads", 1, 1024);
  state(info.Env()).pool->resize(static_cast<int>(n));
  return info.Env().Undefined();
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Args args(info, "setIsa", 1);
  const std::string name = args.string(0, "isa");
  AddonState& s = state(info.Env());
  for (int i = 0; i <= static_cast<int>(best_isa()); ++i) {
    const Isa isa = static_cast<Isa>(i);
    if (name == isa_name(isa)) {
      s.ctx.isa = isa;
      s.ctx.bf16_dot = isa == Isa::avx512 && cpu_features().avx512bf16;
      return info.Env().Undefined();
    }
  }
  args.range_error("\"" + name + "\" is not a code path this CPU can run (best: " +
                   isa_name(best_isa()) + ")");
}

Napi::Value SetBf16Dot(const Napi::CallbackInfo& info) {
  Args args(info, "setBf16Dot", 1);
  const bool on = args.boolean(0, "enabled");
  AddonState& s = state(info.Env());
  if (on && !(s.ctx.isa == Isa::avx512 && cpu_features().avx512bf16)) {
    args.range_error("AVX512_BF16 is not available on the current code path");
  }
  s.ctx.bf16_dot = on;
  return info.Env().Undefined();
}

Napi::Value MeasurePeakGflops(const Napi::CallbackInfo& info) {
  Args args(info, "measurePeakGflops", 1);
  const double seconds = args.finite(0, "seconds");
  if (seconds <= 0 || seconds > 60) args.range_error("\"seconds\" must be in (0, 60]");
  return Napi::Number::New(info.Env(), measure_peak_gflops(seconds, context(info.Env())));
}

}  // namespace

void InitCore(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "info", Info);
  bind(env, exports, "setThreads", SetThreads);
  bind(env, exports, "setIsa", SetIsa);
  bind(env, exports, "setBf16Dot", SetBf16Dot);
  bind(env, exports, "measurePeakGflops", MeasurePeakGflops);
}

}  // namespace growlm::bindings
