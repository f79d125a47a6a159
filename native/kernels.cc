// Every kernel is a range function over whole rows (or aligned runs of elements, or latents) handed
// to parallel_for: one thread owns each output, and row sums use a fixed order (eight lanes by column
// index, then a fixed tree), so results are bitwise the same for any thread count and with or
// without the AVX2 clones (no fast-math, no FMA contraction: see binding.gyp).
//
// Sums against the float64 reference (src/engine/reference.ts):
// - columnSums, sparseDecode, sparseScatter, sparseScatterSum and subtract's out: the reference's
//   own order in double (rows in order; entries in order), hence its results bit for bit (a latent
//   with no entry is left as it is under accumulate, where the reference adds +0: -0 stays -0).
// - subtract's and centeredSumSquares' totals, sparseGatherDot: another fixed order in double.
// The scatters and the gathered dots group the entries by latent first (a stable counting sort),
// then each thread owns a run of latents: no two threads write the same output, nothing is atomic,
// and each row of the [dSae, dIn] matrix is read or written once. The decode owns rows instead
// (each output row sums its own entries), so it reads rows of w at random: it is bound by memory.
#include "kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "pool.h"
#if defined(__SSE2__)
#include <immintrin.h>  // _mm_stream_ps, _mm_sfence (SSE, part of every x86-64)
#define SAE_STREAM_STORES 1
#else
#define SAE_STREAM_STORES 0
#endif

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

// a, b: [n] -> a . b in double (products are exact; the order depends only on n): eight lanes by
// index combined by `combine`, then the tail in order.
__attribute__((always_inline)) inline double dot(const float* a, const float* b, std::size_t n) {
  double s[kLanes] = {};
  std::size_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    for (std::size_t j = 0; j < kLanes; ++j) s[j] += static_cast<double>(a[c + j]) * b[c + j];
  }
  double t = combine(s);
  for (; c < n; ++c) t += static_cast<double>(a[c]) * b[c];
  return t;
}

// x: [n] -> sum x^2 in double.
inline double sum_squares(const float* x, std::size_t n) { return dot(x, x, n); }

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

// ---------------------------------------------------------------- dense helpers of the sparse step

constexpr std::size_t kSumBlock = 4096;  // subtract: one partial sum per block of the index (a multiple of kLanes)

// a, b, out: [n], out = a - b (out may be a or b: each chunk is read before it is written);
// returns sum(out^2) in double, in lanes combined by `combine`, then the tail in order.
SAE_CLONES double subtract_block(const float* a, const float* b, float* out, std::size_t n) {
  double s[kLanes] = {};
  std::size_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    float t[kLanes];
    for (std::size_t j = 0; j < kLanes; ++j) t[j] = a[c + j] - b[c + j];
    for (std::size_t j = 0; j < kLanes; ++j) s[j] += static_cast<double>(t[j]) * t[j];
    for (std::size_t j = 0; j < kLanes; ++j) out[c + j] = t[j];
  }
  double total = combine(s);
  for (; c < n; ++c) {
    const float t = a[c] - b[c];
    out[c] = t;
    total += static_cast<double>(t) * t;
  }
  return total;
}

// x: [rows, cols], columns [c0, c0 + width) -> s: [width], s[j] += sum_r x[r, c0 + j], rows in order.
SAE_CLONES void column_sums_range(const float* __restrict x, std::size_t rows, std::size_t cols, std::size_t c0,
                                  std::size_t width, double* __restrict s) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols + c0;
    for (std::size_t j = 0; j < width; ++j) s[j] += row[j];
  }
}

// x: [rows, cols], columns [c0, c0 + width) -> q: [width], q[j] += sum_r (x[r, c0 + j] - mean[j])^2.
SAE_CLONES void centered_squares_range(const float* __restrict x, std::size_t rows, std::size_t cols, std::size_t c0,
                                       std::size_t width, const double* __restrict mean, double* __restrict q) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols + c0;
    for (std::size_t j = 0; j < width; ++j) {
      const double d = row[j] - mean[j];
      q[j] += d * d;
    }
  }
}

// ---------------------------------------------------------------- sparse kernels

constexpr std::size_t kTile = 16;  // latents per tile of the 'columns' scatter: one cache line per output row

// One term of a sum of scaled rows: c * src[0, n).
struct Term {
  double c;
  const float* src;
};

