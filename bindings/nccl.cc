// binding.cuda's NCCL functions (growlm/cuda_libraries.h; src/train/comm-nccl.ts uses them):
// the library's version, unique ids, communicators (NcclComm objects) and in-place
// collectives on DeviceBuffers, queued on the device's stream.
//
// NCCL exists only in nvcc's compilation and is not emulated: under GROWLM_CUDA_EMULATE=1 the
// functions that touch a device refuse, naming the "tcp" communicator; ncclVersion and
// ncclUniqueId only load the library, so the missing-library error shows everywhere.
#include <algorithm>
#include <cstring>
#include <string>

#include "addon.h"
#include "cuda_args.h"
#include "growlm/cuda_libraries.h"

namespace growlm::bindings {

namespace {

#ifdef GROWLM_HAVE_CUDA

constexpr napi_type_tag NCCL_COMM_TAG = {0x67726f776c6d2d6eull, 0x63636c636f6d6d31ull};

void refuse_emulated(Napi::Env env) {
  if (cuda_contexts(env).emulated()) {
    throw CudaError(
        "NCCL is not emulated: with GROWLM_CUDA_EMULATE=1 the devices are the CPU emulator, which NCCL cannot reach; "
        "the \"tcp\" communicator (--ddp_backend tcp) runs the same collectives on the CPU");
  }
}

/// One rank's communicator; the JS object is `{ rank, nranks, device, destroy(), abort() }`.
class NcclComm : public Napi::ObjectWrap<NcclComm> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NcclComm",
                       {InstanceMethod<&NcclComm::Destroy>("destroy"), InstanceMethod<&NcclComm::Abort>("abort"),
                        InstanceAccessor<&NcclComm::Rank>("rank"), InstanceAccessor<&NcclComm::Nranks>("nranks"),
                        InstanceAccessor<&NcclComm::Device>("device"),
                        InstanceAccessor<&NcclComm::Closed>("closed")});
  }

  explicit NcclComm(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NcclComm>(info) {
    info.This().As<Napi::Object>().TypeTag(&NCCL_COMM_TAG);
  }

  // A communicator left to the garbage collector is aborted: destroying it would wait for
  // peers that may be gone.
  ~NcclComm() override {
    if (comm != nullptr) {
      try {
        cuda::nccl_comm_abort(comm);
      } catch (const std::exception&) {
        // Nothing to report to at collection time.
      }
    }
  }

  /// Aborts after a failure (the communicator is unusable then) and forgets it.
  void abort_now() {
    void* c = comm;
    comm = nullptr;
    if (c != nullptr) cuda::nccl_comm_abort(c);
  }

  void* comm = nullptr;
  int rank = 0, nranks = 0, device = 0;

 private:
  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    void* c = comm;
    comm = nullptr;
    if (c != nullptr) cuda::nccl_comm_destroy(c);
    return info.Env().Undefined();
  }
  Napi::Value Abort(const Napi::CallbackInfo& info) {
    abort_now();
    return info.Env().Undefined();
  }
  Napi::Value Rank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), rank); }
  Napi::Value Nranks(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), nranks); }
  Napi::Value Device(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), device); }
  Napi::Value Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), comm == nullptr); }
};

NcclComm& live_comm(const Args& args, size_t i) {
  Napi::Value v = args.info_value(i);
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&NCCL_COMM_TAG)) {
    args.type_error("expected an NcclComm (from ncclCommInit) for \"comm\"");
  }
  NcclComm& comm = *NcclComm::Unwrap(v.As<Napi::Object>());
  if (comm.comm == nullptr) args.range_error("the NcclComm was destroyed or aborted");
  return comm;
}

// ncclCommInitRank on a worker thread: it returns only when every rank has joined, and rank
// 0's event loop must keep serving the rendezvous store meanwhile.
class CommInitWorker : public Napi::AsyncWorker {
 public:
  CommInitWorker(Napi::Env env, const uint8_t* id, int nranks, int rank, int device)
      : Napi::AsyncWorker(env, "ncclCommInit"), deferred_(Napi::Promise::Deferred::New(env)), nranks_(nranks),
        rank_(rank), device_(device) {
    std::memcpy(id_, id, NCCL_ID_BYTES);
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      comm_ = cuda::nccl_comm_init(id_, nranks_, rank_, device_);
    } catch (const std::exception& e) {
      SetError(std::string("ncclCommInit: ") + e.what());
    }
  }
  void OnOK() override {
    Napi::Object obj = cuda_contexts(Env()).nccl_comm_class.New({});
    NcclComm& comm = *NcclComm::Unwrap(obj);
    comm.comm = comm_;
    comm.rank = rank_;
    comm.nranks = nranks_;
    comm.device = device_;
    deferred_.Resolve(obj);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  uint8_t id_[NCCL_ID_BYTES];
  int nranks_, rank_, device_;
  void* comm_ = nullptr;
};

