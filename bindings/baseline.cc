// PLACEHOLDER: replaced by the baseline family's bindings.
#include "addon.h"
namespace growlm::bindings {
void InitBaseline(Napi::Env, Napi::Object) {}
}  // namespace growlm::bindings
