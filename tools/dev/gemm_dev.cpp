// Build (repo root, avx512 code path): g++ -std=c++17 -O3 -fno-math-errno -mavx2 -mfma -mf16c -mbmi2 -mavx512f -mavx512vl -mavx512bw -mavx512dq -mavx512bf16 -DGROWLM_X86=1 -DGROWLM_ISA_NS=isa_avx512 -DGROWLM_ISA_avx512=1 -Inative/include -Inative/cpu tools/dev/gemm_dev.cpp native/cpu/kernels/gemm.cpp native/cpu/gemm_bf16_avx512bf16.cpp native/cpu/threads.cpp native/cpu/isa.cpp /usr/lib/x86_64-linux-gnu/libopenblas.so.0 -lpthread -o /tmp/gemm_dev && OPENBLAS_NUM_THREADS=2 OPENBLAS_THREAD_TIMEOUT=4 /tmp/gemm_dev [rounds] [N or MxNxK ...]
//
// Development sandbox for the GEMM kernels (llm.c's dev/ style): checks one code path
// against a float64 reference (all layouts, odd sizes, strides, alpha/beta, bf16 with and
// without vdpbf16ps, 1 vs 2 threads bitwise), then times sgemm NN/NT/TN and the bf16 GEMM
// against OpenBLAS sgemm, alternating the contenders and printing medians. Not part of the
// addon build; nothing depends on it. OPENBLAS_THREAD_TIMEOUT=4 sends OpenBLAS's workers to
// sleep after each call, as growlm's pool does; by default they spin (sched_yield) for
// about 2^28 cycles and take CPU time from whichever contender runs next.
#include <algorithm>
#include <array>
#include <functional>
#include <string>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "bf16.h"
#include "growlm/gemm.h"
#include "growlm/threads.h"

namespace growlm::cpu::GROWLM_ISA_NS {
void sgemm(Trans, Trans, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
           int64_t, float, float*, int64_t, const Context&);
void gemm_bf16(Trans, Trans, int64_t, int64_t, int64_t, float, const uint16_t*, int64_t,
               const uint16_t*, int64_t, float, float*, int64_t, const Context&);
}  // namespace growlm::cpu::GROWLM_ISA_NS

extern "C" {
void cblas_sgemm(int order, int trans_a, int trans_b, int M, int N, int K, float alpha,
                 const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc);
void openblas_set_num_threads(int threads);
}

using namespace growlm;
namespace impl = growlm::cpu::GROWLM_ISA_NS;

namespace {

constexpr int ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

std::vector<float> random_matrix(int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

// Error max|C - ref| / (|alpha| K + |beta|) in units of 2^-24: inputs lie in [-1, 1), so
// |alpha| K + |beta| bounds |alpha| Σ|a||b| + |beta c|.
double check_case(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, float beta,
                  int64_t pad, bool bf16, const Context& ctx) {
  const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
  const int64_t a_rows = ta ? K : M, b_rows = tb ? N : K;
  std::vector<float> A = random_matrix(std::max<int64_t>(1, a_rows * lda), 1);
  std::vector<float> B = random_matrix(std::max<int64_t>(1, b_rows * ldb), 2);
  std::vector<float> C0 = random_matrix(M * ldc, 3);
  std::vector<uint16_t> Ah(A.size()), Bh(B.size());
  if (bf16) {
    for (size_t i = 0; i < A.size(); ++i) A[i] = bf16_bits_to_f32(Ah[i] = f32_to_bf16_bits(A[i]));
    for (size_t i = 0; i < B.size(); ++i) B[i] = bf16_bits_to_f32(Bh[i] = f32_to_bf16_bits(B[i]));
  }
  std::vector<float> C = C0;
  if (beta == 0.0f) std::fill(C.begin(), C.end(), NAN);
  const Trans a_t = ta ? Trans::T : Trans::N, b_t = tb ? Trans::T : Trans::N;
  if (bf16) {
    impl::gemm_bf16(a_t, b_t, M, N, K, alpha, Ah.data(), lda, Bh.data(), ldb, beta, C.data(), ldc, ctx);
  } else {
    impl::sgemm(a_t, b_t, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc, ctx);
  }
  double err = 0;
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) {
        const double a = ta ? A[k * lda + i] : A[i * lda + k];
        const double b = tb ? B[j * ldb + k] : B[k * ldb + j];
        s += a * b;
      }
      const double ref = alpha * s + (beta == 0.0f ? 0.0 : beta * static_cast<double>(C0[i * ldc + j]));
      const double got = C[i * ldc + j];
      err = std::isnan(got) ? INFINITY : std::max(err, std::fabs(got - ref));
    }
    for (int64_t j = N; j < ldc; ++j)
      if (std::memcmp(&C[i * ldc + j], &C0[i * ldc + j], 4) != 0 && beta != 0.0f) return INFINITY;
  }
  const double scale = std::fabs(alpha) * std::max<int64_t>(K, 1) + std::fabs(beta);
  return err / scale / std::ldexp(1.0, -24);
}

