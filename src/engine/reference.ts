/**
 * Plain TypeScript kernels: the oracle for the kernel tests and the fallback when the native addon
 * cannot be built. Arithmetic is float64 inside each loop, rounded to float32 on store.
 */
import type { AdamHyper, CsrRows, Kernels, ScatterLayout } from './kernels.js';

function adam(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, h: AdamHyper, step: number): void {
  const c1 = 1 - h.beta1 ** step;
  const c2 = 1 - h.beta2 ** step;
  const stepSize = h.lr / c1;
  const sqrtC2 = Math.sqrt(c2);
  for (let i = 0; i < param.length; i++) {
    const g = grad[i]!;
    const mi = h.beta1 * m[i]! + (1 - h.beta1) * g;
    const vi = h.beta2 * v[i]! + (1 - h.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i]! - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / sqrtC2 + h.eps);
  }
}

function rowNorms(w: Float32Array, rows: number, cols: number, out: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = r * cols, end = c + cols; c < end; c++) s += w[c]! * w[c]!;
    out[r] = Math.sqrt(s);
  }
}

function normalizeRows(w: Float32Array, rows: number, cols: number, target: number): void {
  for (let r = 0; r < rows; r++) {
    const row = w.subarray(r * cols, (r + 1) * cols);
    let s = 0;
    for (const x of row) s += x * x;
    if (s === 0) continue;
    const k = target / Math.sqrt(s);
    for (let c = 0; c < cols; c++) row[c] = row[c]! * k;
  }
}

function removeParallelComponent(grad: Float32Array, w: Float32Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let dot = 0;
    let nn = 0;
    for (let c = 0; c < cols; c++) {
      dot += grad[o + c]! * w[o + c]!;
      nn += w[o + c]! * w[o + c]!;
    }
    if (nn === 0) continue;
    const k = dot / nn;
    for (let c = 0; c < cols; c++) grad[o + c] = grad[o + c]! - k * w[o + c]!;
  }
}

function scale(x: Float32Array, s: number): void {
  for (let i = 0; i < x.length; i++) x[i] = x[i]! * s;
}

function nonFiniteRows(x: Float32Array, rows: number, cols: number, out: Uint8Array): number {
  let count = 0;
  for (let r = 0; r < rows; r++) {
    let bad = 0;
    for (let c = r * cols, end = c + cols; c < end; c++) {
      if (!Number.isFinite(x[c]!)) {
        bad = 1;
        break;
      }
    }
    out[r] = bad;
    count += bad;
  }
  return count;
}

function subtract(a: Float32Array, b: Float32Array, out: Float32Array): number {
  let s = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = a[i]! - b[i]!;
    s += out[i]! * out[i]!;
  }
  return s;
}

function centeredSumSquares(x: Float32Array, rows: number, cols: number): number {
  const mean = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) mean[c]! += x[r * cols + c]!;
  for (let c = 0; c < cols; c++) mean[c]! /= rows;
  let s = 0;
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) s += (x[r * cols + c]! - mean[c]!) ** 2;
  return s;
}

function columnSums(x: Float32Array, rows: number, cols: number, out: Float32Array, accumulate: boolean): void {
  const s = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) s[c]! += x[r * cols + c]!;
  for (let c = 0; c < cols; c++) out[c] = (accumulate ? out[c]! : 0) + s[c]!;
}

function sparseDecode(code: CsrRows, val: Float32Array, w: Float32Array, dIn: number, out: Float32Array): void {
  const acc = new Float64Array(dIn);
  for (let r = 0; r < code.rows; r++) {
    acc.fill(0);
    for (let e = code.rowPtr[r]!; e < code.rowPtr[r + 1]!; e++) {
      const o = code.idx[e]! * dIn;
      const v = val[e]!;
      for (let j = 0; j < dIn; j++) acc[j]! += v * w[o + j]!;
    }
    out.set(acc, r * dIn);
  }
}

