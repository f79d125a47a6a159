/**
 * The kernels that run outside onnxruntime: the optimiser, elementwise and (later) sparse kernels.
 * Each works in place on Float32Arrays. Two implementations: `reference` (plain TypeScript, the
 * oracle for tests and the fallback) and `native` (the C++ addon, multi-threaded, deterministic:
 * every thread owns its own output rows and reductions run over fixed blocks, so results do not
 * depend on the thread count).
 */

export interface AdamHyper {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
}

export type KernelsName = 'native' | 'reference';

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
}
