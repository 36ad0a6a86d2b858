// Causal grouped-query self-attention (growlm/attention.h), FlashAttention-2 style.
// Layout: q, out [B, T, H, D]; k, v [B, T, Hkv, D]; lse [B, H, T]. Queries and keys are cut
// into blocks of BLK rows; a query block visits key blocks 0..i with an online softmax
// (blocks above the diagonal are skipped, the diagonal block is masked), so only
// BLK×BLK scores exist at a time. The softmax runs in base 2: queries are pre-scaled by
// scale·log2(e) and 2^x is vmath.h's vexp2 (within 1 ulp).
// The backward recomputes the probabilities from q, k and lse; dS = P ∘ (dP − rowsum(dO ∘ O)).
// Checked against float64 references (forward, analytic backward, finite differences)
// in test/kernels/attention.test.ts.
//
// Orientation: a score block is held transposed, sT[c][r] (key c, query r), so its rows
// are vectors over queries: the row max / sum of the softmax are plain vector max / add,
// scores = K·Qᵀ broadcasts K from its natural layout against a packed Qᵀ, and every other
// product (P·V, Pᵀ·dO, dSᵀ·Q, dS·K) has vectors along the head dimension with the score
// block broadcast. No product needs K or V transposed.
//
// Determinism: every output element is written by exactly one task and accumulated in a
// fixed order: dK/dV of key block j over (query head of the group, query block i ≥ j),
// dQ of query block i over key blocks j ≤ i. The backward either runs one task per
// (b, kv head) that does all of it (no recomputation), or, when there are too few such
// tasks to keep the threads busy, a dK/dV pass over (b, kv head, key block) and a dQ pass
// over (b, head, query block) that recompute the scores. Both evaluate the same block
// functions on the same operands in the same order, so they give the same bits and the
// choice (which depends on the thread count) never shows in the results.
//
// attention_cached_forward (incremental decoding against a key/value cache) is at the end of
// the file; test/kernels/attention-cached.test.ts checks it against a float64 reference.
//
// Scratch: per thread a few BLK×D blocks (plus 2·T×D for the fused backward when D is not
// a multiple of the vector width); the two-pass backward also packs Qᵀ and dOᵀ of every
// query block (twice the size of q).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "growlm/attention.h"
#include "growlm/threads.h"
#include "isa.h"
#include "vmath.h"

