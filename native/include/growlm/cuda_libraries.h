// The libraries the CUDA backend loads at run time, as the bindings see them: where cuBLAS
// comes from (native/cuda/gemm.cu uses it), and NCCL's collectives (native/cuda/nccl.cu).
//
// NCCL collectives on CUDA devices. NCCL is loaded at run time
// (GROWLM_NCCL_PATH, then libnccl.so.2), so the addon builds and loads without it; every
// function here throws CudaError naming libnccl.so.2 and where it was looked for when it is
// absent. Defined only in nvcc's compilation (GROWLM_HAVE_CUDA): NCCL is not emulated, the
// "tcp" communicator (src/train/comm-tcp.ts) covers the collectives' semantics on a CPU.
//
// Collectives are queued on the context's stream, in place; wait() blocks until the stream
// has reached them, polling NCCL for asynchronous errors (a peer that died) and giving up when
// the timeout passes, so a lost rank is an error, never a hang.
#pragma once
#include <cstdint>

#include "growlm/cuda.h"

namespace growlm {

enum class NcclType { f32, bf16, f64 };
enum class NcclReduce { sum, avg };

/// ncclUniqueId's size (NCCL_UNIQUE_ID_BYTES).
constexpr int NCCL_ID_BYTES = 128;

namespace cuda {

/// Where cuBLAS was loaded from (GROWLM_CUBLAS_PATH, libcublas.so.13 or libcublas.so.12),
/// loading it; throws CudaError naming the library and every attempt when none loads.
const char* cublas_origin();

/// NCCL's version code (NCCL_VERSION_CODE: 22105 for 2.21.5), loading the library.
int nccl_version();
/// Where NCCL was loaded from.
const char* nccl_origin();
/// A fresh unique id (ncclGetUniqueId) in id[0, NCCL_ID_BYTES): rank 0 makes it, every rank
/// passes it to nccl_comm_init.
void nccl_unique_id(uint8_t* id);
/// This rank's communicator on `device` (ncclCommInitRank); returns when every rank of the
/// clique has joined. Sets the calling thread's current device.
void* nccl_comm_init(const uint8_t* id, int nranks, int rank, int device);
/// Frees the communicator after its queued work (ncclCommDestroy).
void nccl_comm_destroy(void* comm);
/// Frees it at once, abandoning queued collectives (ncclCommAbort): after a failure.
void nccl_comm_abort(void* comm);
/// In-place all-reduce of `count` elements at `data` (a device pointer) on the communicator's
/// own stream, after the work queued so far on ctx's stream: it overlaps the compute queued
/// after it (which must not touch `data` until nccl_wait returns).
void nccl_all_reduce(void* comm, void* data, int64_t count, NcclType type, NcclReduce op, const CudaContext& ctx);
/// In-place broadcast from rank `root`, queued as nccl_all_reduce is.
void nccl_broadcast(void* comm, void* data, int64_t count, NcclType type, int root, const CudaContext& ctx);
/// ncclGroupStart / ncclGroupEnd: the collectives between them start as one.
void nccl_group_start();
void nccl_group_end();
/// Waits until the communicator's stream has run every collective queued so far, checking
/// comm for asynchronous errors; work queued on ctx's stream after it sees their results. Throws CudaError naming `what` on such an error or
/// when `timeout_ms` passes; the communicator is then unusable and the caller aborts it.
void nccl_wait(void* comm, const CudaContext& ctx, double timeout_ms, const char* what);

}  // namespace cuda
}  // namespace growlm
