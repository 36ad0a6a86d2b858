// Counter-based random fills (growlm/rng.h): Philox4x32-10 (Salmon et al. 2011) with key =
// seed. Element j = offset + i (mod 2^64) of a stream is word j & 3 of the block with
// counter (j >> 2, 0), so every word of every block is used and every element is a pure
// function of (seed, offset + i): thread count, chunking and vector lane never change a value.
//   uniform: u = (w >> 8)·2^-24 in [0, 1), out = low + (high - low)·u
//   normal:  words (0, 1) and (2, 3) of a block are two Box–Muller pairs (a, b):
//            u1 = ((a >> 8) + 1)·2^-24 in (0, 1], θ = 2π·(b >> 8)·2^-24, r = sqrt(-2 ln u1);
//            the even element of the pair is mean + std·r·cos θ, the odd one mean + std·r·sin θ.
// Tasks are fixed runs of whole blocks; the vector paths run W blocks at once (32x32->64
// multiplies with vpmuludq), transform the four words, and interleave the four W-lane
// results into 4W consecutive outputs, cutting only the fill's first and last block. ln and sin/cos(2π·) are polynomials written once
// for every width. Checked against the Random123 known-answer vectors and against a
// TypeScript Philox (uniform bitwise, float64 Box–Muller) in test/kernels/rng.test.ts.
// rng_dropout draws its masks from the same uniforms (test/kernels/dropout.test.ts).
#include <algorithm>
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
constexpr int64_t GRAIN = 1 << 14;  // blocks per task: 2^16 fp32 outputs, amortises a wake-up