NcclType element_type(const Args& args, size_t i, int64_t* bytes) {
  const std::string t = args.string(i, "dtype");
  if (t == "float32") return *bytes = 4, NcclType::f32;
  if (t == "bfloat16") return *bytes = 2, NcclType::bf16;
  if (t == "float64") return *bytes = 8, NcclType::f64;
  args.type_error("expected \"dtype\" to be \"float32\", \"bfloat16\" or \"float64\" but received \"" + t + "\"");
}

// The device pointer of argument i: `count` elements of `bytes` each, exactly, on comm's device.
void* comm_buffer(const Args& args, size_t i, const NcclComm& comm, int64_t count, int64_t bytes) {
  DeviceRange* r = device_range(args.info_value(i));
  if (!r) args.type_error("expected a DeviceBuffer for \"buffer\"");
  if (!r->allocation->ptr) args.range_error("\"buffer\" was freed");
  if (r->byte_length != static_cast<size_t>(count * bytes)) {
    args.range_error("expected a DeviceBuffer of " + std::to_string(count * bytes) + " bytes (count = " +
                     std::to_string(count) + ") for \"buffer\" but received " + std::to_string(r->byte_length));
  }
  if (r->allocation->device != comm.device) {
    args.range_error("\"buffer\" is on cuda:" + std::to_string(r->allocation->device) + " but the communicator on cuda:" +
                     std::to_string(comm.device));
  }
  return static_cast<uint8_t*>(r->allocation->ptr) + r->byte_offset;
}

// ncclVersion(): NCCL's version code, loading the library.
Napi::Value NcclVersion(const Napi::CallbackInfo& info) {
  Args args(info, "ncclVersion", 0);
  return Napi::Number::New(info.Env(), cuda::nccl_version());
}

// ncclLibrary(): where NCCL was loaded from.
Napi::Value NcclLibrary(const Napi::CallbackInfo& info) {
  Args args(info, "ncclLibrary", 0);
  return Napi::String::New(info.Env(), cuda::nccl_origin());
}

// ncclUniqueId(): a new Uint8Array(128).
Napi::Value NcclUniqueId(const Napi::CallbackInfo& info) {
  Args args(info, "ncclUniqueId", 0);
  Napi::Uint8Array id = Napi::Uint8Array::New(info.Env(), NCCL_ID_BYTES);
  cuda::nccl_unique_id(id.Data());
  return id;
}

