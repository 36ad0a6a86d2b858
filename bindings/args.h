// Argument validation shared by every binding. Everything is checked before any native
// memory is touched; a failure throws a TypeError (wrong kind of value) or RangeError
// (wrong size, index or value) whose message names the op, the argument and the shapes:
//   rmsnorm_forward: expected Float32Array of length 6144 ([N, C] = [12, 512]) for "inp"
//   but received length 4096
#pragma once
#include <napi.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

namespace growlm::bindings {

/// An argument's expected shape, for error messages: "[N, C] = [12, 512]". Kept as names and
/// numbers and formatted only when an error is thrown, so a kernel call that passes its
/// checks pays no string formatting.
class ShapeText {
 public:
  ShapeText(const char* names, std::initializer_list<int64_t> dims);
  /// An already formatted description (for shapes that need more words).
  ShapeText(std::string text) : names_(nullptr), text_(std::move(text)) {}
  std::string str() const;

 private:
  static constexpr size_t MAX_RANK = 6;
  const char* names_;  // a string literal; null when text_ holds the description
  int64_t dims_[MAX_RANK] = {};
  size_t rank_ = 0;
  std::string text_;
};

inline ShapeText shape(const char* names, std::initializer_list<int64_t> dims) { return ShapeText(names, dims); }

class Args {
 public:
  /// Whether the buffers are device buffers (CudaArgs) rather than typed arrays: lets one
  /// binding template serve the CPU op and its CUDA twin.
  static constexpr bool on_device = false;

  Args(const Napi::CallbackInfo& info, const char* op, size_t count);

  Napi::Env env() const { return info_.Env(); }
  const char* op() const { return op_; }

  /// An integer dimension or count in [min, 2^53).
  int64_t size(size_t i, const char* name, int64_t min = 1) const;
  /// Any integer in [min, max].
  int64_t integer(size_t i, const char* name, int64_t min, int64_t max) const;
  /// The element count of a shape ("N, C" and its dims); refuses products past 2^53 - 1
  /// (no typed array is that long), so a wrapped-around count never passes a length check.
  int64_t count(const char* names, std::initializer_list<int64_t> dims) const;
  /// A finite number.
  double finite(size_t i, const char* name) const;
  bool boolean(size_t i, const char* name) const;
  std::string string(size_t i, const char* name) const;
  bool is_null(size_t i) const;
  /// Argument i as given.
  Napi::Value info_value(size_t i) const { return info_[i]; }

  // Typed arrays of exactly `length` elements; `what` describes the expected shape.
  float* f32(size_t i, const char* name, int64_t length, const ShapeText& what) const;
  uint16_t* u16(size_t i, const char* name, int64_t length, const ShapeText& what) const;
  int32_t* i32(size_t i, const char* name, int64_t length, const ShapeText& what) const;
  uint8_t* u8(size_t i, const char* name, int64_t length, const ShapeText& what) const;
  int64_t* i64(size_t i, const char* name, int64_t length, const ShapeText& what) const;
  /// The same, or nullptr when the argument is null or undefined.
  float* f32_or_null(size_t i, const char* name, int64_t length, const ShapeText& what) const;
  uint16_t* u16_or_null(size_t i, const char* name, int64_t length, const ShapeText& what) const;
  /// A Float32Array of at least `length` elements (strided matrices).
  float* f32_at_least(size_t i, const char* name, int64_t length, const ShapeText& what) const;
  uint16_t* u16_at_least(size_t i, const char* name, int64_t length, const ShapeText& what) const;

  /// Checks every id is in [0, limit) (or equal to `allowed`, when given).
  void check_ids(const int32_t* ids, int64_t n, const char* name, int64_t limit,
                 const int32_t* allowed = nullptr) const;

  [[noreturn]] void type_error(const std::string& message) const;
  [[noreturn]] void range_error(const std::string& message) const;

 private:
  void* typed(size_t i, const char* name, napi_typedarray_type type, const char* type_name,
              int64_t length, bool at_least, const ShapeText& what) const;

  const Napi::CallbackInfo& info_;
  const char* op_;
};

/// What `rows` rows of `cols` units at `stride` span: (rows - 1)·stride + cols, 0 for no rows
/// (copyRows in elements, cuda.copyRowsOnDevice in bytes).
inline int64_t rows_extent(int64_t rows, int64_t cols, int64_t stride) { return rows == 0 ? 0 : (rows - 1) * stride + cols; }

using Handler = Napi::Value (*)(const Napi::CallbackInfo&);

/// Adds exports[name] = handler, converting any C++ exception it throws into a JS Error
/// that names the op, so a native failure never ends the process.
void bind(Napi::Env env, Napi::Object exports, const char* name, Handler handler);

}  // namespace growlm::bindings
