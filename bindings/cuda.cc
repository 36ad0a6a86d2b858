// binding.cuda: devices, device buffers, copies and the memory pool. The CUDA ops themselves
// are bound next to their CPU twins (bindings/<family>.cc) on the same object.
#include <sstream>

#include "addon.h"
#include "cuda_args.h"

namespace growlm::bindings {

namespace {

constexpr napi_type_tag DEVICE_BUFFER_TAG = {0x67726f776c6d2d64ull, 0x6576627566763031ull};

class DeviceBuffer : public Napi::ObjectWrap<DeviceBuffer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DeviceBuffer",
                       {InstanceMethod<&DeviceBuffer::View>("view"), InstanceMethod<&DeviceBuffer::Free>("free"),
                        InstanceAccessor<&DeviceBuffer::ByteLength>("byteLength"),
                        InstanceAccessor<&DeviceBuffer::ByteOffset>("byteOffset"),
                        InstanceAccessor<&DeviceBuffer::Device>("device"),
                        InstanceAccessor<&DeviceBuffer::Freed>("freed")});
  }

  /// Only made from C++ (make_buffer); `new DeviceBuffer()` from JS gives an unusable object.
  explicit DeviceBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBuffer>(info) {
    info.This().As<Napi::Object>().TypeTag(&DEVICE_BUFFER_TAG);
    range.allocation = std::make_shared<DeviceAllocation>();
  }

  DeviceRange range;

 private:
  Napi::Value View(const Napi::CallbackInfo& info);
  Napi::Value Free(const Napi::CallbackInfo& info) {
    range.allocation->release();
    return info.Env().Undefined();
  }
  Napi::Value ByteLength(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(range.byte_length));
  }
  Napi::Value ByteOffset(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(range.byte_offset));
  }
  Napi::Value Device(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), range.allocation->device); }
  Napi::Value Freed(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), range.allocation->ptr == nullptr);
  }
};

Napi::Object make_buffer(Napi::Env env, DeviceRange range) {
  Napi::Object obj = cuda_contexts(env).device_buffer_class.New({});
  DeviceBuffer::Unwrap(obj)->range = std::move(range);
  return obj;
}

// view(byteOffset, byteLength): a DeviceBuffer over part of this one, sharing its allocation.
Napi::Value DeviceBuffer::View(const Napi::CallbackInfo& info) {
  Args args(info, "DeviceBuffer.view", 2);
  const int64_t offset = args.size(0, "byteOffset", 0);
  const int64_t length = args.size(1, "byteLength", 0);
  if (static_cast<uint64_t>(offset) + static_cast<uint64_t>(length) > range.byte_length) {
    std::ostringstream s;
    s << "bytes [" << offset << ", " << offset + length << ") are outside the buffer's " << range.byte_length;
    args.range_error(s.str());
  }
  return make_buffer(info.Env(), DeviceRange{range.allocation, range.byte_offset + static_cast<size_t>(offset),
                                             static_cast<size_t>(length)});
}

// A host typed array's bytes.
struct HostBytes {
  uint8_t* data;
  size_t bytes;
};

HostBytes host_bytes(const Args& args, size_t i, const char* name) {
  Napi::Value v = args.info_value(i);
  if (!v.IsTypedArray()) args.type_error(std::string("expected a typed array for \"") + name + "\"");
  Napi::TypedArray a = v.As<Napi::TypedArray>();
  Napi::ArrayBuffer buffer = a.ArrayBuffer();
  if (buffer.ByteLength() == 0 && a.ByteLength() > 0) args.range_error(std::string("\"") + name + "\" is detached");
  return {static_cast<uint8_t*>(buffer.Data()) + a.ByteOffset(), a.ByteLength()};
}

DeviceRange& live_range(const Args& args, size_t i, const char* name) {
  DeviceRange* r = device_range(args.info_value(i));
  if (!r) args.type_error(std::string("expected a DeviceBuffer for \"") + name + "\"");
  if (!r->allocation->ptr) args.range_error(std::string("\"") + name + "\" was freed");
  return *r;
}

void* address(DeviceRange& r) { return static_cast<uint8_t*>(r.allocation->ptr) + r.byte_offset; }

void same_bytes(const Args& args, size_t a, size_t b) {
  if (a != b) {
    std::ostringstream s;
    s << "the destination has " << a << " bytes but the source " << b;
    args.range_error(s.str());
  }
}