namespace growlm::cpu::GROWLM_ISA_NS {

namespace {

constexpr int VL = GROWLM_VLEN;
typedef float uvec __attribute__((vector_size(VL * 4), aligned(4), may_alias));

inline vf load(const float* p) { return *reinterpret_cast<const uvec*>(p); }
inline void store(float* p, vf v) { *reinterpret_cast<uvec*>(p) = v; }

// Query and key block size (Br = Bc, so a diagonal block starts at the same position
// for queries and keys). 64 rows × D = 64 keeps one block of every operand in L2 and the
// score block (16 KiB) in L1.
constexpr int BLK = 64;
constexpr int NV = BLK / VL;  // vectors across a block's query rows
// Register tiles. scores: KC keys × RV query vectors; products: RT rows × DV vectors of
// the head dimension. AVX-512 has 32 registers (24 accumulators); AVX2 and SSE have 16.
#if defined(GROWLM_ISA_avx512)
constexpr int KC = 6, RV = 4, RT = 6, DV = 4;
#else
constexpr int KC = 6, RV = 2, RT = 6, DV = 2;
#endif

constexpr double LOG2E = 1.4426950408889634074;
constexpr double LN2 = 0.6931471805599453094;
// Masked scores and the initial running max: finite, so a difference of two of them is
// never -inf − (-inf) = NaN, and 2^(MASKED − max) is 0 for any max a real score can have.
constexpr float MASKED = -std::numeric_limits<float>::max();

// ---------------------------------------------------------------------------------------
// Block products. All blocks are BLK×BLK; "diag" marks a diagonal block, whose entries
// with key c > query r are masked: tiles entirely above the diagonal are skipped.

// Row indices rs..rs+VL−1 of a query vector, for the diagonal mask (key c > query r).
inline vf row_index(int rs) {
  vf r;
  for (int i = 0; i < VL; ++i) r[i] = static_cast<float>(rs + i);
  return r;
}

// sT[c][r] = Σ_{d<D} a[c·lda + d] · bT[d·BLK + r] for keys c0..c0+KT and query vectors
// v0..v0+VT (a = K or V in natural layout, bT = Qᵀ or dOᵀ packed). With MAX (the forward)
// the diagonal's masked entries become MASKED and mx[r] takes the max of each row.
template <int KT, int VT, bool MAX>
void scores_tile(float* sT, const float* a, int64_t lda, const float* bT, int64_t D, int c0, int v0,
                 bool diag, float* mx) {
  vf acc[KT][VT];
  const float* arow[KT];
  for (int k = 0; k < KT; ++k) {
    arow[k] = a + (c0 + k) * lda;
    for (int u = 0; u < VT; ++u) acc[k][u] = vf{};
  }
  const float* b = bT + v0 * VL;
  for (int64_t d = 0; d < D; ++d, b += BLK) {
    vf bv[VT];
    for (int u = 0; u < VT; ++u) bv[u] = load(b + u * VL);
    for (int k = 0; k < KT; ++k) {
      const vf ak = splat(arow[k][d]);
      for (int u = 0; u < VT; ++u) acc[k][u] += ak * bv[u];
    }
  }
  if constexpr (MAX) {
    for (int u = 0; u < VT; ++u) {
      const int rs = (v0 + u) * VL;
      vf m = load(mx + rs);
      for (int k = 0; k < KT; ++k) {
        if (diag && c0 + k > rs) {
          acc[k][u] = splat(static_cast<float>(c0 + k)) > row_index(rs) ? splat(MASKED) : acc[k][u];
        }
        m = vmax(m, acc[k][u]);
      }
      store(mx + rs, m);
    }
  }
  for (int k = 0; k < KT; ++k)
    for (int u = 0; u < VT; ++u) store(sT + (c0 + k) * BLK + (v0 + u) * VL, acc[k][u]);
}

template <int KT, bool MAX>
void scores_keys(float* sT, const float* a, int64_t lda, const float* bT, int64_t D, int c0,
                 bool diag, float* mx) {
  // On the diagonal only query vectors holding a row r ≥ c0 are needed.
  int v0 = diag ? c0 / VL : 0;
  for (; v0 + RV <= NV; v0 += RV) scores_tile<KT, RV, MAX>(sT, a, lda, bT, D, c0, v0, diag, mx);
  switch (NV - v0) {
    case 3: if constexpr (RV > 3) scores_tile<KT, 3, MAX>(sT, a, lda, bT, D, c0, v0, diag, mx); break;
    case 2: if constexpr (RV > 2) scores_tile<KT, 2, MAX>(sT, a, lda, bT, D, c0, v0, diag, mx); break;
    case 1: if constexpr (RV > 1) scores_tile<KT, 1, MAX>(sT, a, lda, bT, D, c0, v0, diag, mx); break;
    default: break;
  }
}

// The whole score block; with MAX, mx (BLK floats, holding the running row max) is
// updated with the block's row max.
template <bool MAX>
void scores(float* sT, const float* a, int64_t lda, const float* bT, int64_t D, bool diag,
            float* mx = nullptr) {
  int c0 = 0;
  for (; c0 + KC <= BLK; c0 += KC) scores_keys<KC, MAX>(sT, a, lda, bT, D, c0, diag, mx);
  switch (BLK - c0) {
    case 5: scores_keys<5, MAX>(sT, a, lda, bT, D, c0, diag, mx); break;
    case 4: scores_keys<4, MAX>(sT, a, lda, bT, D, c0, diag, mx); break;
    case 3: scores_keys<3, MAX>(sT, a, lda, bT, D, c0, diag, mx); break;
    case 2: scores_keys<2, MAX>(sT, a, lda, bT, D, c0, diag, mx); break;
    case 1: scores_keys<1, MAX>(sT, a, lda, bT, D, c0, diag, mx); break;
    default: break;
  }
}

// out[m][d] = (alpha[m] ·) out[m][d] + Σ_{k in [kb, ke)} A(m, k) · b[k·ldb + d] for rows
// m0..m0+MT and head vectors dv0..dv0+DT, where A(m, k) = a[m·SM + k·SK] is a score block:
// SM = 1, SK = BLK reads sT as [query m][key k] (P·V, dS·K); SM = BLK, SK = 1 reads it
// as [key m][query k] (Pᵀ·dO, dSᵀ·Q).
template <int MT, int DT, int SM, int SK, bool SCALE>
void product_tile(float* out, int64_t ldo, const float* a, const float* b, int64_t ldb, int kb,
                  int ke, int m0, int dv0, const float* alpha) {
  vf acc[MT][DT];
  for (int t = 0; t < MT; ++t) {
    for (int u = 0; u < DT; ++u) {
      acc[t][u] = load(out + (m0 + t) * ldo + (dv0 + u) * VL);
      if constexpr (SCALE) acc[t][u] *= alpha[m0 + t];
    }
  }
  const float* ap = a + m0 * SM;
  const float* bp = b + dv0 * VL;
  for (int k = kb; k < ke; ++k) {
    vf bv[DT];
    for (int u = 0; u < DT; ++u) bv[u] = load(bp + k * ldb + u * VL);
    for (int t = 0; t < MT; ++t) {
      const vf at = splat(ap[t * SM + k * SK]);
      for (int u = 0; u < DT; ++u) acc[t][u] += at * bv[u];
    }
  }
  for (int t = 0; t < MT; ++t)
    for (int u = 0; u < DT; ++u) store(out + (m0 + t) * ldo + (dv0 + u) * VL, acc[t][u]);
}

template <int MT, int SM, int SK, bool SCALE>
void product_rows(float* out, int64_t ldo, const float* a, const float* b, int64_t ldb, int kb,
                  int ke, int m0, int64_t nd, const float* alpha) {
  int dv0 = 0;
  for (; dv0 + DV <= nd; dv0 += DV)
    product_tile<MT, DV, SM, SK, SCALE>(out, ldo, a, b, ldb, kb, ke, m0, dv0, alpha);
  switch (nd - dv0) {
    case 3: if constexpr (DV > 3) product_tile<MT, 3, SM, SK, SCALE>(out, ldo, a, b, ldb, kb, ke, m0, dv0, alpha); break;
    case 2: if constexpr (DV > 2) product_tile<MT, 2, SM, SK, SCALE>(out, ldo, a, b, ldb, kb, ke, m0, dv0, alpha); break;
    case 1: if constexpr (DV > 1) product_tile<MT, 1, SM, SK, SCALE>(out, ldo, a, b, ldb, kb, ke, m0, dv0, alpha); break;
    default: break;
  }
}

// The whole block: out is BLK × (nd·VL). On the diagonal, A(m, k) is zero for key > query,
// so the k range of each row tile shrinks to the keys ≤ its last query (SM = 1) or the
// queries ≥ its first key (SM = BLK).
template <int SM, int SK, bool SCALE>
void product(float* out, int64_t ldo, const float* a, const float* b, int64_t ldb, int64_t nd,
             bool diag, const float* alpha = nullptr) {
  auto range = [&](int m0, int mt, int& kb, int& ke) {
    kb = 0;
    ke = BLK;
    if (diag) {
      if (SM == 1) ke = std::min(BLK, m0 + mt);
      else kb = m0;
    }
  };
  int m0 = 0, kb, ke;
  for (; m0 + RT <= BLK; m0 += RT) {
    range(m0, RT, kb, ke);
    product_rows<RT, SM, SK, SCALE>(out, ldo, a, b, ldb, kb, ke, m0, nd, alpha);
  }
  const int rest = BLK - m0;
  range(m0, rest, kb, ke);
  switch (rest) {
    case 5: product_rows<5, SM, SK, SCALE>(out, ldo, a, b, ldb, kb, ke, m0, nd, alpha); break;
    case 4: product_rows<4, SM, SK, SCALE>(out, ldo, a, b, ldb, kb, ke, m0, nd, alpha); break;
    case 3: product_rows<3, SM, SK, SCALE>(out, ldo, a, b, ldb, kb, ke, m0, nd, alpha); break;
    case 2: product_rows<2, SM, SK, SCALE>(out, ldo, a, b, ldb, kb, ke, m0, nd, alpha); break;
    case 1: product_rows<1, SM, SK, SCALE>(out, ldo, a, b, ldb, kb, ke, m0, nd, alpha); break;
    default: break;
  }
}

// Online softmax over one block (in place: masked scores in, probabilities out). m, l are
// the running row max and sum (base 2), mx the new max from scores<true>; alpha receives
// 2^(m_old − m_new) for rescaling the output accumulator. Entries beyond the diagonal's
// last needed key are set to 0 so the products may read whole tiles.
void softmax_block(float* sT, float* m, const float* mx, float* l, float* alpha, bool diag) {
  for (int v = 0; v < NV; ++v) {
    const int rs = v * VL;
    const int ce = diag ? rs + VL : BLK;
    const vf top = load(mx + rs);
    const vf scale_old = vexp2(load(m + rs) - top);
    vf sum = vf{};
    for (int c = 0; c < ce; ++c) {
      const vf p = vexp2(load(sT + c * BLK + rs) - top);
      store(sT + c * BLK + rs, p);
      sum += p;
    }
    for (int c = ce; c < BLK; ++c) store(sT + c * BLK + rs, vf{});
    store(l + rs, load(l + rs) * scale_old + sum);
    store(m + rs, top);
    store(alpha + rs, scale_old);
  }
}

// Backward elementwise step: P = 2^(S − lse₂) into sT, dS = scale · P ∘ (dP − delta) into
// dpT; masked entries and those beyond the diagonal's needed keys are 0.
void grad_scores_block(float* sT, float* dpT, const float* lse2, const float* delta, float scale,
                       bool diag) {
  for (int v = 0; v < NV; ++v) {
    const int rs = v * VL;
    const int ce = diag ? rs + VL : BLK;
    const vf rows = row_index(rs);
    const vf l2 = load(lse2 + rs);
    const vf dl = load(delta + rs);
    for (int c = 0; c < ce; ++c) {
      vf p = vexp2(load(sT + c * BLK + rs) - l2);
      vf ds = p * (load(dpT + c * BLK + rs) - dl) * scale;
      if (diag && c > rs) {
        const auto masked = splat(static_cast<float>(c)) > rows;
        p = masked ? vf{} : p;
        ds = masked ? vf{} : ds;
      }
      store(sT + c * BLK + rs, p);
      store(dpT + c * BLK + rs, ds);
    }
    for (int c = ce; c < BLK; ++c) {
      store(sT + c * BLK + rs, vf{});
      store(dpT + c * BLK + rs, vf{});
    }
  }
}

// ---------------------------------------------------------------------------------------
// Operand views and packing.

inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

struct Shape {
  int64_t B, T, H, Hkv, D;
  int64_t G;     // query heads per kv head
  int64_t Dp;    // D rounded up to the vector width: the row length of padded operands
  int64_t nd;    // Dp / VL
  int64_t nblk;  // blocks along T
  bool direct;   // D fills whole vectors: whole input blocks can be read in place
};

Shape make_shape(int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D) {
  const int64_t Dp = round_up(D, VL);
  return {B, T, H, Hkv, D, H / Hkv, Dp, Dp / VL, (T + BLK - 1) / BLK, Dp == D};
}

// BLK rows of an input block as the products see them: a pointer and a row stride.
// Accumulators are always contiguous BLK × Dp blocks (row stride Dp).
struct View {
  const float* p;
  int64_t ld;
};

struct Place {
  int64_t heads, head, b, t0;
};

inline int64_t rows_in(const Shape& s, const Place& at) { return std::min<int64_t>(BLK, s.T - at.t0); }

template <class F>
inline F* first_row(F* base, const Shape& s, const Place& at) {
  return base + ((at.b * s.T + at.t0) * at.heads + at.head) * s.D;
}

// A zero-padded BLK × Dp copy of a block.
void copy_rows(float* dst, const float* src, const Shape& s, const Place& at) {
  const int64_t rows = rows_in(s, at), ld = at.heads * s.D;
  const float* first = first_row(src, s, at);
  std::memset(dst, 0, sizeof(float) * BLK * s.Dp);
  for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * s.Dp, first + r * ld, sizeof(float) * s.D);
}

// Whether whole input blocks are read in place. Their rows are heads·D floats apart, often
// a power of two, so they share few L1 sets; with AVX-512 a product sweeps each row once
// per row tile and in place is faster, narrower vectors sweep it 2-4 times as often and
// gain more from a contiguous copy than it costs.
constexpr bool READ_IN_PLACE = VL >= 16;

// An input block for the products (vectors of VL along D): the tensor itself when the
// block is whole, D fills vectors and READ_IN_PLACE, else a zero-padded BLK × Dp copy in
// `pad`.
View block_rows(const float* src, const Shape& s, const Place& at, float* pad) {
  const int64_t rows = rows_in(s, at), ld = at.heads * s.D;
  const float* first = first_row(src, s, at);
  if (READ_IN_PLACE && rows == BLK && s.direct) return {first, ld};
  copy_rows(pad, src, s, at);
  return {pad, s.Dp};
}

// Rows [t0, min(T, t0 + BLK)) of an output from a BLK × Dp accumulator.
void write_rows(float* dst, const float* acc, const Shape& s, const Place& at) {
  const int64_t rows = rows_in(s, at), ld = at.heads * s.D;
  float* first = first_row(dst, s, at);
  for (int64_t r = 0; r < rows; ++r) std::memcpy(first + r * ld, acc + r * s.Dp, sizeof(float) * s.D);
}

// In-register transpose of VL rows of VL floats: log2(VL) stages, each exchanging the
// off-diagonal H×H blocks of every 2H×2H block (one two-source shuffle per row).
template <int H>
inline void transpose_stage(vf* rows) {
  vi lo, hi;
  for (int j = 0; j < VL; ++j) {
    lo[j] = (j & H) ? VL + j - H : j;
    hi[j] = (j & H) ? VL + j : j + H;
  }
  for (int i = 0; i < VL; ++i) {
    if (i & H) continue;
    const vf a = rows[i], b = rows[i + H];
    rows[i] = __builtin_shuffle(a, b, lo);
    rows[i + H] = __builtin_shuffle(a, b, hi);
  }
}

inline void transpose(vf* rows) {
  if constexpr (VL >= 16) transpose_stage<8>(rows);
  if constexpr (VL >= 8) transpose_stage<4>(rows);
  transpose_stage<2>(rows);
  transpose_stage<1>(rows);
}

// dstT[d][r] = factor · row r of the block (D × BLK), zero for rows past T: the packed
// Qᵀ / dOᵀ. VL×VL tiles are transposed in registers, so the source is read as vectors.
void pack_transposed(float* dstT, const float* src, const Shape& s, const Place& at, float factor) {
  const int64_t rows = rows_in(s, at), ld = at.heads * s.D;
  const int64_t dv = s.D / VL * VL;  // columns covered by whole vectors
  const float* first = first_row(src, s, at);
  for (int r0 = 0; r0 < BLK; r0 += VL) {
    for (int64_t d0 = 0; d0 < dv; d0 += VL) {
      vf tile[VL];
      for (int i = 0; i < VL; ++i)
        tile[i] = r0 + i < rows ? load(first + (r0 + i) * ld + d0) * factor : vf{};
      transpose(tile);
      for (int i = 0; i < VL; ++i) store(dstT + (d0 + i) * BLK + r0, tile[i]);
    }
    for (int64_t d = dv; d < s.D; ++d)
      for (int i = 0; i < VL; ++i)
        dstT[d * BLK + r0 + i] = r0 + i < rows ? first[(r0 + i) * ld + d] * factor : 0.0f;
  }
}

// Per-thread scratch, one allocation per call, uninitialised (every task writes what it
// reads), each thread's part 64-byte aligned.
class Scratch {
 public:
  Scratch(int threads, int64_t per_thread)
      : per_(round_up(per_thread, 16)), buf_(new float[threads * per_ + 16]) {}
  float* at(int thread) {
    float* base = buf_.get() + thread * per_;
    const auto addr = reinterpret_cast<uintptr_t>(base);
    return base + ((64 - addr % 64) % 64) / sizeof(float);
  }

