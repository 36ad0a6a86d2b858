// The CUDA emulator: runs growlm's .cu files, compiled as plain C++, on the CPU, so the CUDA
// code paths are tested on machines without a GPU (CI, this project's development machines).
//
// Model: a launch runs its blocks one after another on the calling OS thread; the threads of
// a block are fibers (ucontext) switched only at barriers: __syncthreads() (the whole block),
// __syncwarp() and every warp collective (shuffles, wmma), which wait for the 32 lanes of the
// warp. A barrier some threads never reach is reported as an error, not a hang. "Device
// memory" is host memory. __shared__ arrays become function-local statics, which is block-
// shared memory because only one block runs at a time (process-wide: launches are serialised).
// Dynamic shared memory is poisoned (NaN bytes) before each block, so reads of unwritten
// shared memory show.
//
// What it cannot show: races between warps that a GPU would expose (fibers interleave only at
// barriers), memory-model subtleties, the GPU's speed, the approximate intrinsics' error
// (__expf is the exact expf here). Kernels must keep to the subset in
// /native/cuda/common.cuh's comment.
//
// This header is force-included (-include) when a .cu file is compiled as C++.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <type_traits>

#define __global__
#define __device__
#define __host__
#define __noinline__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __shared__ static
#define __constant__ static
#define __align__(n) alignas(n)

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

namespace growlm::emu {

/// The fiber being run: its coordinates within the launch.
struct ThreadCoords {
  dim3 thread_idx, block_idx, block_dim, grid_dim;
};

const ThreadCoords& coords();
/// Block barrier (__syncthreads).
void sync_block();
/// Warp barrier (__syncwarp): waits for the 32 lanes of the calling thread's warp.
void sync_warp();
/// The calling thread's warp's exchange area: 32 slots of 8 bytes, one per lane.
uint64_t* warp_exchange();
/// This launch's dynamic shared memory.
unsigned char* dynamic_shared();

/// Runs entry(arg) as every thread of every block of the grid (used by launch()). Throws
/// std::runtime_error for a barrier that not every thread reaches.
void run_grid(dim3 grid, dim3 block, size_t shared_bytes, void (*entry)(void*), void* arg);

/// The lane of the calling thread in its warp (threads are numbered x fastest, as on a GPU).
int lane_id();

template <class T>
T shfl_generic(T value, int (*source)(int lane, int arg, int width), int arg, int width) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of a type wider than 8 bytes");
  uint64_t* lanes = warp_exchange();
  const int lane = lane_id();
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  sync_warp();  // every lane has read the previous exchange
  lanes[lane] = bits;
  sync_warp();
  const uint64_t got = lanes[source(lane, arg, width)];
  T out;
  std::memcpy(&out, &got, sizeof(T));
  return out;
}

inline int src_xor(int lane, int mask, int width) {
  const int s = lane ^ mask;
  return (s / width == lane / width) ? s : lane;
}
inline int src_down(int lane, int delta, int width) {
  const int s = lane + delta;
  return (s / width == lane / width) ? s : lane;
}
inline int src_up(int lane, int delta, int width) {
  const int s = lane - delta;
  return (s >= 0 && s / width == lane / width) ? s : lane;
}
inline int src_idx(int lane, int src, int width) { return (lane / width) * width + (src % width); }

}  // namespace growlm::emu

#define threadIdx (::growlm::emu::coords().thread_idx)
#define blockIdx (::growlm::emu::coords().block_idx)
#define blockDim (::growlm::emu::coords().block_dim)
#define gridDim (::growlm::emu::coords().grid_dim)
constexpr int warpSize = 32;

inline void __syncthreads() { ::growlm::emu::sync_block(); }
inline void __syncwarp(unsigned = 0xffffffffu) { ::growlm::emu::sync_warp(); }
inline void __threadfence() {}
inline void __threadfence_block() {}

template <class T>
inline T __shfl_xor_sync(unsigned, T v, int mask, int width = 32) {
  return ::growlm::emu::shfl_generic(v, ::growlm::emu::src_xor, mask, width);
}
template <class T>
inline T __shfl_down_sync(unsigned, T v, unsigned delta, int width = 32) {
  return ::growlm::emu::shfl_generic(v, ::growlm::emu::src_down, static_cast<int>(delta), width);
}
template <class T>
inline T __shfl_up_sync(unsigned, T v, unsigned delta, int width = 32) {
  return ::growlm::emu::shfl_generic(v, ::growlm::emu::src_up, static_cast<int>(delta), width);
}
template <class T>
inline T __shfl_sync(unsigned, T v, int src, int width = 32) {
  return ::growlm::emu::shfl_generic(v, ::growlm::emu::src_idx, src, width);
}

// Atomics: one fiber runs at a time, so a plain read-modify-write is atomic here.
template <class T>
inline T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; }
template <class T>
inline T atomicMax(T* p, T v) { T old = *p; *p = std::max(old, v); return old; }
template <class T>
inline T atomicExch(T* p, T v) { T old = *p; *p = v; return old; }
template <class T>
inline T atomicCAS(T* p, T compare, T v) { T old = *p; if (old == compare) *p = v; return old; }

template <class T>
inline T __ldg(const T* p) { return *p; }

// Exact versions of the fast intrinsics (see the header comment).
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline void __sincosf(float x, float* s, float* c) { *s = std::sin(x); *c = std::cos(x); }
inline void sincosf(float x, float* s, float* c) { *s = std::sin(x); *c = std::cos(x); }
// IEEE round-to-nearest operations, never contracted into an FMA (as nvcc's __fmul_rn etc.).
inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
inline float __fsub_rn(float a, float b) { volatile float r = a - b; return r; }
inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
inline float __fdiv_rn(float a, float b) { volatile float r = a / b; return r; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __dadd_rn(double a, double b) { volatile double r = a + b; return r; }
inline double __dmul_rn(double a, double b) { volatile double r = a * b; return r; }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
inline unsigned __float_as_uint(float f) { unsigned i; std::memcpy(&i, &f, 4); return i; }
inline float __uint_as_float(unsigned i) { float f; std::memcpy(&f, &i, 4); return f; }
inline unsigned __umulhi(unsigned a, unsigned b) { return static_cast<unsigned>((static_cast<uint64_t>(a) * b) >> 32); }
inline uint64_t __umul64hi(uint64_t a, uint64_t b) { return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
using std::max;
using std::min;

#include "emu_bf16.h"
#include "emu_runtime.h"
#include "emu_wmma.h"
