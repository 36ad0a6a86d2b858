// PLACEHOLDER: replaced by the norm family's bindings.
#include "addon.h"
namespace growlm::bindings {
void InitNorm(Napi::Env, Napi::Object) {}
}  // namespace growlm::bindings
