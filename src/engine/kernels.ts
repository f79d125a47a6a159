/**
 * The kernels that run outside onnxruntime: the optimiser, elementwise and sparse kernels, and the
 * dequantisation of GGUF weights.
 * Each works in place on Float32Arrays. Two implementations: `reference` (plain TypeScript, the
 * oracle for tests and the fallback) and `native` (the C++ addon, multi-threaded, deterministic:
 * every thread owns its own output rows and reductions run over fixed blocks, so results do not
 * depend on the thread count).
 */

import type { DequantType } from './dequant.js';

/** Adam's hyper-parameters. */
export interface AdamHyper {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
}

/** The kernel implementations: the native addon and the TypeScript reference. */
export type KernelsName = 'native' | 'reference';

/**
 * A sparse code in CSR form by row: row r's entries are e in [rowPtr[r], rowPtr[r + 1]), each a
 * latent idx[e] in [0, dSae) (and, where a kernel takes one, a value). rowPtr: [rows + 1],
 * nondecreasing, rowPtr[0] = 0; nnz = rowPtr[rows]. TopK codes have rowPtr[r] = r * k.
 */
export interface CsrRows {
  readonly rowPtr: Int32Array;
  readonly idx: Int32Array;
  readonly rows: number;
}

/** Where a scatter writes: rows of a [dSae, dIn] matrix (W_dec's layout) or columns of a [dIn, dSae] one (W_enc's). */
export type ScatterLayout = 'rows' | 'columns';

/** The non-matrix-product kernels of training and inference, implemented by the native addon and by the TypeScript reference. */
export interface Kernels {
  readonly name: KernelsName;

  /**
   * One bias-corrected Adam step (torch.optim.Adam, no weight decay), in place on param, m, v.
   * step is 1-based: the first update has step = 1.
   *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
   *   param -= lr * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps)
   */
  adam(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, h: AdamHyper, step: number): void;

  /** w: [rows, cols] -> out: [rows], out[i] = ||w[i, :]||_2 */
  rowNorms(w: Float32Array, rows: number, cols: number, out: Float32Array): void;

  /** w: [rows, cols], in place: every row with a non-zero norm is scaled to norm `target`. */
  normalizeRows(w: Float32Array, rows: number, cols: number, target: number): void;

  /**
   * grad, w: [rows, cols], in place on grad: removes from each row of grad its component along the
   * same row of w, grad[i] -= (grad[i] . w[i]) / ||w[i]||^2 * w[i] (rows of w with zero norm: untouched).
   */
  removeParallelComponent(grad: Float32Array, w: Float32Array, rows: number, cols: number): void;

  /** x *= s, in place. */
  scale(x: Float32Array, s: number): void;

  /** x: [rows, cols] -> out: [rows], out[i] = 1 if row i holds a NaN or an infinity, else 0; returns the count. */
  nonFiniteRows(x: Float32Array, rows: number, cols: number, out: Uint8Array): number;

  // --- dense helpers of the sparse training step ---

  /** out = a - b (all [n]); returns sum(out^2), summed in float64. out may alias a or b. */
  subtract(a: Float32Array, b: Float32Array, out: Float32Array): number;

  /** x: [rows, cols] -> sum over rows and columns of (x - column mean)^2, in float64. */
  centeredSumSquares(x: Float32Array, rows: number, cols: number): number;

  /** x: [rows, cols] -> out: [cols], out[j] (+)= sum_r x[r, j] (accumulate: add to out, else overwrite). */
  columnSums(x: Float32Array, rows: number, cols: number, out: Float32Array, accumulate: boolean): void;

  // --- sparse kernels: O(nnz * dIn) instead of O(rows * dSae * dIn) ---

  /**
   * Sparse decode: w: [dSae, dIn], val: [nnz] -> out: [rows, dIn] (overwritten),
   *   out[r, :] = sum_{e in row r} val[e] * w[idx[e], :]
   */
  sparseDecode(code: CsrRows, val: Float32Array, w: Float32Array, dIn: number, out: Float32Array): void;

  /**
   * Gathered dot products: w: [dSae, dIn], g: [rows, dIn] -> out: [nnz],
   *   out[e] = g[r, :] . w[idx[e], :] for e in row r
   */
  sparseGatherDot(code: CsrRows, w: Float32Array, g: Float32Array, dIn: number, out: Float32Array): void;

  /**
   * Scatter of outer products, by latent: coef: [nnz], x: [rows, dIn] ->
   *   'rows':    out: [dSae, dIn], out[i, :] (+)= sum_{e: idx[e] = i} coef[e] * x[row(e), :]
   *   'columns': out: [dIn, dSae], out[:, i] (+)= the same
   * Without accumulate, latents with no entry get zeros. Each latent's sum runs in entry order
   * (row, then position in the row) whatever the thread count.
   */
  sparseScatter(
    code: CsrRows,
    coef: Float32Array,
    x: Float32Array,
    dIn: number,
    dSae: number,
    out: Float32Array,
    layout: ScatterLayout,
    accumulate: boolean,
  ): void;

  /** out: [dSae], out[i] (+)= sum_{e: idx[e] = i} coef[e] (coef: [nnz]), in entry order. */
  sparseScatterSum(code: CsrRows, coef: Float32Array, dSae: number, out: Float32Array, accumulate: boolean): void;

  // --- weights of GGUF files ---

  /**
   * src: whole blocks of a GGML type -> out: [blocks * values per block] (overwritten), the float32
   * values of llama.cpp's dequantisation (formats: dequant.ts). Both backends give the same bits.
   */
  dequantize(type: DequantType, src: Uint8Array, out: Float32Array): void;
}
