// Bindings of growlm/rope.h.
#include <cmath>
#include <limits>
#include <sstream>

#include "addon.h"
#include "args.h"
#include "cuda_args.h"
#include "growlm/rope.h"

namespace growlm::bindings {

namespace {

struct RopeArgs {
  int64_t B, T, H, D, n;  // n = B·T·H·D
  float theta;
  const int32_t* positions;
};

// (out, inp, positions, B, T, H, D, theta): sizes, theta and positions, checked before the
// caller reads the two [B, T, H, D] buffers. Positions on a device cannot be read here; they
// index nothing there (rope.cu), so a negative one only rotates the other way.
template <class A>
RopeArgs rope_args(A& args) {
  RopeArgs r;
  r.B = args.size(3, "B", 0);
  r.T = args.size(4, "T", 0);
  r.H = args.size(5, "H", 0);
  r.D = args.size(6, "D", 2);
  if (r.D % 2 != 0) args.range_error("expected an even head size \"D\" but received " + std::to_string(r.D));
  const double theta = args.finite(7, "theta");
  r.theta = static_cast<float>(theta);
  if (!(r.theta > 0.0f) || !std::isfinite(r.theta)) {
    std::ostringstream s;
    s << "expected \"theta\" > 0 and finite in fp32 but received " << theta;
    args.range_error(s.str());
  }
  const int64_t BT = args.count("B, T", {r.B, r.T});
  r.n = args.count("B, T, H, D", {r.B, r.T, r.H, r.D});
  r.positions = args.i32(2, "positions", BT, shape("B, T", {r.B, r.T}));
  if constexpr (!A::on_device) {
    // Positions are only bounded below: any non-negative int32 is a valid position.
    args.check_ids(r.positions, BT, "positions",
                   static_cast<int64_t>(std::numeric_limits<int32_t>::max()) + 1);
  }
  return r;
}

// ropeForward(out, inp, positions, B, T, H, D, theta), on the CPU (Args) or a device (CudaArgs).
template <class A>
Napi::Value RopeForward(const Napi::CallbackInfo& info) {
  A args(info, "ropeForward", 8);
  const RopeArgs r = rope_args(args);
  const ShapeText what = shape("B, T, H, D", {r.B, r.T, r.H, r.D});
  float* out = args.f32(0, "out", r.n, what);
  const float* inp = args.f32(1, "inp", r.n, what);
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), rope_forward, out, inp, r.positions, r.B, r.T, r.H, r.D, r.theta, args.context());
  } else {
    rope_forward(out, inp, r.positions, r.B, r.T, r.H, r.D, r.theta, context(info.Env()));
  }
  return info.Env().Undefined();
}

// ropeBackward(dinp, dout, positions, B, T, H, D, theta)
template <class A>
Napi::Value RopeBackward(const Napi::CallbackInfo& info) {
  A args(info, "ropeBackward", 8);
  const RopeArgs r = rope_args(args);
  const ShapeText what = shape("B, T, H, D", {r.B, r.T, r.H, r.D});
  float* dinp = args.f32(0, "dinp", r.n, what);
  const float* dout = args.f32(1, "dout", r.n, what);
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), rope_backward, dinp, dout, r.positions, r.B, r.T, r.H, r.D, r.theta,
                     args.context());
  } else {
    rope_backward(dinp, dout, r.positions, r.B, r.T, r.H, r.D, r.theta, context(info.Env()));
  }
  return info.Env().Undefined();
}

}  // namespace

void InitRope(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "ropeForward", RopeForward<Args>);
  bind(env, exports, "ropeBackward", RopeBackward<Args>);
  Napi::Object cuda = cuda_exports(env, exports);
  bind(env, cuda, "ropeForward", RopeForward<CudaArgs>);
  bind(env, cuda, "ropeBackward", RopeBackward<CudaArgs>);
}

}  // namespace growlm::bindings
