// NCCL on CUDA devices (growlm/nccl.h), loaded at run time (nccl_api.h). Only nvcc's
// compilation defines anything: NCCL is not emulated (the emulated compilation of this file
// is empty), the "tcp" communicator covers the collectives' semantics on a CPU.
#include "common.cuh"

#ifndef GROWLM_CUDA_EMULATED

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "dynamic_library.h"
#include "growlm/cuda_libraries.h"
#include "nccl_api.h"

namespace growlm::cuda_libraries {

namespace {

// "2.21.5" for 22105 (NCCL_VERSION(X, Y, Z) is X*1000 + Y*100 + Z up to 2.8, X*10000 + Y*100 + Z after).
std::string version_text(int code) {
  const bool old = code < 10000;
  const int major = old ? code / 1000 : code / 10000;
  const int minor = old ? code / 100 % 10 : code / 100 % 100;
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(code % 100);
}

}  // namespace

const NcclApi& nccl_library() {
  static LazyApi<NcclApi> lazy;
  return lazy.get([] {
    const LoadedLibrary library =
        open_library({"NCCL", "GROWLM_NCCL_PATH", {"libnccl.so.2"},
                      "Install NCCL 2 (NVIDIA's libnccl2 package, or pip's nvidia-nccl-cu12)"});
    NcclApi api{};
    api.get_version = symbol<decltype(api.get_version)>(library, "NCCL", "ncclGetVersion");
    api.get_unique_id = symbol<decltype(api.get_unique_id)>(library, "NCCL", "ncclGetUniqueId");
    api.comm_init_rank = symbol<decltype(api.comm_init_rank)>(library, "NCCL", "ncclCommInitRank");
    api.comm_destroy = symbol<decltype(api.comm_destroy)>(library, "NCCL", "ncclCommDestroy");
    api.comm_abort = symbol<decltype(api.comm_abort)>(library, "NCCL", "ncclCommAbort");
    api.comm_get_async_error = symbol<decltype(api.comm_get_async_error)>(library, "NCCL", "ncclCommGetAsyncError");
    api.all_reduce = symbol<decltype(api.all_reduce)>(library, "NCCL", "ncclAllReduce");
    api.broadcast = symbol<decltype(api.broadcast)>(library, "NCCL", "ncclBroadcast");
    api.group_start = symbol<decltype(api.group_start)>(library, "NCCL", "ncclGroupStart");
    api.group_end = symbol<decltype(api.group_end)>(library, "NCCL", "ncclGroupEnd");
    api.error_string = symbol<decltype(api.error_string)>(library, "NCCL", "ncclGetErrorString");
    int version = 0;
    if (api.get_version(&version) != ncclSuccess || version < NCCL_MIN_VERSION) {
      throw CudaError("NCCL at " + library.path + " is version " + version_text(version) +
                      "; growlm needs NCCL 2.10 or later (bf16 all-reduce and ncclAvg)");
    }
    api.version = version;
    static std::string origin;
    origin = library.path;
    api.origin = origin.c_str();
    return api;
  });
}

}  // namespace growlm::cuda_libraries

