// Included first by every native/cuda/*.cu file. The file is compiled twice (see
// native/cuda/emu/emu.h): by nvcc into namespace growlm::cuda for real GPUs, and by the host
// C++ compiler with the emulator force-included into growlm::cuda_emu. This header hides the
// difference: write `namespace growlm::GROWLM_CUDA_NS { ... }` and launch with launch().
//
// The kernel subset both can run (the emulator's limits, which are also good GPU practice):
// - launch only through launch(); blockDim a multiple of 32, at most 1024 threads;
// - __shared__ arrays of fixed size declared at the top of the kernel body, no initialiser;
//   dynamic shared memory only through GROWLM_DYNAMIC_SHARED;
// - __syncthreads() reached by every thread; warp collectives (__shfl_*_sync, __syncwarp,
//   wmma) with the full mask and all 32 lanes; no warp-synchronous code without them;
// - no inline PTX, cp.async, cooperative groups, printf, textures;
// - wmma: bf16 16x16x16 with float accumulators; fragment elements indexed only by loops
//   that treat all num_elements alike;
// - no float atomics in results that must be reproducible.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "growlm/cuda.h"

#ifdef GROWLM_CUDA_EMULATED
// emu.h is force-included: it defines the CUDA language and runtime subset.
#define GROWLM_CUDA_NS cuda_emu
#else
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>
#define GROWLM_CUDA_NS cuda
#endif

namespace growlm::GROWLM_CUDA_NS {

/// Throws CudaError "<op>: <CUDA error name>: <description>" unless e is cudaSuccess.
inline void check(const char* op, cudaError_t e) {
  if (e != cudaSuccess) {
    throw CudaError(std::string(op) + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
  }
}

inline cudaStream_t cuda_stream(const CudaContext& ctx) { return static_cast<cudaStream_t>(ctx.stream); }

/// bf16 from its 16 bits and back (the host and the JS side hold bf16 as uint16_t).
__host__ __device__ inline __nv_bfloat16 bf16_from_bits(uint16_t u) { return __ushort_as_bfloat16(u); }
__host__ __device__ inline uint16_t bf16_bits(__nv_bfloat16 h) { return __bfloat16_as_ushort(h); }

/// fp32 to bf16 bits by the CPU backend's recipe (growlm::f32_to_bf16_bits in native/cpu/bf16.h):
/// round to nearest even, NaN stays a quiet NaN; so both backends give the same bits.
__device__ __forceinline__ uint16_t f32_to_bf16_rne(float f) {
  uint32_t bits = __float_as_uint(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

/// Grid size for n items of `per_block` each (at least 1).
inline unsigned blocks_for(int64_t n, int64_t per_block) {
  const int64_t b = (n + per_block - 1) / per_block;
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

/// Device memory for one op's intermediate results, from the device pool, returned when the
/// op's host function returns, even by an exception (the pool is stream-ordered: it reuses the
/// memory only for work queued later on the same stream).
class DeviceScratch {
 public:
  DeviceScratch(const CudaContext& ctx, size_t bytes) : device_(ctx.device), p_(device_alloc(ctx.device, bytes)) {}
  ~DeviceScratch() {
    try {
      device_free(device_, p_);
    } catch (...) {  // only a pointer the pool did not make, which cannot happen here
    }
  }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  /// The memory from `byte_offset` on, as T*.
  template <class T>
  T* as(size_t byte_offset = 0) const {
    return reinterpret_cast<T*>(static_cast<uint8_t*>(p_) + byte_offset);
  }

 private:
  int device_;
  void* p_;
};

/// One block of the CPU's canonical sum (the global gradient norm, EWC's penalty), summed by
/// one warp: elements [lo, hi) of block b, lane `lane` taking i ≡ lane (mod 32) in order.
struct WarpBlock {
  int64_t b, lo, hi;
  int lane;
};

/// This thread's block when every thread block runs `warps` warps over blocks of `grain`
/// elements; false past the last block (whole warps leave together).
__device__ inline bool warp_block(int warps, int64_t grain, int64_t n, int64_t blocks, WarpBlock& w) {
  w.b = static_cast<int64_t>(blockIdx.x) * warps + threadIdx.x / 32;
  if (w.b >= blocks) return false;
  w.lane = static_cast<int>(threadIdx.x % 32);
  w.lo = w.b * grain;
  w.hi = w.lo + grain < n ? w.lo + grain : n;
  return true;
}

/// The CPU's tree over a warp's lane sums: lanes[j] += lanes[j + w] for w = 16, 8, 4, 2, 1;
/// lane 0 returns the block's sum.
__device__ inline double fold_lanes(double acc) {
  for (int w = 16; w >= 1; w /= 2) acc = __dadd_rn(acc, __shfl_down_sync(0xffffffffu, acc, w));
  return acc;
}

/// Waits for ctx's queued work (a kernel fault is reported under `op`), then returns the sum of
/// the `count` doubles at `partials` (device memory), added on the host in index order: the
/// fixed-order final step of a deterministic reduction.
inline double host_sum_in_order(const char* op, const double* partials, int64_t count, const CudaContext& ctx) {
  synchronize(ctx, op);
  std::vector<double> host(static_cast<size_t>(count));
  copy_to_host(host.data(), partials, host.size() * sizeof(double), ctx);
  double total = 0;
  for (const double v : host) total += v;
  return total;
}

#ifdef GROWLM_CUDA_EMULATED
namespace detail {
template <class Tuple, class Kernel>
struct Pending {
  Kernel kernel;
  Tuple args;
};
template <class P>
void invoke(void* p) {
  auto* pending = static_cast<P*>(p);
  std::apply(pending->kernel, pending->args);
}
}  // namespace detail
#endif

/// Launches kernel(args...) with the given grid, block and dynamic shared memory on ctx's
/// stream; a bad configuration or launch error throws CudaError naming `op`.
template <class... Params, class... Args>
void launch(const char* op, void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
            const CudaContext& ctx, Args&&... args) {
#ifdef GROWLM_CUDA_EMULATED
  using Tuple = std::tuple<Params...>;
  detail::Pending<Tuple, void (*)(Params...)> pending{kernel, Tuple(static_cast<Params>(args)...)};
  try {
    ::growlm::emu::run_grid(grid, block, shared_bytes, &detail::invoke<decltype(pending)>, &pending);
  } catch (const std::exception& e) {
    throw CudaError(std::string(op) + ": " + e.what());
  }
  (void)ctx;
#else
  if (shared_bytes > 48 * 1024) {
    check(op, cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared_bytes)));
  }
  kernel<<<grid, block, shared_bytes, cuda_stream(ctx)>>>(static_cast<Params>(args)...);
  check(op, cudaGetLastError());
#endif
}

}  // namespace growlm::GROWLM_CUDA_NS

#ifdef GROWLM_CUDA_EMULATED
#define GROWLM_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::growlm::emu::dynamic_shared())
#else
#define GROWLM_DYNAMIC_SHARED(T, name)                           \
  extern __shared__ __align__(128) unsigned char growlm_dynamic_smem[]; \
  T* name = reinterpret_cast<T*>(growlm_dynamic_smem)
#endif

#define GROWLM_CUDA_CHECK(op, expr) ::growlm::GROWLM_CUDA_NS::check(op, (expr))

