// ThreadPool: see growlm/threads.h for the contract.
#include "growlm/threads.h"

#include <chrono>
#include <stdexcept>

namespace growlm {

namespace {
// Set while a thread executes a job; a nested run() then executes inline.
thread_local bool in_job = false;

// How long a waiting thread spins before it sleeps (see threads.h).
constexpr auto SPIN_MICROSECONDS = std::chrono::microseconds(100);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins until done() holds or the spin budget is spent; returns whether done() holds.
template <class Done>
bool spin_until(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + SPIN_MICROSECONDS;
  for (int i = 0;; ++i) {
    if (done()) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) return done();
  }
}
}  // namespace

ThreadPool::ThreadPool(int threads) { start(threads); }

ThreadPool::~ThreadPool() { stop(); }

void ThreadPool::start(int threads) {
  if (threads < 1) throw std::invalid_argument("thread count must be >= 1");
  stopping_ = false;
  stop_flag_.store(false, std::memory_order_relaxed);
  // A new worker has seen every job so far: started with generation 0 after a resize, it
  // would take the last finished job for a new one and unbalance active_workers_.
  for (int i = 1; i < threads; ++i) {
    workers_.emplace_back([this, i, seen = generation_] { worker_loop(i, seen); });
  }
}

void ThreadPool::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    stop_flag_.store(true, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
}

void ThreadPool::resize(int threads) {
  if (threads < 1) throw std::invalid_argument("thread count must be >= 1");
  if (in_job) throw std::logic_error("ThreadPool::resize called from inside a job");
  if (threads == size()) return;
  stop();
  start(threads);
}

void ThreadPool::work(int thread) {
  const bool was_in_job = in_job;
  in_job = true;
  for (;;) {
    const int64_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) break;
    (*job_)(task, thread);
  }
  in_job = was_in_job;
}

void ThreadPool::worker_loop(int index, uint64_t seen) {
  for (;;) {
    spin_until([&] {
      return posted_.load(std::memory_order_acquire) != seen || stop_flag_.load(std::memory_order_acquire);
    });
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
    }
    work(index);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      running_.store(active_workers_ - 1, std::memory_order_release);
      if (--active_workers_ == 0) done_.notify_one();
    }
  }
}

void ThreadPool::run(int64_t n_tasks, const std::function<void(int64_t, int)>& fn) {
  if (n_tasks <= 0) return;
  if (in_job || workers_.empty() || n_tasks == 1) {
    const bool was_in_job = in_job;
    in_job = true;
    for (int64_t t = 0; t < n_tasks; ++t) fn(t, 0);
    in_job = was_in_job;
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    n_tasks_ = n_tasks;
    next_task_.store(0, std::memory_order_relaxed);
    active_workers_ = static_cast<int>(workers_.size());
    running_.store(active_workers_, std::memory_order_relaxed);
    ++generation_;
    posted_.store(generation_, std::memory_order_release);
  }
  wake_.notify_all();
  // Exceptions must not escape while workers still run the job: kernels validate
  // before they parallelise, so fn is noexcept in practice; enforce it here.
  try {
    work(0);
  } catch (...) {
    std::unique_lock<std::mutex> lock(mutex_);
    next_task_.store(n_tasks_, std::memory_order_relaxed);
    done_.wait(lock, [&] { return active_workers_ == 0; });
    job_ = nullptr;
    throw;
  }
  spin_until([&] { return running_.load(std::memory_order_acquire) == 0; });
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return active_workers_ == 0; });
  job_ = nullptr;
}

}  // namespace growlm
