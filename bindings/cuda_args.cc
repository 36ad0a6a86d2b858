#include "cuda_args.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

#include "addon.h"

namespace growlm::bindings {

DeviceAllocation::~DeviceAllocation() { release(); }

void DeviceAllocation::release() {
  if (!ptr) return;
  GROWLM_CUDA_BACKEND(emulated, device_free, device, ptr);
  ptr = nullptr;
}

namespace {
bool emulation_requested() {
  const char* v = std::getenv("GROWLM_CUDA_EMULATE");
  return v && *v && std::strcmp(v, "0") != 0;
}
}  // namespace

CudaContexts::CudaContexts() : emulated_(emulation_requested()) {}

CudaContexts::~CudaContexts() {
  for (auto& ctx : contexts_) {
    if (ctx) GROWLM_CUDA_BACKEND(emulated_, destroy_context, *ctx);
  }
}

int CudaContexts::device_count() const { return GROWLM_CUDA_BACKEND(emulated_, device_count); }

const CudaContext& CudaContexts::get(int device) {
  if (device >= 0 && static_cast<size_t>(device) < contexts_.size() && contexts_[device]) return *contexts_[device];
  CudaContext ctx = GROWLM_CUDA_BACKEND(emulated_, create_context, device);
  if (contexts_.size() <= static_cast<size_t>(device)) contexts_.resize(device + 1);
  contexts_[device] = std::make_unique<CudaContext>(ctx);
  return *contexts_[device];
}

CudaContexts& cuda_contexts(Napi::Env env) { return *state(env).cuda; }

Napi::Object cuda_exports(Napi::Env env, Napi::Object exports) {
  Napi::Value existing = exports.Get("cuda");
  if (existing.IsObject()) return existing.As<Napi::Object>();
  Napi::Object cuda = Napi::Object::New(env);
  exports.Set("cuda", cuda);
  return cuda;
}

void* CudaArgs::buffer(size_t i, const char* name, size_t element_bytes, const char* type_name, int64_t length,
                       bool at_least, const ShapeText& what) {
  DeviceRange* r = device_range(info_value(i));
  if (!r) type_error(std::string("expected a DeviceBuffer (") + type_name + ") for \"" + name + "\"");
  DeviceAllocation& a = *r->allocation;
  if (!a.ptr) range_error(std::string("\"") + name + "\" was freed");
  if (r->byte_offset % element_bytes != 0 || r->byte_length % element_bytes != 0) {
    std::ostringstream s;
    s << "\"" << name << "\" (" << r->byte_length << " bytes at offset " << r->byte_offset
      << ") is not a whole number of aligned " << type_name << " elements";
    range_error(s.str());
  }
  const int64_t got = static_cast<int64_t>(r->byte_length / element_bytes);
  if (at_least ? got < length : got != length) {
    std::ostringstream s;
    s << "expected " << type_name << " DeviceBuffer of length " << (at_least ? "at least " : "") << length << " ("
      << what.str() << ") for \"" << name << "\" but received length " << got;
    range_error(s.str());
  }
  if (device_ < 0) {
    device_ = a.device;
  } else if (device_ != a.device) {
    std::ostringstream s;
    s << "\"" << name << "\" is on cuda:" << a.device << " but earlier arguments are on cuda:" << device_;
    range_error(s.str());
  }
  return static_cast<uint8_t*>(a.ptr) + r->byte_offset;
}

float* CudaArgs::f32(size_t i, const char* name, int64_t length, const ShapeText& what) {
  return static_cast<float*>(buffer(i, name, 4, "float32", length, false, what));
}
uint16_t* CudaArgs::u16(size_t i, const char* name, int64_t length, const ShapeText& what) {
  return static_cast<uint16_t*>(buffer(i, name, 2, "bfloat16", length, false, what));
}
int32_t* CudaArgs::i32(size_t i, const char* name, int64_t length, const ShapeText& what) {
  return static_cast<int32_t*>(buffer(i, name, 4, "int32", length, false, what));
}
uint8_t* CudaArgs::u8(size_t i, const char* name, int64_t length, const ShapeText& what) {
  return static_cast<uint8_t*>(buffer(i, name, 1, "uint8", length, false, what));
}
int64_t* CudaArgs::i64(size_t i, const char* name, int64_t length, const ShapeText& what) {
  return static_cast<int64_t*>(buffer(i, name, 8, "int64", length, false, what));
}
float* CudaArgs::f32_or_null(size_t i, const char* name, int64_t length, const ShapeText& what) {
  return is_null(i) ? nullptr : f32(i, name, length, what);
}
uint16_t* CudaArgs::u16_or_null(size_t i, const char* name, int64_t length, const ShapeText& what) {
  return is_null(i) ? nullptr : u16(i, name, length, what);
}
float* CudaArgs::f32_at_least(size_t i, const char* name, int64_t length, const ShapeText& what) {
  return static_cast<float*>(buffer(i, name, 4, "float32", length, true, what));
}
uint16_t* CudaArgs::u16_at_least(size_t i, const char* name, int64_t length, const ShapeText& what) {
  return static_cast<uint16_t*>(buffer(i, name, 2, "bfloat16", length, true, what));
}

const CudaContext& CudaArgs::context() { return cuda_contexts(env()).get(device()); }

}  // namespace growlm::bindings
