// Bindings of growlm/embedding.h.
#include "addon.h"
#include "args.h"
#include "growlm/embedding.h"

namespace growlm::bindings {

namespace {

// The element count of a shape; refuses products past 2^53 - 1 (no typed array is that
// long), so a wrapped-around count can never pass a length check.
int64_t count(const Args& args, const char* names, std::initializer_list<int64_t> dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (__builtin_mul_overflow(n, d, &n) || n > (int64_t{1} << 53) - 1) {
      args.range_error(shape(names, dims) + " has more than 2^53 - 1 elements");
    }
  }
  return n;
}

// embeddingForward(out, ids, table, N, V, C)
Napi::Value EmbeddingForward(const Napi::CallbackInfo& info) {
  Args args(info, "embeddingForward", 6);
  const int64_t N = args.size(3, "N", 0);
  const int64_t V = args.size(4, "V", 1);
  const int64_t C = args.size(5, "C", 1);
  float* out = args.f32(0, "out", count(args, "N, C", {N, C}), shape("N, C", {N, C}));
  const int32_t* ids = args.i32(1, "ids", N, shape("N", {N}));
  const float* table = args.f32(2, "table", count(args, "V, C", {V, C}), shape("V, C", {V, C}));
  args.check_ids(ids, N, "ids", V);
  embedding_forward(out, ids, table, N, V, C, context(info.Env()));
  return info.Env().Undefined();
}

// embeddingBackward(dtable, dout, ids, N, V, C)
Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  Args args(info, "embeddingBackward", 6);
  const int64_t N = args.size(3, "N", 0);
  const int64_t V = args.size(4, "V", 1);
  const int64_t C = args.size(5, "C", 1);
  float* dtable = args.f32(0, "dtable", count(args, "V, C", {V, C}), shape("V, C", {V, C}));
  const float* dout = args.f32(1, "dout", count(args, "N, C", {N, C}), shape("N, C", {N, C}));
  const int32_t* ids = args.i32(2, "ids", N, shape("N", {N}));
  args.check_ids(ids, N, "ids", V);
  embedding_backward(dtable, dout, ids, N, V, C, context(info.Env()));
  return info.Env().Undefined();
}

}  // namespace

void InitEmbedding(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "embeddingForward", EmbeddingForward);
  bind(env, exports, "embeddingBackward", EmbeddingBackward);
}

}  // namespace growlm::bindings
