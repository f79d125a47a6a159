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

// "avx2" when the AVX2 clones of the kernels run on this CPU, else "baseline".
const char* simd();

}  // namespace sae
