// PLACEHOLDER: replaced by the swiglu family's bindings.
#include "addon.h"
namespace growlm::bindings {
void InitSwiglu(Napi::Env, Napi::Object) {}
}  // namespace growlm::bindings
