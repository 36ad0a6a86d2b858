// Peak fp32 FMA throughput of the current code path (growlm/peak.h): every pool thread
// runs 12 independent vector FMA chains (enough to cover FMA latency × throughput on
// current x86 cores) entirely in registers for a fixed time.
#include <chrono>
#include <vector>

#include "growlm/peak.h"
#include "growlm/threads.h"
#include "isa.h"

namespace growlm::cpu::GROWLM_ISA_NS {

namespace {
typedef float vec __attribute__((vector_size(GROWLM_VLEN * 4)));
constexpr int CHAINS = 12;
constexpr int64_t INNER = 1 << 14;

// INNER rounds of CHAINS independent FMA chains. Kept apart from the timing loop: across
// the clock call every vector register is clobbered and the chains would live in memory.
__attribute__((noinline)) void fma_rounds(vec* acc) {
  const vec mul = vec{} + 0.999999f, add = vec{} + 1e-7f;
  vec a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3], a4 = acc[4], a5 = acc[5], a6 = acc[6],
      a7 = acc[7], a8 = acc[8], a9 = acc[9], a10 = acc[10], a11 = acc[11];
  for (int64_t i = 0; i < INNER; ++i) {
    a0 = a0 * mul + add; a1 = a1 * mul + add; a2 = a2 * mul + add; a3 = a3 * mul + add;
    a4 = a4 * mul + add; a5 = a5 * mul + add; a6 = a6 * mul + add; a7 = a7 * mul + add;
    a8 = a8 * mul + add; a9 = a9 * mul + add; a10 = a10 * mul + add; a11 = a11 * mul + add;
  }
  acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3; acc[4] = a4; acc[5] = a5;
  acc[6] = a6; acc[7] = a7; acc[8] = a8; acc[9] = a9; acc[10] = a10; acc[11] = a11;
}

// Returns the flops done; the sink keeps the compiler from deleting the work.
double fma_burst(double seconds, float* sink) {
  vec acc[CHAINS];
  for (int c = 0; c < CHAINS; ++c) acc[c] = vec{} + static_cast<float>(c);
  const auto start = std::chrono::steady_clock::now();
  int64_t iterations = 0;
  do {
    fma_rounds(acc);
    iterations += INNER;
  } while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds);
  vec total = acc[0];
  for (int c = 1; c < CHAINS; ++c) total += acc[c];
  *sink = total[0];
  return static_cast<double>(iterations) * CHAINS * GROWLM_VLEN * 2;
}
}  // namespace

double measure_peak_gflops(double seconds, const Context& ctx) {
  const int threads = ctx.pool->size();
  std::vector<double> flops(threads, 0.0);
  std::vector<float> sink(threads, 0.0f);
  const auto start = std::chrono::steady_clock::now();
  ctx.pool->run(threads, [&](int64_t task, int) { flops[task] = fma_burst(seconds, &sink[task]); });
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double total = 0;
  for (double f : flops) total += f;
  return total / elapsed / 1e9;
}

}  // namespace growlm::cpu::GROWLM_ISA_NS

#if defined(GROWLM_ISA_portable)
namespace growlm {
namespace cpu {
GROWLM_DECLARE_ISA(double measure_peak_gflops(double, const Context&))
}
double measure_peak_gflops(double seconds, const Context& ctx) {
  using namespace cpu;
  GROWLM_DISPATCH(ctx, measure_peak_gflops, seconds, ctx);
}
}  // namespace growlm
#endif
