// PLACEHOLDER: replaced by the gemm family's bindings.
#include "addon.h"
namespace growlm::bindings {
void InitGemm(Napi::Env, Napi::Object) {}
}  // namespace growlm::bindings
