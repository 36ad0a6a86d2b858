// Fused softmax cross-entropy over the vocabulary. logits [N, V], targets int32 [N];
// rows whose target equals ignore_index (Hugging Face: -100) do not count.
// Forward: lse[n] = logsumexp(logits[n, :]); losses[n] = lse[n] - logits[n, target]
// (losses may be null). Ignored rows are not read at all: their lse and loss are 0
// (prompt tokens of supervised fine-tuning cost nothing). Returns the loss sum over counted
// rows (each row's loss in double, summed in row order) and their count; the mean is
// sum / count.
// Backward: dlogits[n, :] = dloss · (softmax(logits[n, :]) - onehot(target)) for counted
// rows, 0 for ignored ones; dlogits may alias logits (the gradient replaces the logits).
// Callers validate targets (ignore_index or in [0, V)).
#pragma once
#include <cstdint>

#include "growlm/context.h"

namespace growlm {

struct CrossEntropyResult {
  double loss_sum = 0;
  int64_t count = 0;
};

CrossEntropyResult cross_entropy_forward(float* losses, float* lse, const float* logits,
                                         const int32_t* targets, int64_t N, int64_t V,
                                         int32_t ignore_index, const Context& ctx);

void cross_entropy_backward(float* dlogits, const float* logits, const float* lse,
                            const int32_t* targets, int64_t N, int64_t V, int32_t ignore_index,
                            float dloss, const Context& ctx);

}  // namespace growlm
