// Every kernel is a range function over whole rows (or aligned runs of elements) handed to
// parallel_for: one thread owns each output, and row sums use a fixed order (eight lanes by column
// index, then a fixed tree), so results are bitwise the same for any thread count and with or
// without the AVX2 clones (no fast-math, no FMA contraction: see binding.gyp).
#include "kernels.h"

#include <cmath>
#include <cstring>

#include "pool.h"

// GCC function multi-versioning: an AVX2 and a baseline copy, chosen at load time (needs ifunc,
// hence glibc on x86-64 Linux). The build itself stays portable: no -march.
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__) && \
    (!defined(__clang__) || __clang_major__ >= 14)
#define SAE_CLONES __attribute__((target_clones("avx2", "default")))
#define SAE_HAVE_CLONES 1
#else
#define SAE_CLONES
#define SAE_HAVE_CLONES 0
#endif

namespace sae {
namespace {

constexpr std::size_t kAlign = 16;  // elementwise ranges start on 64-byte boundaries of the index
constexpr std::size_t kLanes = 8;   // independent accumulators in a row sum

// The lanes of a row sum, combined in a fixed tree.
inline double combine(const double* s) {
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

// x: [n] -> sum x^2 in double (products are exact; the order depends only on n).
inline double sum_squares(const float* x, std::size_t n) {
  double s[kLanes] = {};
  std::size_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    for (std::size_t j = 0; j < kLanes; ++j) s[j] += static_cast<double>(x[c + j]) * x[c + j];
  }
  double t = combine(s);
  for (; c < n; ++c) t += static_cast<double>(x[c]) * x[c];
  return t;
}

// a, b: [n] -> (a . b, b . b) in double, same fixed order as sum_squares.
inline void dot_and_norm(const float* a, const float* b, std::size_t n, double& dot, double& nn) {
  double d[kLanes] = {};
  double q[kLanes] = {};
  std::size_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    for (std::size_t j = 0; j < kLanes; ++j) {
      d[j] += static_cast<double>(a[c + j]) * b[c + j];
      q[j] += static_cast<double>(b[c + j]) * b[c + j];
    }
  }
  dot = combine(d);
  nn = combine(q);
  for (; c < n; ++c) {
    dot += static_cast<double>(a[c]) * b[c];
    nn += static_cast<double>(b[c]) * b[c];
  }
}

// Adam's scalars in float32, as torch casts its Python-double scalars for a float tensor.
struct AdamConsts {
  float beta1;
  float one_minus_beta1;
  float beta2;
  float one_minus_beta2;
  float sqrt_c2;  // sqrt(1 - beta2^step)
  float eps;
  float neg_step_size;  // -lr / (1 - beta1^step)
};

AdamConsts adam_consts(const AdamHyper& h, double step) {
  const double c1 = 1.0 - std::pow(h.beta1, step);
  const double c2 = 1.0 - std::pow(h.beta2, step);
  return {static_cast<float>(h.beta1), static_cast<float>(1.0 - h.beta1),
          static_cast<float>(h.beta2), static_cast<float>(1.0 - h.beta2),
          static_cast<float>(std::sqrt(c2)), static_cast<float>(h.eps),
          static_cast<float>(-(h.lr / c1))};
}

// torch: m.mul_(b1).add_(g, 1-b1); v.mul_(b2).addcmul_(g, g, 1-b2);
//        denom = v.sqrt() / sqrt(c2) + eps; param.addcdiv_(m, denom, -lr/c1)
SAE_CLONES void adam_range(float* __restrict param, const float* __restrict grad, float* __restrict m,
                           float* __restrict v, const AdamConsts& k, std::size_t begin, std::size_t end) {
  for (std::size_t i = begin; i < end; ++i) {
    const float g = grad[i];
    const float mi = k.beta1 * m[i] + k.one_minus_beta1 * g;
    const float vi = k.beta2 * v[i] + (k.one_minus_beta2 * g) * g;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) / k.sqrt_c2 + k.eps;
    param[i] = param[i] + (k.neg_step_size * mi) / denom;
  }
}

