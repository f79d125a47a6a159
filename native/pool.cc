#include "pool.h"

#include <algorithm>

namespace sae {

Range split(std::size_t n, int part, int parts, std::size_t align) {
  const std::size_t a = std::max<std::size_t>(align, 1);
  const std::size_t blocks = (n + a - 1) / a;
  const std::size_t b0 = blocks * static_cast<std::size_t>(part) / static_cast<std::size_t>(parts);
  const std::size_t b1 = blocks * static_cast<std::size_t>(part + 1) / static_cast<std::size_t>(parts);
  return {std::min(n, b0 * a), std::min(n, b1 * a)};
}

Pool& Pool::instance() {
  static Pool* pool = new Pool();  // leaked on purpose, see pool.h
  return *pool;
}

int Pool::threads() {
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  return static_cast<int>(workers_.size()) + 1;
}

void Pool::resize(int threads) {
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  if (static_cast<int>(workers_.size()) + 1 == threads) return;
  stop_workers();
  // A new worker may first run after the next job is posted: it must wait for jobs after this one.
  std::uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    generation = generation_;
  }
  workers_.reserve(static_cast<std::size_t>(threads - 1));
  for (int part = 1; part < threads; ++part) workers_.emplace_back([this, part, generation] { work(part, generation); });
}

void Pool::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  start_.notify_all();
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  std::lock_guard<std::mutex> lock(mutex_);
  stop_ = false;
}

void Pool::run(Task task, const void* ctx) {
  std::lock_guard<std::mutex> run_lock(run_mutex_);
  const int parts = static_cast<int>(workers_.size()) + 1;
  if (parts > 1) {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = task;
    ctx_ = ctx;
    parts_ = parts;
    pending_ = parts - 1;
    ++generation_;
  }
  start_.notify_all();
  task(ctx, 0, parts);
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [this] { return pending_ == 0; });
}

void Pool::work(int part, std::uint64_t seen) {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    start_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    const Task task = task_;
    const void* ctx = ctx_;
    const int parts = parts_;
    lock.unlock();
    task(ctx, part, parts);
    lock.lock();
    if (--pending_ == 0) done_.notify_one();
  }
}

}  // namespace sae
