// Devices, contexts and the caching device-memory pool (growlm/cuda/runtime.inc).
//
// The pool keeps freed blocks per device and size class and hands them out again instead of
// calling cudaMalloc/cudaFree (which synchronise the device and cost tens of microseconds):
// sizes round up to 512 bytes below 1 MiB and to 2 MiB above, a freed block is reused only
// for its own class, and when cudaMalloc fails the cached blocks are released and the
// allocation retried once. Every op of a device runs on that device's one stream, so a block
// freed while queued work still reads it is only handed out to work queued after.
#include "common.cuh"

#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cublas.h"

namespace growlm::GROWLM_CUDA_NS {

namespace {

constexpr size_t SMALL_LIMIT = size_t(1) << 20;
constexpr size_t SMALL_ROUND = 512;
constexpr size_t LARGE_ROUND = size_t(2) << 20;

size_t size_class(size_t bytes) {
  const size_t round = bytes <= SMALL_LIMIT ? SMALL_ROUND : LARGE_ROUND;
  return (bytes + round - 1) / round * round;
}

struct DevicePool {
  std::mutex mutex;
  std::multimap<size_t, void*> cached;       // size class -> free block
  std::unordered_map<void*, size_t> live;    // block -> size class
  CudaPoolStats stats;
};

// One pool per device for the process: device memory belongs to the process, like the CUDA
// runtime's own state.
DevicePool& pool(int device) {
  static std::mutex mutex;
  static std::map<int, DevicePool> pools;
  std::lock_guard<std::mutex> lock(mutex);
  return pools[device];
}

void release_cached_locked(int device, DevicePool& p) {
  if (p.cached.empty()) return;
  GROWLM_CUDA_CHECK("device pool", cudaSetDevice(device));
  GROWLM_CUDA_CHECK("device pool", cudaDeviceSynchronize());
  for (auto& [bytes, ptr] : p.cached) {
    cudaFree(ptr);
    p.stats.reserved -= bytes;
  }
  p.cached.clear();
}

}  // namespace

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error
    return 0;
  }
  return n;
}

std::string device_unavailable_reason() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
  }
  return n == 0 ? "no CUDA device" : "";
}

CudaDeviceInfo device_info(int device) {
  cudaDeviceProp prop;
  GROWLM_CUDA_CHECK("deviceInfo", cudaGetDeviceProperties(&prop, device));
  CudaDeviceInfo info;
  info.name = prop.name;
  info.total_bytes = prop.totalGlobalMem;
  info.major = prop.major;
  info.minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  return info;
}

CudaContext create_context(int device) {
  const int n = device_count();
  if (device < 0 || device >= n) {
    throw CudaError("cuda:" + std::to_string(device) + ": no such device (" + std::to_string(n) + " usable" +
                    (n == 0 ? ": " + device_unavailable_reason() : std::string()) + ")");
  }
  GROWLM_CUDA_CHECK("createContext", cudaSetDevice(device));
  cudaStream_t stream = nullptr;
  GROWLM_CUDA_CHECK("createContext", cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  CudaContext ctx;
  ctx.device = device;
  ctx.stream = stream;
  ctx.libs = new CudaLibraries();
#ifdef GROWLM_CUDA_EMULATED
  ctx.emulated = true;
#endif
  return ctx;
}

void destroy_context(CudaContext& ctx) {
  if (!ctx.stream) return;
  cudaSetDevice(ctx.device);
  cudaStreamSynchronize(cuda_stream(ctx));
  // The library handles are bound to the stream: they go first.
  delete ctx.libs;
  ctx.libs = nullptr;
  cudaStreamDestroy(cuda_stream(ctx));
  ctx.stream = nullptr;
}

void synchronize(const CudaContext& ctx, const char* op) {
  GROWLM_CUDA_CHECK(op, cudaSetDevice(ctx.device));
  GROWLM_CUDA_CHECK(op, cudaStreamSynchronize(cuda_stream(ctx)));
}

void* device_alloc(int device, size_t bytes) {
  if (bytes == 0) bytes = 1;
  const size_t cls = size_class(bytes);
  DevicePool& p = pool(device);
  std::lock_guard<std::mutex> lock(p.mutex);
  void* ptr = nullptr;
  auto hit = p.cached.find(cls);
  if (hit != p.cached.end()) {
    ptr = hit->second;
    p.cached.erase(hit);
  } else {
    GROWLM_CUDA_CHECK("deviceAlloc", cudaSetDevice(device));
    cudaError_t e = cudaMalloc(&ptr, cls);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      release_cached_locked(device, p);
      e = cudaMalloc(&ptr, cls);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      throw CudaError("deviceAlloc: cannot allocate " + std::to_string(bytes) + " bytes on cuda:" + std::to_string(device) +
                      " (" + std::to_string(p.stats.in_use) + " in use, " + std::to_string(p.stats.reserved) +
                      " reserved): " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
    }
    p.stats.reserved += cls;
  }
  p.live.emplace(ptr, cls);
  p.stats.in_use += cls;
  p.stats.peak_in_use = std::max(p.stats.peak_in_use, p.stats.in_use);
  return ptr;
}

void device_free(int device, void* ptr) {
  if (!ptr) return;
  DevicePool& p = pool(device);
  std::lock_guard<std::mutex> lock(p.mutex);
  auto it = p.live.find(ptr);
  if (it == p.live.end()) throw CudaError("deviceFree: the pointer was not allocated by this device's pool");
  p.stats.in_use -= it->second;
  p.cached.emplace(it->second, ptr);
  p.live.erase(it);
}

CudaPoolStats pool_stats(int device) {
  DevicePool& p = pool(device);
  std::lock_guard<std::mutex> lock(p.mutex);
  return p.stats;
}

void pool_release_cached(int device) {
  DevicePool& p = pool(device);
  std::lock_guard<std::mutex> lock(p.mutex);
  release_cached_locked(device, p);
}

void copy_to_device(void* dst, const void* src, size_t bytes, const CudaContext& ctx) {
  if (!bytes) return;
  GROWLM_CUDA_CHECK("copyToDevice", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cuda_stream(ctx)));
  synchronize(ctx, "copyToDevice");
}

void copy_to_host(void* dst, const void* src, size_t bytes, const CudaContext& ctx) {
  if (!bytes) return;
  GROWLM_CUDA_CHECK("copyToHost", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cuda_stream(ctx)));
  synchronize(ctx, "copyToHost");
}

void copy_on_device(void* dst, const void* src, size_t bytes, const CudaContext& ctx) {
  if (!bytes) return;
  GROWLM_CUDA_CHECK("copyOnDevice", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cuda_stream(ctx)));
}

void copy_rows_on_device(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t row_bytes,
                         size_t rows, const CudaContext& ctx) {
  if (!rows || !row_bytes) return;
  GROWLM_CUDA_CHECK("copyRowsOnDevice", cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, row_bytes, rows,
                                                          cudaMemcpyDeviceToDevice, cuda_stream(ctx)));
}

void fill_bytes(void* p, uint8_t value, size_t bytes, const CudaContext& ctx) {
  if (!bytes) return;
  GROWLM_CUDA_CHECK("fillBytes", cudaMemsetAsync(p, value, bytes, cuda_stream(ctx)));
}

}  // namespace growlm::GROWLM_CUDA_NS
