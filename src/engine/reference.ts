/**
 * Plain TypeScript kernels: the oracle for the kernel tests and the fallback when the native addon
 * cannot be built. Arithmetic is float64 inside each loop, rounded to float32 on store.
 */
import { dequantize } from './dequant.js';
import type { AdamHyper, CsrRows, Kernels, ScatterLayout } from './kernels.js';

function adam(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, h: AdamHyper, step: number): void {
  const { beta1, beta2, eps } = h; // hoisted: locals, not property loads in the loop
  const stepSize = h.lr / (1 - beta1 ** step);
  const sqrtC2 = Math.sqrt(1 - beta2 ** step);
  for (let i = 0; i < param.length; i++) {
    const g = grad[i]!;
    // m and v as stored (rounded to float32) feed the update
    const mi = Math.fround(beta1 * m[i]! + (1 - beta1) * g);
    const vi = Math.fround(beta2 * v[i]! + (1 - beta2) * g * g);
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i]! - (stepSize * mi) / (Math.sqrt(vi) / sqrtC2 + eps);
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
    const o = r * cols;
    let s = 0;
    for (let c = 0; c < cols; c++) s += w[o + c]! * w[o + c]!;
    if (s === 0) continue;
    const k = target / Math.sqrt(s);
    for (let c = 0; c < cols; c++) w[o + c] = w[o + c]! * k;
  }
}

