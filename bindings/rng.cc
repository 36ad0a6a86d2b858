// Bindings of growlm/rng.h. Seeds and offsets are BigInts in [0, 2^64) or non-negative
// safe integers (numbers below 2^53), so no value is silently rounded.
#include <cfloat>
#include <cmath>

#include "addon.h"
#include "args.h"
#include "cuda_args.h"
#include "growlm/rng.h"

namespace growlm::bindings {

namespace {

uint64_t u64(const Args& args, const Napi::CallbackInfo& info, size_t i, const char* name) {
  const Napi::Value value = info[i];
  if (value.IsBigInt()) {
    bool lossless = false;
    const uint64_t u = value.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) args.range_error(std::string("expected \"") + name + "\" in [0, 2^64)");
    return u;
  }
  if (!value.IsNumber()) args.type_error(std::string("expected a BigInt or a number for \"") + name + "\"");
  return static_cast<uint64_t>(args.size(i, name, 0));
}

// A finite number that stays finite in float32.
float f32_value(const Args& args, size_t i, const char* name) {
  const double d = args.finite(i, name);
  if (std::fabs(d) > FLT_MAX) args.range_error(std::string("\"") + name + "\" does not fit in float32");
  return static_cast<float>(d);
}

// rngUniform(out, n, seed, offset, low, high), on the CPU (Args) or a device (CudaArgs).
template <class A>
Napi::Value RngUniform(const Napi::CallbackInfo& info) {
  A args(info, "rngUniform", 6);
  const int64_t n = args.size(1, "n", 0);
  float* out = args.f32(0, "out", n, shape("n", {n}));
  const uint64_t seed = u64(args, info, 2, "seed");
  const uint64_t offset = u64(args, info, 3, "offset");
  const float low = f32_value(args, 4, "low");
  const float high = f32_value(args, 5, "high");
  if (!(low <= high)) args.range_error("expected low <= high");
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), rng_uniform, out, n, seed, offset, low, high, args.context());
  } else {
    rng_uniform(out, n, seed, offset, low, high, context(info.Env()));
  }
  return info.Env().Undefined();
}

// rngNormal(out, n, seed, offset, mean, std)
template <class A>
Napi::Value RngNormal(const Napi::CallbackInfo& info) {
  A args(info, "rngNormal", 6);
  const int64_t n = args.size(1, "n", 0);
  float* out = args.f32(0, "out", n, shape("n", {n}));
  const uint64_t seed = u64(args, info, 2, "seed");
  const uint64_t offset = u64(args, info, 3, "offset");
  const float mean = f32_value(args, 4, "mean");
  const float std = f32_value(args, 5, "std");
  if (std < 0) args.range_error("expected std >= 0");
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), rng_normal, out, n, seed, offset, mean, std, args.context());
  } else {
    rng_normal(out, n, seed, offset, mean, std, context(info.Env()));
  }
  return info.Env().Undefined();
}

// rngDropout(out, inp, rows, C, p, seed, rowOffsets: BigInt64Array [rows] (a DeviceBuffer of
// int64 on a device), read as unsigned)
template <class A>
Napi::Value RngDropout(const Napi::CallbackInfo& info) {
  A args(info, "rngDropout", 7);
  const int64_t rows = args.size(2, "rows", 0);
  const int64_t C = args.size(3, "C", 1);
  const double p = args.finite(4, "p");
  // p < 1 also after rounding to fp32, so the scale 1 / (1 − p) stays finite.
  if (!(p >= 0.0 && static_cast<float>(p) < 1.0f)) {
    args.range_error("expected \"p\" in [0, 1) (in fp32) but received " + std::to_string(p));
  }
  const uint64_t seed = u64(args, info, 5, "seed");
  const int64_t n = args.count("rows, C", {rows, C});
  const ShapeText rc = shape("rows, C", {rows, C});
  float* out = args.f32(0, "out", n, rc);
  const float* inp = args.f32(1, "inp", n, rc);
  const int64_t* offsets = args.i64(6, "rowOffsets", rows, shape("rows", {rows}));
  const auto* row_offsets = reinterpret_cast<const uint64_t*>(offsets);
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), rng_dropout, out, inp, rows, C, static_cast<float>(p), seed, row_offsets,
                     args.context());
  } else {
    rng_dropout(out, inp, rows, C, static_cast<float>(p), seed, row_offsets, context(info.Env()));
  }
  return info.Env().Undefined();
}

// philox4x32(counter: Uint32Array [4], key: Uint32Array [2]) -> Uint32Array [4]: the raw
// block, for known-answer tests.
Napi::Value Philox4x32(const Napi::CallbackInfo& info) {
  Args args(info, "philox4x32", 2);
  const uint32_t* in[2] = {};
  const char* names[2] = {"counter", "key"};
  const size_t lengths[2] = {4, 2};
  for (size_t i = 0; i < 2; ++i) {
    const Napi::Value value = info[i];
    if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
        value.As<Napi::TypedArray>().ElementLength() != lengths[i]) {
      args.type_error(std::string("expected a Uint32Array of length ") + std::to_string(lengths[i]) +
                      " for \"" + names[i] + "\"");
    }
    const Napi::Uint32Array array = value.As<Napi::Uint32Array>();
    in[i] = array.Data();
  }
  Napi::Uint32Array out = Napi::Uint32Array::New(info.Env(), 4);
  philox4x32_10(out.Data(), in[0], in[1], context(info.Env()));
  return out;
}

}  // namespace

void InitRng(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "rngUniform", RngUniform<Args>);
  bind(env, exports, "rngNormal", RngNormal<Args>);
  bind(env, exports, "philox4x32", Philox4x32);
  bind(env, exports, "rngDropout", RngDropout<Args>);
  Napi::Object cuda = cuda_exports(env, exports);
  bind(env, cuda, "rngUniform", RngUniform<CudaArgs>);
  bind(env, cuda, "rngNormal", RngNormal<CudaArgs>);
  bind(env, cuda, "rngDropout", RngDropout<CudaArgs>);
}

}  // namespace growlm::bindings
