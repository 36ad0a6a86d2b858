// The CUDA side of the binding: device buffers as JS objects, the per-environment contexts,
// and CudaArgs, which validates the arguments of a CUDA op as Args does for the CPU ones.
//
// A DeviceBuffer (JS class, bindings/cuda.cc) is a byte range of one device allocation; views
// share the allocation, which returns to the device pool when the last view is collected or at
// once by free() (after which every view refuses to be used).
#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "args.h"
#include "growlm/cuda.h"

namespace growlm::bindings {

/// One device allocation, shared by every view of it.
struct DeviceAllocation {
  void* ptr = nullptr;  // null once freed
  size_t bytes = 0;
  int device = 0;
  bool emulated = false;
  ~DeviceAllocation();
  void release();
};

/// What a DeviceBuffer object holds.
struct DeviceRange {
  std::shared_ptr<DeviceAllocation> allocation;
  size_t byte_offset = 0;
  size_t byte_length = 0;
};

/// The environment's CUDA state: whether "cuda" means the emulator, and one context (stream)
/// per device, made on first use.
class CudaContexts {
 public:
  CudaContexts();
  ~CudaContexts();
  CudaContexts(const CudaContexts&) = delete;
  CudaContexts& operator=(const CudaContexts&) = delete;

  bool emulated() const { return emulated_; }
  int device_count() const;
  /// The context of `device`; throws CudaError for a device that does not exist.
  const CudaContext& get(int device);

  /// The environment's DeviceBuffer class (set by bindings/cuda.cc).
  Napi::FunctionReference device_buffer_class;
  /// The environment's NcclComm class (set by bindings/nccl.cc).
  Napi::FunctionReference nccl_comm_class;

 private:
  bool emulated_;
  std::vector<std::unique_ptr<CudaContext>> contexts_;
};

CudaContexts& cuda_contexts(Napi::Env env);

/// exports.cuda, made on first use: where every binding file adds its CUDA ops.
Napi::Object cuda_exports(Napi::Env env, Napi::Object exports);

/// The DeviceRange of a DeviceBuffer value, or nullptr when `v` is not one.
DeviceRange* device_range(Napi::Value v);

class CudaArgs : public Args {
 public:
  static constexpr bool on_device = true;

  CudaArgs(const Napi::CallbackInfo& info, const char* op, size_t count) : Args(info, op, count) {}

  // Device buffers of exactly `length` elements of the type; every buffer of a call must be on
  // the same device. The pointer is a device pointer.
  float* f32(size_t i, const char* name, int64_t length, const ShapeText& what);
  uint16_t* u16(size_t i, const char* name, int64_t length, const ShapeText& what);
  int32_t* i32(size_t i, const char* name, int64_t length, const ShapeText& what);
  uint8_t* u8(size_t i, const char* name, int64_t length, const ShapeText& what);
  int64_t* i64(size_t i, const char* name, int64_t length, const ShapeText& what);
  /// The same, or nullptr for null or undefined.
  float* f32_or_null(size_t i, const char* name, int64_t length, const ShapeText& what);
  uint16_t* u16_or_null(size_t i, const char* name, int64_t length, const ShapeText& what);
  /// At least `length` elements (strided matrices).
  float* f32_at_least(size_t i, const char* name, int64_t length, const ShapeText& what);
  uint16_t* u16_at_least(size_t i, const char* name, int64_t length, const ShapeText& what);

  /// The device of the buffers seen so far (0 when none).
  int device() const { return device_ < 0 ? 0 : device_; }
  /// The context (stream) of that device.
  const CudaContext& context();

 private:
  void* buffer(size_t i, const char* name, size_t element_bytes, const char* type_name, int64_t length, bool at_least,
               const ShapeText& what);
  int device_ = -1;
};

}  // namespace growlm::bindings
