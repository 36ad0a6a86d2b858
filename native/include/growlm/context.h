// growlm native API: the execution context every kernel takes last.
//
// Kernels are plain functions on raw pointers and sizes (llm.c order: outputs, saved
// statistics, inputs, sizes, hyperparameters, context). Activation gradients are
// overwritten (=), parameter gradients accumulate (+=). Invalid sizes throw
// std::invalid_argument; the bindings turn that into a JS Error naming the op.
#pragma once
#include <cstdint>

namespace growlm {

class ThreadPool;

/// Instruction-set level of the CPU code path. Each kernel is compiled once per level.
enum class Isa : int { portable = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(Isa isa);

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512vl = false, avx512bw = false, avx512dq = false;
  bool avx512bf16 = false;
};

/// What this CPU supports (cpuid, read once).
const CpuFeatures& cpu_features();
/// The best code path this CPU can run.
Isa best_isa();

/// Everything a kernel needs to run: where to run it and which code path to use.
/// Owned by the caller (the addon keeps one per Node environment); never global.
struct Context {
  ThreadPool* pool = nullptr;  // never null when a kernel is called
  Isa isa = Isa::portable;     // code path in use, at most best_isa()
  bool bf16_dot = false;       // AVX512_BF16 vdpbf16ps allowed (isa == avx512 and CPU has it)
};

}  // namespace growlm