namespace growlm::cuda {

namespace {

using namespace growlm::cuda_libraries;

void nccl_check(const char* call, ncclResult_t result) {
  if (result == ncclSuccess) return;
  throw CudaError(std::string(call) + " failed: " + nccl_library().error_string(result) + " (ncclResult_t " +
                  std::to_string(static_cast<int>(result)) + "; NCCL_DEBUG=WARN says more)");
}

// A communicator with a stream of its own, so collectives overlap the compute stream's work
// (DDP's gradient buckets are all-reduced while the backward computes earlier layers): a
// collective first makes the comm stream wait for the compute stream's work queued so far
// (the data it reduces is final there), then runs on the comm stream; nccl_wait waits for the
// comm stream from the host, after which later compute work sees the result.
struct NcclHandle {
  ncclComm_t comm = nullptr;
  int device = 0;
  cudaStream_t stream = nullptr;
  cudaEvent_t ready = nullptr;  // recorded on the compute stream before each collective
};

NcclHandle* as_handle(void* comm) { return static_cast<NcclHandle*>(comm); }
ncclComm_t as_comm(void* comm) { return as_handle(comm)->comm; }

void release_handle(NcclHandle* h) {
  cudaSetDevice(h->device);
  if (h->ready) cudaEventDestroy(h->ready);
  if (h->stream) cudaStreamDestroy(h->stream);
  delete h;
}

// Queues the comm stream behind the work queued so far on ctx's stream; returns the comm stream.
cudaStream_t comm_stream_after(void* comm, const CudaContext& ctx, const char* op) {
  NcclHandle* h = as_handle(comm);
  if (h->device != ctx.device) {
    throw CudaError(std::string(op) + ": the communicator is on cuda:" + std::to_string(h->device) + " but the buffer on cuda:" +
                    std::to_string(ctx.device));
  }
  GROWLM_CUDA_CHECK(op, cudaEventRecord(h->ready, cuda_stream(ctx)));
  GROWLM_CUDA_CHECK(op, cudaStreamWaitEvent(h->stream, h->ready, 0));
  return h->stream;
}

ncclDataType_t nccl_type(NcclType type) {
  switch (type) {
    case NcclType::f32: return ncclFloat32;
    case NcclType::bf16: return ncclBfloat16;
    case NcclType::f64: return ncclFloat64;
  }
  throw CudaError("nccl: unknown element type");
}

}  // namespace

int nccl_version() { return nccl_library().version; }

const char* nccl_origin() { return nccl_library().origin; }

void nccl_unique_id(uint8_t* id) {
  ncclUniqueId unique;
  nccl_check("ncclGetUniqueId", nccl_library().get_unique_id(&unique));
  static_assert(sizeof(unique) == NCCL_ID_BYTES, "ncclUniqueId is 128 bytes");
  std::memcpy(id, unique.internal, NCCL_ID_BYTES);
}

void* nccl_comm_init(const uint8_t* id, int nranks, int rank, int device) {
  const NcclApi& api = nccl_library();
  GROWLM_CUDA_CHECK("ncclCommInitRank", cudaSetDevice(device));
  ncclUniqueId unique;
  std::memcpy(unique.internal, id, NCCL_ID_BYTES);
  auto* h = new NcclHandle();
  h->device = device;
  try {
    GROWLM_CUDA_CHECK("ncclCommInitRank", cudaStreamCreateWithFlags(&h->stream, cudaStreamNonBlocking));
    GROWLM_CUDA_CHECK("ncclCommInitRank", cudaEventCreateWithFlags(&h->ready, cudaEventDisableTiming));
    nccl_check("ncclCommInitRank", api.comm_init_rank(&h->comm, nranks, unique, rank));
  } catch (...) {
    release_handle(h);
    throw;
  }
  return h;
}

void nccl_comm_destroy(void* comm) {
  const ncclResult_t r = nccl_library().comm_destroy(as_comm(comm));
  release_handle(as_handle(comm));
  nccl_check("ncclCommDestroy", r);
}

void nccl_comm_abort(void* comm) {
  const ncclResult_t r = nccl_library().comm_abort(as_comm(comm));
  release_handle(as_handle(comm));
  nccl_check("ncclCommAbort", r);
}

void nccl_all_reduce(void* comm, void* data, int64_t count, NcclType type, NcclReduce op, const CudaContext& ctx) {
  cudaStream_t stream = comm_stream_after(comm, ctx, "ncclAllReduce");
  nccl_check("ncclAllReduce", nccl_library().all_reduce(data, data, static_cast<size_t>(count), nccl_type(type),
                                                        op == NcclReduce::avg ? ncclAvg : ncclSum, as_comm(comm), stream));
}

void nccl_broadcast(void* comm, void* data, int64_t count, NcclType type, int root, const CudaContext& ctx) {
  cudaStream_t stream = comm_stream_after(comm, ctx, "ncclBroadcast");
  nccl_check("ncclBroadcast", nccl_library().broadcast(data, data, static_cast<size_t>(count), nccl_type(type), root,
                                                       as_comm(comm), stream));
}

void nccl_group_start() { nccl_check("ncclGroupStart", nccl_library().group_start()); }

void nccl_group_end() { nccl_check("ncclGroupEnd", nccl_library().group_end()); }

void nccl_wait(void* comm, const CudaContext& ctx, double timeout_ms, const char* what) {
  const NcclApi& api = nccl_library();
  GROWLM_CUDA_CHECK(what, cudaSetDevice(ctx.device));
  const auto start = std::chrono::steady_clock::now();
  // Poll rather than cudaStreamSynchronize: a collective whose peer died never completes,
  // and only NCCL's asynchronous error (or the timeout) says so.
  auto pause = std::chrono::microseconds(20);
  for (;;) {
    const cudaError_t e = cudaStreamQuery(as_handle(comm)->stream);
    if (e == cudaSuccess) return;
    if (e != cudaErrorNotReady) GROWLM_CUDA_CHECK(what, e);
    ncclResult_t async = ncclSuccess;
    nccl_check("ncclCommGetAsyncError", api.comm_get_async_error(as_comm(comm), &async));
    if (async != ncclSuccess && async != ncclInProgress) {
      throw CudaError(std::string(what) + ": NCCL reported " + api.error_string(async) +
                      " (a rank failed or left; NCCL_DEBUG=WARN says more)");
    }
    const double waited = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (waited > timeout_ms) {
      throw CudaError(std::string(what) + ": timed out after " + std::to_string(static_cast<long long>(timeout_ms / 1000)) +
                      " s waiting for the collective (a rank stopped calling collectives, or is much slower)");
    }
    std::this_thread::sleep_for(pause);
    if (pause < std::chrono::milliseconds(1)) pause *= 2;
  }
}

}  // namespace growlm::cuda

#endif  // GROWLM_CUDA_EMULATED
