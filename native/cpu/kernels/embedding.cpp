// Token embedding (growlm/embedding.h): out[n, :] = table[ids[n], :] with table [V, C] and
// out [N, C]; the backward scatter-adds dout [N, C] into dtable [V, C]. The backward is
// split over column ranges: a task owns its columns of every dtable row and visits the
// tokens in order, so repeated ids accumulate without races and each dtable element sums
// its tokens in token order whatever the thread count. Checked against float64 references
// in test/kernels/embedding.test.ts.
#include <algorithm>
#include <cstring>

#include "growlm/embedding.h"
#include "growlm/threads.h"
#include "isa.h"

namespace growlm::cpu::GROWLM_ISA_NS {

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int64_t V,
                       int64_t C, const Context& ctx) {
  parallel_for(ctx, N, std::max<int64_t>(1, 65536 / C), [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) {
      std::memcpy(out + n * C, table + static_cast<int64_t>(ids[n]) * C, C * sizeof(float));
    }
  });
}

void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t N,
                        int64_t V, int64_t C, int64_t padding_idx, const Context& ctx) {
  // 128 columns = 512 B runs of each row: as fast here as runs of 256 B to 2 KiB (about
  // 0.8 of copy bandwidth), and C / 128 tasks (8 for a width of 1024).
  constexpr int64_t COLS = 128;
  parallel_for(ctx, C, COLS, [&](int64_t c0, int64_t c1) {
    for (int64_t n = 0; n < N; ++n) {
      if (ids[n] == padding_idx) continue;
      float* __restrict dst = dtable + static_cast<int64_t>(ids[n]) * C;
      const float* __restrict src = dout + n * C;
      for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
    }
  });
}

}  // namespace growlm::cpu::GROWLM_ISA_NS

#if defined(GROWLM_ISA_portable)
namespace growlm {
namespace cpu {
GROWLM_DECLARE_ISA(void embedding_forward(float*, const int32_t*, const float*, int64_t, int64_t,
                                          int64_t, const Context&))
GROWLM_DECLARE_ISA(void embedding_backward(float*, const float*, const int32_t*, int64_t,
                                           int64_t, int64_t, int64_t, const Context&))
}  // namespace cpu

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int64_t V,
                       int64_t C, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, embedding_forward, out, ids, table, N, V, C, ctx);
}
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t N,
                        int64_t V, int64_t C, int64_t padding_idx, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, embedding_backward, dtable, dout, ids, N, V, C, padding_idx, ctx);
}
}  // namespace growlm
#endif
