// PLACEHOLDER: replaced by the attention family's bindings.
#include "addon.h"
namespace growlm::bindings {
void InitAttention(Napi::Env, Napi::Object) {}
}  // namespace growlm::bindings
