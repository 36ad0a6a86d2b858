// PLACEHOLDER: replaced by the adamw family's bindings.
#include "addon.h"
namespace growlm::bindings {
void InitAdamw(Napi::Env, Napi::Object) {}
}  // namespace growlm::bindings
