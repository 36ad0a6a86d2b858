// Per-environment state of the addon and the registration hooks of each binding file.
#pragma once
#include <napi.h>

#include <memory>

#include "cuda_args.h"
#include "growlm/context.h"
#include "growlm/threads.h"

namespace growlm::bindings {

/// Owned by the Node environment (napi instance data), so worker threads and several
/// environments never share a pool.
struct AddonState {
  std::unique_ptr<ThreadPool> pool;
  Context ctx;
  std::unique_ptr<CudaContexts> cuda;
};

/// The context of the environment that made the call.
const Context& context(Napi::Env env);
AddonState& state(Napi::Env env);

// One per binding file (bindings/<family>.cc).
void InitCore(Napi::Env env, Napi::Object exports);
void InitTensor(Napi::Env env, Napi::Object exports);
void InitElementwise(Napi::Env env, Napi::Object exports);
void InitGemm(Napi::Env env, Napi::Object exports);
void InitAttention(Napi::Env env, Napi::Object exports);
void InitNorm(Napi::Env env, Napi::Object exports);
void InitRope(Napi::Env env, Napi::Object exports);
void InitSwiglu(Napi::Env env, Napi::Object exports);
void InitEmbedding(Napi::Env env, Napi::Object exports);
void InitXent(Napi::Env env, Napi::Object exports);
void InitAdamw(Napi::Env env, Napi::Object exports);
void InitEwc(Napi::Env env, Napi::Object exports);
void InitDistill(Napi::Env env, Napi::Object exports);
void InitRng(Napi::Env env, Napi::Object exports);
void InitBaseline(Napi::Env env, Napi::Object exports);
void InitCuda(Napi::Env env, Napi::Object exports);
void InitNccl(Napi::Env env, Napi::Object exports);

}  // namespace growlm::bindings