function sparseGatherDot(code: CsrRows, w: Float32Array, g: Float32Array, dIn: number, out: Float32Array): void {
  for (let r = 0; r < code.rows; r++) {
    for (let e = code.rowPtr[r]!; e < code.rowPtr[r + 1]!; e++) {
      const o = code.idx[e]! * dIn;
      let s = 0;
      for (let j = 0; j < dIn; j++) s += g[r * dIn + j]! * w[o + j]!;
      out[e] = s;
    }
  }
}

/** The entries of a code grouped by latent, in entry order within each latent (a stable counting sort). */
function byLatent(code: CsrRows, dSae: number): { start: Int32Array; entry: Int32Array; row: Int32Array } {
  const nnz = code.rowPtr[code.rows]!;
  const start = new Int32Array(dSae + 1);
  for (let e = 0; e < nnz; e++) start[code.idx[e]! + 1]!++;
  for (let i = 0; i < dSae; i++) start[i + 1]! += start[i]!;
  const fill = start.slice(0, dSae);
  const entry = new Int32Array(nnz);
  const row = new Int32Array(nnz);
  for (let r = 0; r < code.rows; r++) {
    for (let e = code.rowPtr[r]!; e < code.rowPtr[r + 1]!; e++) {
      const at = fill[code.idx[e]!]!++;
      entry[at] = e;
      row[at] = r;
    }
  }
  return { start, entry, row };
}

function sparseScatter(code: CsrRows, coef: Float32Array, x: Float32Array, dIn: number, dSae: number, out: Float32Array, layout: ScatterLayout, accumulate: boolean): void {
  const { start, entry, row } = byLatent(code, dSae);
  const acc = new Float64Array(dIn);
  for (let i = 0; i < dSae; i++) {
    if (accumulate && start[i] === start[i + 1]) continue;
    acc.fill(0);
    for (let a = start[i]!; a < start[i + 1]!; a++) {
      const c = coef[entry[a]!]!;
      const o = row[a]! * dIn;
      for (let j = 0; j < dIn; j++) acc[j]! += c * x[o + j]!;
    }
    for (let j = 0; j < dIn; j++) {
      const at = layout === 'rows' ? i * dIn + j : j * dSae + i;
      out[at] = (accumulate ? out[at]! : 0) + acc[j]!;
    }
  }
}

function sparseScatterSum(code: CsrRows, coef: Float32Array, dSae: number, out: Float32Array, accumulate: boolean): void {
  const acc = new Float64Array(dSae);
  const nnz = code.rowPtr[code.rows]!;
  for (let e = 0; e < nnz; e++) acc[code.idx[e]!]! += coef[e]!;
  for (let i = 0; i < dSae; i++) out[i] = (accumulate ? out[i]! : 0) + acc[i]!;
}

export const referenceKernels: Kernels = {
  name: 'reference',
  adam,
  rowNorms,
  normalizeRows,
  removeParallelComponent,
  scale,
  nonFiniteRows,
  subtract,
  centeredSumSquares,
  columnSums,
  sparseDecode,
  sparseGatherDot,
  sparseScatter,
  sparseScatterSum,
};

/**
 * The oracle for onnxruntime's products, in float64: op(a) @ op(b) (+ c broadcast over rows), op =
 * transpose when asked. a: [m, k] (or [k, m] transposed), b: [k, n] (or [n, k]) -> [m, n].
 * For tests only: a TypeScript matrix product is ~100x slower than onnxruntime's.
 */
export function referenceGemm(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  opts: { transA?: boolean; transB?: boolean; c?: Float32Array } = {},
): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = opts.c ? opts.c[j]! : 0;
      for (let p = 0; p < k; p++) {
        const av = opts.transA ? a[p * m + i]! : a[i * k + p]!;
        const bv = opts.transB ? b[j * k + p]! : b[p * n + j]!;
        s += av * bv;
      }
      out[i * n + j] = s;
    }
  }
  return out;
}