// acc: [n] (+)= terms 0..count-1 in order, each element summed left to right in double:
//   acc[j] = ((acc[j] + c0 s0[j]) + c1 s1[j]) + ...   (fresh: acc starts at +0.0 and is not read)
// Four terms share a pass over acc; the arithmetic per element is that of one term at a time.
template <class TermAt>
__attribute__((always_inline)) inline void sum_terms(double* __restrict acc, std::size_t n, std::size_t count,
                                                     const TermAt& term_at, bool fresh) {
  std::size_t t = 0;
  if (fresh) {
    if (count == 0) {
      std::fill(acc, acc + n, 0.0);
      return;
    }
    if (count >= 4) {
      const Term a = term_at(0), b = term_at(1), c = term_at(2), d = term_at(3);
      for (std::size_t j = 0; j < n; ++j) acc[j] = (((0.0 + a.c * a.src[j]) + b.c * b.src[j]) + c.c * c.src[j]) + d.c * d.src[j];
      t = 4;
    } else {
      const Term a = term_at(0);
      for (std::size_t j = 0; j < n; ++j) acc[j] = 0.0 + a.c * a.src[j];
      t = 1;
    }
  }
  for (; t + 4 <= count; t += 4) {
    const Term a = term_at(t), b = term_at(t + 1), c = term_at(t + 2), d = term_at(t + 3);
    for (std::size_t j = 0; j < n; ++j) acc[j] = (((acc[j] + a.c * a.src[j]) + b.c * b.src[j]) + c.c * c.src[j]) + d.c * d.src[j];
  }
  for (; t < count; ++t) {
    const Term a = term_at(t);
    for (std::size_t j = 0; j < n; ++j) acc[j] += a.c * a.src[j];
  }
}

// Rows [r0, r1) of sparse_decode; acc: [d_in] scratch.
SAE_CLONES void decode_rows(const Csr& code, const float* val, const float* w, std::size_t d_in, float* out,
                            double* acc, std::size_t r0, std::size_t r1) {
  for (std::size_t r = r0; r < r1; ++r) {
    const std::size_t e0 = static_cast<std::size_t>(code.row_ptr[r]);
    const std::size_t count = static_cast<std::size_t>(code.row_ptr[r + 1]) - e0;
    float* o = out + r * d_in;
    if (count == 0) {
      std::fill(o, o + d_in, 0.0f);
      continue;
    }
    const auto term_at = [&](std::size_t t) {
      return Term{val[e0 + t], w + static_cast<std::size_t>(code.idx[e0 + t]) * d_in};
    };
    sum_terms(acc, d_in, count, term_at, true);
    for (std::size_t j = 0; j < d_in; ++j) o[j] = static_cast<float>(acc[j]);
  }
}

// The entries of a code grouped by latent (a stable counting sort: entry order within a latent).
struct Buckets {
  std::vector<std::int32_t> start;  // [dSae + 1]: latent i's entries sit at [start[i], start[i + 1])
  std::vector<std::int32_t> entry;  // [nnz]: the entries, in bucket order
  std::vector<std::int32_t> row;    // [nnz]: the row of each, in bucket order
};

Buckets bucket(const Csr& code, std::size_t d_sae) {
  const std::size_t nnz = static_cast<std::size_t>(code.row_ptr[code.rows]);
  Buckets b;
  b.start.assign(d_sae + 1, 0);
  for (std::size_t e = 0; e < nnz; ++e) ++b.start[static_cast<std::size_t>(code.idx[e]) + 1];
  for (std::size_t i = 0; i < d_sae; ++i) b.start[i + 1] += b.start[i];
  std::vector<std::int32_t> next(b.start.begin(), b.start.end() - 1);
  b.entry.resize(nnz);
  b.row.resize(nnz);
  for (std::size_t r = 0; r < code.rows; ++r) {
    const auto e1 = static_cast<std::size_t>(code.row_ptr[r + 1]);
    for (auto e = static_cast<std::size_t>(code.row_ptr[r]); e < e1; ++e) {
      const auto p = static_cast<std::size_t>(next[static_cast<std::size_t>(code.idx[e])]++);
      b.entry[p] = static_cast<std::int32_t>(e);
      b.row[p] = static_cast<std::int32_t>(r);
    }
  }
  return b;
}

// Latent i's sum over its entries of coef x[row, :] -> acc: [d_in]; false (acc untouched) if it has none.
__attribute__((always_inline)) inline bool latent_sum(const Buckets& b, std::size_t i, const float* coef, const float* x,
                                                      std::size_t d_in, double* acc) {
  const auto p0 = static_cast<std::size_t>(b.start[i]);
  const auto count = static_cast<std::size_t>(b.start[i + 1]) - p0;
  if (count == 0) return false;
  const auto term_at = [&](std::size_t t) {
    return Term{coef[b.entry[p0 + t]], x + static_cast<std::size_t>(b.row[p0 + t]) * d_in};
  };
  sum_terms(acc, d_in, count, term_at, true);
  return true;
}

