// Token embedding: out[n, :] = table[ids[n], :], ids int32 [N] in [0, V), table [V, C].
// The backward scatter-adds dout rows into dtable (accumulates, +=); each column range is
// owned by one task and tokens are visited in order, so the sum order is fixed. Tokens whose
// id is padding_idx add nothing (nn.Embedding's padding_idx; -1: none).
// Callers validate ids; the kernels assume 0 <= ids[n] < V.
#pragma once
#include <cstdint>

#include "growlm/context.h"

namespace growlm {

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t N, int64_t V,
                       int64_t C, const Context& ctx);

void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t N,
                        int64_t V, int64_t C, int64_t padding_idx, const Context& ctx);

}  // namespace growlm
