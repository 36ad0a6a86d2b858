// Knowledge distillation at temperature T against stored top-k teacher targets (LwF), over
// rows of logits z [N, V]. Row n takes part when pos[n] >= 0; its targets are entry p = pos[n]
// of ids [P, k], logp [P, k] and log_rest [P]. With u = z · fl(1/T) (float32) and
// L = fl(logsumexp(u)) (the sum in double):
//   teacher: ids[p] = the k largest u (descending, ties to the lower id),
//            logp[p, i] = fl(u_id − L), log_rest[p] = fl(log Σ_{j not in ids[p]} e_j),
//            e_j = exp(u_j − L) (vmath.h's vexp, in float32; the sum in double);
//   student: the KL between the teacher's and the student's distributions coarsened to the
//            top-k plus one bucket for the rest, with the student's log-probabilities formed
//            exactly as the teacher's:
//              KL = Σ_i p_i·(logp_i − lq_i) + p_rest·(log_rest − lq_rest)
//            p_i = exp(logp_i), p_rest = exp(log_rest) (0 when it is −inf), lq_i = fl(u_id − L),
//            lq_rest = fl(log Σ_rest e_j) (floored at the smallest double);
//            grad[n, j] += c·(e_j − exp(logp_i))                     j = ids[p, i],
//            grad[n, j] += fl(c·(1 − exp(log_rest − lq_rest))·e_j)    otherwise (in double),
//            c = fl(scale·T) (T²·KL differentiated through u = z/T); returns Σ_n T²·KL_n in
//            double (rows summed in order).
// A student whose logits are bitwise the teacher's gets exactly 0 and adds exactly 0 (every
// quantity is formed by the same ops from the same bits). Rows are independent: the bits do
// not depend on the thread count.
#pragma once
#include <cstdint>

#include "growlm/context.h"

namespace growlm {

void distill_teacher(int32_t* ids, float* logp, float* log_rest, const float* logits,
                     const int32_t* pos, int64_t N, int64_t V, int64_t k, float temperature,
                     const Context& ctx);

double distill_student(float* grad, const float* logits, const int32_t* ids, const float* logp,
                       const float* log_rest, const int32_t* pos, int64_t N, int64_t V, int64_t k,
                       float temperature, float scale, const Context& ctx);

}  // namespace growlm
