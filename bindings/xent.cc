// PLACEHOLDER: replaced by the xent family's bindings.
#include "addon.h"
namespace growlm::bindings {
void InitXent(Napi::Env, Napi::Object) {}
}  // namespace growlm::bindings
