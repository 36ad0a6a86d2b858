// Module initialisation: creates the environment's thread pool and context, then lets
// every binding file add its functions.
#include "addon.h"

#include <algorithm>
#include <thread>

namespace growlm::bindings {

AddonState& state(Napi::Env env) { return *env.GetInstanceData<AddonState>(); }
const Context& context(Napi::Env env) { return state(env).ctx; }

namespace {

int default_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return static_cast<int>(std::max(1u, hw));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* s = new AddonState();
  s->pool = std::make_unique<ThreadPool>(default_threads());
  s->ctx.pool = s->pool.get();
  s->ctx.isa = best_isa();
  s->ctx.bf16_dot = s->ctx.isa == Isa::avx512 && cpu_features().avx512bf16;
  s->cuda = std::make_unique<CudaContexts>();
  env.SetInstanceData(s);  // deleted with the environment

  InitCore(env, exports);
  InitCuda(env, exports);
  InitNccl(env, exports);
  InitTensor(env, exports);
  InitElementwise(env, exports);
  InitGemm(env, exports);
  InitAttention(env, exports);
  InitNorm(env, exports);
  InitRope(env, exports);
  InitSwiglu(env, exports);
  InitEmbedding(env, exports);
  InitXent(env, exports);
  InitAdamw(env, exports);
  InitEwc(env, exports);
  InitDistill(env, exports);
  InitRng(env, exports);
  InitBaseline(env, exports);
  return exports;
}

}  // namespace
}  // namespace growlm::bindings

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return growlm::bindings::Init(env, exports);
}

NODE_API_MODULE(growlm, InitAddon)