 private:
  int64_t per_;
  std::unique_ptr<float[]> buf_;
};

// Carves consecutive pieces out of a scratch area. Every piece is a multiple of 16 floats
// (BLK is), so each stays 64-byte aligned.
class Carve {
 public:
  explicit Carve(float* p) : p_(p) {}
  float* take(int64_t n) {
    float* r = p_;
    p_ += n;
    return r;
  }

 private:
  float* p_;
};

}  // namespace

// ---------------------------------------------------------------------------------------
// Forward: one task per (b, h, query block), by head and, within a head, last (heaviest)
// query block first: a thread's next task mostly reuses the K/V blocks in its cache, and
// the lightest tasks come last. The output rows accumulate unnormalised in a contiguous
// block, then are divided by the row sums into out.

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, float scale,
                       const Context& ctx) {
  const Shape s = make_shape(B, T, H, Hkv, D);
  const float qscale = static_cast<float>(static_cast<double>(scale) * LOG2E);
  const int64_t blk_dp = BLK * s.Dp;
  Scratch scratch(ctx.pool->size(), D * BLK + BLK * BLK + 3 * blk_dp + 4 * BLK);
  const int64_t heads = B * H;
  ctx.pool->run(heads * s.nblk, [&](int64_t task, int thread) {
    const int64_t i = s.nblk - 1 - task % s.nblk;
    const int64_t b = task / s.nblk / H, h = task / s.nblk % H, g = h / s.G;
    Carve carve(scratch.at(thread));
    float* qT = carve.take(D * BLK);
    float* sT = carve.take(BLK * BLK);
    float* o = carve.take(blk_dp);
    float* kpad = carve.take(blk_dp);
    float* vpad = carve.take(blk_dp);
    float* m = carve.take(BLK);
    float* mx = carve.take(BLK);
    float* l = carve.take(BLK);
    float* alpha = carve.take(BLK);
    const Place qi{H, h, b, i * BLK};
    pack_transposed(qT, q, s, qi, qscale);
    std::fill(o, o + blk_dp, 0.0f);
    std::fill(m, m + BLK, MASKED);
    std::fill(l, l + BLK, 0.0f);
    for (int64_t j = 0; j <= i; ++j) {
      const bool diag = j == i;
      const Place kv{Hkv, g, b, j * BLK};
      const View kj = block_rows(k, s, kv, kpad);
      const View vj = block_rows(v, s, kv, vpad);
      std::copy(m, m + BLK, mx);
      scores<true>(sT, kj.p, kj.ld, qT, D, diag, mx);
      softmax_block(sT, m, mx, l, alpha, diag);
      product<1, BLK, true>(o, s.Dp, sT, vj.p, vj.ld, s.nd, diag, alpha);
    }
    const int64_t rows = rows_in(s, qi);
    float* dst = first_row(out, s, qi);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t d = 0; d < D; ++d) dst[r * H * D + d] = o[r * s.Dp + d] / l[r];
      lse[(b * H + h) * T + qi.t0 + r] =
          static_cast<float>((static_cast<double>(m[r]) + std::log2(static_cast<double>(l[r]))) * LN2);
    }
  });
}

