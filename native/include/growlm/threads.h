// A persistent worker pool. The calling thread takes part in every job, so a pool of
// size 1 runs everything inline with no synchronisation at all.
//
// Determinism contract: tasks are claimed dynamically, so a kernel must make each
// task's result independent of which thread runs it and of the thread count (fixed
// task boundaries, per-task partial results combined in task order).
//
// Waiting: a worker that finishes a job, and the caller waiting for the workers, first spin
// for up to SPIN_MICROSECONDS before sleeping on a condition variable. Waking a sleeping
// thread costs tens of microseconds (a futex round trip, more in a VM), which dominated the
// back-to-back small jobs of incremental decoding (~60 kernel calls per generated token).
#pragma once
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "growlm/context.h"

namespace growlm {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  /// Changes the number of threads (>= 1). Not callable from inside a job.
  void resize(int threads);
  /// Runs fn(task, thread) for every task in [0, n_tasks); thread is in [0, size()).
  /// Returns when all tasks are done. A call from inside a job runs inline.
  void run(int64_t n_tasks, const std::function<void(int64_t task, int thread)>& fn);

 private:
  void start(int threads);
  void stop();
  void worker_loop(int index, uint64_t seen);
  void work(int thread);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  const std::function<void(int64_t, int)>* job_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
  int active_workers_ = 0;
  // Mirrors of generation_ and active_workers_ that spinning threads read without the lock.
  std::atomic<uint64_t> posted_{0};
  std::atomic<int> running_{0};
  std::atomic<bool> stop_flag_{false};
};

/// Splits [0, n) into ceil(n / grain) fixed chunks and runs fn(begin, end) for each.
/// Chunk boundaries depend only on n and grain, never on the thread count.
template <class F>
inline void parallel_for(const Context& ctx, int64_t n, int64_t grain, F&& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int64_t chunks = (n + grain - 1) / grain;
  if (chunks == 1 || ctx.pool->size() == 1) {
    for (int64_t c = 0; c < chunks; ++c) fn(c * grain, std::min(n, (c + 1) * grain));
    return;
  }
  ctx.pool->run(chunks, [&](int64_t c, int) { fn(c * grain, std::min(n, (c + 1) * grain)); });
}

}  // namespace growlm