// ncclCommInit(id: Uint8Array(128), nranks, rank, device): Promise<NcclComm>.
Napi::Value NcclCommInit(const Napi::CallbackInfo& info) {
  Args args(info, "ncclCommInit", 4);
  const uint8_t* id = args.u8(0, "id", NCCL_ID_BYTES, ShapeText("NCCL_UNIQUE_ID_BYTES"));
  const int nranks = static_cast<int>(args.integer(1, "nranks", 1, 1 << 20));
  const int rank = static_cast<int>(args.integer(2, "rank", 0, nranks - 1));
  refuse_emulated(info.Env());
  const int device = static_cast<int>(args.integer(3, "device", 0, std::max(0, cuda_contexts(info.Env()).device_count() - 1)));
  cuda_contexts(info.Env()).get(device);  // the device's context (and stream) exists before any collective
  cuda::nccl_version();                   // a missing library fails here, not on the worker
  auto* worker = new CommInitWorker(info.Env(), id, nranks, rank, device);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// ncclAllReduce(comm, buffer, count, dtype, op: "sum" | "avg"): in place, queued.
Napi::Value NcclAllReduce(const Napi::CallbackInfo& info) {
  Args args(info, "ncclAllReduce", 5);
  NcclComm& comm = live_comm(args, 0);
  const int64_t count = args.size(2, "count", 0);
  int64_t bytes = 0;
  const NcclType type = element_type(args, 3, &bytes);
  const std::string op = args.string(4, "op");
  if (op != "sum" && op != "avg") args.type_error("expected \"op\" to be \"sum\" or \"avg\" but received \"" + op + "\"");
  void* data = comm_buffer(args, 1, comm, count, bytes);
  const CudaContext& ctx = cuda_contexts(info.Env()).get(comm.device);
  cuda::nccl_all_reduce(comm.comm, data, count, type, op == "avg" ? NcclReduce::avg : NcclReduce::sum, ctx);
  return info.Env().Undefined();
}

// ncclBroadcast(comm, buffer, count, dtype, root): in place, queued.
Napi::Value NcclBroadcast(const Napi::CallbackInfo& info) {
  Args args(info, "ncclBroadcast", 5);
  NcclComm& comm = live_comm(args, 0);
  const int64_t count = args.size(2, "count", 0);
  int64_t bytes = 0;
  const NcclType type = element_type(args, 3, &bytes);
  const int root = static_cast<int>(args.integer(4, "root", 0, comm.nranks - 1));
  void* data = comm_buffer(args, 1, comm, count, bytes);
  const CudaContext& ctx = cuda_contexts(info.Env()).get(comm.device);
  cuda::nccl_broadcast(comm.comm, data, count, type, root, ctx);
  return info.Env().Undefined();
}

Napi::Value NcclGroupStart(const Napi::CallbackInfo& info) {
  Args args(info, "ncclGroupStart", 0);
  cuda::nccl_group_start();
  return info.Env().Undefined();
}

Napi::Value NcclGroupEnd(const Napi::CallbackInfo& info) {
  Args args(info, "ncclGroupEnd", 0);
  cuda::nccl_group_end();
  return info.Env().Undefined();
}

// ncclWait(comm, timeoutSeconds): blocks until the communicator's stream has run every queued
// collective; on an NCCL error or the timeout aborts the communicator and throws.
Napi::Value NcclWait(const Napi::CallbackInfo& info) {
  Args args(info, "ncclWait", 2);
  NcclComm& comm = live_comm(args, 0);
  const double timeout = args.finite(1, "timeoutSeconds");
  if (!(timeout > 0)) args.range_error("expected \"timeoutSeconds\" > 0");
  const CudaContext& ctx = cuda_contexts(info.Env()).get(comm.device);
  try {
    cuda::nccl_wait(comm.comm, ctx, timeout * 1000, "ncclWait");
  } catch (const std::exception&) {
    comm.abort_now();
    throw;
  }
  return info.Env().Undefined();
}

#else

Napi::Value WithoutNvcc(const Napi::CallbackInfo& info) {
  throw CudaError("the addon was built without nvcc, so it has no CUDA backend for NCCL (libnccl.so.2) to run on");
}

#endif

}  // namespace

void InitNccl(Napi::Env env, Napi::Object exports) {
  Napi::Object cuda = cuda_exports(env, exports);
#ifdef GROWLM_HAVE_CUDA
  CudaContexts& contexts = cuda_contexts(env);
  contexts.nccl_comm_class = Napi::Persistent(NcclComm::Define(env));
  contexts.nccl_comm_class.SuppressDestruct();  // lives as long as the environment
  bind(env, cuda, "ncclVersion", NcclVersion);
  bind(env, cuda, "ncclLibrary", NcclLibrary);
  bind(env, cuda, "ncclUniqueId", NcclUniqueId);
  bind(env, cuda, "ncclCommInit", NcclCommInit);
  bind(env, cuda, "ncclAllReduce", NcclAllReduce);
  bind(env, cuda, "ncclBroadcast", NcclBroadcast);
  bind(env, cuda, "ncclGroupStart", NcclGroupStart);
  bind(env, cuda, "ncclGroupEnd", NcclGroupEnd);
  bind(env, cuda, "ncclWait", NcclWait);
#else
  for (const char* name : {"ncclVersion", "ncclLibrary", "ncclUniqueId", "ncclCommInit", "ncclAllReduce", "ncclBroadcast",
                           "ncclGroupStart", "ncclGroupEnd", "ncclWait"}) {
    bind(env, cuda, name, WithoutNvcc);
  }
#endif
}

}  // namespace growlm::bindings