// ---------------------------------------------------------------------------------------
// Backward.

namespace {

// A query block packed for the block pairs: qT = scale·log2(e)·Qᵀ and doT = dOᵀ (D × BLK),
// lse2 = lse·log2(e) and delta = rowsum(dO ∘ O) (BLK), zero past T.
struct QueryBlock {
  float* qT;
  float* doT;
  float* lse2;
  float* delta;
};

inline int64_t query_block_floats(int64_t D) { return round_up(2 * D * BLK + 2 * BLK, 16); }

QueryBlock query_block_at(float* p, int64_t D) {
  return {p, p + D * BLK, p + 2 * D * BLK, p + 2 * D * BLK + BLK};
}

// Σ_d a[d]·b[d] in a fixed order (VL partial sums, then lanes in order).
float dot(const float* a, const float* b, int64_t n) {
  vf acc = vf{};
  int64_t d = 0;
  for (; d + VL <= n; d += VL) acc += load(a + d) * load(b + d);
  float sum = 0.0f;
  for (int i = 0; i < VL; ++i) sum += acc[i];
  for (; d < n; ++d) sum += a[d] * b[d];
  return sum;
}

void pack_query_block(QueryBlock qb, const float* q, const float* dout, const float* out,
                      const float* lse, const Shape& s, const Place& at, float qscale) {
  pack_transposed(qb.qT, q, s, at, qscale);
  pack_transposed(qb.doT, dout, s, at, 1.0f);
  const int64_t rows = rows_in(s, at), ld = at.heads * s.D;
  const float* o = first_row(out, s, at);
  const float* dO = first_row(dout, s, at);
  const float* l = lse + (at.b * s.H + at.head) * s.T + at.t0;
  for (int64_t r = 0; r < BLK; ++r) {
    qb.lse2[r] = r < rows ? static_cast<float>(static_cast<double>(l[r]) * LOG2E) : 0.0f;
    qb.delta[r] = r < rows ? dot(dO + r * ld, o + r * ld, s.D) : 0.0f;
  }
}

// One (query block, key block) pair: recompute P and dS, then add the pair's share to
// whichever of dv, dk (key block rows) and dq (query block rows) is given (BLK × Dp
// accumulators). qi / doi: the query block's Q and dO rows; kj / vj: the key block's K
// and V rows.
void block_pair(const QueryBlock& qb, View qi, View doi, View kj, View vj, const Shape& s,
                float scale, bool diag, float* sT, float* dpT, float* dv, float* dk, float* dq) {
  scores<false>(sT, kj.p, kj.ld, qb.qT, s.D, diag);
  scores<false>(dpT, vj.p, vj.ld, qb.doT, s.D, diag);
  grad_scores_block(sT, dpT, qb.lse2, qb.delta, scale, diag);
  if (dv) product<BLK, 1, false>(dv, s.Dp, sT, doi.p, doi.ld, s.nd, diag);
  if (dk) product<BLK, 1, false>(dk, s.Dp, dpT, qi.p, qi.ld, s.nd, diag);
  if (dq) product<1, BLK, false>(dq, s.Dp, dpT, kj.p, kj.ld, s.nd, diag);
}

// The one-task-per-(b, kv head) schedule leaves threads idle when the tasks do not divide
// evenly; below 80% occupancy the two-pass schedule (7 block products per block pair
// instead of 5, but finer tasks) is faster.
bool fused_schedule(int64_t tasks, int threads) {
  const int64_t rounds = (tasks + threads - 1) / threads;
  return tasks * 5 >= rounds * threads * 4;
}

}  // namespace

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse,
                        int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, float scale,
                        const Context& ctx) {
  const Shape s = make_shape(B, T, H, Hkv, D);
  const float qscale = static_cast<float>(static_cast<double>(scale) * LOG2E);
  const int threads = ctx.pool->size();
  const int64_t blk_dp = BLK * s.Dp;
  const int64_t qbf = query_block_floats(D);

  if (fused_schedule(B * Hkv, threads)) {
    // One task per (b, kv head). It owns dK, dV of its head (accumulated over all query
    // heads and blocks) and dQ of its query heads (one query block at a time). K, V and
    // the dK, dV accumulators of the head live in contiguous scratch: in the tensors their
    // rows are heads·D floats apart, often a power of two, and the ~8 row-strided arrays a
    // task sweeps would collide in the caches' sets.
    const int64_t head_dp = s.nblk * blk_dp;
    Scratch scratch(threads, qbf + 2 * BLK * BLK + 3 * blk_dp + 4 * head_dp);
    ctx.pool->run(B * Hkv, [&](int64_t task, int thread) {
      const int64_t b = task / Hkv, g = task % Hkv;
      Carve carve(scratch.at(thread));
      const QueryBlock qb = query_block_at(carve.take(qbf), D);
      float* sT = carve.take(BLK * BLK);
      float* dpT = carve.take(BLK * BLK);
      float* qpad = carve.take(blk_dp);
      float* dopad = carve.take(blk_dp);
      float* dq_acc = carve.take(blk_dp);
      float* kh = carve.take(head_dp);
      float* vh = carve.take(head_dp);
      float* dkh = carve.take(head_dp);
      float* dvh = carve.take(head_dp);
      std::fill(dkh, dkh + 2 * head_dp, 0.0f);
      for (int64_t j = 0; j < s.nblk; ++j) {
        const Place kv{Hkv, g, b, j * BLK};
        copy_rows(kh + j * blk_dp, k, s, kv);
        copy_rows(vh + j * blk_dp, v, s, kv);
      }
      for (int64_t hh = 0; hh < s.G; ++hh) {
        const int64_t h = g * s.G + hh;
        for (int64_t i = 0; i < s.nblk; ++i) {
          const Place qp{H, h, b, i * BLK};
          pack_query_block(qb, q, dout, out, lse, s, qp, qscale);
          const View qi = block_rows(q, s, qp, qpad);
          const View doi = block_rows(dout, s, qp, dopad);
          std::fill(dq_acc, dq_acc + blk_dp, 0.0f);
          for (int64_t j = 0; j <= i; ++j) {
            const View kj{kh + j * blk_dp, s.Dp};
            const View vj{vh + j * blk_dp, s.Dp};
            block_pair(qb, qi, doi, kj, vj, s, scale, j == i, sT, dpT, dvh + j * blk_dp,
                       dkh + j * blk_dp, dq_acc);
          }
          write_rows(dq, dq_acc, s, qp);
        }
      }
      for (int64_t j = 0; j < s.nblk; ++j) {
        const Place kv{Hkv, g, b, j * BLK};
        write_rows(dk, dkh + j * blk_dp, s, kv);
        write_rows(dv, dvh + j * blk_dp, s, kv);
      }
    });
    return;
  }

  // Two passes over query blocks packed once: dK, dV by (b, kv head, key block), then dQ
  // by (b, head, query block), each recomputing the scores.
  std::unique_ptr<float[]> packed(new float[B * H * s.nblk * qbf]);
  auto packed_block = [&](int64_t b, int64_t h, int64_t i) {
    return query_block_at(packed.get() + ((b * H + h) * s.nblk + i) * qbf, D);
  };
  ctx.pool->run(B * H * s.nblk, [&](int64_t idx, int) {
    const int64_t b = idx / (H * s.nblk), h = idx / s.nblk % H, i = idx % s.nblk;
    pack_query_block(packed_block(b, h, i), q, dout, out, lse, s, {H, h, b, i * BLK}, qscale);
  });
  Scratch scratch(threads, 2 * BLK * BLK + 6 * blk_dp);
  // dK, dV: heaviest (first) key blocks first.
  const int64_t kv_heads = B * Hkv;
  ctx.pool->run(kv_heads * s.nblk, [&](int64_t task, int thread) {
    const int64_t j = task / kv_heads, b = task % kv_heads / Hkv, g = task % Hkv;
    Carve carve(scratch.at(thread));
    float* sT = carve.take(BLK * BLK);
    float* dpT = carve.take(BLK * BLK);
    float* qpad = carve.take(blk_dp);
    float* dopad = carve.take(blk_dp);
    float* kpad = carve.take(blk_dp);
    float* vpad = carve.take(blk_dp);
    float* dk_acc = carve.take(blk_dp);
    float* dv_acc = carve.take(blk_dp);
    const Place kv{Hkv, g, b, j * BLK};
    std::fill(dk_acc, dk_acc + 2 * blk_dp, 0.0f);
    const View kj = block_rows(k, s, kv, kpad);
    const View vj = block_rows(v, s, kv, vpad);
    for (int64_t hh = 0; hh < s.G; ++hh) {
      const int64_t h = g * s.G + hh;
      for (int64_t i = j; i < s.nblk; ++i) {
        const Place qp{H, h, b, i * BLK};
        const View qi = block_rows(q, s, qp, qpad);
        const View doi = block_rows(dout, s, qp, dopad);
        block_pair(packed_block(b, h, i), qi, doi, kj, vj, s, scale, j == i, sT, dpT, dv_acc,
                   dk_acc, nullptr);
      }
    }
    write_rows(dk, dk_acc, s, kv);
    write_rows(dv, dv_acc, s, kv);
  });
  // dQ: heaviest (last) query blocks first.
  const int64_t heads = B * H;
  ctx.pool->run(heads * s.nblk, [&](int64_t task, int thread) {
    const int64_t i = s.nblk - 1 - task / heads;
    const int64_t b = task % heads / H, h = task % H, g = h / s.G;
    Carve carve(scratch.at(thread));
    float* sT = carve.take(BLK * BLK);
    float* dpT = carve.take(BLK * BLK);
    float* kpad = carve.take(blk_dp);
    float* vpad = carve.take(blk_dp);
    float* dq_acc = carve.take(blk_dp);
    const Place qp{H, h, b, i * BLK};
    std::fill(dq_acc, dq_acc + blk_dp, 0.0f);
    for (int64_t j = 0; j <= i; ++j) {
      const Place kv{Hkv, g, b, j * BLK};
      const View kj = block_rows(k, s, kv, kpad);
      const View vj = block_rows(v, s, kv, vpad);
      block_pair(packed_block(b, h, i), View{}, View{}, kj, vj, s, scale, j == i, sT, dpT,
                 nullptr, nullptr, dq_acc);
    }
    write_rows(dq, dq_acc, s, qp);
  });
}