function removeParallelComponent(grad: Float32Array, w: Float32Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let dot = 0;
    let nn = 0;
    for (let c = 0; c < cols; c++) {
      const wc = w[o + c]!;
      dot += grad[o + c]! * wc;
      nn += wc * wc;
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

/**
 * acc: [n] += c[t] * src[at[t] * n + j] for the terms t in [from, to) in order, each element summed
 * left to right: acc[j] = ((acc[j] + c0 s0[j]) + c1 s1[j]) + ...
 * Four terms share a pass over acc (one load and store of acc[j] per four products); JavaScript adds
 * left to right, so the sums are those of one term at a time, bit for bit.
 */
function sumTerms(acc: Float64Array, n: number, src: Float32Array, c: Float32Array, at: Int32Array, from: number, to: number): void {
  let t = from;
  for (; t + 4 <= to; t += 4) {
    const c0 = c[t]!,
      c1 = c[t + 1]!,
      c2 = c[t + 2]!,
      c3 = c[t + 3]!;
    const o0 = at[t]! * n,
      o1 = at[t + 1]! * n,
      o2 = at[t + 2]! * n,
      o3 = at[t + 3]! * n;
    for (let j = 0; j < n; j++) acc[j] = acc[j]! + c0 * src[o0 + j]! + c1 * src[o1 + j]! + c2 * src[o2 + j]! + c3 * src[o3 + j]!;
  }
  for (; t < to; t++) {
    const c0 = c[t]!,
      o0 = at[t]! * n;
    for (let j = 0; j < n; j++) acc[j] = acc[j]! + c0 * src[o0 + j]!;
  }
}

function sparseDecode(code: CsrRows, val: Float32Array, w: Float32Array, dIn: number, out: Float32Array): void {
  const { rowPtr, idx } = code;
  const acc = new Float64Array(dIn);
  for (let r = 0; r < code.rows; r++) {
    acc.fill(0);
    sumTerms(acc, dIn, w, val, idx, rowPtr[r]!, rowPtr[r + 1]!);
    out.set(acc, r * dIn);
  }
}

function sparseGatherDot(code: CsrRows, w: Float32Array, g: Float32Array, dIn: number, out: Float32Array): void {
  const { rowPtr, idx } = code;
  for (let r = 0; r < code.rows; r++) {
    const gr = r * dIn;
    const e1 = rowPtr[r + 1]!;
    let e = rowPtr[r]!;
    // Four entries per pass over g's row (one load of g[j] for four products), each sum still in order of j.
    for (; e + 4 <= e1; e += 4) {
      const o0 = idx[e]! * dIn,
        o1 = idx[e + 1]! * dIn,
        o2 = idx[e + 2]! * dIn,
        o3 = idx[e + 3]! * dIn;
      let s0 = 0,
        s1 = 0,
        s2 = 0,
        s3 = 0;
      for (let j = 0; j < dIn; j++) {
        const gj = g[gr + j]!;
        s0 += gj * w[o0 + j]!;
        s1 += gj * w[o1 + j]!;
        s2 += gj * w[o2 + j]!;
        s3 += gj * w[o3 + j]!;
      }
      out[e] = s0;
      out[e + 1] = s1;
      out[e + 2] = s2;
      out[e + 3] = s3;
    }
    for (; e < e1; e++) {
      const o = idx[e]! * dIn;
      let s = 0;
      for (let j = 0; j < dIn; j++) s += g[gr + j]! * w[o + j]!;
      out[e] = s;
    }
  }
}

/**
 * The entries of a code grouped by latent, in entry order within each latent (a stable counting
 * sort): latent i's entries sit at [start[i], start[i + 1]), each with its row and its coef.
 */
function byLatent(code: CsrRows, coef: Float32Array, dSae: number): { start: Int32Array; row: Int32Array; c: Float32Array } {
  const { rowPtr, idx } = code;
  const nnz = rowPtr[code.rows]!;
  const start = new Int32Array(dSae + 1);
  for (let e = 0; e < nnz; e++) start[idx[e]! + 1]!++;
  for (let i = 0; i < dSae; i++) start[i + 1]! += start[i]!;
  const fill = start.slice(0, dSae);
  const row = new Int32Array(nnz);
  const c = new Float32Array(nnz);
  for (let r = 0; r < code.rows; r++) {
    for (let e = rowPtr[r]!; e < rowPtr[r + 1]!; e++) {
      const at = fill[idx[e]!]!++;
      row[at] = r;
      c[at] = coef[e]!;
    }
  }
  return { start, row, c };
}

const TILE = 16; // latents per tile of the 'columns' scatter: 16 floats = one 64-byte line of each output row

function sparseScatter(
  code: CsrRows,
  coef: Float32Array,
  x: Float32Array,
  dIn: number,
  dSae: number,
  out: Float32Array,
  layout: ScatterLayout,
  accumulate: boolean,
): void {
  const { start, row, c } = byLatent(code, coef, dSae);
  if (layout === 'rows') {
    const acc = new Float64Array(dIn);
    for (let i = 0; i < dSae; i++) {
      if (accumulate && start[i] === start[i + 1]) continue;
      acc.fill(0);
      sumTerms(acc, dIn, x, c, row, start[i]!, start[i + 1]!);
      const o = i * dIn;
      if (accumulate) for (let j = 0; j < dIn; j++) out[o + j] = out[o + j]! + acc[j]!;
      else out.set(acc, o);
    }
    return;
  }
  // 'columns': out is [dIn, dSae]. TILE latents are summed into tile: [TILE, dIn], then written out
  // row by row of out, so that each write is a run of TILE floats rather than one float per line.
  const tile = new Float64Array(TILE * dIn);
  for (let i0 = 0; i0 < dSae; i0 += TILE) {
    const width = Math.min(TILE, dSae - i0);
    if (accumulate && start[i0] === start[i0 + width]) continue;
    for (let l = 0; l < width; l++) {
      const acc = tile.subarray(l * dIn, (l + 1) * dIn);
      // Under accumulate, a latent with no entry adds -0, which leaves every value as it is (-0 included).
      acc.fill(accumulate && start[i0 + l] === start[i0 + l + 1] ? -0 : 0);
      sumTerms(acc, dIn, x, c, row, start[i0 + l]!, start[i0 + l + 1]!);
    }
    for (let j = 0; j < dIn; j++) {
      const o = j * dSae + i0;
      if (accumulate) for (let l = 0; l < width; l++) out[o + l] = out[o + l]! + tile[l * dIn + j]!;
      else for (let l = 0; l < width; l++) out[o + l] = tile[l * dIn + j]!;
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
  dequantize,
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
