// PLACEHOLDER: replaced by the rng family's bindings.
#include "addon.h"
namespace growlm::bindings {
void InitRng(Napi::Env, Napi::Object) {}
}  // namespace growlm::bindings
