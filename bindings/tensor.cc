// Native memory for tensors: 64-byte-aligned blocks exposed to JS as external
// ArrayBuffers (zero-copy), reported to V8 as external memory, freed by the finaliser
// when the buffer is collected or at once by free().
//
// Layout of one allocation: [Block* | padding to 64 bytes][data...]. Buffers made here
// carry a type tag, so free() can tell them from any other ArrayBuffer before it reads the
// header. Detaching alone would not release the memory (V8 keeps the backing store until
// the buffer object is collected), so free() releases it itself and leaves the finaliser
// only the bookkeeping.
#include <cstdlib>
#include <cstring>

#include "addon.h"
#include "args.h"

namespace growlm::bindings {

namespace {

constexpr size_t ALIGN = 64;
constexpr napi_type_tag NATIVE_BUFFER_TAG = {0x67726f776c6d2d62ull, 0x7566666572763031ull};

struct Block {
  void* base;    // null once freed
  size_t bytes;  // reported to V8 as external memory
};

void release_memory(Napi::Env env, Block* block) {
  if (!block->base) return;
  std::free(block->base);
  block->base = nullptr;
  Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(block->bytes));
}

void finalize(Napi::Env env, void*, Block* block) {
  release_memory(env, block);
  delete block;
}

Napi::Value Alloc(const Napi::CallbackInfo& info) {
  Args args(info, "alloc", 2);
  const int64_t bytes = args.size(0, "bytes", 0);
  const bool zero = args.boolean(1, "zero");
  const size_t rounded = (static_cast<size_t>(bytes) + ALIGN - 1) / ALIGN * ALIGN;
  void* base = std::aligned_alloc(ALIGN, ALIGN + rounded);
  if (!base) args.range_error("out of memory allocating " + std::to_string(bytes) + " bytes");
  uint8_t* data = static_cast<uint8_t*>(base) + ALIGN;
  if (zero) std::memset(data, 0, rounded);
  auto* block = new Block{base, ALIGN + rounded};
  std::memcpy(base, &block, sizeof block);
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), static_cast<int64_t>(block->bytes));
  Napi::ArrayBuffer buffer =
      Napi::ArrayBuffer::New(info.Env(), data, static_cast<size_t>(bytes), finalize, block);
  buffer.TypeTag(&NATIVE_BUFFER_TAG);
  return buffer;
}

// free(buffer): releases a buffer made by alloc() now and detaches it, so every typed
// array over it reads as empty instead of reaching freed memory.
Napi::Value Free(const Napi::CallbackInfo& info) {
  Args args(info, "free", 1);
  if (!info[0].IsArrayBuffer()) args.type_error("expected an ArrayBuffer");
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  if (!buffer.CheckTypeTag(&NATIVE_BUFFER_TAG)) args.type_error("the ArrayBuffer was not allocated by growlm");
  if (buffer.IsDetached()) return info.Env().Undefined();
  Block* block;
  std::memcpy(&block, static_cast<uint8_t*>(buffer.Data()) - ALIGN, sizeof block);
  buffer.Detach();
  release_memory(info.Env(), block);
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