// info(): { compiled, emulated, devices: [{ index, name, totalBytes, computeCapability,
// multiprocessors }], unavailableReason }
Napi::Value Info(const Napi::CallbackInfo& info) {
  Args args(info, "cuda.info", 0);
  Napi::Env env = info.Env();
  CudaContexts& c = cuda_contexts(env);
  Napi::Object out = Napi::Object::New(env);
#ifdef GROWLM_HAVE_CUDA
  out.Set("compiled", true);
#else
  out.Set("compiled", false);
#endif
  out.Set("emulated", c.emulated());
  const int n = c.device_count();
  Napi::Array devices = Napi::Array::New(env, n);
  for (int d = 0; d < n; ++d) {
    const CudaDeviceInfo di = GROWLM_CUDA_BACKEND(c.emulated(), device_info, d);
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", d);
    o.Set("name", di.name);
    o.Set("totalBytes", static_cast<double>(di.total_bytes));
    o.Set("computeCapability", std::to_string(di.major) + "." + std::to_string(di.minor));
    o.Set("multiprocessors", di.multiprocessors);
    devices.Set(static_cast<uint32_t>(d), o);
  }
  out.Set("devices", devices);
#ifdef GROWLM_HAVE_CUDA
  out.Set("unavailableReason", n > 0 ? std::string() : GROWLM_CUDA_BACKEND(c.emulated(), device_unavailable_reason));
#else
  out.Set("unavailableReason", c.emulated() ? std::string() : std::string("the addon was built without nvcc"));
#endif
  return out;
}

int device_arg(const Args& args, size_t i, Napi::Env env) {
  const int n = cuda_contexts(env).device_count();
  if (n == 0) args.range_error("no CUDA device is usable");
  return static_cast<int>(args.integer(i, "device", 0, n - 1));
}

// alloc(device, bytes): a DeviceBuffer of `bytes` uninitialised bytes.
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  Args args(info, "cuda.alloc", 2);
  Napi::Env env = info.Env();
  const int device = device_arg(args, 0, env);
  const int64_t bytes = args.size(1, "bytes", 0);
  CudaContexts& c = cuda_contexts(env);
  c.get(device);  // makes the context (sets the device) before the first allocation
  auto allocation = std::make_shared<DeviceAllocation>();
  allocation->ptr = GROWLM_CUDA_BACKEND(c.emulated(), device_alloc, device, static_cast<size_t>(bytes));
  allocation->bytes = static_cast<size_t>(bytes);
  allocation->device = device;
  allocation->emulated = c.emulated();
  return make_buffer(env, DeviceRange{allocation, 0, static_cast<size_t>(bytes)});
}

// copyToDevice(dst: DeviceBuffer, src: typed array), equal byte lengths; returns when done.
Napi::Value CopyToDevice(const Napi::CallbackInfo& info) {
  Args args(info, "cuda.copyToDevice", 2);
  DeviceRange& dst = live_range(args, 0, "dst");
  const HostBytes src = host_bytes(args, 1, "src");
  same_bytes(args, dst.byte_length, src.bytes);
  const CudaContext& ctx = cuda_contexts(info.Env()).get(dst.allocation->device);
  GROWLM_CUDA_CALL(ctx, copy_to_device, address(dst), src.data, src.bytes, ctx);
  return info.Env().Undefined();
}

// copyToHost(dst: typed array, src: DeviceBuffer): waits for the device's queued work first.
Napi::Value CopyToHost(const Napi::CallbackInfo& info) {
  Args args(info, "cuda.copyToHost", 2);
  const HostBytes dst = host_bytes(args, 0, "dst");
  DeviceRange& src = live_range(args, 1, "src");
  same_bytes(args, dst.bytes, src.byte_length);
  const CudaContext& ctx = cuda_contexts(info.Env()).get(src.allocation->device);
  GROWLM_CUDA_CALL(ctx, copy_to_host, dst.data, address(src), dst.bytes, ctx);
  return info.Env().Undefined();
}

// copyOnDevice(dst, src): both DeviceBuffers on one device, queued.
Napi::Value CopyOnDevice(const Napi::CallbackInfo& info) {
  Args args(info, "cuda.copyOnDevice", 2);
  DeviceRange& dst = live_range(args, 0, "dst");
  DeviceRange& src = live_range(args, 1, "src");
  same_bytes(args, dst.byte_length, src.byte_length);
  if (dst.allocation->device != src.allocation->device) {
    args.range_error("dst is on cuda:" + std::to_string(dst.allocation->device) + " but src on cuda:" +
                     std::to_string(src.allocation->device));
  }
  const CudaContext& ctx = cuda_contexts(info.Env()).get(dst.allocation->device);
  GROWLM_CUDA_CALL(ctx, copy_on_device, address(dst), address(src), dst.byte_length, ctx);
  return info.Env().Undefined();
}

