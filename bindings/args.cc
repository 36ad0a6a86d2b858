#include "args.h"

#include <cmath>
#include <exception>
#include <sstream>
#include <stdexcept>

namespace growlm::bindings {

namespace {
constexpr double MAX_SAFE = 9007199254740991.0;  // 2^53 - 1
}

ShapeText::ShapeText(const char* names, std::initializer_list<int64_t> dims) : names_(names) {
  if (dims.size() > MAX_RANK) throw std::logic_error("ShapeText: rank above MAX_RANK");
  for (int64_t d : dims) dims_[rank_++] = d;
}

std::string ShapeText::str() const {
  if (!names_) return text_;
  std::ostringstream s;
  s << "[" << names_ << "] = [";
  for (size_t i = 0; i < rank_; ++i) s << (i ? ", " : "") << dims_[i];
  s << "]";
  return s.str();
}

Args::Args(const Napi::CallbackInfo& info, const char* op, size_t count) : info_(info), op_(op) {
  if (info.Length() != count) {
    std::ostringstream s;
    s << "expected " << count << " arguments but received " << info.Length();
    type_error(s.str());
  }
}

void Args::type_error(const std::string& message) const {
  throw Napi::TypeError::New(env(), std::string(op_) + ": " + message);
}

void Args::range_error(const std::string& message) const {
  throw Napi::RangeError::New(env(), std::string(op_) + ": " + message);
}

bool Args::is_null(size_t i) const { return info_[i].IsNull() || info_[i].IsUndefined(); }

int64_t Args::integer(size_t i, const char* name, int64_t min, int64_t max) const {
  const Napi::Value v = info_[i];
  if (!v.IsNumber()) type_error(std::string("expected a number for \"") + name + "\"");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > MAX_SAFE ||
      d < static_cast<double>(min) || d > static_cast<double>(max)) {
    std::ostringstream s;
    s << "expected an integer in [" << min << ", " << max << "] for \"" << name
      << "\" but received " << d;
    range_error(s.str());
  }
  return static_cast<int64_t>(d);
}

int64_t Args::size(size_t i, const char* name, int64_t min) const {
  return integer(i, name, min, static_cast<int64_t>(MAX_SAFE));
}

int64_t Args::count(const char* names, std::initializer_list<int64_t> dims) const {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (__builtin_mul_overflow(n, d, &n) || n > static_cast<int64_t>(MAX_SAFE)) {
      range_error(shape(names, dims).str() + " has more than 2^53 - 1 elements");
    }
  }
  return n;
}

double Args::finite(size_t i, const char* name) const {
  const Napi::Value v = info_[i];
  if (!v.IsNumber()) type_error(std::string("expected a number for \"") + name + "\"");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) {
    std::ostringstream s;
    s << "expected a finite number for \"" << name << "\" but received " << d;
    range_error(s.str());
  }
  return d;
}

bool Args::boolean(size_t i, const char* name) const {
  if (!info_[i].IsBoolean()) type_error(std::string("expected a boolean for \"") + name + "\"");
  return info_[i].As<Napi::Boolean>().Value();
}

std::string Args::string(size_t i, const char* name) const {
  if (!info_[i].IsString()) type_error(std::string("expected a string for \"") + name + "\"");
  return info_[i].As<Napi::String>().Utf8Value();
}

void* Args::typed(size_t i, const char* name, napi_typedarray_type type, const char* type_name,
                  int64_t length, bool at_least, const ShapeText& what) const {
  const Napi::Value v = info_[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    type_error(std::string("expected ") + type_name + " for \"" + name + "\"");
  }
  Napi::TypedArray array = v.As<Napi::TypedArray>();
  const int64_t got = static_cast<int64_t>(array.ElementLength());
  if (at_least ? got < length : got != length) {
    std::ostringstream s;
    s << "expected " << type_name << " of length " << (at_least ? "at least " : "") << length
      << " (" << what.str() << ") for \"" << name << "\" but received length " << got;
    range_error(s.str());
  }
  Napi::ArrayBuffer buffer = array.ArrayBuffer();
  if (buffer.ByteLength() == 0 && length > 0) range_error(std::string("\"") + name + "\" is detached");
  return static_cast<uint8_t*>(buffer.Data()) + array.ByteOffset();
}

float* Args::f32(size_t i, const char* name, int64_t length, const ShapeText& what) const {
  return static_cast<float*>(typed(i, name, napi_float32_array, "Float32Array", length, false, what));
}
uint16_t* Args::u16(size_t i, const char* name, int64_t length, const ShapeText& what) const {
  return static_cast<uint16_t*>(typed(i, name, napi_uint16_array, "Uint16Array (bf16)", length, false, what));
}
int32_t* Args::i32(size_t i, const char* name, int64_t length, const ShapeText& what) const {
  return static_cast<int32_t*>(typed(i, name, napi_int32_array, "Int32Array", length, false, what));
}
uint8_t* Args::u8(size_t i, const char* name, int64_t length, const ShapeText& what) const {
  return static_cast<uint8_t*>(typed(i, name, napi_uint8_array, "Uint8Array", length, false, what));
}
int64_t* Args::i64(size_t i, const char* name, int64_t length, const ShapeText& what) const {
  return static_cast<int64_t*>(typed(i, name, napi_bigint64_array, "BigInt64Array", length, false, what));
}
float* Args::f32_or_null(size_t i, const char* name, int64_t length, const ShapeText& what) const {
  return is_null(i) ? nullptr : f32(i, name, length, what);
}
uint16_t* Args::u16_or_null(size_t i, const char* name, int64_t length, const ShapeText& what) const {
  return is_null(i) ? nullptr : u16(i, name, length, what);
}
float* Args::f32_at_least(size_t i, const char* name, int64_t length, const ShapeText& what) const {
  return static_cast<float*>(typed(i, name, napi_float32_array, "Float32Array", length, true, what));
}
uint16_t* Args::u16_at_least(size_t i, const char* name, int64_t length, const ShapeText& what) const {
  return static_cast<uint16_t*>(typed(i, name, napi_uint16_array, "Uint16Array (bf16)", length, true, what));
}

void Args::check_ids(const int32_t* ids, int64_t n, const char* name, int64_t limit,
                     const int32_t* allowed) const {
  for (int64_t j = 0; j < n; ++j) {
    const int32_t id = ids[j];
    if ((id < 0 || id >= limit) && !(allowed && id == *allowed)) {
      std::ostringstream s;
      s << "\"" << name << "\"[" << j << "] = " << id << " is out of range [0, " << limit << ")";
      if (allowed) s << " and is not " << *allowed;
      range_error(s.str());
    }
  }
}

void bind(Napi::Env env, Napi::Object exports, const char* name, Handler handler) {
  exports.Set(name, Napi::Function::New(
                        env,
                        [handler, name](const Napi::CallbackInfo& info) -> Napi::Value {
                          try {
                            return handler(info);
                          } catch (const Napi::Error&) {
                            throw;
                          } catch (const std::exception& e) {
                            throw Napi::Error::New(info.Env(), std::string(name) + ": " + e.what());
                          }
                        },
                        name));
}

}  // namespace growlm::bindings