// Vectors of W 32-bit lanes (one per block: the block words, floats), and the Philox
// state: H vectors of W/H 64-bit lanes, one block per lane, of which only the low 32 bits
// count. vpmuludq multiplies those low words into full 64-bit products, so a round's hi is
// one shift away and its lo is the product itself (whose high word is never read), with
// no blends to split and rejoin 32-bit lanes.
#if defined(GROWLM_ISA_portable)
constexpr int W = 1, H = 1;
using Vu = uint32_t;
using Vi = int32_t;
using Vf = float;
using Vq = uint64_t;
inline Vf to_float(Vi v) { return static_cast<float>(v); }
inline Vi as_signed(Vu v) { return static_cast<int32_t>(v); }
inline Vf vsqrt(Vf x) { return std::sqrt(x); }
inline Vq mul32(Vq a, uint32_t m) { return (a & 0xffffffffu) * m; }
inline Vq iota_q() { return 0; }
inline Vu pack(const Vq q[H]) { return static_cast<uint32_t>(q[0]); }
#else
constexpr int W = GROWLM_VLEN, H = 2;
typedef uint32_t Vu __attribute__((vector_size(W * 4)));
typedef int32_t Vi __attribute__((vector_size(W * 4)));
typedef float Vf __attribute__((vector_size(W * 4)));
typedef uint64_t Vq __attribute__((vector_size(W * 4)));
inline Vf to_float(Vi v) { return __builtin_convertvector(v, Vf); }
inline Vi as_signed(Vu v) { return (Vi)v; }
inline Vq iota_q() {
  Vq v;
  for (int j = 0; j < W / 2; ++j) v[j] = static_cast<uint64_t>(j);
  return v;
}
#if defined(GROWLM_ISA_avx512)
// The zero-masked intrinsics compile to plain vpmuludq / vsqrtps; the unmasked ones trip
// GCC 12's -Wmaybe-uninitialized on their undefined pass-through operand.
inline Vq mul32(Vq a, uint32_t m) {
  return (Vq)_mm512_maskz_mul_epu32(0xFF, (__m512i)a, _mm512_set1_epi64(m));
}
inline Vf vsqrt(Vf x) { return (Vf)_mm512_maskz_sqrt_ps(0xFFFF, (__m512)x); }
// The low words of q[0] then q[1].
inline Vu pack(const Vq q[H]) {
  return __builtin_shufflevector((Vu)q[0], (Vu)q[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
}
#else
inline Vq mul32(Vq a, uint32_t m) { return (Vq)_mm256_mul_epu32((__m256i)a, _mm256_set1_epi64x(m)); }
inline Vf vsqrt(Vf x) { return (Vf)_mm256_sqrt_ps((__m256)x); }
inline Vu pack(const Vq q[H]) {
  return __builtin_shufflevector((Vu)q[0], (Vu)q[1], 0, 2, 4, 6, 8, 10, 12, 14);
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

// Philox4x32-10 on the H·W/H = W blocks of c[h][0..4) (low words of the lanes), the H
// independent chains interleaved so their multiplies overlap.
inline void philox(Vq c[H][4], uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    for (int h = 0; h < H; ++h) {
      const Vq p0 = mul32(c[h][0], M0), p1 = mul32(c[h][2], M1);
      c[h][0] = (p1 >> 32) ^ c[h][1] ^ k0;
      c[h][1] = p1;
      c[h][2] = (p0 >> 32) ^ c[h][3] ^ k1;
      c[h][3] = p0;
    }
    k0 += W0;
    k1 += W1;
  }
}

// The four words of the blocks base + j, j in [0, W), with base < 2^63: counter (block
// mod 2^62 as low word and high word, 0, 0), so block 2^62 wraps to block 0 as j = 4·block
// wraps at 2^64.
inline void block_words(uint64_t seed, uint64_t base, Vu w[4]) {
  Vq c[H][4];
  for (int h = 0; h < H; ++h) {
    const Vq block = iota_q() + (base + static_cast<uint64_t>(h * W / H));
    c[h][0] = block;
    c[h][1] = (block >> 32) & 0x3fffffffu;
    c[h][2] = c[h][3] = Vq{};
  }
  philox(c, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  for (int m = 0; m < 4; ++m) {
    Vq q[H];
    for (int h = 0; h < H; ++h) q[h] = c[h][m];
    w[m] = pack(q);
  }
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

// cos θ and sin θ for θ = 2π·(w >> 8)·2^-24. Exact integer reduction of the 24-bit
// k = w >> 8 to the nearest quarter turn: k = q·2^22 + f·2^24 with q in {0..3} and
// f in [-1/8, 1/8), so θ = q·π/2 + 2πf with |2πf| <= π/4, where the Taylor series of sin
// (to degree 9) and cos (to degree 10) are within 3e-9. The quadrant then swaps the pair
// and flips signs: (cos, sin)(qπ/2 + φ) = (c, s), (-s, c), (-c, -s), (s, -c).
inline void sincos2pi(Vu w, Vf& cos_out, Vf& sin_out) {
  const Vu k = (w >> 8) + (1u << 21);
  const Vu q = (k >> 22) & 3u;
  const Vf f = to_float(as_signed(k & 0x3fffffu) - (1 << 21)) * 0x1p-24f;
  const Vf f2 = f * f;
  Vf s = Vf{} + 42.058693944897634f;  // (2π)^9 / 9!
  s = s * f2 - 76.705859753061360f;   // (2π)^7 / 7!
  s = s * f2 + 81.605249276075040f;   // (2π)^5 / 5!
  s = s * f2 - 41.341702240399755f;   // (2π)^3 / 3!
  s = s * f2 + 6.2831853071795865f;   // 2π
  s = s * f;
  Vf c = Vf{} - 26.426256783374388f;  // (2π)^10 / 10!
  c = c * f2 + 60.244641371876640f;   // (2π)^8 / 8!
  c = c * f2 - 85.456817206693710f;   // (2π)^6 / 6!
  c = c * f2 + 64.939394022668280f;   // (2π)^4 / 4!
  c = c * f2 - 19.739208802178716f;   // (2π)^2 / 2!
  c = c * f2 + 1.0f;
  const auto odd = as_signed(q & 1u) != 0;
  const Vi cos_sign = as_signed(((q + 1u) & 2u) << 30);  // quadrants 1 and 2
  const Vi sin_sign = as_signed((q & 2u) << 30);         // quadrants 2 and 3
  cos_out = from_bits(bits(odd ? s : c) ^ cos_sign);
  sin_out = from_bits(bits(odd ? c : s) ^ sin_sign);
}

// v[0..4) = the 4W floats z[0][0], z[1][0], z[2][0], z[3][0], z[0][1], ...: word m of
// block j is element 4j + m. Zip z[0] with z[1] and z[2] with z[3] (float pairs), then zip
// those pairs as 64-bit units. (__builtin_shufflevector rather than intrinsics: GCC 12
// warns on the unmasked AVX-512 shuffles' undefined pass-through operand.)
inline void interleave(const Vf z[4], Vf v[4]) {
#if defined(GROWLM_ISA_avx512)
  typedef uint64_t V2 __attribute__((vector_size(64)));
  const Vf a = __builtin_shufflevector(z[0], z[1], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const Vf b = __builtin_shufflevector(z[0], z[1], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const Vf c = __builtin_shufflevector(z[2], z[3], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const Vf d = __builtin_shufflevector(z[2], z[3], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  v[0] = (Vf)__builtin_shufflevector((V2)a, (V2)c, 0, 8, 1, 9, 2, 10, 3, 11);
  v[1] = (Vf)__builtin_shufflevector((V2)a, (V2)c, 4, 12, 5, 13, 6, 14, 7, 15);
  v[2] = (Vf)__builtin_shufflevector((V2)b, (V2)d, 0, 8, 1, 9, 2, 10, 3, 11);
  v[3] = (Vf)__builtin_shufflevector((V2)b, (V2)d, 4, 12, 5, 13, 6, 14, 7, 15);
#elif defined(GROWLM_ISA_avx2)
  typedef uint64_t V2 __attribute__((vector_size(32)));
  const Vf a = __builtin_shufflevector(z[0], z[1], 0, 8, 1, 9, 2, 10, 3, 11);
  const Vf b = __builtin_shufflevector(z[0], z[1], 4, 12, 5, 13, 6, 14, 7, 15);
  const Vf c = __builtin_shufflevector(z[2], z[3], 0, 8, 1, 9, 2, 10, 3, 11);
  const Vf d = __builtin_shufflevector(z[2], z[3], 4, 12, 5, 13, 6, 14, 7, 15);
  v[0] = (Vf)__builtin_shufflevector((V2)a, (V2)c, 0, 4, 1, 5);
  v[1] = (Vf)__builtin_shufflevector((V2)a, (V2)c, 2, 6, 3, 7);
  v[2] = (Vf)__builtin_shufflevector((V2)b, (V2)d, 0, 4, 1, 5);
  v[3] = (Vf)__builtin_shufflevector((V2)b, (V2)d, 2, 6, 3, 7);
#else
  for (int m = 0; m < 4; ++m) v[m] = z[m];  // W = 1: already in order
#endif
}

// Fills out[0..n) with the elements offset .. offset + n - 1 of the stream whose block
// words w[0..4) map to values z[0..4) by f(w, z). Tasks are fixed runs of GRAIN blocks
// of the span (the first and last blocks may be cut by offset and n).
template <class F>
void fill(float* out, int64_t n, uint64_t seed, uint64_t offset, const Context& ctx, F&& f) {
  if (n <= 0) return;
  const int64_t head = static_cast<int64_t>(offset & 3);  // element 0 is word `head`
  const uint64_t first = offset >> 2;                      // of block `first`
  const int64_t blocks = (head + n + 3) >> 2;
  parallel_for(ctx, blocks, GRAIN, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; b += W) {
      Vu w[4];
      block_words(seed, first + static_cast<uint64_t>(b), w);
      Vf z[4], v[4];
      f(w, z);
      interleave(z, v);
      // v holds elements [begin, begin + 4W); keep those of this task and of the fill.
      const int64_t begin = 4 * b - head;
      const int64_t keep_lo = std::max<int64_t>(begin, 0);
      const int64_t keep_hi = std::min<int64_t>(begin + 4 * std::min<int64_t>(W, hi - b), n);
      if (keep_lo == begin && keep_hi == begin + 4 * W) {
        std::memcpy(out + begin, v, sizeof v);
      } else {
        float buffer[4 * W];
        std::memcpy(buffer, v, sizeof v);
        std::memcpy(out + keep_lo, buffer + (keep_lo - begin),
                    static_cast<size_t>(keep_hi - keep_lo) * sizeof(float));
      }
    }
  });
}

// One row of rng_dropout: the Philox blocks covering stream elements [offset, offset + C),
// each element's factor (scale or 0) laid out in stream order as fill() lays out values,
// applied to the row in place of a store.
void dropout_row(float* out, const float* inp, int64_t C, uint64_t seed, uint64_t offset, float p,
                 float scale) {
  const int64_t head = static_cast<int64_t>(offset & 3);
  const uint64_t first = offset >> 2;
  const int64_t blocks = (head + C + 3) >> 2;
  for (int64_t b = 0; b < blocks; b += W) {
    Vu w[4];
    block_words(seed, first + static_cast<uint64_t>(b), w);
    Vf z[4], v[4];
    for (int m = 0; m < 4; ++m) z[m] = top24(w[m]) * 0x1p-24f >= p ? Vf{} + scale : Vf{};
    interleave(z, v);
    float factor[4 * W];
    std::memcpy(factor, v, sizeof v);
    const int64_t begin = 4 * b - head;
    const int64_t lo = std::max<int64_t>(begin, 0);
    const int64_t hi = std::min<int64_t>(begin + 4 * std::min<int64_t>(W, blocks - b), C);
    for (int64_t e = lo; e < hi; ++e) out[e] = inp[e] * factor[e - begin];
  }
}

}  // namespace

void rng_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset, float low, float high,
                 const Context& ctx) {
  const float scale = static_cast<float>(static_cast<double>(high) - static_cast<double>(low));
  fill(out, n, seed, offset, ctx, [=](const Vu w[4], Vf z[4]) {
    for (int m = 0; m < 4; ++m) z[m] = low + scale * (top24(w[m]) * 0x1p-24f);
  });
}

void rng_normal(float* out, int64_t n, uint64_t seed, uint64_t offset, float mean, float std,
                const Context& ctx) {
  fill(out, n, seed, offset, ctx, [=](const Vu w[4], Vf z[4]) {
    for (int p = 0; p < 4; p += 2) {
      const Vf u1 = (top24(w[p]) + 1.0f) * 0x1p-24f;
      const Vf r = vsqrt(-2.0f * vlog(u1));
      Vf c, s;
      sincos2pi(w[p + 1], c, s);
      z[p] = mean + std * (r * c);
      z[p + 1] = mean + std * (r * s);
    }
  });
}

void rng_dropout(float* out, const float* inp, int64_t rows, int64_t C, float p, uint64_t seed,
                 const uint64_t* row_offsets, const Context& ctx) {
  const float scale = static_cast<float>(1.0 / (1.0 - static_cast<double>(p)));
  parallel_for(ctx, rows, std::max<int64_t>(1, 16384 / C), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      dropout_row(out + r * C, inp + r * C, C, seed, row_offsets[r], p, scale);
    }
  });
}

void philox4x32_10(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2],
                   const Context&) {
  Vq c[H][4];
  for (int h = 0; h < H; ++h) {
    for (int m = 0; m < 4; ++m) c[h][m] = Vq{} + counter[m];
  }
  philox(c, key[0], key[1]);
  for (int m = 0; m < 4; ++m) {
    Vq q[H];
    for (int h = 0; h < H; ++h) q[h] = c[h][m];
    const Vu words = pack(q);
    std::memcpy(&out[m], &words, sizeof out[m]);  // lane 0
  }
}

}  // namespace growlm::cpu::GROWLM_ISA_NS

#if defined(GROWLM_ISA_portable)
namespace growlm {
namespace cpu {
GROWLM_DECLARE_ISA(void rng_uniform(float*, int64_t, uint64_t, uint64_t, float, float, const Context&))
GROWLM_DECLARE_ISA(void rng_normal(float*, int64_t, uint64_t, uint64_t, float, float, const Context&))
GROWLM_DECLARE_ISA(void philox4x32_10(uint32_t*, const uint32_t*, const uint32_t*, const Context&))
GROWLM_DECLARE_ISA(void rng_dropout(float*, const float*, int64_t, int64_t, float, uint64_t,
                                    const uint64_t*, const Context&))
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
void rng_dropout(float* out, const float* inp, int64_t rows, int64_t C, float p, uint64_t seed,
                 const uint64_t* row_offsets, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, rng_dropout, out, inp, rows, C, p, seed, row_offsets, ctx);
}
void philox4x32_10(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2],
                   const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, philox4x32_10, out, counter, key, ctx);
}
}  // namespace growlm
#endif
