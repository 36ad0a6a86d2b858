// PLACEHOLDER: replaced by the embedding family's bindings.
#include "addon.h"
namespace growlm::bindings {
void InitEmbedding(Napi::Env, Napi::Object) {}
}  // namespace growlm::bindings
