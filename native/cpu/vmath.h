// Vector math shared by the kernels: the vector type of the current code path and e^x, 2^x.
// Included only by files in native/cpu/kernels/, which are compiled once per ISA, so
// everything here is inline in that ISA's namespace (GROWLM_ISA_NS): each compilation gets
// its own definitions and no inline function is shared across ISAs.
//
// vexp(x) = e^x and vexp2(x) = 2^x, lane by lane (a lane's result never depends on the
// others, so a value gives the same bits wherever it sits in a buffer):
//   accuracy   at most 1 ulp for normal results. Checked over every fp32 input against
//              double exp / exp2, worst cases: vexp 0.99 ulp (0.95 without FMA), vexp2
//              0.94 ulp (0.70 without FMA, where its last steps run in double);
//   subnormal  results below 2^-126 are the polynomial's value rounded once to a multiple
//              of 2^-149, within one such step of the exact value (worst 0.94, vexp 0.75);
//   specials   NaN gives NaN; +inf and results that round above FLT_MAX (x > 88.72283 for
//              e^x, x >= 128 for 2^x) give +inf; -inf and results that round to 0 give +0.
// Tested through the elementwise kernels exp_f32 / exp2_f32 in
// test/kernels/elementwise.test.ts.
//
// Method: x = n·ln2 + s (Cody-Waite, ln2 in two parts) or x = n + r with n an integer, a
// degree-6 polynomial for e^s (SLEEF's xexpf) or 2^r (a minimax fit), then the product
// with 2^n. AVX-512 does that product with vscalefps, which rounds subnormals and
// overflows in hardware; clamping x first keeps the reduction meaningful for huge |x|.
// Elsewhere, while every lane's n lies in [-125, 125] the product is exact as an integer
// add to the exponent field, and only vectors holding a lane outside take a branch to the
// full treatment (clamps, a rounded subnormal path, NaN). That path never lets a
// floating-point operation produce a subnormal: x86 cores take a microcode assist on each
// (a two-factor multiply u·2^a·2^b ran 3x slower on vectors with underflowing lanes).
// Measured per element on one core (AMD Zen 4), AVX-512 / AVX2 / SSE2: vexp 0.19 / 0.26 /
// 0.9 ns, vexp2 0.14 / 0.19 / 1.1 ns, glibc's expf and exp2f 2.9 ns; AVX2 vectors that take
// the branch 0.8 ns. There is no variant without the AVX-512 clamps for callers that rule
// out infinities: attention's softmax was not measurably faster with one.
#pragma once
#include <cstdint>

#include "isa.h"

#if defined(GROWLM_X86)
#include <immintrin.h>
#endif

namespace growlm::cpu::GROWLM_ISA_NS {

/// GROWLM_VLEN floats (int32 lanes): 16 with AVX-512, 8 with AVX2, 4 otherwise.
typedef float vf __attribute__((vector_size(GROWLM_VLEN * 4)));
typedef int32_t vi __attribute__((vector_size(GROWLM_VLEN * 4)));
typedef uint32_t vu __attribute__((vector_size(GROWLM_VLEN * 4)));

/// x in every lane. (vf{} + x would cost a scalar add: 0 + x is not x for x = -0.)
#if defined(GROWLM_ISA_avx512)
inline vf splat(float x) { return (vf)_mm512_set1_ps(x); }
#elif defined(GROWLM_ISA_avx2)
inline vf splat(float x) { return (vf)_mm256_set1_ps(x); }
#else
inline vf splat(float x) { return x - vf{}; }
#endif

/// a > b ? a : b and a < b ? a : b: b when either is NaN. One maxps / minps on x86, by
/// intrinsics: GCC compiles the plain ternary with a constant operand to a compare and a
/// blend. (AVX-512's zero-masked forms compile to the plain instructions; the unmasked
/// intrinsics trip GCC 12's -Wmaybe-uninitialized on an undefined operand.)
#if defined(GROWLM_ISA_avx512)
inline vf vmax(vf a, vf b) { return (vf)_mm512_maskz_max_ps(0xFFFF, (__m512)a, (__m512)b); }
inline vf vmin(vf a, vf b) { return (vf)_mm512_maskz_min_ps(0xFFFF, (__m512)a, (__m512)b); }
#elif defined(GROWLM_ISA_avx2)
inline vf vmax(vf a, vf b) { return (vf)_mm256_max_ps((__m256)a, (__m256)b); }
inline vf vmin(vf a, vf b) { return (vf)_mm256_min_ps((__m256)a, (__m256)b); }
#elif defined(GROWLM_X86)
inline vf vmax(vf a, vf b) { return (vf)_mm_max_ps((__m128)a, (__m128)b); }
inline vf vmin(vf a, vf b) { return (vf)_mm_min_ps((__m128)a, (__m128)b); }
#else
inline vf vmax(vf a, vf b) { return a > b ? a : b; }
inline vf vmin(vf a, vf b) { return a < b ? a : b; }
#endif

namespace vmath {

// 1.5·2^23: adding it to |x| < 2^22 rounds x to an integer held in the low mantissa bits.
constexpr float MAGIC = 12582912.0f;

// A reduced argument: the result is u·2^n, u in [1/√2, √2], n integral (as a float and as
// int32 lanes, held unsigned so that shifts and adds of bit patterns wrap).
struct Reduced {
  vf u, n;
  vu ni;
};

// x = n·ln2 + s, n = round(x·log2 e), and e^s by SLEEF's xexpf polynomial, in float (0.99
// ulp with FMA, 0.95 without).
inline Reduced reduce_exp(vf x) {
  const vf t = x * 1.442695040888963407f + MAGIC;
  const vf n = t - MAGIC;
  // Cody-Waite: n times the 15-bit head of ln 2 is exact.
  vf s = x - n * 0.693145751953125f;
  s = s - n * 1.428606765330187045e-06f;
  vf u = splat(0.000198527617612853646278381f);
  u = u * s + 0.00139304355252534151077271f;
  u = u * s + 0.00833336077630519866943359f;
  u = u * s + 0.0416664853692054748535156f;
  u = u * s + 0.166666671633720397949219f;
  u = u * s + 0.5f;
  u = 1.0f + ((s * s) * u + s);
  return {u, n, (vu)t - (vu)splat(MAGIC)};
}

// x = n + r, n = round(x): r is exact. 2^r for |r| <= 1/2 by a degree-6 minimax
// polynomial (relative error 3.9e-9 before rounding, p(0) = 1 exactly), 0.93 ulp in float
// with FMA. Without FMA (the x86-64 baseline) each float Horner step rounds twice, which
// reached 1.21 ulp: there the last two steps, whose roundings count, run in double and the
// result is rounded to float once (0.70 ulp).
inline Reduced reduce_exp2(vf x) {
  const vf t = x + MAGIC;
  const vf n = t - MAGIC;
  const vf r = x - n;
  vf a = splat(1.546973198e-4f);
  a = a * r + 1.341000097e-3f;
  a = a * r + 9.618030783e-3f;
  a = a * r + 5.550297314e-2f;
  a = a * r + 2.402265108e-1f;
#if defined(__FP_FAST_FMAF)
  a = a * r + 6.931472254e-1f;
  const vf p = a * r + 1.0f;
#elif defined(GROWLM_X86)
  // SSE2 on two halves of two doubles each: GCC's generic 4-double code converts the high
  // halves through memory, which cost attention's forward 1.3% more.
  const auto tail = [](__m128 rf, __m128 af) {
    const __m128d rd = _mm_cvtps_pd(rf);
    const __m128d a1 = _mm_add_pd(_mm_mul_pd(_mm_cvtps_pd(af), rd), _mm_set1_pd(6.931472254e-1f));
    return _mm_cvtpd_ps(_mm_add_pd(_mm_mul_pd(a1, rd), _mm_set1_pd(1.0)));
  };
  const __m128 rf = (__m128)r, af = (__m128)a;
  const vf p = (vf)_mm_movelh_ps(tail(rf, af), tail(_mm_movehl_ps(rf, rf), _mm_movehl_ps(af, af)));
#else
  typedef double vd __attribute__((vector_size(GROWLM_VLEN * 8)));
  const vd rd = __builtin_convertvector(r, vd);
  const vd pd = (__builtin_convertvector(a, vd) * rd + 6.931472254e-1f) * rd + 1.0;
  const vf p = __builtin_convertvector(pd, vf);
#endif
  return {p, n, (vu)t - (vu)splat(MAGIC)};
}

#if !defined(GROWLM_ISA_avx512)
// Whether any lane of a comparison result is set.
inline bool any(vi mask) {
#if defined(GROWLM_ISA_avx2)
  return _mm256_movemask_ps((__m256)mask) != 0;
#elif defined(GROWLM_X86)
  return _mm_movemask_ps((__m128)mask) != 0;  // SSE2, part of x86-64
#else
  int32_t bits = 0;
  for (int i = 0; i < GROWLM_VLEN; ++i) bits |= mask[i];
  return bits != 0;
#endif
}

// u·2^ni rounded once, for u in [1/√2, √2] and ni in [-151, 128]. Normal results: ni added
// to the exponent field (exact; exponent 255 clamped to +inf). Results below 2^-126:
// v = u·2^(ni+149) is a normal number below 2^23, and v + 2^23 rounds it to an integer
// (the result in units of 2^-149) whose bit pattern is the result.
inline vf ldexp_exact(vf u, vu ni) {
  const vu shifted = ni << 23;
  const vi normal = (vi)((vu)u + shifted);
  const vi capped = normal < 0x7F800000 ? normal : 0x7F800000;
  const vf v = u * (vf)(shifted + (276u << 23));  // 2^(ni + 149): 276 = 149 + 127
  const vi sub = (vi)((vu)(v + 0x1p23f) - 0x4B000000u);
  return (vf)(normal > 0x007FFFFF ? capped : sub);  // exponent field >= 1: normal
}
#endif

// e^x or 2^x from `reduce`, with x clamped to [lo, hi] (results 0 and +inf there) and,
// without AVX-512, the exponent add taken while |x| <= fast (n within [-125, 125]).
template <Reduced (*reduce)(vf)>
inline vf exponential(vf x, float lo, float hi, float fast) {
#if defined(GROWLM_ISA_avx512)
  const Reduced e = reduce(vmin(splat(hi), vmax(splat(lo), x)));  // NaN passes both
  // (The masked form with a full mask: GCC 12 warns on the unmasked intrinsic's header.)
  return (vf)_mm512_maskz_scalef_ps(0xFFFF, (__m512)e.u, (__m512)e.n);
#else
  const Reduced e = reduce(x);
  // |x| > fast or NaN, compared as bit patterns.
  if (__builtin_expect(!any(((vi)x & 0x7FFFFFFF) > (vi)splat(fast)), 1))
    return (vf)((vu)e.u + (e.ni << 23));
  const vf c = vmin(splat(hi), vmax(splat(lo), x));
  const Reduced ec = reduce(c);  // the same bits as e in the lanes that were in range
  const vf y = ldexp_exact(ec.u, ec.ni);
  return c != c ? c : y;
#endif
}

}  // namespace vmath

/// e^x in every lane (see the top of the file for accuracy and special values).
inline vf vexp(vf x) {
  // e^-104 < 2^-150 rounds to 0 and e^89 overflows; |x| <= 86 keeps |n| <= 125.
  return vmath::exponential<vmath::reduce_exp>(x, -104.0f, 89.0f, 86.0f);
}

/// 2^x in every lane.
inline vf vexp2(vf x) {
  // 2^-151 rounds to 0 and 2^128 overflows (n = 128 comes with u <= 1 only).
  return vmath::exponential<vmath::reduce_exp2>(x, -151.0f, 128.0f, 125.0f);
}

}  // namespace growlm::cpu::GROWLM_ISA_NS
