// Native memory for tensors: 64-byte-aligned blocks exposed to JS as external
// ArrayBuffers (zero-copy), reported to V8 as external memory, freed by the finaliser
// when the buffer is collected or at once by free() (which detaches the buffer).
#include <cstdlib>
#include <cstring>

#include "addon.h"
#include "args.h"

namespace growlm::bindings {

namespace {

constexpr size_t ALIGN = 64;

struct Block {
  size_t bytes;
};

void release(Napi::Env env, void* data, Block* block) {
  Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(block->bytes));
  std::free(data);
  delete block;
}

Napi::Value Alloc(const Napi::CallbackInfo& info) {
  Args args(info, "alloc", 2);
  const int64_t bytes = args.size(0, "bytes", 0);
  const bool zero = args.boolean(1, "zero");
  const size_t rounded = (static_cast<size_t>(bytes) + ALIGN - 1) / ALIGN * ALIGN;
  void* data = std::aligned_alloc(ALIGN, rounded == 0 ? ALIGN : rounded);
  if (!data) args.range_error("out of memory allocating " + std::to_string(bytes) + " bytes");
  if (zero) std::memset(data, 0, rounded);
  auto* block = new Block{rounded};
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), static_cast<int64_t>(rounded));
  return Napi::ArrayBuffer::New(info.Env(), data, static_cast<size_t>(bytes), release, block);
}

// Detaching drops V8's reference to the backing store, which runs the finaliser now.
Napi::Value Free(const Napi::CallbackInfo& info) {
  Args args(info, "free", 1);
  if (!info[0].IsArrayBuffer()) args.type_error("expected an ArrayBuffer");
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  if (!buffer.IsDetached()) buffer.Detach();
  return info.Env().Undefined();
}

Napi::Value Address(const Napi::CallbackInfo& info) {
  Args args(info, "address", 1);
  if (!info[0].IsTypedArray()) args.type_error("expected a typed array");
  Napi::TypedArray array = info[0].As<Napi::TypedArray>();
  const auto address = reinterpret_cast<uintptr_t>(array.ArrayBuffer().Data()) + array.ByteOffset();
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(address));
}

}  // namespace

void InitTensor(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "alloc", Alloc);
  bind(env, exports, "free", Free);
  bind(env, exports, "address", Address);
}

}  // namespace growlm::bindings