// ---------------------------------------------------------------------------------------
// Cached attention (incremental decoding; growlm/attention.h). Every query row is computed
// alone: its keys from key_begin in chunks of CHUNK slots; per chunk the scores (dot products
// along D: vector partial sums, their lanes summed in a fixed pairwise tree, then the scalar
// tail of D), one online-softmax step in base 2 as in the forward above, and the weighted V
// rows accumulated along D in slot order. Nothing is shared between rows, so a row's bits
// depend only on its q and its valid keys (see the header).
//
// Tasks: one per (query block, b), the latest (heaviest) query blocks first, handling every
// head; decoding a single sequence splits the heads into groups to give every thread work.
// A decoding step (one query per row) reads every cached slot once for a few flops per
// float, so it is as fast as the cache streams in from memory:
//  - K and V are read slot row by slot row, every head of the task per slot: a task's reads
//    sweep its row's slots front to back (a head's rows alone are Hkv·D floats apart);
//  - while a chunk's scores are computed its V rows are prefetched, and while its V rows are
//    accumulated the next chunk's K rows are, so the memory system always has a chunk's
//    lines in flight and the arithmetic mostly reads L2;
//  - the scores of VL keys come out as one vector (lane t = key t): the VL dot products'
//    partial-sum vectors are folded together level by level of the lane tree, two shuffles
//    and an add per pair of vectors, instead of one tree per key.

