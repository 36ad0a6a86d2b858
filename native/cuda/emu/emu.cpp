// The CUDA emulator's scheduler and runtime (see emu.h).
#include "emu.h"

#include <sys/mman.h>
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace growlm::emu {

namespace {

constexpr size_t STACK_BYTES = 256 * 1024;  // per emulated thread; kernels keep small locals
constexpr int MAX_THREADS = 1024;

enum class State { runnable, at_block_barrier, at_warp_barrier, done };

struct Fiber {
  ucontext_t context;
  void* stack = nullptr;
  ThreadCoords coords;
  int linear = 0;  // thread index within the block, x fastest
  State state = State::done;
};

// One launch at a time, process-wide: __shared__ statics and the fibers below are shared.
std::mutex launch_mutex;

struct Launch {
  std::vector<Fiber> fibers;
  ucontext_t scheduler;
  Fiber* current = nullptr;
  std::vector<uint64_t> exchange;  // 32 slots per warp
  std::vector<unsigned char> shared;
  void (*entry)(void*) = nullptr;
  void* arg = nullptr;
};

Launch* active = nullptr;
// Stacks are kept between launches: mapping 1024 of them costs more than most kernels.
std::vector<void*> stack_cache;

void* stack_at(size_t i) {
  while (stack_cache.size() <= i) {
    void* p = mmap(nullptr, STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("CUDA emulator: cannot map a fiber stack");
    stack_cache.push_back(p);
  }
  return stack_cache[i];
}

void fiber_main() {
  Launch* l = active;
  l->entry(l->arg);
  l->current->state = State::done;
  // returning resumes uc_link (the scheduler)
}

void yield_to_scheduler(State state) {
  Launch* l = active;
  Fiber* f = l->current;
  f->state = state;
  swapcontext(&f->context, &l->scheduler);
}

[[noreturn]] void barrier_error(const char* what, const dim3& block) {
  throw std::runtime_error(std::string("CUDA emulator: ") + what + " in block (" + std::to_string(block.x) + ", " +
                           std::to_string(block.y) + ", " + std::to_string(block.z) + ")");
}

// Runs one block's fibers until all are done, releasing barriers as they fill.
void run_block(Launch& l, int n_threads) {
  const int n_warps = (n_threads + 31) / 32;
  for (;;) {
    bool progressed = false;
    for (int i = 0; i < n_threads; ++i) {
      Fiber& f = l.fibers[i];
      if (f.state != State::runnable) continue;
      l.current = &f;
      swapcontext(&l.scheduler, &f.context);
      progressed = true;
    }
    if (progressed) continue;
    // Nothing runnable: release full warp barriers first, then a full block barrier.
    bool released = false;
    int done = 0, at_block = 0;
    for (int w = 0; w < n_warps; ++w) {
      const int begin = w * 32, end = std::min(n_threads, begin + 32);
      int at_warp = 0;
      for (int i = begin; i < end; ++i) at_warp += l.fibers[i].state == State::at_warp_barrier;
      if (at_warp == 0) continue;
      if (at_warp != end - begin) continue;
      for (int i = begin; i < end; ++i) l.fibers[i].state = State::runnable;
      released = true;
    }
    if (released) continue;
    for (int i = 0; i < n_threads; ++i) {
      done += l.fibers[i].state == State::done;
      at_block += l.fibers[i].state == State::at_block_barrier;
    }
    if (done == n_threads) return;
    if (at_block == n_threads) {
      for (int i = 0; i < n_threads; ++i) l.fibers[i].state = State::runnable;
      continue;
    }
    if (at_block > 0 && at_block + done == n_threads) barrier_error("__syncthreads() not reached by every thread (some returned)", l.fibers[0].coords.block_idx);
    barrier_error("a warp collective (shuffle, __syncwarp, wmma) not reached by all 32 lanes of a warp", l.fibers[0].coords.block_idx);
  }
}

thread_local cudaError_t last_error = cudaSuccess;

cudaError_t set_error(cudaError_t e) {
  if (e != cudaSuccess) last_error = e;
  return e;
}

// Separate and not inlined: getcontext returns twice, which would clobber the caller's loop
// variables.
__attribute__((noinline)) void start_fiber(Launch& l, uint64_t i, dim3 block_idx, dim3 block, dim3 grid) {
  Fiber& f = l.fibers[i];
  f.linear = static_cast<int>(i);
  f.coords.thread_idx = dim3(static_cast<unsigned>(i % block.x), static_cast<unsigned>((i / block.x) % block.y),
                             static_cast<unsigned>(i / (static_cast<uint64_t>(block.x) * block.y)));
  f.coords.block_idx = block_idx;
  f.coords.block_dim = block;
  f.coords.grid_dim = grid;
  f.state = State::runnable;
  getcontext(&f.context);
  f.context.uc_stack.ss_sp = stack_at(i);
  f.context.uc_stack.ss_size = STACK_BYTES;
  f.context.uc_link = &l.scheduler;
  makecontext(&f.context, fiber_main, 0);
}

}  // namespace

const ThreadCoords& coords() { return active->current->coords; }

int lane_id() { return active->current->linear % 32; }

void sync_block() { yield_to_scheduler(State::at_block_barrier); }

void sync_warp() { yield_to_scheduler(State::at_warp_barrier); }

uint64_t* warp_exchange() { return active->exchange.data() + (active->current->linear / 32) * 32; }

unsigned char* dynamic_shared() { return active->shared.data(); }

void run_grid(dim3 grid, dim3 block, size_t shared_bytes, void (*entry)(void*), void* arg) {
  const uint64_t n_threads = static_cast<uint64_t>(block.x) * block.y * block.z;
  if (n_threads == 0 || n_threads > MAX_THREADS || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 ||
      grid.z > 65535 || block.z > 64) {
    throw std::invalid_argument("CUDA emulator: invalid launch configuration (grid " + std::to_string(grid.x) + "x" +
                                std::to_string(grid.y) + "x" + std::to_string(grid.z) + ", block " + std::to_string(block.x) +
                                "x" + std::to_string(block.y) + "x" + std::to_string(block.z) + ")");
  }
  std::lock_guard<std::mutex> lock(launch_mutex);
  Launch l;
  l.fibers.resize(n_threads);
  l.exchange.assign(((n_threads + 31) / 32) * 32, 0);
  l.shared.resize(std::max<size_t>(shared_bytes, 16));
  l.entry = entry;
  l.arg = arg;
  Launch* previous = active;
  active = &l;
  struct Restore {
    Launch* previous;
    ~Restore() { active = previous; }
  } restore{previous};
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        std::memset(l.shared.data(), 0xff, l.shared.size());  // NaN in every float lane
        for (uint64_t i = 0; i < n_threads; ++i) start_fiber(l, i, dim3(bx, by, bz), block, grid);
        run_block(l, static_cast<int>(n_threads));
      }
}

}  // namespace growlm::emu

