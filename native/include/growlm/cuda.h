// growlm's CUDA backend: the C++ API of native/cuda/, with no CUDA types, so the bindings
// (compiled by the host compiler) can call it.
//
// Every family's functions have the CPU API's signature (growlm/<family>.h) with
// `const CudaContext&` in place of `const Context&`, and every pointer a device pointer. They
// are declared twice: in growlm::cuda (compiled by nvcc, for GPUs; present when the addon was
// built with nvcc, GROWLM_HAVE_CUDA) and in growlm::cuda_emu (the same source run by the CPU
// emulator, native/cuda/emu/; always present). GROWLM_CUDA_CALL picks by the context.
//
// Work is asynchronous on the context's stream; an error a kernel hits shows at the next
// synchronising call. Failures throw CudaError (a std::runtime_error) naming the op.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "growlm/adamw.h"
#include "growlm/gemm.h"
#include "growlm/xent.h"

namespace growlm {

/// A CUDA runtime or library failure; the message starts with the op.
class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Per-context handles of the libraries loaded at run time (cuBLAS), owned by the context.
struct CudaLibraries;

/// Where a CUDA op runs: one device, one stream. Made by create_context().
struct CudaContext {
  int device = 0;
  void* stream = nullptr;  // cudaStream_t
  bool emulated = false;
  CudaLibraries* libs = nullptr;
};

/// A device as `growlm info` reports it.
struct CudaDeviceInfo {
  std::string name;
  size_t total_bytes = 0;
  int major = 0, minor = 0;
  int multiprocessors = 0;
};

/// The device memory pool's counters, in bytes.
struct CudaPoolStats {
  size_t in_use = 0;    // handed out and not yet freed
  size_t reserved = 0;  // obtained from the driver (in use + cached)
  size_t peak_in_use = 0;
};

namespace cuda {
#include "growlm/cuda/families.inc"
}  // namespace cuda

namespace cuda_emu {
#include "growlm/cuda/families.inc"
}  // namespace cuda_emu

}  // namespace growlm

/// Calls growlm::cuda_emu::fn(...) when `emulated`, else growlm::cuda::fn(...) (only
/// cuda_emu exists when the addon was built without nvcc).
#ifdef GROWLM_HAVE_CUDA
#define GROWLM_CUDA_BACKEND(emulated, fn, ...) \
  ((emulated) ? ::growlm::cuda_emu::fn(__VA_ARGS__) : ::growlm::cuda::fn(__VA_ARGS__))
#else
#define GROWLM_CUDA_BACKEND(emulated, fn, ...) ::growlm::cuda_emu::fn(__VA_ARGS__)
#endif
/// The same, by a context: fn of the backend `ctx` runs on.
#define GROWLM_CUDA_CALL(ctx, fn, ...) GROWLM_CUDA_BACKEND((ctx).emulated, fn, __VA_ARGS__)