namespace {

constexpr int CHUNK = 64;  // keys per softmax step, a multiple of VL
constexpr int QB = 16;     // query rows per task
constexpr int PV = 8;      // accumulator vectors held in registers by P·V

// Asks for the `rows` rows of D floats at p, p + ld, ... to be brought into L2 (one
// request per 64-byte line).
inline void prefetch_rows(const float* p, int rows, int64_t ld, int64_t D) {
  for (int r = 0; r < rows; ++r)
    for (int64_t d = 0; d < D; d += 16) __builtin_prefetch(p + r * ld + d, 0, 2);
}

// x + (x with its lanes rotated by W), lane by lane.
template <int W>
inline vf add_rotated(vf x) {
  vi m;
  for (int i = 0; i < VL; ++i) m[i] = (i + W) % VL;
  return x + __builtin_shuffle(x, m);
}

// The sum of the lanes, pairwise in a fixed tree: (lane i + lane i + VL/2) first, then halving.
inline float lane_sum(vf x) {
  if constexpr (VL >= 16) x = add_rotated<8>(x);
  if constexpr (VL >= 8) x = add_rotated<4>(x);
  x = add_rotated<2>(x);
  x = add_rotated<1>(x);
  return x[0];
}

// One level of the lane tree, on two vectors at once: x and y each hold VL / W keys, a block
// of W partial sums per key; the result holds the keys of x then those of y, W / 2 sums
// each, lane i of a block being lanes i and i + W / 2 of the input block added.
template <int W>
inline vf fold(vf x, vf y) {
  constexpr int blocks = VL / W, half = W / 2;
  vi lo, hi;
  for (int o = 0; o < VL; ++o) {
    const int block = o / half;
    lo[o] = (block < blocks ? 0 : VL) + block % blocks * W + o % half;
    hi[o] = lo[o] + half;
  }
  return __builtin_shuffle(x, y, lo) + __builtin_shuffle(x, y, hi);
}

// The lane sums of the W vectors x[0..W-1] (one key each at the first level, W = VL): lane t
// of the result is lane_sum(x[t]), the same pairs added in the same order. Clobbers x.
template <int W = VL>
inline vf lane_sums(vf* x) {
  for (int i = 0; i < W / 2; ++i) x[i] = fold<W>(x[2 * i], x[2 * i + 1]);
  if constexpr (W > 2) {
    return lane_sums<W / 2>(x);
  } else {
    return x[0];
  }
}

// Scores of the query qs (D floats) with the keys k, k + ld, ..., k + (cnt − 1)·ld, cnt <= VL:
// lane t is key t's vector partial sums along D, lane-summed, plus the scalar tail of D;
// lanes from cnt on are MASKED. `full` (cnt == VL) walks the key rows with one pointer.
template <bool full>
inline vf score_lanes(const float* qs, const float* k, int64_t ld, int cnt, int64_t D) {
  vf acc[VL];
  for (int t = 0; t < VL; ++t) acc[t] = vf{};
  int64_t d = 0;
  for (; d + VL <= D; d += VL) {
    const vf a = load(qs + d);
    if constexpr (full) {
      const float* row = k + d;
      for (int t = 0; t < VL; ++t, row += ld) acc[t] += a * load(row);
    } else {
      for (int t = 0; t < VL; ++t) acc[t] += a * load(k + std::min(t, cnt - 1) * ld + d);
    }
  }
  vf s = lane_sums(acc);
  if (d < D) {
    for (int t = 0; t < cnt; ++t) {
      float sum = s[t];
      for (int64_t e = d; e < D; ++e) sum += qs[e] * k[t * ld + e];
      s[t] = sum;
    }
  }
  if constexpr (!full)
    for (int t = cnt; t < VL; ++t) s[t] = MASKED;
  return s;
}

// a[0 .. NVEC·VL) += Σ_j p[j] · v[j·ld + 0 .. NVEC·VL), j = 0 .. n − 1 in order, the
// accumulator held in registers.
template <int NVEC>
inline void accumulate(float* a, const float* p, const float* v, int64_t ld, int n) {
  vf o[NVEC];
  for (int u = 0; u < NVEC; ++u) o[u] = load(a + u * VL);
  for (int j = 0; j < n; ++j, v += ld) {
    const vf pj = splat(p[j]);
    for (int u = 0; u < NVEC; ++u) o[u] += pj * load(v + u * VL);
  }
  for (int u = 0; u < NVEC; ++u) store(a + u * VL, o[u]);
}

// accumulate<nvec> for a run-time nvec in [1, MAX].
template <int MAX>
inline void accumulate_vectors(int nvec, float* a, const float* p, const float* v, int64_t ld, int n) {
  if (nvec == MAX) {
    accumulate<MAX>(a, p, v, ld, n);
  } else if constexpr (MAX > 1) {
    accumulate_vectors<MAX - 1>(nvec, a, p, v, ld, n);
  }
}

}  // namespace