// Latents [i0, i1) of sparse_gather_dot: each row of w is read once, for all of its entries.
SAE_CLONES void gather_dot_latents(const Buckets& b, const float* w, const float* g, std::size_t d_in, float* out,
                                   std::size_t i0, std::size_t i1) {
  for (std::size_t i = i0; i < i1; ++i) {
    const float* wi = w + i * d_in;
    const auto p1 = static_cast<std::size_t>(b.start[i + 1]);
    for (auto p = static_cast<std::size_t>(b.start[i]); p < p1; ++p) {
      out[b.entry[p]] = static_cast<float>(dot(g + static_cast<std::size_t>(b.row[p]) * d_in, wi, d_in));
    }
  }
}

// Latents [i0, i1) of the 'rows' scatter: out: [dSae, dIn]; acc: [d_in] scratch.
SAE_CLONES void scatter_rows(const Buckets& b, const float* coef, const float* x, std::size_t d_in, float* out, bool accumulate,
                             double* acc, std::size_t i0, std::size_t i1) {
  for (std::size_t i = i0; i < i1; ++i) {
    float* o = out + i * d_in;
    if (!latent_sum(b, i, coef, x, d_in, acc)) {
      if (!accumulate) std::fill(o, o + d_in, 0.0f);  // with accumulate: untouched (+ 0)
      continue;
    }
    if (accumulate) {
      for (std::size_t j = 0; j < d_in; ++j) o[j] = static_cast<float>(o[j] + acc[j]);
    } else {
      for (std::size_t j = 0; j < d_in; ++j) o[j] = static_cast<float>(acc[j]);
    }
  }
}

// Latents [i0, i1) of the 'columns' scatter (i0 a multiple of kTile): out: [dIn, dSae]. Each tile of
// kTile latents is summed into tile: [kTile, d_in] (scratch), then written transposed, so that every
// output row is written as one run of kTile floats.
SAE_CLONES void scatter_columns(const Buckets& b, const float* coef, const float* x, std::size_t d_in, std::size_t d_sae, float* out,
                                bool accumulate, double* tile, std::size_t i0, std::size_t i1) {
  for (std::size_t t0 = i0; t0 < i1; t0 += kTile) {
    const std::size_t width = std::min(kTile, i1 - t0);
    if (b.start[t0] == b.start[t0 + width]) {  // no entries in the tile
      if (!accumulate) {
        for (std::size_t j = 0; j < d_in; ++j) std::fill(out + j * d_sae + t0, out + j * d_sae + t0 + width, 0.0f);
      }
      continue;
    }
    for (std::size_t l = 0; l < width; ++l) {
      double* acc = tile + l * d_in;
      // A latent with no entry: + -0.0 leaves every value as it is (+0.0 would turn -0 into +0).
      if (!latent_sum(b, t0 + l, coef, x, d_in, acc)) std::fill(acc, acc + d_in, accumulate ? -0.0 : 0.0);
    }
    for (std::size_t j = 0; j < d_in; ++j) {
      float* o = out + j * d_sae + t0;
      const double* t = tile + j;
#if SAE_STREAM_STORES
      // Overwriting a whole aligned line: stream it to memory, skipping the read for ownership (the
      // lines of one tile are dSae floats apart: nothing prefetches them).
      if (!accumulate && width == kTile && reinterpret_cast<std::uintptr_t>(o) % 16 == 0) {
        float v[kTile];
        for (std::size_t l = 0; l < kTile; ++l) v[l] = static_cast<float>(t[l * d_in]);
        for (std::size_t l = 0; l < kTile; l += 4) _mm_stream_ps(o + l, _mm_loadu_ps(v + l));
        continue;
      }
#endif
      if (accumulate) {
        for (std::size_t l = 0; l < width; ++l) o[l] = static_cast<float>(o[l] + t[l * d_in]);
      } else {
        for (std::size_t l = 0; l < width; ++l) o[l] = static_cast<float>(t[l * d_in]);
      }
    }
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

double subtract(const float* a, const float* b, float* out, std::size_t n) {
  const std::size_t blocks = (n + kSumBlock - 1) / kSumBlock;
  std::vector<double> partial(blocks);
  parallel_for(blocks, 1, n, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t k = b0; k < b1; ++k) {
      const std::size_t at = k * kSumBlock;
      partial[k] = subtract_block(a + at, b + at, out + at, std::min(kSumBlock, n - at));
    }
  });
  double total = 0;
  for (const double p : partial) total += p;
  return total;
}

