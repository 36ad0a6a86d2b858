// Native memory for tensors: 64-byte-aligned blocks exposed to JS as external
// ArrayBuffers (zero-copy), reported to V8 as external memory, freed by the finaliser
// when the buffer is collected or at once by free().
//
// Layout of one allocation: [Block* | padding to 64 bytes][data...]. Buffers made here
// carry a type tag, so free() can tell them from any other ArrayBuffer before it reads the
// header. Detaching alone would not release the memory (V8 keeps the backing store until
// the buffer object is collected), so free() releases it itself and leaves the finaliser
// only the bookkeeping.
//
// Large blocks (HUGE_MIN and up: weights, optimizer state, KV caches) are mapped on their
// own with the data 2 MiB-aligned and its whole 2 MiB pages offered to transparent huge
// pages (madvise; the system's setting decides). Streaming a buffer far larger than the
// caches is bound by DRAM bandwidth, and on 4 KiB pages it runs well below it: reading
// 118 MiB on Zen 4 with 2 threads gave 22-25 GB/s on 4 KiB pages against 30-34 GB/s on
// 2 MiB pages (one thread: 15 against 28), and decoding streams every weight once per
// token. The header sits in the small page before the data and the tail past the last
// whole huge page stays on small pages, so no physical memory is wasted; munmap returns
// the block to the system at once, and mapped memory is already zero.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "addon.h"
#include "args.h"

namespace growlm::bindings {

namespace {

constexpr size_t ALIGN = 64;
constexpr size_t HUGE_PAGE = size_t{2} << 20;
constexpr size_t HUGE_MIN = HUGE_PAGE;
constexpr napi_type_tag NATIVE_BUFFER_TAG = {0x67726f776c6d2d62ull, 0x7566666572763031ull};

struct Block {
  void* base;     // null once freed
  size_t bytes;   // reported to V8 as external memory
  size_t mapped;  // length of the mapping at base; 0 for a malloc block
};

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

// A mapping whose data (`bytes`, rounded to pages) starts on a 2 MiB boundary with one small
// page before it for the header; its whole huge pages are advised. Returns the data, or
// null when the system refuses the mapping.
uint8_t* map_huge(size_t bytes, void** base, size_t* mapped) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t data_bytes = round_up(bytes, page);
  const size_t reserve = page + data_bytes + HUGE_PAGE;
  void* region = mmap(nullptr, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<uintptr_t>(region);
  const uintptr_t data = round_up(start + page, HUGE_PAGE);
  const uintptr_t head = data - page, end = data + data_bytes;
  if (head > start) munmap(region, head - start);
  if (start + reserve > end) munmap(reinterpret_cast<void*>(end), start + reserve - end);
  const size_t whole = bytes / HUGE_PAGE * HUGE_PAGE;
#if defined(MADV_HUGEPAGE)  // Linux; elsewhere the mapping keeps the system's page size
  if (whole > 0) madvise(reinterpret_cast<void*>(data), whole, MADV_HUGEPAGE);  // advice: failure is harmless
#endif
  *base = reinterpret_cast<void*>(head);
  *mapped = end - head;
  return reinterpret_cast<uint8_t*>(data);
}

void release_memory(Napi::Env env, Block* block) {
  if (!block->base) return;
  if (block->mapped > 0) {
    munmap(block->base, block->mapped);
  } else {
    std::free(block->base);
  }
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
  const size_t rounded = round_up(static_cast<size_t>(bytes), ALIGN);
  void* base = nullptr;
  size_t mapped = 0;
  uint8_t* data = nullptr;
  if (rounded >= HUGE_MIN) data = map_huge(rounded, &base, &mapped);
  if (!data) {
    base = std::aligned_alloc(ALIGN, ALIGN + rounded);
    if (!base) args.range_error("out of memory allocating " + std::to_string(bytes) + " bytes");
    data = static_cast<uint8_t*>(base) + ALIGN;
    if (zero) std::memset(data, 0, rounded);
  }
  auto* block = new Block{base, ALIGN + rounded, mapped};
  std::memcpy(data - ALIGN, &block, sizeof block);
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

// copyRows(dst, src, rows, cols, dstStride, srcStride): row r of `cols` elements from
// src[r * srcStride] to dst[r * dstStride], r ascending, each as memmove. Typed arrays of one
// element type; counts in elements. One call for what would be a typed-array view and a set()
// per row (a decoding step splits and scatters hundreds of short rows).
Napi::Value CopyRows(const Napi::CallbackInfo& info) {
  Args args(info, "copyRows", 6);
  if (!info[0].IsTypedArray() || !info[1].IsTypedArray()) args.type_error("expected typed arrays for \"dst\" and \"src\"");
  Napi::TypedArray dst = info[0].As<Napi::TypedArray>();
  Napi::TypedArray src = info[1].As<Napi::TypedArray>();
  if (dst.TypedArrayType() != src.TypedArrayType()) args.type_error("\"dst\" and \"src\" must have the same element type");
  const int64_t rows = args.size(2, "rows", 0);
  const int64_t cols = args.size(3, "cols", 0);
  const int64_t dst_stride = args.size(4, "dstStride", 0);
  const int64_t src_stride = args.size(5, "srcStride", 0);
  if (rows > 1 && (dst_stride < cols || src_stride < cols)) {
    args.range_error("the strides (" + std::to_string(dst_stride) + ", " + std::to_string(src_stride) +
                     ") must be at least cols = " + std::to_string(cols));
  }
  const int64_t dst_extent = rows_extent(rows, cols, dst_stride), src_extent = rows_extent(rows, cols, src_stride);
  const int64_t dst_length = static_cast<int64_t>(dst.ElementLength()), src_length = static_cast<int64_t>(src.ElementLength());
  if (dst_extent > dst_length || src_extent > src_length) {
    args.range_error(std::to_string(rows) + " rows of " + std::to_string(cols) + " at strides " + std::to_string(dst_stride) +
                     " and " + std::to_string(src_stride) + " span " + std::to_string(dst_extent) + " and " +
                     std::to_string(src_extent) + " elements but \"dst\" has " + std::to_string(dst_length) +
                     " and \"src\" " + std::to_string(src_length));
  }
  // (A detached array has no elements, so the extents above refuse it.)
  if (rows == 0 || cols == 0) return info.Env().Undefined();
  const size_t element = dst.ByteLength() / std::max<size_t>(1, dst.ElementLength());
  auto* out = static_cast<uint8_t*>(dst.ArrayBuffer().Data()) + dst.ByteOffset();
  const auto* in = static_cast<const uint8_t*>(src.ArrayBuffer().Data()) + src.ByteOffset();
  const size_t row_bytes = static_cast<size_t>(cols) * element;
  for (int64_t r = 0; r < rows; ++r) {
    std::memmove(out + static_cast<size_t>(r * dst_stride) * element, in + static_cast<size_t>(r * src_stride) * element, row_bytes);
  }
  return info.Env().Undefined();
}

}  // namespace

void InitTensor(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "alloc", Alloc);
  bind(env, exports, "free", Free);
  bind(env, exports, "address", Address);
  bind(env, exports, "copyRows", CopyRows);
}

}  // namespace growlm::bindings