SAE_CLONES void row_norms_range(const float* w, std::size_t cols, float* out, std::size_t begin, std::size_t end) {
  for (std::size_t r = begin; r < end; ++r) out[r] = static_cast<float>(std::sqrt(sum_squares(w + r * cols, cols)));
}

SAE_CLONES void normalize_rows_range(float* w, std::size_t cols, double target, std::size_t begin, std::size_t end) {
  for (std::size_t r = begin; r < end; ++r) {
    float* row = w + r * cols;
    const double s = sum_squares(row, cols);
    if (s == 0) continue;
    const double k = target / std::sqrt(s);
    for (std::size_t c = 0; c < cols; ++c) row[c] = static_cast<float>(row[c] * k);
  }
}

SAE_CLONES void remove_parallel_range(float* __restrict grad, const float* __restrict w, std::size_t cols,
                                      std::size_t begin, std::size_t end) {
  for (std::size_t r = begin; r < end; ++r) {
    float* g = grad + r * cols;
    const float* wr = w + r * cols;
    double dot = 0;
    double nn = 0;
    dot_and_norm(g, wr, cols, dot, nn);
    if (nn == 0) continue;
    const double k = dot / nn;
    for (std::size_t c = 0; c < cols; ++c) g[c] = static_cast<float>(g[c] - k * wr[c]);
  }
}

SAE_CLONES void scale_range(float* x, double s, std::size_t begin, std::size_t end) {
  for (std::size_t i = begin; i < end; ++i) x[i] = static_cast<float>(x[i] * s);
}

// A float is NaN or infinite iff its exponent bits are all ones.
SAE_CLONES void non_finite_range(const float* x, std::size_t cols, std::uint8_t* out, std::size_t begin,
                                 std::size_t end) {
  constexpr std::uint32_t kExponent = 0x7f800000u;
  for (std::size_t r = begin; r < end; ++r) {
    const float* row = x + r * cols;
    std::uint32_t bad = 0;
    for (std::size_t c = 0; c < cols; ++c) {
      std::uint32_t bits;
      std::memcpy(&bits, row + c, sizeof bits);
      bad |= static_cast<std::uint32_t>((bits & kExponent) == kExponent);
    }
    out[r] = static_cast<std::uint8_t>(bad);
  }
}

}  // namespace

void adam(float* param, const float* grad, float* m, float* v, std::size_t n, const AdamHyper& h, double step) {
  const AdamConsts k = adam_consts(h, step);
  parallel_for(n, kAlign, n, [&](std::size_t b, std::size_t e) { adam_range(param, grad, m, v, k, b, e); });
}

void row_norms(const float* w, std::size_t rows, std::size_t cols, float* out) {
  parallel_for(rows, 1, rows * cols, [&](std::size_t b, std::size_t e) { row_norms_range(w, cols, out, b, e); });
}

void normalize_rows(float* w, std::size_t rows, std::size_t cols, double target) {
  parallel_for(rows, 1, rows * cols, [&](std::size_t b, std::size_t e) { normalize_rows_range(w, cols, target, b, e); });
}

void remove_parallel_component(float* grad, const float* w, std::size_t rows, std::size_t cols) {
  parallel_for(rows, 1, rows * cols, [&](std::size_t b, std::size_t e) { remove_parallel_range(grad, w, cols, b, e); });
}

void scale(float* x, std::size_t n, double s) {
  parallel_for(n, kAlign, n, [&](std::size_t b, std::size_t e) { scale_range(x, s, b, e); });
}

std::size_t non_finite_rows(const float* x, std::size_t rows, std::size_t cols, std::uint8_t* out) {
  parallel_for(rows, 1, rows * cols, [&](std::size_t b, std::size_t e) { non_finite_range(x, cols, out, b, e); });
  std::size_t count = 0;
  for (std::size_t r = 0; r < rows; ++r) count += out[r];
  return count;
}

const char* simd() {
#if SAE_HAVE_CLONES
  return __builtin_cpu_supports("avx2") ? "avx2" : "baseline";
#else
  return "baseline";
#endif
}

}  // namespace sae
