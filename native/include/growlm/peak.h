// Machine baselines for the benchmarks: the fp32 FMA peak of the current code path,
// measured with independent FMA chains on every thread of the pool.
#pragma once
#include "growlm/context.h"

namespace growlm {

/// Sustained fp32 GFLOP/s of register-only FMAs over about `seconds` seconds.
double measure_peak_gflops(double seconds, const Context& ctx);

}  // namespace growlm
