// The kernels on raw buffers, multi-threaded over the process pool (pool.h). Semantics: see
// src/engine/kernels.ts. Callers (addon.cc) have checked every length and that buffers do not overlap.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sae {

struct AdamHyper {
  double lr;
  double beta1;
  double beta2;
  double eps;
};

// param, grad, m, v: [n]; one torch.optim.Adam step (float32 arithmetic), step >= 1.
void adam(float* param, const float* grad, float* m, float* v, std::size_t n, const AdamHyper& h, double step);

// w: [rows, cols] -> out: [rows], out[i] = ||w[i, :]||_2 (accumulated in double).
void row_norms(const float* w, std::size_t rows, std::size_t cols, float* out);

// w: [rows, cols], in place: rows with a non-zero norm are scaled to norm `target`.
void normalize_rows(float* w, std::size_t rows, std::size_t cols, double target);

// grad, w: [rows, cols], in place on grad: grad[i] -= (grad[i] . w[i]) / ||w[i]||^2 * w[i].
void remove_parallel_component(float* grad, const float* w, std::size_t rows, std::size_t cols);

// x: [n], x *= s (product in double, rounded to float).
void scale(float* x, std::size_t n, double s);

// x: [rows, cols] -> out: [rows], 1 where the row holds a NaN or an infinity; returns the count.
std::size_t non_finite_rows(const float* x, std::size_t rows, std::size_t cols, std::uint8_t* out);

// --- dense helpers of the sparse training step ---

// a, b, out: [n], out = a - b (out may be a or b itself, never a partial overlap); returns
// sum(out^2) in double, over fixed blocks of the index combined in order.
double subtract(const float* a, const float* b, float* out, std::size_t n);

// x: [rows, cols] -> sum of (x - column mean)^2 in double (means summed over rows in order).
double centered_sum_squares(const float* x, std::size_t rows, std::size_t cols);

// x: [rows, cols] -> out: [cols], out[j] (+)= sum_r x[r, j], summed in double over rows in order.
void column_sums(const float* x, std::size_t rows, std::size_t cols, float* out, bool accumulate);

// --- sparse kernels on CSR codes (row_ptr: [rows + 1], idx: [nnz]; checked by the caller) ---

struct Csr {
  const std::int32_t* row_ptr;  // [rows + 1], nondecreasing, row_ptr[0] = 0
  const std::int32_t* idx;      // [nnz], each in [0, dSae)
  std::size_t rows;
};

// val: [nnz], w: [dSae, dIn] -> out: [rows, dIn], out[r, :] = sum_{e in r} val[e] w[idx[e], :]
// (double accumulator in entry order, rounded once).
void sparse_decode(const Csr& code, const float* val, const float* w, std::size_t d_in, float* out);

// w: [dSae, dIn], g: [rows, dIn] -> out: [nnz], out[e] = g[row(e), :] . w[idx[e], :] (in double).
void sparse_gather_dot(const Csr& code, const float* w, std::size_t d_sae, const float* g, std::size_t d_in, float* out);

// coef: [nnz], x: [rows, dIn] -> out: [dSae, dIn] (columns = false) or [dIn, dSae] (columns = true),
// latent i's row/column (+)= sum_{e: idx[e] = i} coef[e] x[row(e), :], in double in entry order.
void sparse_scatter(const Csr& code, const float* coef, const float* x, std::size_t d_in, std::size_t d_sae,
                    float* out, bool columns, bool accumulate);

// coef: [nnz] -> out: [dSae], out[i] (+)= sum_{e: idx[e] = i} coef[e], in double in entry order.
void sparse_scatter_sum(const Csr& code, const float* coef, std::size_t d_sae, float* out, bool accumulate);

// "avx2" when the AVX2 clones of the kernels run on this CPU, else "baseline".
const char* simd();

}  // namespace sae