// ---- the runtime subset ----------------------------------------------------------------

using growlm::emu::set_error;

struct CUstream_st {};
struct CUevent_st {
  double ms = 0;
};

namespace {
double now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}
}  // namespace

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    default: return "unspecified launch failure";
  }
}
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    default: return "cudaErrorLaunchFailure";
  }
}
cudaError_t cudaGetLastError() {
  const cudaError_t e = growlm::emu::last_error;
  growlm::emu::last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return growlm::emu::last_error; }
cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : set_error(cudaErrorInvalidDevice); }
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return set_error(cudaErrorInvalidDevice);
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "growlm CUDA emulator (CPU)");
  prop->totalGlobalMem = size_t(8) << 30;
  prop->sharedMemPerBlock = 48 * 1024;
  prop->sharedMemPerBlockOptin = 227 * 1024;
  prop->multiProcessorCount = 1;
  prop->major = 9;
  prop->minor = 0;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* version) {
  *version = 0;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* version) {
  *version = 0;
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = std::aligned_alloc(256, (std::max<size_t>(bytes, 1) + 255) / 256 * 256);
  return *p ? cudaSuccess : set_error(cudaErrorMemoryAllocation);
}
cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  *free_bytes = size_t(8) << 30;
  *total_bytes = size_t(8) << 30;
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind, cudaStream_t) {
  for (size_t r = 0; r < height; ++r) std::memmove(static_cast<char*>(dst) + r * dpitch, static_cast<const char*>(src) + r * spitch, width);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (bytes) std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) { return cudaMemset(p, value, bytes); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  *stream = new CUstream_st();
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete stream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = new CUevent_st();
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) { return cudaEventCreate(event); }
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  event->ms = now_ms();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  *ms = static_cast<float>(end->ms - start->ms);
  return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }
