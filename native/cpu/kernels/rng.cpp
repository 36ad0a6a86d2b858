// Counter-based random fills (growlm/rng.h): Philox4x32-10 (Salmon et al. 2011) with key =
// seed and counter = (offset + i, 0) for element i, so every element is a pure function of
// (seed, offset + i): thread count, chunking and vector lane never change a value.
//   uniform: u = (w0 >> 8)·2^-24 in [0, 1), out = low + (high - low)·u
//   normal:  u1 = ((w0 >> 8) + 1)·2^-24 in (0, 1], u2 = (w1 >> 8)·2^-24,
//            out = mean + std·sqrt(-2 ln u1)·cos(2π u2)   (Box–Muller, one value per counter)
// The vector paths run W counters at once (32x32->64 multiplies with vpmuludq); ln and
// cos(2π·) are polynomials written once for every width. Checked against the Random123
// known-answer vectors and a float64 Box–Muller over a TypeScript Philox in
// test/kernels/rng.test.ts.
#include <cmath>
#include <cstring>

#include "growlm/rng.h"
#include "growlm/threads.h"
#include "isa.h"

#if defined(GROWLM_ISA_avx2) || defined(GROWLM_ISA_avx512)
#include <immintrin.h>
#endif

namespace growlm::cpu::GROWLM_ISA_NS {

namespace {

constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;  // Philox multipliers
constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;  // Weyl key increments
constexpr int64_t GRAIN = 1 << 16;                      // elements per task

#if defined(GROWLM_ISA_portable)
constexpr int W = 1;
using Vu = uint32_t;
using Vi = int32_t;
using Vf = float;
inline uint32_t lane(Vu v, int) { return v; }
inline float lane(Vf v, int) { return v; }
inline Vf to_float(Vi v) { return static_cast<float>(v); }
inline Vi as_signed(Vu v) { return static_cast<int32_t>(v); }
inline Vf vsqrt(Vf x) { return std::sqrt(x); }
inline void mulhilo(Vu a, uint32_t m, Vu& hi, Vu& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * m;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}
inline Vu iota() { return 0; }
#else
constexpr int W = GROWLM_VLEN;
typedef uint32_t Vu __attribute__((vector_size(W * 4)));
typedef int32_t Vi __attribute__((vector_size(W * 4)));
typedef float Vf __attribute__((vector_size(W * 4)));
inline uint32_t lane(Vu v, int j) { return v[j]; }
inline float lane(Vf v, int j) { return v[j]; }
inline Vf to_float(Vi v) { return __builtin_convertvector(v, Vf); }
inline Vi as_signed(Vu v) { return (Vi)v; }
inline Vu iota() {
  Vu v;
  for (int j = 0; j < W; ++j) v[j] = static_cast<uint32_t>(j);
  return v;
}
#if defined(GROWLM_ISA_avx512)
typedef uint64_t Vq __attribute__((vector_size(64)));
// 32x32 -> 64 products of the even lanes and (shifted down) of the odd lanes, then the
// low and high halves gathered back into place. The zero-masked multiply and the vector-
// extension shifts compile to plain vpmuludq / vpsrlq / vpsllq; the unmasked intrinsics
// trip GCC 12's -Wmaybe-uninitialized on their undefined pass-through operand.
inline void mulhilo(Vu a, uint32_t m, Vu& hi, Vu& lo) {
  const __m512i mm = _mm512_set1_epi64(m);
  const Vq even = (Vq)_mm512_maskz_mul_epu32(0xFF, (__m512i)a, mm);
  const Vq odd = (Vq)_mm512_maskz_mul_epu32(0xFF, (__m512i)((Vq)a >> 32), mm);
  lo = (Vu)_mm512_mask_blend_epi32(0xAAAA, (__m512i)even, (__m512i)(odd << 32));
  hi = (Vu)_mm512_mask_blend_epi32(0xAAAA, (__m512i)(even >> 32), (__m512i)odd);
}
inline Vf vsqrt(Vf x) { return (Vf)_mm512_maskz_sqrt_ps(0xFFFF, (__m512)x); }  // zero-masked: as above
#else
inline Vf vsqrt(Vf x) { return (Vf)_mm256_sqrt_ps((__m256)x); }
inline void mulhilo(Vu a, uint32_t m, Vu& hi, Vu& lo) {
  const __m256i x = (__m256i)a;
  const __m256i mm = _mm256_set1_epi64x(m);
  const __m256i even = _mm256_mul_epu32(x, mm);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), mm);
  lo = (Vu)_mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  hi = (Vu)_mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}
#endif
#endif

