// Bindings of growlm/distill.h.
#include <cfloat>
#include <cmath>
#include <sstream>
#include <vector>

#include "addon.h"
#include "args.h"
#include "cuda_args.h"
#include "growlm/distill.h"

namespace growlm::bindings {

namespace {

float temperature_of(const Args& args, size_t i) {
  const double t = args.finite(i, "temperature");
  if (!(t > 0) || t > FLT_MAX || static_cast<float>(t) < FLT_MIN) args.range_error("\"temperature\" must be a positive normal float32");
  return static_cast<float>(t);
}

[[noreturn]] void bad_position(const Args& args, int64_t n, int32_t p, int64_t P, bool distinct) {
  std::ostringstream msg;
  msg << "\"positions\"[" << n << "] = " << p << (p >= -1 && p < P ? " appears twice" : "") << ": positions must be -1 or in [0, " << P << ")"
      << (distinct ? ", each at most once" : "");
  args.range_error(msg.str());
}

[[noreturn]] void bad_id(const Args& args, int64_t i, int32_t id, int64_t V) {
  std::ostringstream msg;
  msg << "\"ids\"[" << i << "] = " << id << " is out of range [0, " << V << ")";
  args.range_error(msg.str());
}

// Every position is -1 or in [0, P); with `distinct`, no position in [0, P) appears twice.
void check_positions(const Args& args, const int32_t* pos, int64_t N, int64_t P, bool distinct) {
  std::vector<uint8_t> seen(distinct ? static_cast<size_t>(P) : 0);
  for (int64_t n = 0; n < N; ++n) {
    const int32_t p = pos[n];
    if (p < -1 || p >= P || (distinct && p >= 0 && seen[static_cast<size_t>(p)]++)) bad_position(args, n, p, P, distinct);
  }
}

// Only the targets the rows use are read: check those (the whole set may be far larger).
void check_ids(const Args& args, const int32_t* ids, const int32_t* pos, int64_t N, int64_t V, int64_t k) {
  for (int64_t n = 0; n < N; ++n) {
    if (pos[n] < 0) continue;
    for (int64_t i = static_cast<int64_t>(pos[n]) * k; i < (pos[n] + 1) * k; ++i) {
      if (ids[i] < 0 || ids[i] >= V) bad_id(args, i, ids[i], V);
    }
  }
}

// The same checks of device positions (and ids when given), by the device, with the same
// messages: the kernels trust what they index with.
void check_on_device(CudaArgs& args, const int32_t* pos, int64_t N, int64_t P, bool distinct, const int32_t* ids,
                     int64_t k, int64_t V) {
  int32_t what = 0, value = 0;
  int64_t index = -1;
  const int64_t n = GROWLM_CUDA_CALL(args.context(), distill_check, &what, &value, &index, pos, N, P, distinct, ids, k, V,
                                     args.context());
  if (n < 0) return;
  if (what == 3) bad_id(args, index, value, V);
  bad_position(args, n, value, P, distinct);
}

// distillTeacher(ids, logProbs, logRest, logits, positions, N, V, P, k, temperature), on the
// CPU (Args) or a device (CudaArgs).
template <class A>
Napi::Value DistillTeacher(const Napi::CallbackInfo& info) {
  A args(info, "distillTeacher", 10);
  const int64_t N = args.size(5, "N", 0);
  const int64_t V = args.size(6, "V", 1);
  const int64_t P = args.size(7, "P", 0);
  const int64_t k = args.size(8, "k", 1);
  if (k > V) args.range_error("\"k\" must be at most V");
  const float temperature = temperature_of(args, 9);
  int32_t* ids = args.i32(0, "ids", args.count("P, k", {P, k}), shape("P, k", {P, k}));
  float* logp = args.f32(1, "logProbs", args.count("P, k", {P, k}), shape("P, k", {P, k}));
  float* log_rest = args.f32(2, "logRest", P, shape("P", {P}));
  const float* logits = args.f32(3, "logits", args.count("N, V", {N, V}), shape("N, V", {N, V}));
  const int32_t* pos = args.i32(4, "positions", N, shape("N", {N}));
  if constexpr (A::on_device) {
    check_on_device(args, pos, N, P, true, nullptr, k, V);
    GROWLM_CUDA_CALL(args.context(), distill_teacher, ids, logp, log_rest, logits, pos, N, V, k, temperature, args.context());
  } else {
    check_positions(args, pos, N, P, true);
    distill_teacher(ids, logp, log_rest, logits, pos, N, V, k, temperature, context(info.Env()));
  }
  return info.Env().Undefined();
}

// distillStudent(grad, logits, ids, logProbs, logRest, positions, N, V, P, k, temperature, scale) -> T²·Σ KL
template <class A>
Napi::Value DistillStudent(const Napi::CallbackInfo& info) {
  A args(info, "distillStudent", 12);
  const int64_t N = args.size(6, "N", 0);
  const int64_t V = args.size(7, "V", 1);
  const int64_t P = args.size(8, "P", 0);
  const int64_t k = args.size(9, "k", 1);
  if (k > V) args.range_error("\"k\" must be at most V");
  const float temperature = temperature_of(args, 10);
  const double scale = args.finite(11, "scale");
  if (std::fabs(scale) > FLT_MAX) args.range_error("\"scale\" does not fit in float32");
  const int64_t full = args.count("N, V", {N, V});
  float* grad = args.f32(0, "grad", full, shape("N, V", {N, V}));
  const float* logits = args.f32(1, "logits", full, shape("N, V", {N, V}));
  const int32_t* ids = args.i32(2, "ids", args.count("P, k", {P, k}), shape("P, k", {P, k}));
  const float* logp = args.f32(3, "logProbs", args.count("P, k", {P, k}), shape("P, k", {P, k}));
  const float* log_rest = args.f32(4, "logRest", P, shape("P", {P}));
  const int32_t* pos = args.i32(5, "positions", N, shape("N", {N}));
  if (full > 0 && grad < logits + full && logits < grad + full) args.range_error("\"grad\" and \"logits\" share memory");
  double loss;
  if constexpr (A::on_device) {
    check_on_device(args, pos, N, P, false, ids, k, V);
    loss = GROWLM_CUDA_CALL(args.context(), distill_student, grad, logits, ids, logp, log_rest, pos, N, V, k, temperature,
                            static_cast<float>(scale), args.context());
  } else {
    check_positions(args, pos, N, P, false);
    check_ids(args, ids, pos, N, V, k);
    loss = distill_student(grad, logits, ids, logp, log_rest, pos, N, V, k, temperature, static_cast<float>(scale),
                           context(info.Env()));
  }
  return Napi::Number::New(info.Env(), loss);
}

}  // namespace

void InitDistill(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "distillTeacher", DistillTeacher<Args>);
  bind(env, exports, "distillStudent", DistillStudent<Args>);
  Napi::Object cuda = cuda_exports(env, exports);
  bind(env, cuda, "distillTeacher", DistillTeacher<CudaArgs>);
  bind(env, cuda, "distillStudent", DistillStudent<CudaArgs>);
}

}  // namespace growlm::bindings
