// Run-time choice of the code path. Every file in native/cpu/kernels/ is compiled once
// per instruction set (CMakeLists.txt) with GROWLM_ISA_NS naming its namespace
// (isa_portable, isa_avx2, isa_avx512). The portable compilation (GROWLM_ISA_portable)
// additionally defines the public growlm:: entry points, which pick the namespace
// matching ctx.isa with GROWLM_DISPATCH.
#pragma once
#include "growlm/context.h"

#if defined(GROWLM_X86)
#define GROWLM_DISPATCH(ctx, fn, ...)                                  \
  do {                                                                 \
    switch ((ctx).isa) {                                               \
      case ::growlm::Isa::avx512: return isa_avx512::fn(__VA_ARGS__); \
      case ::growlm::Isa::avx2: return isa_avx2::fn(__VA_ARGS__);     \
      default: return isa_portable::fn(__VA_ARGS__);                   \
    }                                                                  \
  } while (0)
// Declares one kernel signature in every ISA namespace (use at namespace growlm::cpu).
#define GROWLM_DECLARE_ISA(decl)  \
  namespace isa_avx512 { decl; }  \
  namespace isa_avx2 { decl; }    \
  namespace isa_portable { decl; }
#else
#define GROWLM_DISPATCH(ctx, fn, ...) return isa_portable::fn(__VA_ARGS__)
#define GROWLM_DECLARE_ISA(decl) namespace isa_portable { decl; }
#endif

// Vector width in floats of the current compilation (for kernels written with it).
#if defined(GROWLM_ISA_avx512)
#define GROWLM_VLEN 16
#elif defined(GROWLM_ISA_avx2)
#define GROWLM_VLEN 8
#else
#define GROWLM_VLEN 4
#endif