double centered_sum_squares(const float* x, std::size_t rows, std::size_t cols) {
  std::vector<double> mean(cols);
  std::vector<double> q(cols);
  // Each thread owns a run of columns: their means, then their sums of squares.
  parallel_for(cols, kAlign, rows * cols, [&](std::size_t c0, std::size_t c1) {
    column_sums_range(x, rows, cols, c0, c1 - c0, mean.data() + c0);
    for (std::size_t c = c0; c < c1; ++c) mean[c] /= static_cast<double>(rows);
    centered_squares_range(x, rows, cols, c0, c1 - c0, mean.data() + c0, q.data() + c0);
  });
  double total = 0;
  for (const double s : q) total += s;
  return total;
}

void column_sums(const float* x, std::size_t rows, std::size_t cols, float* out, bool accumulate) {
  parallel_for(cols, kAlign, rows * cols, [&](std::size_t c0, std::size_t c1) {
    std::vector<double> s(c1 - c0);
    column_sums_range(x, rows, cols, c0, c1 - c0, s.data());
    for (std::size_t c = c0; c < c1; ++c) out[c] = static_cast<float>((accumulate ? out[c] : 0.0) + s[c - c0]);
  });
}

void sparse_decode(const Csr& code, const float* val, const float* w, std::size_t d_in, float* out) {
  const std::size_t nnz = static_cast<std::size_t>(code.row_ptr[code.rows]);
  // Rows cut by entries + 1 (a row with none still writes its zeros).
  const auto cum = [&](std::size_t r) { return static_cast<std::size_t>(code.row_ptr[r]) + r; };
  parallel_for_weighted(code.rows, 1, (nnz + code.rows) * d_in, cum, [&](std::size_t r0, std::size_t r1) {
    std::vector<double> acc(d_in);
    decode_rows(code, val, w, d_in, out, acc.data(), r0, r1);
  });
}

void sparse_gather_dot(const Csr& code, const float* w, std::size_t d_sae, const float* g, std::size_t d_in, float* out) {
  if (d_in == 0) {
    std::fill(out, out + code.row_ptr[code.rows], 0.0f);
    return;
  }
  // By latent: each row of w (random rows of a large matrix) is read once; the rows of g it meets
  // are a smaller matrix, read again from cache.
  const Buckets b = bucket(code, d_sae);
  const auto cum = [&](std::size_t i) { return static_cast<std::size_t>(b.start[i]) + i; };
  parallel_for_weighted(d_sae, 1, (b.row.size() + d_sae) * d_in, cum, [&](std::size_t i0, std::size_t i1) {
    gather_dot_latents(b, w, g, d_in, out, i0, i1);
  });
}

void sparse_scatter(const Csr& code, const float* coef, const float* x, std::size_t d_in, std::size_t d_sae,
                    float* out, bool columns, bool accumulate) {
  if (d_in == 0) return;  // nothing to write (and dSae may then be anything)
  const Buckets b = bucket(code, d_sae);
  const std::size_t nnz = b.row.size();
  // Latents cut by entries + 1 (a latent with none still writes its zeros); 'columns' by whole tiles.
  const auto cum = [&](std::size_t i) { return static_cast<std::size_t>(b.start[i]) + i; };
  const std::size_t work = (nnz + d_sae) * d_in;
  if (columns) {
    parallel_for_weighted(d_sae, kTile, work, cum, [&](std::size_t i0, std::size_t i1) {
      std::vector<double> tile(kTile * d_in);
      scatter_columns(b, coef, x, d_in, d_sae, out, accumulate, tile.data(), i0, i1);
#if SAE_STREAM_STORES
      _mm_sfence();  // streamed stores are weakly ordered: make them visible before the job ends
#endif
    });
  } else {
    parallel_for_weighted(d_sae, 1, work, cum, [&](std::size_t i0, std::size_t i1) {
      std::vector<double> acc(d_in);
      scatter_rows(b, coef, x, d_in, out, accumulate, acc.data(), i0, i1);
    });
  }
}

// One pass on the calling thread: ~nnz additions (131k at the TopK step: ~0.2 ms), less than
// waking the pool would save.
void sparse_scatter_sum(const Csr& code, const float* coef, std::size_t d_sae, float* out, bool accumulate) {
  const std::size_t nnz = static_cast<std::size_t>(code.row_ptr[code.rows]);
  std::vector<double> acc(d_sae);
  for (std::size_t e = 0; e < nnz; ++e) acc[static_cast<std::size_t>(code.idx[e])] += coef[e];
  for (std::size_t i = 0; i < d_sae; ++i) out[i] = static_cast<float>((accumulate ? out[i] : 0.0) + acc[i]);
}

const char* simd() {
#if SAE_HAVE_CLONES
  return __builtin_cpu_supports("avx2") ? "avx2" : "baseline";
#else
  return "baseline";
#endif
}

}  // namespace sae