void attention_cached_forward(float* out, const float* q, const float* k, const float* v,
                              const int32_t* key_begin, int64_t B, int64_t Tq, int64_t Tk,
                              int64_t S, int64_t H, int64_t Hkv, int64_t D, float scale,
                              const Context& ctx) {
  const float qscale = static_cast<float>(static_cast<double>(scale) * LOG2E);
  const int64_t G = H / Hkv;
  const int64_t Dp = round_up(D, 16);
  const int64_t ld = Hkv * D;  // floats between the slots of a row
  const int64_t blocks = (Tq + QB - 1) / QB;
  // Kv heads are split into groups only when (query block, row) tasks are too few to keep
  // the threads busy (decoding one sequence); a group's slot rows are read front to back.
  const int64_t groups = std::min<int64_t>(Hkv, std::max<int64_t>(1, (2 * ctx.pool->size() + blocks * B - 1) / (blocks * B)));
  const int64_t max_heads = (Hkv + groups - 1) / groups * G;
  // Per thread: qs and acc (nh·Dp each), the scores (nh·CHUNK), m and l (round_up(nh, 16) each).
  Scratch scratch(ctx.pool->size(), max_heads * (2 * Dp + CHUNK) + 2 * round_up(max_heads, 16));
  ctx.pool->run(blocks * B * groups, [&](int64_t task, int thread) {
    const int64_t blk = blocks - 1 - task / (B * groups);
    const int64_t b = task / groups % B, grp = task % groups;
    const int64_t g0 = grp * Hkv / groups, g1 = (grp + 1) * Hkv / groups;
    const int64_t h0 = g0 * G, nh = (g1 - g0) * G;  // this task's query heads h0 .. h0 + nh - 1
    Carve carve(scratch.at(thread));
    float* qs = carve.take(nh * Dp);    // scaled queries, head by head
    float* acc = carve.take(nh * Dp);   // unnormalised outputs
    float* s = carve.take(nh * CHUNK);  // the chunk's scores, then probabilities
    float* m = carve.take(round_up(nh, 16));
    float* l = carve.take(round_up(nh, 16));
    const int64_t begin = key_begin[b];
    const float* krow = k + b * S * ld;
    const float* vrow = v + b * S * ld;
    const float* kv0 = krow + g0 * D;  // the group's first kv head in slot 0
    const int64_t span = (g1 - g0) * D;  // the group's floats in a slot
    auto kv_offset = [&](int64_t hh) { return (h0 + hh) / G * D; };  // head hh's kv head within a slot
    // A kv head's rows are read (and prefetched) by the first of its query heads only.
    auto first_of_kv = [&](int64_t hh) { return (h0 + hh) % G == 0; };
    for (int64_t i = blk * QB; i < std::min(Tq, (blk + 1) * QB); ++i) {
      const int64_t p = Tk - Tq + i;
      const float* qrow = q + ((b * Tq + i) * H + h0) * D;
      float* orow = out + ((b * Tq + i) * H + h0) * D;
      if (p < begin) {
        std::fill(orow, orow + nh * D, 0.0f);
        continue;
      }
      for (int64_t hh = 0; hh < nh; ++hh) {
        for (int64_t d = 0; d < D; ++d) qs[hh * Dp + d] = qrow[hh * D + d] * qscale;
        std::fill(acc + hh * Dp, acc + hh * Dp + D, 0.0f);
        m[hh] = MASKED;
        l[hh] = 0.0f;
      }
      // The first chunk's K rows: later chunks' are prefetched by the chunk before. Only the
      // task's first query streams the cache in; the next ones reread it (one slot more each).
      const bool fetch = i == blk * QB;
      if (fetch) prefetch_rows(kv0 + begin * ld, static_cast<int>(std::min<int64_t>(CHUNK, p + 1 - begin)), ld, span);
      for (int64_t c0 = begin; c0 <= p; c0 += CHUNK) {
        const int n = static_cast<int>(std::min<int64_t>(CHUNK, p + 1 - c0));
        // Scores, VL slots at a time, every head of the group per slot group; meanwhile the
        // same rows of V are prefetched.
        for (int j = 0; j < n; j += VL) {
          const int cnt = std::min(VL, n - j);
          for (int64_t hh = 0; hh < nh; ++hh) {
            const int64_t at = (c0 + j) * ld + kv_offset(hh);
            const vf sc = cnt == VL ? score_lanes<true>(qs + hh * Dp, krow + at, ld, cnt, D)
                                    : score_lanes<false>(qs + hh * Dp, krow + at, ld, cnt, D);
            store(s + hh * CHUNK + j, sc);
            if (fetch && first_of_kv(hh)) prefetch_rows(vrow + at, cnt, ld, D);
          }
        }
        // Per head: p_j = 2^(s_j - max) in place (lanes past n: MASKED scores, p = 0), their
        // sum in VL partial sums then the lane tree, and the old accumulator rescaled.
        for (int64_t hh = 0; hh < nh; ++hh) {
          float* sh = s + hh * CHUNK;
          vf top = splat(m[hh]);
          for (int j = 0; j < n; j += VL) top = vmax(top, load(sh + j));
          float mx = top[0];
          for (int t = 1; t < VL; ++t) mx = std::max(mx, top[t]);
          vf sum = vf{};
          const vf vmx = splat(mx);
          for (int j = 0; j < n; j += VL) {
            const vf e = vexp2(load(sh + j) - vmx);
            store(sh + j, e);
            sum += e;
          }
          const float alpha = vexp2(splat(m[hh] - mx))[0];
          l[hh] = l[hh] * alpha + lane_sum(sum);
          m[hh] = mx;
          float* a = acc + hh * Dp;
          const vf va = splat(alpha);
          int64_t d = 0;
          for (; d + VL <= D; d += VL) store(a + d, load(a + d) * va);
          for (; d < D; ++d) a[d] = a[d] * alpha;
        }
        // acc += Σ_j p_j · v_j, slots ascending, head by head with PV vectors of the
        // accumulator in registers; meanwhile the next chunk's K rows are prefetched.
        const int64_t next = c0 + CHUNK;
        const int ahead = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(CHUNK, p + 1 - next)));
        for (int64_t hh = 0; hh < nh; ++hh) {
          const float* sh = s + hh * CHUNK;
          const float* vh = vrow + c0 * ld + kv_offset(hh);
          float* a = acc + hh * Dp;
          int64_t d = 0;
          for (; d + VL <= D;) {
            const int nvec = static_cast<int>(std::min<int64_t>(PV, (D - d) / VL));
            accumulate_vectors<PV>(nvec, a + d, sh, vh + d, ld, n);
            d += nvec * VL;
          }
          for (; d < D; ++d) {
            float o = a[d];
            for (int j = 0; j < n; ++j) o += sh[j] * vh[j * ld + d];
            a[d] = o;
          }
          if (fetch && first_of_kv(hh)) prefetch_rows(krow + next * ld + kv_offset(hh), ahead, ld, D);
        }
      }
      for (int64_t hh = 0; hh < nh; ++hh)
        for (int64_t d = 0; d < D; ++d) orow[hh * D + d] = acc[hh * Dp + d] / l[hh];
    }
  });
}

}  // namespace growlm::cpu::GROWLM_ISA_NS