// copyRowsOnDevice(dst, src, rows, rowBytes, dstPitch, srcPitch): row r of rowBytes bytes
// from src + r·srcPitch to dst + r·dstPitch, both DeviceBuffers on one device, queued.
Napi::Value CopyRowsOnDevice(const Napi::CallbackInfo& info) {
  Args args(info, "cuda.copyRowsOnDevice", 6);
  DeviceRange& dst = live_range(args, 0, "dst");
  DeviceRange& src = live_range(args, 1, "src");
  const int64_t rows = args.size(2, "rows", 0);
  const int64_t row_bytes = args.size(3, "rowBytes", 0);
  const int64_t dst_pitch = args.size(4, "dstPitch", 0);
  const int64_t src_pitch = args.size(5, "srcPitch", 0);
  if (dst.allocation->device != src.allocation->device) {
    args.range_error("dst is on cuda:" + std::to_string(dst.allocation->device) + " but src on cuda:" +
                     std::to_string(src.allocation->device));
  }
  if (dst_pitch < row_bytes || src_pitch < row_bytes) {
    args.range_error("the pitches (" + std::to_string(dst_pitch) + ", " + std::to_string(src_pitch) +
                     ") must be at least rowBytes = " + std::to_string(row_bytes));
  }
  const int64_t dst_extent = rows_extent(rows, row_bytes, dst_pitch), src_extent = rows_extent(rows, row_bytes, src_pitch);
  if (dst_extent > static_cast<int64_t>(dst.byte_length) || src_extent > static_cast<int64_t>(src.byte_length)) {
    args.range_error(std::to_string(rows) + " rows of " + std::to_string(row_bytes) + " bytes span " +
                     std::to_string(dst_extent) + " and " + std::to_string(src_extent) +
                     " bytes but dst has " + std::to_string(dst.byte_length) + " and src " + std::to_string(src.byte_length));
  }
  const CudaContext& ctx = cuda_contexts(info.Env()).get(dst.allocation->device);
  GROWLM_CUDA_CALL(ctx, copy_rows_on_device, address(dst), static_cast<size_t>(dst_pitch), address(src),
                   static_cast<size_t>(src_pitch), static_cast<size_t>(row_bytes), static_cast<size_t>(rows), ctx);
  return info.Env().Undefined();
}

// fillBytes(dst, value): every byte of dst set to value (0..255), queued.
Napi::Value FillBytes(const Napi::CallbackInfo& info) {
  Args args(info, "cuda.fillBytes", 2);
  DeviceRange& dst = live_range(args, 0, "dst");
  const int64_t value = args.integer(1, "value", 0, 255);
  const CudaContext& ctx = cuda_contexts(info.Env()).get(dst.allocation->device);
  GROWLM_CUDA_CALL(ctx, fill_bytes, address(dst), static_cast<uint8_t>(value), dst.byte_length, ctx);
  return info.Env().Undefined();
}

// synchronize(device): waits for the device's queued work; throws the first error it hit.
Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  Args args(info, "cuda.synchronize", 1);
  const int device = device_arg(args, 0, info.Env());
  const CudaContext& ctx = cuda_contexts(info.Env()).get(device);
  GROWLM_CUDA_CALL(ctx, synchronize, ctx, "cuda.synchronize");
  return info.Env().Undefined();
}

// poolStats(device): { inUse, reserved, peakInUse } in bytes.
Napi::Value PoolStats(const Napi::CallbackInfo& info) {
  Args args(info, "cuda.poolStats", 1);
  const int device = device_arg(args, 0, info.Env());
  const CudaPoolStats s = GROWLM_CUDA_BACKEND(cuda_contexts(info.Env()).emulated(), pool_stats, device);
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("inUse", static_cast<double>(s.in_use));
  out.Set("reserved", static_cast<double>(s.reserved));
  out.Set("peakInUse", static_cast<double>(s.peak_in_use));
  return out;
}

// releaseCached(device): returns the pool's unused memory to the driver.
Napi::Value ReleaseCached(const Napi::CallbackInfo& info) {
  Args args(info, "cuda.releaseCached", 1);
  const int device = device_arg(args, 0, info.Env());
  GROWLM_CUDA_BACKEND(cuda_contexts(info.Env()).emulated(), pool_release_cached, device);
  return info.Env().Undefined();
}

}  // namespace

DeviceRange* device_range(Napi::Value v) {
  if (!v.IsObject()) return nullptr;
  Napi::Object o = v.As<Napi::Object>();
  if (!o.CheckTypeTag(&DEVICE_BUFFER_TAG)) return nullptr;
  return &DeviceBuffer::Unwrap(o)->range;
}

void InitCuda(Napi::Env env, Napi::Object exports) {
  Napi::Object cuda = cuda_exports(env, exports);
  Napi::Function cls = DeviceBuffer::Define(env);
  cuda_contexts(env).device_buffer_class = Napi::Persistent(cls);
  cuda_contexts(env).device_buffer_class.SuppressDestruct();  // lives as long as the environment
  cuda.Set("DeviceBuffer", cls);
  bind(env, cuda, "info", Info);
  bind(env, cuda, "alloc", Alloc);
  bind(env, cuda, "copyToDevice", CopyToDevice);
  bind(env, cuda, "copyToHost", CopyToHost);
  bind(env, cuda, "copyOnDevice", CopyOnDevice);
  bind(env, cuda, "copyRowsOnDevice", CopyRowsOnDevice);
  bind(env, cuda, "fillBytes", FillBytes);
  bind(env, cuda, "synchronize", Synchronize);
  bind(env, cuda, "poolStats", PoolStats);
  bind(env, cuda, "releaseCached", ReleaseCached);
}

}  // namespace growlm::bindings
