// Bindings of growlm/embedding.h.
#include "addon.h"
#include "args.h"
#include "cuda_args.h"
#include "growlm/embedding.h"

namespace growlm::bindings {

namespace {

// embeddingForward(out, ids, table, N, V, C), on the CPU (Args) or a device (CudaArgs). Ids on
// a device cannot be read here: the CUDA kernels clamp-and-flag instead (embedding.cu: NaN
// rows in the forward, skipped tokens in the backward).
template <class A>
Napi::Value EmbeddingForward(const Napi::CallbackInfo& info) {
  A args(info, "embeddingForward", 6);
  const int64_t N = args.size(3, "N", 0);
  const int64_t V = args.size(4, "V", 1);
  const int64_t C = args.size(5, "C", 1);
  float* out = args.f32(0, "out", args.count("N, C", {N, C}), shape("N, C", {N, C}));
  const int32_t* ids = args.i32(1, "ids", N, shape("N", {N}));
  const float* table = args.f32(2, "table", args.count("V, C", {V, C}), shape("V, C", {V, C}));
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), embedding_forward, out, ids, table, N, V, C, args.context());
  } else {
    args.check_ids(ids, N, "ids", V);
    embedding_forward(out, ids, table, N, V, C, context(info.Env()));
  }
  return info.Env().Undefined();
}

// embeddingBackward(dtable, dout, ids, N, V, C, paddingIdx): tokens of paddingIdx add
// nothing (-1: none).
template <class A>
Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  A args(info, "embeddingBackward", 7);
  const int64_t N = args.size(3, "N", 0);
  const int64_t V = args.size(4, "V", 1);
  const int64_t C = args.size(5, "C", 1);
  const int64_t padding_idx = args.integer(6, "paddingIdx", -1, V - 1);
  float* dtable = args.f32(0, "dtable", args.count("V, C", {V, C}), shape("V, C", {V, C}));
  const float* dout = args.f32(1, "dout", args.count("N, C", {N, C}), shape("N, C", {N, C}));
  const int32_t* ids = args.i32(2, "ids", N, shape("N", {N}));
  if constexpr (A::on_device) {
    GROWLM_CUDA_CALL(args.context(), embedding_backward, dtable, dout, ids, N, V, C, padding_idx, args.context());
  } else {
    args.check_ids(ids, N, "ids", V);
    embedding_backward(dtable, dout, ids, N, V, C, padding_idx, context(info.Env()));
  }
  return info.Env().Undefined();
}

}  // namespace

void InitEmbedding(Napi::Env env, Napi::Object exports) {
  bind(env, exports, "embeddingForward", EmbeddingForward<Args>);
  bind(env, exports, "embeddingBackward", EmbeddingBackward<Args>);
  Napi::Object cuda = cuda_exports(env, exports);
  bind(env, cuda, "embeddingForward", EmbeddingForward<CudaArgs>);
  bind(env, cuda, "embeddingBackward", EmbeddingBackward<CudaArgs>);
}

}  // namespace growlm::bindings