#if defined(GROWLM_ISA_portable)
#include <stdexcept>
#include <string>

namespace growlm {
namespace cpu {
GROWLM_DECLARE_ISA(void attention_forward(float*, float*, const float*, const float*, const float*,
                                          int64_t, int64_t, int64_t, int64_t, int64_t, float,
                                          const Context&))
GROWLM_DECLARE_ISA(void attention_backward(float*, float*, float*, const float*, const float*,
                                           const float*, const float*, const float*, const float*,
                                           int64_t, int64_t, int64_t, int64_t, int64_t, float,
                                           const Context&))
GROWLM_DECLARE_ISA(void attention_cached_forward(float*, const float*, const float*,
                                                 const float*, const int32_t*, int64_t, int64_t,
                                                 int64_t, int64_t, int64_t, int64_t, int64_t,
                                                 float, const Context&))
}  // namespace cpu

void check_attention_sizes(const char* op, int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D,
                           float scale) {
  if (B < 1 || T < 1 || H < 1 || Hkv < 1 || D < 1)
    throw std::invalid_argument(std::string(op) + ": B, T, H, Hkv and D must be >= 1");
  if (H % Hkv != 0)
    throw std::invalid_argument(std::string(op) + ": H = " + std::to_string(H) +
                                " is not a multiple of Hkv = " + std::to_string(Hkv));
  if (!(scale > 0.0f) || !std::isfinite(scale))
    throw std::invalid_argument(std::string(op) + ": scale must be finite and > 0");
}

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, float scale,
                       const Context& ctx) {
  check_attention_sizes("attention_forward", B, T, H, Hkv, D, scale);
  using namespace cpu;
  GROWLM_DISPATCH(ctx, attention_forward, out, lse, q, k, v, B, T, H, Hkv, D, scale, ctx);
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out, const float* lse,
                        int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D, float scale,
                        const Context& ctx) {
  check_attention_sizes("attention_backward", B, T, H, Hkv, D, scale);
  using namespace cpu;
  GROWLM_DISPATCH(ctx, attention_backward, dq, dk, dv, dout, q, k, v, out, lse, B, T, H, Hkv, D,
                  scale, ctx);
}

void attention_cached_forward(float* out, const float* q, const float* k, const float* v,
                              const int32_t* key_begin, int64_t B, int64_t Tq, int64_t Tk,
                              int64_t S, int64_t H, int64_t Hkv, int64_t D, float scale,
                              const Context& ctx) {
  const char* op = "attention_cached_forward";
  check_attention_sizes(op, B, Tq, H, Hkv, D, scale);
  if (Tk < Tq || S < Tk)
    throw std::invalid_argument(std::string(op) + ": need Tq <= Tk <= S but Tq = " + std::to_string(Tq) +
                                ", Tk = " + std::to_string(Tk) + ", S = " + std::to_string(S));
  for (int64_t b = 0; b < B; ++b) {
    if (key_begin[b] < 0 || key_begin[b] > Tk)
      throw std::invalid_argument(std::string(op) + ": key_begin[" + std::to_string(b) + "] = " +
                                  std::to_string(key_begin[b]) + " is outside [0, Tk = " +
                                  std::to_string(Tk) + "]");
  }
  using namespace cpu;
  GROWLM_DISPATCH(ctx, attention_cached_forward, out, q, k, v, key_begin, B, Tq, Tk, S, H, Hkv, D,
                  scale, ctx);
}
}  // namespace growlm
#endif
