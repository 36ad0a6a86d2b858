// Elementwise kernels (growlm/elementwise.h). Plain loops the compiler vectorises for
// each ISA compilation, and vmath.h's vexp / vexp2 for e^x and 2^x; chunks of GRAIN
// elements are the unit of parallel work.
// Checked against float64 references (and Math.exp, 2 ** x in ulps) in
// test/kernels/elementwise.test.ts.
#include <cstring>

#include "growlm/elementwise.h"

#include "bf16.h"
#include "growlm/threads.h"
#include "isa.h"
#include "vmath.h"

namespace growlm::cpu::GROWLM_ISA_NS {

namespace {
constexpr int64_t GRAIN = 1 << 16;  // 256 KiB of fp32: amortises a wake-up

// out[i] = f(inp[i]) on [lo, hi) by vectors, the tail through a zero-padded vector.
template <vf (*f)(vf)>
void map(float* out, const float* inp, int64_t lo, int64_t hi) {
  constexpr int64_t V = GROWLM_VLEN;
  vf x;
  int64_t i = lo;
  for (; i + V <= hi; i += V) {
    std::memcpy(&x, inp + i, sizeof x);
    x = f(x);
    std::memcpy(out + i, &x, sizeof x);
  }
  if (i < hi) {
    float buf[V] = {};
    std::memcpy(buf, inp + i, sizeof(float) * (hi - i));
    std::memcpy(&x, buf, sizeof x);
    x = f(x);
    std::memcpy(out + i, &x, sizeof(float) * (hi - i));
  }
}
}  // namespace

void add(float* out, const float* a, const float* b, int64_t n, const Context& ctx) {
  parallel_for(ctx, n, GRAIN, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = a[i] + b[i];
  });
}

void copy(float* __restrict dst, const float* __restrict src, int64_t n, const Context& ctx) {
  parallel_for(ctx, n, GRAIN, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dst[i] = src[i];
  });
}

void scale(float* x, float s, int64_t n, const Context& ctx) {
  parallel_for(ctx, n, GRAIN, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) x[i] *= s;
  });
}

void f32_to_bf16(uint16_t* __restrict dst, const float* __restrict src, int64_t n,
                 const Context& ctx) {
  parallel_for(ctx, n, GRAIN, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dst[i] = f32_to_bf16_bits(src[i]);
  });
}

void bf16_to_f32(float* __restrict dst, const uint16_t* __restrict src, int64_t n,
                 const Context& ctx) {
  parallel_for(ctx, n, GRAIN, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dst[i] = bf16_bits_to_f32(src[i]);
  });
}

void exp_f32(float* out, const float* inp, int64_t n, const Context& ctx) {
  parallel_for(ctx, n, GRAIN, [&](int64_t lo, int64_t hi) { map<vexp>(out, inp, lo, hi); });
}

void exp2_f32(float* out, const float* inp, int64_t n, const Context& ctx) {
  parallel_for(ctx, n, GRAIN, [&](int64_t lo, int64_t hi) { map<vexp2>(out, inp, lo, hi); });
}

}  // namespace growlm::cpu::GROWLM_ISA_NS

#if defined(GROWLM_ISA_portable)
namespace growlm {
namespace cpu {
GROWLM_DECLARE_ISA(void add(float*, const float*, const float*, int64_t, const Context&))
GROWLM_DECLARE_ISA(void copy(float*, const float*, int64_t, const Context&))
GROWLM_DECLARE_ISA(void scale(float*, float, int64_t, const Context&))
GROWLM_DECLARE_ISA(void f32_to_bf16(uint16_t*, const float*, int64_t, const Context&))
GROWLM_DECLARE_ISA(void bf16_to_f32(float*, const uint16_t*, int64_t, const Context&))
GROWLM_DECLARE_ISA(void exp_f32(float*, const float*, int64_t, const Context&))
GROWLM_DECLARE_ISA(void exp2_f32(float*, const float*, int64_t, const Context&))
}  // namespace cpu

void add(float* out, const float* a, const float* b, int64_t n, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, add, out, a, b, n, ctx);
}
void copy(float* dst, const float* src, int64_t n, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, copy, dst, src, n, ctx);
}
void scale(float* x, float s, int64_t n, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, scale, x, s, n, ctx);
}
void f32_to_bf16(uint16_t* dst, const float* src, int64_t n, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, f32_to_bf16, dst, src, n, ctx);
}
void bf16_to_f32(float* dst, const uint16_t* src, int64_t n, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, bf16_to_f32, dst, src, n, ctx);
}
void exp_f32(float* out, const float* inp, int64_t n, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, exp_f32, out, inp, n, ctx);
}
void exp2_f32(float* out, const float* inp, int64_t n, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, exp2_f32, out, inp, n, ctx);
}
}  // namespace growlm
#endif
