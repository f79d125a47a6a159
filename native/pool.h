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

// Calls body(part, parts) once for every pool thread (part 0 on the calling thread), or body(0, 1)
// inline when `work` (elements touched) is below kInlineWork.
template <class Body>
void parallel_parts(std::size_t work, const Body& body) {
  if (work < kInlineWork) {
    body(0, 1);
    return;
  }
  Pool::instance().run([](const void* ctx, int part, int parts) { (*static_cast<const Body*>(ctx))(part, parts); },
                       &body);
}

// Runs body(begin, end) over contiguous ranges covering [0, items), one range per pool thread
// (boundaries on multiples of `align`); `work` (elements touched) below kInlineWork runs inline.
template <class Body>
void parallel_for(std::size_t items, std::size_t align, std::size_t work, const Body& body) {
  if (items == 0) return;
  parallel_parts(work, [&](int part, int parts) {
    const Range r = split(items, part, parts, align);
    if (r.begin < r.end) body(r.begin, r.end);
  });
}

// [0, n) cut into `parts` contiguous ranges of about equal weight: cum(i) is the weight of items
// [0, i) (nondecreasing, cum(0) = 0); boundaries fall on multiples of `align` (or n). Which range
// an item lands in never changes what is computed for it, only who computes it.
template <class Cum>
Range split_weighted(std::size_t n, int part, int parts, std::size_t align, const Cum& cum) {
  const std::size_t a = align > 0 ? align : 1;
  const std::size_t blocks = (n + a - 1) / a;
  const double total = static_cast<double>(cum(n));
  // The first block boundary b (in [0, blocks]) whose weight reaches total * p / parts.
  const auto boundary = [&](int p) -> std::size_t {
    if (p <= 0) return 0;
    if (p >= parts) return blocks;
    const double target = total * p / parts;
    std::size_t lo = 0;
    std::size_t hi = blocks;
    while (lo < hi) {
      const std::size_t mid = lo + (hi - lo) / 2;
      const std::size_t at = mid * a < n ? mid * a : n;
      if (static_cast<double>(cum(at)) < target) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  };
  const std::size_t b0 = boundary(part);
  const std::size_t b1 = boundary(part + 1);
  return {b0 * a < n ? b0 * a : n, b1 * a < n ? b1 * a : n};
}

// parallel_for with ranges of about equal weight (see split_weighted).
template <class Cum, class Body>
void parallel_for_weighted(std::size_t items, std::size_t align, std::size_t work, const Cum& cum, const Body& body) {
  if (items == 0) return;
  parallel_parts(work, [&](int part, int parts) {
    const Range r = split_weighted(items, part, parts, align, cum);
    if (r.begin < r.end) body(r.begin, r.end);
  });
}

}  // namespace sae
