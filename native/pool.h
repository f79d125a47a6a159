// A persistent thread pool with static partitioning.
//
// The pool holds `threads() - 1` workers; the calling thread is part 0 of every job. A job over
// `items` is cut into one contiguous range per thread, so every output row/element has exactly one
// owner and every reduction over a row runs on one thread in a fixed order: results do not depend
// on the thread count. Small jobs run on the calling thread alone.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace sae {

// Below this much work (elements touched) a job runs on the calling thread: waking the pool costs more.
constexpr std::size_t kInlineWork = std::size_t{1} << 15;

struct Range {
  std::size_t begin;
  std::size_t end;
};

// [0, n) -> the part-th of `parts` contiguous ranges; boundaries fall on multiples of `align`.
Range split(std::size_t n, int part, int parts, std::size_t align);

class Pool {
 public:
  using Task = void (*)(const void* ctx, int part, int parts);

  // The process-wide pool (shared by every Node environment, never destroyed: threads must not be
  // joined from static destructors at exit).
  static Pool& instance();

  // Total threads, calling thread included; resize(n) joins the old workers and starts n - 1 new ones.
  void resize(int threads);
  int threads();

  // Calls task(ctx, part, parts) for every part in [0, parts), part 0 on the calling thread; returns
  // when all parts are done. One job at a time: concurrent callers (worker_threads) queue here.
  void run(Task task, const void* ctx);

 private:
  Pool() = default;
  void stop_workers();
  void work(int part, std::uint64_t seen);  // worker loop: runs part `part` of every job after `seen`

  std::mutex run_mutex_;  // held for a whole job or resize
  std::mutex mutex_;      // guards the fields below
  std::condition_variable start_;
  std::condition_variable done_;
  std::vector<std::thread> workers_;
  Task task_ = nullptr;
  const void* ctx_ = nullptr;
  int parts_ = 1;
  std::uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
};

// Runs body(begin, end) over contiguous ranges covering [0, items), one range per pool thread
// (boundaries on multiples of `align`); `work` (elements touched) below kInlineWork runs inline.
template <class Body>
void parallel_for(std::size_t items, std::size_t align, std::size_t work, const Body& body) {
  if (items == 0) return;
  if (work < kInlineWork) {
    body(std::size_t{0}, items);
    return;
  }
  struct Job {
    std::size_t items;
    std::size_t align;
    const Body* body;
  };
  const Job job{items, align, &body};
  Pool::instance().run(
      [](const void* ctx, int part, int parts) {
        const Job& j = *static_cast<const Job*>(ctx);
        const Range r = split(j.items, part, parts, j.align);
        if (r.begin < r.end) (*j.body)(r.begin, r.end);
      },
      &job);
}

}  // namespace sae