bool run_checks(ThreadPool& pool, int threads) {
  Context ctx{&pool, Isa::avx512, false};
  const int64_t sizes[][3] = {{1, 1, 1}, {3, 17, 5}, {127, 257, 33}, {257, 127, 300}, {45, 70, 600}, {300, 200, 513}};
  double worst = 0, worst_bf16 = 0, worst_dot = 0;
  for (auto& s : sizes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (int variant = 0; variant < 3; ++variant) {
          const float alpha = variant == 2 ? -0.75f : 1.0f, beta = variant == 0 ? 0.0f : (variant == 1 ? 1.0f : 0.5f);
          const int64_t pad = variant == 2 ? 3 : 0;
          worst = std::max(worst, check_case(ta, tb, s[0], s[1], s[2], alpha, beta, pad, false, ctx));
          ctx.bf16_dot = false;
          worst_bf16 = std::max(worst_bf16, check_case(ta, tb, s[0], s[1], s[2], alpha, beta, pad, true, ctx));
          ctx.bf16_dot = true;
          worst_dot = std::max(worst_dot, check_case(ta, tb, s[0], s[1], s[2], alpha, beta, pad, true, ctx));
          ctx.bf16_dot = false;
        }
  std::printf("check: max error / (K |alpha| + |beta|) in units of 2^-24: fp32 %.3f, bf16 widened %.3f, bf16 dot %.3f\n",
              worst, worst_bf16, worst_dot);
  // 1 vs 2 threads bitwise.
  const int64_t M = 301, N = 517, K = 700;
  std::vector<float> A = random_matrix(M * K, 4), B = random_matrix(K * N, 5);
  std::vector<uint16_t> Ah(A.size()), Bh(B.size());
  for (size_t i = 0; i < A.size(); ++i) Ah[i] = f32_to_bf16_bits(A[i]);
  for (size_t i = 0; i < B.size(); ++i) Bh[i] = f32_to_bf16_bits(B[i]);
  bool same = true;
  for (int path = 0; path < 3; ++path) {
    std::vector<float> C1(M * N), C2(M * N);
    for (int threads : {1, 2}) {
      pool.resize(threads);
      ctx.bf16_dot = path == 2;
      float* C = threads == 1 ? C1.data() : C2.data();
      if (path == 0) impl::sgemm(Trans::N, Trans::T, M, N, K, 1.0f, A.data(), K, B.data(), K, 0.0f, C, N, ctx);
      else impl::gemm_bf16(Trans::N, Trans::T, M, N, K, 1.0f, Ah.data(), K, Bh.data(), K, 0.0f, C, N, ctx);
    }
    same = same && std::memcmp(C1.data(), C2.data(), C1.size() * 4) == 0;
  }
  pool.resize(threads);
  std::printf("check: 1 vs 2 threads bitwise %s\n", same ? "identical" : "DIFFERENT");
  return worst < 4 && worst_bf16 < 4 && worst_dot < 4 && same;
}

double seconds_of(const std::function<void()>& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void time_case(const char* name, bool ta, bool tb, int64_t M, int64_t N, int64_t K, bool bf16, int rounds,
               ThreadPool& pool) {
  Context ctx{&pool, Isa::avx512, bf16};
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  std::vector<float> A = random_matrix(M * K, 6), B = random_matrix(K * N, 7), C(M * N);
  std::vector<uint16_t> Ah(A.size()), Bh(B.size());
  for (size_t i = 0; i < A.size(); ++i) Ah[i] = f32_to_bf16_bits(A[i]);
  for (size_t i = 0; i < B.size(); ++i) Bh[i] = f32_to_bf16_bits(B[i]);
  const Trans a_t = ta ? Trans::T : Trans::N, b_t = tb ? Trans::T : Trans::N;
  auto ours = [&] {
    if (bf16) impl::gemm_bf16(a_t, b_t, M, N, K, 1.0f, Ah.data(), lda, Bh.data(), ldb, 0.0f, C.data(), N, ctx);
    else impl::sgemm(a_t, b_t, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), N, ctx);
  };
  auto theirs = [&] {
    cblas_sgemm(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, M, N, K, 1.0f, A.data(), lda,
                B.data(), ldb, 0.0f, C.data(), N);
  };
  ours();
  theirs();
  std::vector<double> t_ours, t_theirs, ratios;
  for (int r = 0; r < rounds; ++r) {
    const double a = seconds_of(ours), b = seconds_of(theirs);
    t_ours.push_back(a);
    t_theirs.push_back(b);
    ratios.push_back(b / a);
  }
  const double flops = 2.0 * M * N * K;
  std::printf("%-9s %14s  growlm %6.1f GFLOP/s   OpenBLAS sgemm %6.1f GFLOP/s   ratio %.3f (median of %d)\n", name,
              (std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K)).c_str(),
              flops / median(t_ours) / 1e9, flops / median(t_theirs) / 1e9, median(ratios), rounds);
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 7;
  std::vector<std::array<int64_t, 3>> shapes;
  for (int i = 2; i < argc; ++i) {
    long long m = 0, n = 0, k = 0;
    if (std::sscanf(argv[i], "%lldx%lldx%lld", &m, &n, &k) == 3) shapes.push_back({m, n, k});
    else shapes.push_back({std::atoll(argv[i]), std::atoll(argv[i]), std::atoll(argv[i])});
  }
  if (shapes.empty()) shapes = {{1024, 1024, 1024}, {2048, 2048, 2048}};
  // Both libraries use OPENBLAS_NUM_THREADS threads (default 2).
  const char* env = std::getenv("OPENBLAS_NUM_THREADS");
  const int threads = env ? std::max(1, std::atoi(env)) : 2;
  openblas_set_num_threads(threads);
  ThreadPool pool(threads);
  if (!run_checks(pool, threads)) {
    std::printf("CHECK FAILED\n");
    return 1;
  }
  for (const auto& [M, N, K] : shapes) {
    time_case("sgemm NN", false, false, M, N, K, false, rounds, pool);
    time_case("sgemm NT", false, true, M, N, K, false, rounds, pool);
    time_case("sgemm TN", true, false, M, N, K, false, rounds, pool);
    if (M * N * K >= (int64_t{1} << 33)) {
      time_case("bf16 NN", false, false, M, N, K, true, rounds, pool);
      time_case("bf16 NT", false, true, M, N, K, true, rounds, pool);
      time_case("bf16 TN", true, false, M, N, K, true, rounds, pool);
    }
  }
  return 0;
}
