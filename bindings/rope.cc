// PLACEHOLDER: replaced by the rope family's bindings.
#include "addon.h"
namespace growlm::bindings {
void InitRope(Napi::Env, Napi::Object) {}
}  // namespace growlm::bindings