inline Vi bits(Vf x) {
  Vi i;
  std::memcpy(&i, &x, sizeof i);
  return i;
}
inline Vf from_bits(Vi i) {
  Vf f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

// Philox4x32-10 on W counters at once.
inline void philox(Vu& c0, Vu& c1, Vu& c2, Vu& c3, uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    Vu hi0, lo0, hi1, lo1;
    mulhilo(c0, M0, hi0, lo0);
    mulhilo(c2, M1, hi1, lo1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += W0;
    k1 += W1;
  }
}

// Words 0 and 1 of the blocks for counters base + j, j in [0, W) (64-bit counter with carry).
inline void words(uint64_t seed, uint64_t base, Vu& w0, Vu& w1) {
  const uint32_t lo = static_cast<uint32_t>(base);
  Vu c0 = iota() + lo;
  // Lanes whose low word wrapped carry into the high word (c0 < lo there).
  Vu c1 = (Vu{} + static_cast<uint32_t>(base >> 32)) + (c0 < lo ? Vu{} + 1u : Vu{});
  Vu c2 = Vu{}, c3 = Vu{};
  philox(c0, c1, c2, c3, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  w0 = c0;
  w1 = c1;
}

// 24 random bits -> float (exact).
inline Vf top24(Vu w) { return to_float(as_signed(w >> 8)); }

// ln x for normal x > 0 (Cephes logf: x = m·2^e with m in [sqrt(1/2), sqrt(2)), a
// polynomial in m - 1; about 1 ulp).
inline Vf vlog(Vf x) {
  const Vi b = bits(x);
  Vi e = ((b >> 23) & 0xff) - 126;                   // x = m·2^e, m in [0.5, 1)
  Vf m = from_bits((b & 0x007fffff) | 0x3f000000);
  const auto small = m < 0.707106781186547524f;
  e = small ? e - 1 : e;
  m = small ? m + m - 1.0f : m - 1.0f;
  const Vf z = m * m;
  Vf y = Vf{} + 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  const Vf fe = to_float(e);
  y = y + fe * -2.12194440e-4f;
  y = y - 0.5f * z;
  return m + y + fe * 0.693359375f;
}

// cos(2π u) for u in [0, 1): with a = |u - round(u)| in [0, 1/2] and b = a - 1/4 (both
// exact), cos(2π a) = -sin(2π b) with |2π b| <= π/2, where the Taylor series of sin to
// degree 13 is within 1e-9.
inline Vf cos2pi(Vf u) {
  Vf a = u >= 0.5f ? u - 1.0f : u;
  a = a < 0.0f ? -a : a;
  const Vf b = a - 0.25f;
  const Vf b2 = b * b;
  Vf p = Vf{} + 3.8199525848482803f;  // (2π)^13 / 13!
  p = p * b2 - 15.094642576822986f;   // (2π)^11 / 11!
  p = p * b2 + 42.058693944897652f;   // (2π)^9 / 9!
  p = p * b2 - 76.705859753061360f;   // (2π)^7 / 7!
  p = p * b2 + 81.605249276075040f;   // (2π)^5 / 5!
  p = p * b2 - 41.341702240399760f;   // (2π)^3 / 3!
  p = p * b2 + 6.2831853071795865f;   // 2π
  return -(b * p);
}

// Fills out[0..n) with f(w0, w1) for counters offset + 0 .. offset + n.
template <class F>
void fill(float* out, int64_t n, uint64_t seed, uint64_t offset, const Context& ctx, F&& f) {
  parallel_for(ctx, n, GRAIN, [&](int64_t lo, int64_t hi) {
    int64_t i = lo;
    for (; i + W <= hi; i += W) {
      Vu w0, w1;
      words(seed, offset + static_cast<uint64_t>(i), w0, w1);
      const Vf r = f(w0, w1);
      std::memcpy(out + i, &r, sizeof r);
    }
    if (i < hi) {
      Vu w0, w1;
      words(seed, offset + static_cast<uint64_t>(i), w0, w1);
      const Vf r = f(w0, w1);
      std::memcpy(out + i, &r, static_cast<size_t>(hi - i) * sizeof(float));
    }
  });
}

}  // namespace

void rng_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset, float low, float high,
                 const Context& ctx) {
  const float scale = static_cast<float>(static_cast<double>(high) - static_cast<double>(low));
  fill(out, n, seed, offset, ctx, [=](Vu w0, Vu) {
    return low + scale * (top24(w0) * 0x1p-24f);
  });
}

void rng_normal(float* out, int64_t n, uint64_t seed, uint64_t offset, float mean, float std,
                const Context& ctx) {
  fill(out, n, seed, offset, ctx, [=](Vu w0, Vu w1) {
    const Vf u1 = (top24(w0) + 1.0f) * 0x1p-24f;
    const Vf u2 = top24(w1) * 0x1p-24f;
    return mean + std * (vsqrt(-2.0f * vlog(u1)) * cos2pi(u2));
  });
}

void philox4x32_10(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2],
                   const Context&) {
  Vu c0 = Vu{} + counter[0], c1 = Vu{} + counter[1], c2 = Vu{} + counter[2], c3 = Vu{} + counter[3];
  philox(c0, c1, c2, c3, key[0], key[1]);
  out[0] = lane(c0, 0);
  out[1] = lane(c1, 0);
  out[2] = lane(c2, 0);
  out[3] = lane(c3, 0);
}

}  // namespace growlm::cpu::GROWLM_ISA_NS

#if defined(GROWLM_ISA_portable)
namespace growlm {
namespace cpu {
GROWLM_DECLARE_ISA(void rng_uniform(float*, int64_t, uint64_t, uint64_t, float, float, const Context&))
GROWLM_DECLARE_ISA(void rng_normal(float*, int64_t, uint64_t, uint64_t, float, float, const Context&))
GROWLM_DECLARE_ISA(void philox4x32_10(uint32_t*, const uint32_t*, const uint32_t*, const Context&))
}  // namespace cpu

void rng_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset, float low, float high,
                 const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, rng_uniform, out, n, seed, offset, low, high, ctx);
}
void rng_normal(float* out, int64_t n, uint64_t seed, uint64_t offset, float mean, float std,
                const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, rng_normal, out, n, seed, offset, mean, std, ctx);
}
void philox4x32_10(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2],
                   const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, philox4x32_10, out, counter, key, ctx);
}
}  // namespace growlm
#endif
