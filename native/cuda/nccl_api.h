// The subset of NCCL growlm calls, loaded at run time (GROWLM_NCCL_PATH, then libnccl.so.2;
// dynamic_library.h); growlm/nccl.h is what the rest of growlm calls. NCCL is not emulated: under GROWLM_CUDA_EMULATE=1 the "tcp" communicator
// (src/train/comm-tcp.ts) covers the collectives' semantics.
//
// Types, values and signatures are those of NVIDIA's nccl.h (github.com/NVIDIA/nccl,
// src/nccl.h.in): ncclUniqueId is 128 bytes (NCCL_UNIQUE_ID_BYTES) passed by value;
// ncclResult_t ncclSuccess = 0; ncclDataType_t ncclFloat32 = 7, ncclFloat64 = 8,
// ncclBfloat16 = 9; ncclRedOp_t ncclSum = 0, ncclAvg = 4. ncclBfloat16 and ncclAvg exist since
// NCCL 2.10, the oldest version growlm accepts.
// Plain C++, no CUDA types: streams are void* (cudaStream_t is a pointer).
#pragma once
#include <cstddef>
#include <cstdint>

namespace growlm::cuda_libraries {

constexpr size_t NCCL_UNIQUE_ID_BYTES = 128;
struct ncclUniqueId {
  char internal[NCCL_UNIQUE_ID_BYTES];
};
struct ncclComm;
using ncclComm_t = ncclComm*;

enum ncclResult_t : int { ncclSuccess = 0, ncclInProgress = 7 };
enum ncclDataType_t : int { ncclFloat32 = 7, ncclFloat64 = 8, ncclBfloat16 = 9 };
enum ncclRedOp_t : int { ncclSum = 0, ncclAvg = 4 };

/// The oldest NCCL with ncclBfloat16 and ncclAvg: 2.10.0 (NCCL_VERSION(2, 10, 0)).
constexpr int NCCL_MIN_VERSION = 21000;

struct NcclApi {
  ncclResult_t (*get_version)(int* version);
  ncclResult_t (*get_unique_id)(ncclUniqueId* id);
  ncclResult_t (*comm_init_rank)(ncclComm_t* comm, int nranks, ncclUniqueId id, int rank);
  ncclResult_t (*comm_destroy)(ncclComm_t comm);
  ncclResult_t (*comm_abort)(ncclComm_t comm);
  ncclResult_t (*comm_get_async_error)(ncclComm_t comm, ncclResult_t* error);
  ncclResult_t (*all_reduce)(const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                             ncclComm_t comm, void* stream);
  ncclResult_t (*broadcast)(const void* send, void* recv, size_t count, ncclDataType_t type, int root,
                            ncclComm_t comm, void* stream);
  ncclResult_t (*group_start)();
  ncclResult_t (*group_end)();
  const char* (*error_string)(ncclResult_t result);
  /// The library's NCCL_VERSION_CODE (2.18.3 is 21803).
  int version;
  /// Where it was loaded from.
  const char* origin;
};

/// NCCL, loaded once (nccl.cu); throws CudaError naming libnccl.so.2 and every attempt when
/// it does not load, or when it is older than NCCL_MIN_VERSION.
const NcclApi& nccl_library();

}  // namespace growlm::cuda_libraries
