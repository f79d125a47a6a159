/**
 * The kernel suite, written once and run on every backend (tfjs's describeWithFlags): each kernel
 * against an independent float64 oracle written below (plain loops, not src/engine/reference.ts) on odd and power-of-two shapes, multi-step Adam, edge
 * cases, and Adam against the float64 PyTorch vectors; the dense helpers of the sparse step and the
 * sparse kernels on CSR codes (fixed and variable row lengths, empty rows, repeated latents in a row,
 * latents with no entry; both scatter layouts, accumulating or not). Then what only the native addon
 * has: bitwise independence from the thread count, argument validation, and the fallback when it is
 * missing.
 *
 * Tolerances against the oracle (float64 inside each loop, rounded on store):
 * - scale, nonFiniteRows: exact.
 * - rowNorms, normalizeRows, removeParallelComponent: 1 float32 ulp (row sums in double, another
 *   order), or |diff| <= 1e-12 * the row's scale for removeParallelComponent's cancellations.
 * - adam (float32 arithmetic like torch): per element, 1 ulp of the parameter per step (each step
 *   rounds the parameter) or 1e-6 * lr per step;
 *   m and v within 1e-6 of max|g| and max g^2 (float32 rounding of a few operations).
 * - adam against PyTorch: max|ours - ref| / max|ref| <= 1e-5 per step.
 * - subtract's out, columnSums, sparseDecode, sparseScatter (both layouts, accumulate or not) and
 *   sparseScatterSum: exact (the reference's own order in float64: rows in order, entries in order).
 * - the float64 totals of subtract and centeredSumSquares (sums of n >= 0 terms, another order):
 *   |ours - ref| <= n * 2^-52 * ref.
 * - sparseGatherDot (dot products in float64, another order, rounded to float32): 1 ulp, or
 *   |diff| <= dIn * 2^-52 * sum_j |g_j w_j| where the dot product cancels.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { UserError } from '../src/errors.js';
import { Engine } from '../src/engine/index.js';
import type { AdamHyper, CsrRows, Kernels, ScatterLayout } from '../src/engine/kernels.js';
import { loadNativeBinding, loadNativeKernels } from '../src/engine/native.js';
import { referenceKernels } from '../src/engine/reference.js';
import { Rng } from '../src/rng.js';

// ---------------------------------------------------------------- backends

interface Backend {
  readonly name: string;
  /** The kernels, or why this backend is not available here (its suite is then skipped with that note). */
  readonly kernels: Kernels | Error;
}

const native = loadNativeKernels(2);
const BACKENDS: readonly Backend[] = [
  { name: 'reference', kernels: referenceKernels },
  { name: 'native', kernels: native },
];
const skipNote = (b: Backend): string => (b.kernels instanceof Error ? ` (SKIPPED: ${b.kernels.message}; run npm run build:native)` : '');

// ---------------------------------------------------------------- data and comparisons

const MATRICES: readonly (readonly [number, number])[] = [
  [1, 1],
  [1, 7],
  [7, 1],
  [7, 7],
  [64, 64],
  [129, 33],
  [1000, 33],
  [33, 1000],
  [257, 129],
];
const LENGTHS: readonly number[] = [1, 7, 64, 129, 1000, 33_000, 100_003];
const HYPER: AdamHyper = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/** n floats ~ N(0, scale^2), seeded. */
function randn(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rng.normal() * scale;
  return x;
}

const F32 = new Float32Array(1);
const I32 = new Int32Array(F32.buffer);

/** x's float32 bits as an integer ordered like the floats (-0 and +0 both 0). */
function ordered(x: number): number {
  F32[0] = x;
  const i = I32[0]!;
  return i < 0 ? -2147483648 - i : i;
}

/** Distance in float32 ulps; NaN is 0 from NaN and infinitely far from anything else. */
function ulps(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity;
  return Math.abs(ordered(a) - ordered(b));
}

interface Tolerance {
  readonly ulps?: number;
  /** An absolute bound, per element or for all. */
  readonly abs?: number | ((i: number) => number);
}

/** Every element within `tol.ulps` ulps or `tol.abs`; fails naming the first element that is not. */
function expectClose(actual: Float32Array, expected: Float32Array, tol: Tolerance, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const abs = typeof tol.abs === 'function' ? tol.abs(i) : (tol.abs ?? 0);
    if (ulps(a, e) <= (tol.ulps ?? 0) || Math.abs(a - e) <= abs) continue;
    expect.fail(`${what}[${i}]: ${a} vs oracle ${e} (${ulps(a, e)} ulps, |diff| ${Math.abs(a - e)})`);
  }
}

function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}

/** max |ours - ref| / max |ref|. */
function relError(ours: ArrayLike<number>, ref: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < ref.length; i++) d = Math.max(d, Math.abs(ours[i]! - ref[i]!));
  return d / Math.max(maxAbs(ref), 1e-30);
}

function sameBits(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** w: [rows, cols] with row r set to zero for every r in `zero`. */
function withZeroRows(w: Float32Array, cols: number, zero: readonly number[]): Float32Array {
  for (const r of zero) w.fill(0, r * cols, (r + 1) * cols);
  return w;
}

// ---------------------------------------------------------------- the oracle

/**
 * The kernels as the plainest float64 loops, written here and independent of src/engine/reference.ts
 * (which folds Adam's bias corrections, sums four terms per pass, sorts scatters by latent and tiles
 * them): every backend, the reference included, is checked against these. Each sum runs in the
 * order the kernel contract fixes (rows in order, entries in order) and is rounded once on store.
 */
const oracle = {
  adam(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: AdamHyper, t: number): void {
    for (let i = 0; i < p.length; i++) {
      m[i] = h.beta1 * m[i]! + (1 - h.beta1) * g[i]!;
      v[i] = h.beta2 * v[i]! + (1 - h.beta2) * g[i]! * g[i]!;
      const mHat = m[i]! / (1 - h.beta1 ** t);
      const vHat = v[i]! / (1 - h.beta2 ** t);
      p[i] = p[i]! - (h.lr * mHat) / (Math.sqrt(vHat) + h.eps);
    }
  },
  /** sum_c w[r, c]^2 for each row r, in float64. */
  rowSquares(w: Float32Array, rows: number, cols: number): Float64Array {
    const out = new Float64Array(rows);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r]! += w[r * cols + c]! ** 2;
    return out;
  },
  rowNorms(w: Float32Array, rows: number, cols: number, out: Float32Array): void {
    oracle.rowSquares(w, rows, cols).forEach((s, r) => (out[r] = Math.sqrt(s)));
  },
  normalizeRows(w: Float32Array, rows: number, cols: number, target: number): void {
    oracle.rowSquares(w, rows, cols).forEach((s, r) => {
      if (s > 0) for (let c = 0; c < cols; c++) w[r * cols + c] = (w[r * cols + c]! * target) / Math.sqrt(s);
    });
  },
  removeParallelComponent(grad: Float32Array, w: Float32Array, rows: number, cols: number): void {
    const nn = oracle.rowSquares(w, rows, cols);
    for (let r = 0; r < rows; r++) {
      if (nn[r] === 0) continue;
      let dot = 0;
      for (let c = 0; c < cols; c++) dot += grad[r * cols + c]! * w[r * cols + c]!;
      for (let c = 0; c < cols; c++) grad[r * cols + c] = grad[r * cols + c]! - (dot / nn[r]!) * w[r * cols + c]!;
    }
  },
  scale(x: Float32Array, s: number): void {
    for (let i = 0; i < x.length; i++) x[i] = x[i]! * s;
  },
  nonFiniteRows(x: Float32Array, rows: number, cols: number, out: Uint8Array): number {
    for (let r = 0; r < rows; r++) out[r] = x.subarray(r * cols, (r + 1) * cols).every(Number.isFinite) ? 0 : 1;
    return out.subarray(0, rows).reduce((a, b) => a + b, 0);
  },
  subtract(a: Float32Array, b: Float32Array, out: Float32Array): number {
    let s = 0;
    for (let i = 0; i < out.length; i++) {
      out[i] = a[i]! - b[i]!;
      s += out[i]! ** 2;
    }
    return s;
  },
  centeredSumSquares(x: Float32Array, rows: number, cols: number): number {
    let s = 0;
    for (let c = 0; c < cols; c++) {
      let mean = 0;
      for (let r = 0; r < rows; r++) mean += x[r * cols + c]! / rows;
      for (let r = 0; r < rows; r++) s += (x[r * cols + c]! - mean) ** 2;
    }
    return s;
  },
  columnSums(x: Float32Array, rows: number, cols: number, out: Float32Array, accumulate: boolean): void {
    for (let c = 0; c < cols; c++) {
      let s = 0;
      for (let r = 0; r < rows; r++) s += x[r * cols + c]!;
      out[c] = (accumulate ? out[c]! : 0) + s;
    }
  },
  /** out[r, :] = sum over row r's entries e, in order, of val[e] w[idx[e], :]. */
  sparseDecode(code: CsrRows, val: Float32Array, w: Float32Array, dIn: number, out: Float32Array): void {
    for (let r = 0; r < code.rows; r++) {
      for (let j = 0; j < dIn; j++) {
        let s = 0;
        for (let e = code.rowPtr[r]!; e < code.rowPtr[r + 1]!; e++) s += val[e]! * w[code.idx[e]! * dIn + j]!;
        out[r * dIn + j] = s;
      }
    }
  },
  sparseGatherDot(code: CsrRows, w: Float32Array, g: Float32Array, dIn: number, out: Float32Array): void {
    for (let r = 0; r < code.rows; r++) {
      for (let e = code.rowPtr[r]!; e < code.rowPtr[r + 1]!; e++) {
        let s = 0;
        for (let j = 0; j < dIn; j++) s += g[r * dIn + j]! * w[code.idx[e]! * dIn + j]!;
        out[e] = s;
      }
    }
  },
  /** For each latent i with entries: sum over its entries e (rows in order) of coef[e] x[row(e), :]; latents without one: 0, or untouched when accumulating. */
  sparseScatter(
    code: CsrRows,
    coef: Float32Array,
    x: Float32Array,
    dIn: number,
    dSae: number,
    out: Float32Array,
    layout: ScatterLayout,
    accumulate: boolean,
  ): void {
    const acc = new Float64Array(dSae * dIn); // [dSae, dIn]
    const has = new Uint8Array(dSae);
    for (let r = 0; r < code.rows; r++) {
      for (let e = code.rowPtr[r]!; e < code.rowPtr[r + 1]!; e++) {
        const i = code.idx[e]!;
        has[i] = 1;
        for (let j = 0; j < dIn; j++) acc[i * dIn + j]! += coef[e]! * x[r * dIn + j]!;
      }
    }
    for (let i = 0; i < dSae; i++) {
      if (accumulate && has[i] === 0) continue;
      for (let j = 0; j < dIn; j++) {
        const at = layout === 'rows' ? i * dIn + j : j * dSae + i;
        out[at] = (accumulate ? out[at]! : 0) + acc[i * dIn + j]!;
      }
    }
  },
  sparseScatterSum(code: CsrRows, coef: Float32Array, dSae: number, out: Float32Array, accumulate: boolean): void {
    const acc = new Float64Array(dSae);
    for (let e = 0; e < code.rowPtr[code.rows]!; e++) acc[code.idx[e]!]! += coef[e]!;
    for (let i = 0; i < dSae; i++) out[i] = (accumulate ? out[i]! : 0) + acc[i]!;
  },
};

// ---------------------------------------------------------------- sparse codes

/** Entries per row: k for every row, or 'variable' (0 to 40, every fifth row empty). */
type Lengths = number | 'variable';

/**
 * A seeded CSR code: latents drawn with replacement (so a row may repeat one; row 0 always does when
 * it has two entries) from all latents but every third one (so that some latents have no entry).
 */
function makeCode(rows: number, dSae: number, lengths: Lengths, seed: number): CsrRows {
  const rng = new Rng(seed);
  const rowPtr = new Int32Array(rows + 1);
  for (let r = 0; r < rows; r++) {
    const n = lengths === 'variable' ? (r % 5 === 4 ? 0 : rng.int(41)) : lengths;
    rowPtr[r + 1] = rowPtr[r]! + n;
  }
  const live = Array.from({ length: dSae }, (_, i) => i).filter((i) => dSae < 3 || i % 3 !== 1);
  const idx = new Int32Array(rowPtr[rows]!);
  for (let e = 0; e < idx.length; e++) idx[e] = live[rng.int(live.length)]!;
  if (idx.length >= 2 && rowPtr[1]! >= 2) idx[1] = idx[0]!;
  return { rowPtr, idx, rows };
}

/** [rows, dIn, dSae, entries per row]: odd and power-of-two sizes, from 1 to the TopK step's dIn. */
const SPARSE: readonly (readonly [number, number, number, Lengths])[] = [
  [1, 1, 1, 1],
  [1, 768, 256, 40],
  [7, 7, 17, 3],
  [7, 768, 1, 5],
  [64, 64, 256, 32],
  [64, 129, 17, 'variable'],
  [129, 129, 1000, 40],
  [129, 7, 256, 'variable'],
  [1000, 1, 17, 'variable'],
  [1000, 64, 1000, 1],
  [1000, 768, 1000, 'variable'],
];
const SCATTERS: readonly (readonly [ScatterLayout, boolean])[] = [
  ['rows', false],
  ['rows', true],
  ['columns', false],
  ['columns', true],
];

/** Latents with no entry in the code. */
function emptyLatents(code: CsrRows, dSae: number): number[] {
  const used = new Uint8Array(dSae);
  for (const i of code.idx) used[i] = 1;
  return Array.from({ length: dSae }, (_, i) => i).filter((i) => used[i] === 0);
}

// ---------------------------------------------------------------- the suite, once for every backend

describe.each(BACKENDS)('$name kernels', (backend) => {
  if (backend.kernels instanceof Error) {
    it.skip(`all tests${skipNote(backend)}`, () => {});
    return;
  }
  const k = backend.kernels;

  it('reports its name', () => expect(k.name).toBe(backend.name));

  it.each(LENGTHS)('adam: 5 steps on %i floats match the reference', (n) => {
    const ours = { p: randn(n, 1), m: new Float32Array(n), v: new Float32Array(n) };
    const ref = { p: ours.p.slice(), m: new Float32Array(n), v: new Float32Array(n) };
    const steps = 5;
    let gMax = 0;
    for (let step = 1; step <= steps; step++) {
      const g = randn(n, 100 + step, step === 3 ? 1e-3 : 1); // one step with small gradients
      gMax = Math.max(gMax, maxAbs(g));
      k.adam(ours.p, g, ours.m, ours.v, HYPER, step);
      oracle.adam(ref.p, g, ref.m, ref.v, HYPER, step);
    }
    expectClose(ours.p, ref.p, { ulps: steps, abs: 1e-6 * HYPER.lr * steps }, 'param');
    expectClose(ours.m, ref.m, { abs: 1e-6 * gMax }, 'm');
    expectClose(ours.v, ref.v, { abs: 1e-6 * gMax * gMax }, 'v');
  });

  it('adam: 4 steps match the float64 PyTorch reference (adam.json) within 1e-5', () => {
    const fixture = JSON.parse(readFileSync(new URL('./fixtures/reference/adam.json', import.meta.url), 'utf8')) as {
      hyper: { lr: number; beta1: number; beta2: number; eps: number };
      inputs: { param: number[][]; grads: number[][][] };
      forward: { params_after: number[][][] };
    };
    const p = Float32Array.from(fixture.inputs.param.flat()); // [3, 5]
    const m = new Float32Array(p.length);
    const v = new Float32Array(p.length);
    expect(fixture.inputs.grads.length).toBe(fixture.forward.params_after.length);
    fixture.inputs.grads.forEach((g, t) => {
      k.adam(p, Float32Array.from(g.flat()), m, v, fixture.hyper, t + 1);
      const want = fixture.forward.params_after[t]!.flat();
      expect(relError(p, want), `step ${t + 1}`).toBeLessThanOrEqual(1e-5);
    });
  });

  it.each(MATRICES)('rowNorms %ix%i matches the oracle', (rows, cols) => {
    const w = withZeroRows(randn(rows * cols, rows + cols), cols, [rows - 1]);
    const ours = new Float32Array(rows).fill(NaN);
    const ref = new Float32Array(rows);
    k.rowNorms(w, rows, cols, ours);
    oracle.rowNorms(w, rows, cols, ref);
    expectClose(ours, ref, { ulps: 1 }, 'norms');
    expect(ours[rows - 1]).toBe(0);
  });

  it.each(MATRICES)('normalizeRows %ix%i matches the oracle and leaves zero rows alone', (rows, cols) => {
    const zero = rows > 2 ? [0, rows - 2] : [];
    const w = withZeroRows(randn(rows * cols, rows * cols, 3), cols, zero);
    const ref = w.slice();
    k.normalizeRows(w, rows, cols, 0.5);
    oracle.normalizeRows(ref, rows, cols, 0.5);
    expectClose(w, ref, { ulps: 1 }, 'w');
    const norms = new Float32Array(rows);
    oracle.rowNorms(w, rows, cols, norms);
    for (let r = 0; r < rows; r++) expect(norms[r]).toBeCloseTo(zero.includes(r) ? 0 : 0.5, 6);
  });

  it.each(MATRICES)('removeParallelComponent %ix%i matches the oracle and leaves rows of zero w alone', (rows, cols) => {
    const w = withZeroRows(randn(rows * cols, 7 * rows + cols), cols, [rows >> 1]);
    const grad = randn(rows * cols, 11 * rows + cols);
    const before = grad.slice();
    const ref = grad.slice();
    k.removeParallelComponent(grad, w, rows, cols);
    oracle.removeParallelComponent(ref, w, rows, cols);
    const rowScale = (i: number): number => 1e-12 * maxAbs(before.subarray(i - (i % cols), i - (i % cols) + cols));
    expectClose(grad, ref, { ulps: 1, abs: rowScale }, 'grad');
    const r = rows >> 1;
    expect(sameBits(grad.subarray(r * cols, (r + 1) * cols), before.subarray(r * cols, (r + 1) * cols))).toBe(true);
    for (let i = 0; i < rows; i++) {
      if (i === r || cols === 1) continue;
      let dot = 0;
      for (let c = i * cols; c < (i + 1) * cols; c++) dot += grad[c]! * w[c]!;
      expect(Math.abs(dot)).toBeLessThan(1e-5 * Math.sqrt(cols));
    }
  });

  it.each(LENGTHS)('scale on %i floats is exactly the oracle', (n) => {
    for (const s of [0.1, -3, 0, 1e-30]) {
      const x = randn(n, n);
      const ref = x.slice();
      k.scale(x, s);
      oracle.scale(ref, s);
      expect(sameBits(x, ref), `s = ${s}`).toBe(true);
    }
  });

  it.each(MATRICES)('nonFiniteRows %ix%i flags NaN and infinities, not large or tiny finite values', (rows, cols) => {
    const n = rows * cols;
    const x = randn(n, 5);
    const specials = [NaN, Infinity, -Infinity, 3.4028234663852886e38, -1.401298464324817e-45, -0].slice(0, n);
    const at = specials.map((_, j) => Math.floor((j * n) / specials.length)); // distinct positions
    specials.forEach((value, j) => (x[at[j]!] = value));
    const ours = new Uint8Array(rows).fill(7);
    const ref = new Uint8Array(rows);
    const count = k.nonFiniteRows(x, rows, cols, ours);
    expect(count).toBe(oracle.nonFiniteRows(x, rows, cols, ref));
    expect(Array.from(ours)).toEqual(Array.from(ref));
    const bad = new Set(at.slice(0, 3).map((i) => Math.floor(i / cols))); // rows of NaN, +Inf, -Inf
    expect(count).toBe(bad.size);
    for (let r = 0; r < rows; r++) expect(ours[r]).toBe(bad.has(r) ? 1 : 0);
  });

  it('handles empty shapes (0 rows or 0 columns)', () => {
    for (const [rows, cols] of [
      [0, 5],
      [5, 0],
      [0, 0],
    ] as const) {
      const w = new Float32Array(rows * cols);
      const out = new Float32Array(rows).fill(NaN);
      k.rowNorms(w, rows, cols, out);
      expect(Array.from(out)).toEqual(new Array<number>(rows).fill(0));
      k.normalizeRows(w, rows, cols, 1);
      k.removeParallelComponent(new Float32Array(rows * cols), w, rows, cols);
      expect(k.nonFiniteRows(w, rows, cols, new Uint8Array(rows))).toBe(0);
    }
    const empty = new Float32Array(0);
    k.adam(empty, new Float32Array(0), new Float32Array(0), new Float32Array(0), HYPER, 1);
    k.scale(empty, 2);
  });

  it('works on views into larger buffers (subarrays)', () => {
    const rows = 129;
    const cols = 33;
    const big = randn(rows * cols + 10, 9);
    const view = big.subarray(3, 3 + rows * cols);
    const copy = view.slice();
    k.normalizeRows(view, rows, cols, 1);
    oracle.normalizeRows(copy, rows, cols, 1);
    expectClose(view, copy, { ulps: 1 }, 'view');
    expect(big.subarray(0, 3)).toEqual(randn(rows * cols + 10, 9).subarray(0, 3));
  });
});

describe.each(BACKENDS)('$name kernels: dense helpers of the sparse step', (backend) => {
  if (backend.kernels instanceof Error) {
    it.skip(`all tests${skipNote(backend)}`, () => {});
    return;
  }
  const k = backend.kernels;

  it.each(LENGTHS)('subtract on %i floats: out exactly the oracle, sum(out^2) within n 2^-52', (n) => {
    const a = randn(n, 31);
    const b = randn(n, 32, 0.5);
    const ours = new Float32Array(n).fill(NaN);
    const ref = new Float32Array(n);
    const s = k.subtract(a, b, ours);
    const want = oracle.subtract(a, b, ref);
    expect(sameBits(ours, ref)).toBe(true);
    expect(Math.abs(s - want)).toBeLessThanOrEqual(n * 2 ** -52 * want);
    // out may be a or b itself
    const a2 = a.slice();
    expect(k.subtract(a2, b, a2)).toBe(s);
    expect(sameBits(a2, ref)).toBe(true);
    const b2 = b.slice();
    expect(k.subtract(a, b2, b2)).toBe(s);
    expect(sameBits(b2, ref)).toBe(true);
  });

  it.each(MATRICES)('centeredSumSquares %ix%i within n 2^-52 of the oracle', (rows, cols) => {
    const x = randn(rows * cols, rows + 3 * cols, 2);
    for (let i = 0; i < x.length; i++) x[i] = x[i]! + (i % cols); // column means far from 0
    const want = oracle.centeredSumSquares(x, rows, cols);
    expect(Math.abs(k.centeredSumSquares(x, rows, cols) - want)).toBeLessThanOrEqual(rows * cols * 2 ** -52 * want);
  });

  it.each(MATRICES)('columnSums %ix%i is exactly the oracle, overwriting or accumulating', (rows, cols) => {
    const x = randn(rows * cols, rows * cols + 1);
    for (const accumulate of [false, true]) {
      const ours = accumulate ? randn(cols, 41) : new Float32Array(cols).fill(NaN);
      const ref = accumulate ? ours.slice() : new Float32Array(cols);
      k.columnSums(x, rows, cols, ours, accumulate);
      oracle.columnSums(x, rows, cols, ref, accumulate);
      expect(sameBits(ours, ref), `accumulate ${accumulate}`).toBe(true);
    }
  });

  it('handles empty shapes', () => {
    expect(k.subtract(new Float32Array(0), new Float32Array(0), new Float32Array(0))).toBe(0);
    for (const [rows, cols] of [
      [0, 5],
      [5, 0],
      [0, 0],
    ] as const) {
      expect(k.centeredSumSquares(new Float32Array(0), rows, cols)).toBe(0);
      const out = new Float32Array(cols).fill(3);
      k.columnSums(new Float32Array(0), rows, cols, out, false);
      expect(Array.from(out)).toEqual(new Array<number>(cols).fill(0));
    }
  });
});

describe.each(BACKENDS)('$name kernels: sparse', (backend) => {
  if (backend.kernels instanceof Error) {
    it.skip(`all tests${skipNote(backend)}`, () => {});
    return;
  }
  const k = backend.kernels;
  const label = (rows: number, dIn: number, dSae: number, lengths: Lengths): string =>
    `${rows} rows, dIn ${dIn}, dSae ${dSae}, ${lengths === 'variable' ? '0-40' : lengths} per row`;

  it.each(SPARSE)('sparseDecode (%i rows, dIn %i, dSae %i, %s per row) is exactly the oracle', (rows, dIn, dSae, lengths) => {
    const code = makeCode(rows, dSae, lengths, rows + dIn + dSae);
    const val = randn(code.idx.length, 1);
    const w = randn(dSae * dIn, 2);
    const ours = new Float32Array(rows * dIn).fill(NaN);
    const ref = new Float32Array(rows * dIn);
    k.sparseDecode(code, val, w, dIn, ours);
    oracle.sparseDecode(code, val, w, dIn, ref);
    expectClose(ours, ref, {}, label(rows, dIn, dSae, lengths));
  });

  it.each(SPARSE)('sparseGatherDot (%i rows, dIn %i, dSae %i, %s per row) within 1 ulp of the oracle', (rows, dIn, dSae, lengths) => {
    const code = makeCode(rows, dSae, lengths, 2 * rows + dIn);
    const w = randn(dSae * dIn, 3);
    const g = randn(rows * dIn, 4);
    const nnz = code.idx.length;
    const ours = new Float32Array(nnz).fill(NaN);
    const ref = new Float32Array(nnz);
    k.sparseGatherDot(code, w, g, dIn, ours);
    oracle.sparseGatherDot(code, w, g, dIn, ref);
    const bound = new Float64Array(nnz); // dIn 2^-52 sum_j |g_j w_j|
    for (let r = 0; r < rows; r++) {
      for (let e = code.rowPtr[r]!; e < code.rowPtr[r + 1]!; e++) {
        let s = 0;
        for (let j = 0; j < dIn; j++) s += Math.abs(g[r * dIn + j]! * w[code.idx[e]! * dIn + j]!);
        bound[e] = dIn * 2 ** -52 * s;
      }
    }
    expectClose(ours, ref, { ulps: 1, abs: (e) => bound[e]! }, label(rows, dIn, dSae, lengths));
  });

  it.each(SPARSE)('sparseScatter (%i rows, dIn %i, dSae %i, %s per row) is exactly the oracle', (rows, dIn, dSae, lengths) => {
    const code = makeCode(rows, dSae, lengths, 3 * rows + dSae);
    const coef = randn(code.idx.length, 5);
    const x = randn(rows * dIn, 6);
    const empty = emptyLatents(code, dSae);
    if (dSae >= 3) expect(empty.length).toBeGreaterThan(0);
    for (const [layout, accumulate] of SCATTERS) {
      const what = `${label(rows, dIn, dSae, lengths)}, ${layout}${accumulate ? ', accumulate' : ''}`;
      const before = accumulate ? randn(dSae * dIn, 7) : new Float32Array(dSae * dIn).fill(NaN);
      const ours = before.slice();
      const ref = accumulate ? before.slice() : new Float32Array(dSae * dIn);
      k.sparseScatter(code, coef, x, dIn, dSae, ours, layout, accumulate);
      oracle.sparseScatter(code, coef, x, dIn, dSae, ref, layout, accumulate);
      expectClose(ours, ref, {}, what);
      // latents with no entry: zeros, or left as they were
      const wrong = empty.filter((i) => {
        for (let j = 0; j < dIn; j++) {
          const at = layout === 'rows' ? i * dIn + j : j * dSae + i;
          if (!Object.is(ours[at], accumulate ? before[at] : 0)) return true;
        }
        return false;
      });
      expect(wrong, `${what}: latents with no entry`).toEqual([]);
    }
  });

  it.each(SPARSE)('sparseScatterSum (%i rows, dIn %i, dSae %i, %s per row) is exactly the oracle', (rows, _dIn, dSae, lengths) => {
    const code = makeCode(rows, dSae, lengths, 4 * rows + dSae);
    const coef = randn(code.idx.length, 8);
    for (const accumulate of [false, true]) {
      const ours = accumulate ? randn(dSae, 9) : new Float32Array(dSae).fill(NaN);
      const ref = accumulate ? ours.slice() : new Float32Array(dSae);
      k.sparseScatterSum(code, coef, dSae, ours, accumulate);
      oracle.sparseScatterSum(code, coef, dSae, ref, accumulate);
      expectClose(ours, ref, {}, `accumulate ${accumulate}`);
    }
  });

  it('sums repeated latents of a row, and rows with no entries decode to zeros', () => {
    // rows: [2, 2, 0], [], [1]; dSae 3, dIn 2
    const code: CsrRows = { rowPtr: Int32Array.of(0, 3, 3, 4), idx: Int32Array.of(2, 2, 0, 1), rows: 3 };
    const w = Float32Array.of(1, 2, 3, 4, 5, 6); // [3, 2]
    const val = Float32Array.of(1, 0.5, 2, -1);
    const out = new Float32Array(6).fill(NaN);
    k.sparseDecode(code, val, w, 2, out);
    expect(Array.from(out)).toEqual([1.5 * 5 + 2 * 1, 1.5 * 6 + 2 * 2, 0, 0, -3, -4]);
    const dots = new Float32Array(4);
    k.sparseGatherDot(code, w, Float32Array.of(1, 1, 9, 9, 1, -1), 2, dots);
    expect(Array.from(dots)).toEqual([11, 11, 3, -1]);
    const dW = new Float32Array(6).fill(NaN);
    k.sparseScatter(code, val, Float32Array.of(1, 2, 9, 9, 3, 4), 2, 3, dW, 'rows', false);
    expect(Array.from(dW)).toEqual([2, 4, -3, -4, 1.5, 3]);
    k.sparseScatter(code, val, Float32Array.of(1, 2, 9, 9, 3, 4), 2, 3, dW, 'columns', false);
    expect(Array.from(dW)).toEqual([2, -3, 1.5, 4, -4, 3]);
    const db = new Float32Array(3).fill(1);
    k.sparseScatterSum(code, val, 3, db, true);
    expect(Array.from(db)).toEqual([3, 0, 2.5]);
  });

  it('handles empty codes and empty shapes (0 rows, dIn 0, dSae 0)', () => {
    const none: CsrRows = { rowPtr: Int32Array.of(0), idx: new Int32Array(0), rows: 0 };
    const f = (n: number, v = 7): Float32Array => new Float32Array(n).fill(v);
    k.sparseDecode(none, f(0), f(12), 4, f(0));
    k.sparseGatherDot(none, f(12), f(0), 4, f(0));
    const dW = f(12);
    k.sparseScatter(none, f(0), f(0), 4, 3, dW, 'columns', false);
    expect(Array.from(dW)).toEqual(new Array<number>(12).fill(0));
    k.sparseScatter(none, f(0), f(0), 4, 3, dW.fill(7), 'rows', true);
    expect(Array.from(dW)).toEqual(new Array<number>(12).fill(7));
    const db = f(3);
    k.sparseScatterSum(none, f(0), 3, db, false);
    expect(Array.from(db)).toEqual([0, 0, 0]);
    k.sparseScatterSum(none, f(0), 0, f(0), false);
    const empties: CsrRows = { rowPtr: new Int32Array(4), idx: new Int32Array(0), rows: 3 };
    const out = f(6);
    k.sparseDecode(empties, f(0), f(4), 2, out);
    expect(Array.from(out)).toEqual([0, 0, 0, 0, 0, 0]);
    const one: CsrRows = { rowPtr: Int32Array.of(0, 1), idx: Int32Array.of(2), rows: 1 };
    k.sparseDecode(one, f(1), f(0), 0, f(0));
    k.sparseGatherDot(one, f(0), f(0), 0, f(1));
    k.sparseScatter(one, f(1), f(0), 0, 3, f(0), 'columns', false);
  });

  it('works on views into larger buffers (subarrays)', () => {
    const [rows, dIn, dSae] = [129, 33, 70];
    const code = makeCode(rows, dSae, 'variable', 12);
    const nnz = code.idx.length;
    const bigIdx = new Int32Array(nnz + 9).fill(-1);
    bigIdx.set(code.idx, 5);
    const view: CsrRows = { rowPtr: code.rowPtr, idx: bigIdx.subarray(5, 5 + nnz), rows };
    const coef = randn(nnz + 4, 13).subarray(3, 3 + nnz);
    const x = randn(rows * dIn + 2, 14).subarray(1, 1 + rows * dIn);
    const big = new Float32Array(dSae * dIn + 8).fill(5);
    const out = big.subarray(4, 4 + dSae * dIn);
    const ref = new Float32Array(dSae * dIn);
    k.sparseScatter(view, coef, x, dIn, dSae, out, 'columns', false);
    oracle.sparseScatter(code, coef.slice(), x.slice(), dIn, dSae, ref, 'columns', false);
    expectClose(out, ref, {}, 'view');
    expect(Array.from(big.subarray(0, 4))).toEqual([5, 5, 5, 5]);
    expect(Array.from(big.subarray(4 + dSae * dIn))).toEqual([5, 5, 5, 5]);
  });
});

// ---------------------------------------------------------------- native only

describe(`native kernels: threads and validation${skipNote(BACKENDS[1]!)}`, () => {
  if (native instanceof Error) {
    it.skip('all tests', () => {});
    return;
  }
  const k = native;

  /** Runs every kernel on inputs past the inline threshold; returns every output. */
  function runAll(kernels: Kernels): ArrayBufferView[] {
    const [rows, cols] = [1001, 67];
    const n = 100_003;
    const p = randn(n, 1);
    const m = new Float32Array(n);
    const v = new Float32Array(n);
    for (let step = 1; step <= 3; step++) kernels.adam(p, randn(n, step + 1), m, v, HYPER, step);
    const w = randn(rows * cols, 20);
    const norms = new Float32Array(rows);
    kernels.rowNorms(w, rows, cols, norms);
    const grad = randn(rows * cols, 21);
    kernels.removeParallelComponent(grad, w, rows, cols);
    kernels.normalizeRows(w, rows, cols, 0.3);
    const x = randn(n, 22);
    kernels.scale(x, 0.7);
    x[77_777] = NaN;
    const bad = new Uint8Array(n / 7 + 1);
    const sx = x.subarray(0, 14_286 * 7);
    kernels.nonFiniteRows(sx, 14_286, 7, bad.subarray(0, 14_286));
    return [p, m, v, norms, grad, w, x, bad, ...runSparse(kernels)];
  }

  /** The sparse step's kernels past the inline threshold, dSae not a multiple of the 16-latent tile. */
  function runSparse(kernels: Kernels): ArrayBufferView[] {
    const [rows, dIn, dSae] = [1001, 67, 301];
    const code = makeCode(rows, dSae, 'variable', 30);
    const nnz = code.idx.length;
    const x = randn(rows * dIn, 31);
    const val = randn(nnz, 32);
    const w = randn(dSae * dIn, 33);
    const recon = new Float32Array(rows * dIn);
    kernels.sparseDecode(code, val, w, dIn, recon);
    const residual = new Float32Array(rows * dIn);
    const loss = kernels.subtract(recon, x, residual);
    const fvu = kernels.centeredSumSquares(x, rows, dIn);
    const dbDec = randn(dIn, 34);
    kernels.columnSums(residual, rows, dIn, dbDec, true);
    const dots = new Float32Array(nnz);
    kernels.sparseGatherDot(code, w, residual, dIn, dots);
    const outs: ArrayBufferView[] = [recon, residual, Float64Array.of(loss, fvu), dbDec, dots];
    for (const [layout, accumulate] of SCATTERS) {
      const out = randn(dSae * dIn, 35);
      kernels.sparseScatter(code, dots, x, dIn, dSae, out, layout, accumulate);
      outs.push(out);
    }
    const dbEnc = randn(dSae, 36);
    kernels.sparseScatterSum(code, dots, dSae, dbEnc, true);
    return [...outs, dbEnc];
  }

  it('gives bitwise the same results on 1, 2, 3 and 8 threads', () => {
    const binding = loadNativeBinding();
    if (binding instanceof Error) throw binding;
    const results = [1, 2, 3, 8].map((threads) => {
      const kt = loadNativeKernels(threads);
      if (kt instanceof Error) throw kt;
      expect(binding.threads()).toBe(threads);
      return runAll(kt);
    });
    loadNativeKernels(2);
    for (const other of results.slice(1)) {
      other.forEach((out, i) => expect(sameBits(out, results[0]![i]!), `output ${i}`).toBe(true));
    }
  });

  it('survives rapid resizes between calls', () => {
    const x = randn(1 << 16, 3);
    const want = x.slice();
    for (let i = 0; i < 200; i++) {
      loadNativeKernels(1 + (i % 4));
      k.scale(x, i % 2 ? 2 : 0.5);
    }
    loadNativeKernels(2);
    expect(sameBits(x, want)).toBe(true);
  });

  /** Calls fn with arguments the type system would refuse, to reach the addon's own checks. */
  /** Calls kernel `name` with arguments its TypeScript signature would refuse (what plain JavaScript callers can pass). */
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with the kernels object as `this`
  const callUntyped = (name: keyof Kernels, ...args: unknown[]): unknown => Reflect.apply(k[name] as (...a: unknown[]) => unknown, k, args);

  it('throws TypeError for a wrong buffer type, naming the kernel and the argument', () => {
    const out = new Float32Array(2);
    expect(() => callUntyped('rowNorms', new Float64Array(4), 2, 2, out)).toThrow(new TypeError('rowNorms: w must be a Float32Array, got a Float64Array'));
    expect(() => callUntyped('rowNorms', [1, 2, 3, 4], 2, 2, out)).toThrow(/w must be a Float32Array, got an Array/);
    expect(() => callUntyped('nonFiniteRows', new Float32Array(4), 2, 2, new Int8Array(2))).toThrow(
      /nonFiniteRows: out must be a Uint8Array, got an Int8Array/,
    );
    expect(() => callUntyped('scale', new Float32Array(4), '2')).toThrow(new TypeError('scale: s must be a number, got a string'));
    expect(() => callUntyped('normalizeRows', new Float32Array(4), 2, undefined, 1)).toThrow(TypeError);
  });

  it('throws RangeError for wrong lengths, shapes, overlapping buffers and out-of-range values', () => {
    const f = (n: number): Float32Array => new Float32Array(n);
    expect(() => k.rowNorms(f(10), 3, 4, f(3))).toThrow(new RangeError('rowNorms: w has 10 elements, expected rows * cols = 3 * 4 = 12'));
    expect(() => k.rowNorms(f(12), 3, 4, f(4))).toThrow(new RangeError('rowNorms: out has 4 elements, expected rows = 3'));
    expect(() => k.normalizeRows(f(12), -3, -4, 1)).toThrow(/rows must be an integer in \[0, 4294967295\], got -3/);
    expect(() => k.normalizeRows(f(12), 3, 4.5, 1)).toThrow(RangeError);
    expect(() => k.normalizeRows(f(12), 3, 4, NaN)).toThrow(new RangeError('normalizeRows: target must be finite, got NaN'));
    expect(() => k.removeParallelComponent(f(12), f(11), 3, 4)).toThrow(/removeParallelComponent: w has 11 elements/);
    const g = f(12);
    expect(() => k.removeParallelComponent(g, g, 3, 4)).toThrow(/grad and w share memory/);
    const buf = f(20);
    expect(() => k.rowNorms(buf.subarray(0, 12), 3, 4, buf.subarray(11, 14))).toThrow(/w and out share memory/);
    k.rowNorms(buf.subarray(0, 12), 3, 4, buf.subarray(12, 15)); // adjacent is fine
    expect(() => k.scale(f(3), Infinity)).toThrow(RangeError);

    const [p, gr, m, v] = [f(6), f(6), f(6), f(6)];
    expect(() => k.adam(p, f(5), m, v, HYPER, 1)).toThrow(new RangeError('adam: grad has 5 elements, expected param.length = 6'));
    expect(() => k.adam(p, gr, p, v, HYPER, 1)).toThrow(/adam: param and m share memory/);
    expect(() => k.adam(p, gr, m, v, HYPER, 0)).toThrow(/adam: step must be an integer in \[1, /);
    expect(() => k.adam(p, gr, m, v, HYPER, 1.5)).toThrow(RangeError);
    expect(() => k.adam(p, gr, m, v, { ...HYPER, beta1: 1 }, 1)).toThrow(new RangeError('adam: beta1 must be in [0, 1), got 1'));
    expect(() => k.adam(p, gr, m, v, { ...HYPER, lr: -1 }, 1)).toThrow(new RangeError('adam: lr must be >= 0, got -1'));
    expect(() => k.adam(p, gr, m, v, { ...HYPER, eps: NaN }, 1)).toThrow(RangeError);
    expect(Array.from(p)).toEqual([0, 0, 0, 0, 0, 0]); // nothing was touched
  });

  it("checks the sparse kernels' arguments (TypeError, RangeError), touching nothing on failure", () => {
    const f = (n: number): Float32Array => new Float32Array(n);
    const code = (rowPtr: number[], idx: number[]): CsrRows => ({ rowPtr: Int32Array.from(rowPtr), idx: Int32Array.from(idx), rows: rowPtr.length - 1 });
    const good = code([0, 2, 2, 3], [0, 4, 1]); // 3 rows, nnz 3
    const [dIn, dSae] = [2, 5];
    const w = f(dSae * dIn);
    const out = f(3 * dIn);
    k.sparseDecode(good, f(3), w, dIn, out); // fine

    // the CSR code
    expect(() => k.sparseDecode({ ...good, rows: 2 }, f(3), w, dIn, out)).toThrow(new RangeError('sparseDecode: rowPtr has 4 elements, expected rows + 1 = 3'));
    expect(() => k.sparseDecode(code([1, 2, 2, 3], [0, 4, 1]), f(3), w, dIn, out)).toThrow(new RangeError('sparseDecode: rowPtr[0] must be 0, got 1'));
    expect(() => k.sparseDecode(code([0, 2, 1, 3], [0, 4, 1]), f(3), w, dIn, out)).toThrow(
      new RangeError('sparseDecode: rowPtr must be nondecreasing, got rowPtr[2] = 1 < rowPtr[1] = 2'),
    );
    expect(() => k.sparseDecode(code([0, 2, 2, 4], [0, 4, 1]), f(4), w, dIn, out)).toThrow(
      new RangeError('sparseDecode: idx has 3 elements, expected nnz = rowPtr[rows] = 4'),
    );
    expect(() => k.sparseDecode(code([0, 2, 2, 3], [0, 5, 1]), f(3), w, dIn, out)).toThrow(
      new RangeError('sparseDecode: idx[1] = 5 is out of [0, dSae) with dSae = w.length / dIn = 5'),
    );
    expect(() => k.sparseGatherDot(code([0, 2, 2, 3], [0, 1, -1]), w, f(6), dIn, f(3))).toThrow(/sparseGatherDot: idx\[2\] = -1 is out of \[0, dSae\)/);
    expect(() => k.sparseScatter(code([0, 2, 2, 3], [0, 4, 1]), f(3), f(6), dIn, 4, f(8), 'rows', false)).toThrow(
      new RangeError('sparseScatter: idx[1] = 4 is out of [0, dSae) with dSae = 4'),
    );
    expect(() => k.sparseScatterSum(code([0, 2, 2, 3], [0, -7, 1]), f(3), dSae, f(dSae), false)).toThrow(
      new RangeError('sparseScatterSum: idx[1] = -7 is out of [0, dSae) with dSae = 5'),
    );

    // the other buffers
    expect(() => k.sparseDecode(good, f(2), w, dIn, out)).toThrow(/sparseDecode: val has 2 elements, expected nnz = rowPtr\[rows\] = 3/);
    expect(() => k.sparseDecode(good, f(3), f(9), dIn, out)).toThrow(new RangeError('sparseDecode: w has 9 elements, not a multiple of dIn = 2'));
    expect(() => k.sparseDecode(good, f(3), w, dIn, f(5))).toThrow(/sparseDecode: out has 5 elements, expected rows \* dIn = 3 \* 2 = 6/);
    expect(() => k.sparseGatherDot(good, w, f(5), dIn, f(3))).toThrow(/sparseGatherDot: g has 5 elements/);
    expect(() => k.sparseGatherDot(good, w, f(6), dIn, f(4))).toThrow(/sparseGatherDot: out has 4 elements, expected nnz/);
    expect(() => k.sparseScatter(good, f(3), f(6), dIn, dSae, f(9), 'rows', false)).toThrow(
      /sparseScatter: out has 9 elements, expected dSae \* dIn = 5 \* 2 = 10/,
    );
    expect(() => k.sparseScatter(good, f(3), f(7), dIn, dSae, f(10), 'columns', true)).toThrow(/sparseScatter: x has 7 elements/);
    expect(() => k.sparseScatterSum(good, f(3), dSae, f(4), true)).toThrow(/sparseScatterSum: out has 4 elements, expected dSae = 5/);
    const shared = f(20);
    expect(() => k.sparseScatter(good, f(3), shared.subarray(0, 6), dIn, dSae, shared.subarray(5, 15), 'rows', false)).toThrow(
      /sparseScatter: out and x share memory/,
    );
    expect(() => k.sparseGatherDot(good, shared.subarray(0, 10), f(6), dIn, shared.subarray(9, 12))).toThrow(/out and w share memory/);
    const a = f(8);
    expect(() => k.subtract(a.subarray(0, 4), f(4), a.subarray(2, 6))).toThrow(new RangeError('subtract: out and a share memory; pass separate buffers'));
    expect(() => k.subtract(f(4), f(3), f(4))).toThrow(new RangeError('subtract: b has 3 elements, expected a.length = 4'));
    expect(() => k.columnSums(f(6), 2, 3, f(2), false)).toThrow(new RangeError('columnSums: out has 2 elements, expected cols = 3'));
    expect(() => k.centeredSumSquares(f(6), 4, 2)).toThrow(/centeredSumSquares: x has 6 elements, expected rows \* cols/);

    // types
    expect(() => callUntyped('sparseDecode', { ...good, idx: Uint32Array.from(good.idx) }, f(3), w, dIn, out)).toThrow(
      new TypeError('sparseDecode: idx must be an Int32Array, got a Uint32Array'),
    );
    expect(() => callUntyped('sparseScatterSum', { ...good, rowPtr: [0, 2, 2, 3] }, f(3), dSae, f(dSae), false)).toThrow(
      new TypeError('sparseScatterSum: rowPtr must be an Int32Array, got an Array'),
    );
    expect(() => callUntyped('sparseScatter', good, f(3), f(6), dIn, dSae, f(10), 'cols', false)).toThrow(
      new RangeError("sparseScatter: layout must be 'rows' or 'columns', got 'cols'"),
    );
    expect(() => callUntyped('sparseScatter', good, f(3), f(6), dIn, dSae, f(10), 1, false)).toThrow(
      new TypeError('sparseScatter: layout must be a string, got a number'),
    );
    expect(() => callUntyped('sparseScatter', good, f(3), f(6), dIn, dSae, f(10), 'rows', 0)).toThrow(
      new TypeError('sparseScatter: accumulate must be a boolean, got a number'),
    );
    expect(() => callUntyped('columnSums', f(6), 2, 3, f(3), undefined)).toThrow(new TypeError('columnSums: accumulate must be a boolean, got undefined'));
    expect(() => callUntyped('sparseDecode', { ...good, rows: 2.5 }, f(3), w, dIn, out)).toThrow(/sparseDecode: rows must be an integer/);

    // nothing was written by a failed call
    const untouched = f(10).fill(3);
    expect(() => k.sparseScatter(code([0, 2, 2, 3], [0, 9, 1]), f(3), f(6), dIn, dSae, untouched, 'columns', false)).toThrow(RangeError);
    expect(Array.from(untouched)).toEqual(new Array<number>(10).fill(3));
  });

  it('rejects a thread count out of range without changing the pool', () => {
    const binding = loadNativeBinding();
    if (binding instanceof Error) throw binding;
    expect(() => binding.setThreads(0)).toThrow(new RangeError('setThreads: threads must be an integer in [1, 1024], got 0'));
    expect(loadNativeKernels(0)).toBeInstanceOf(Error);
    expect(binding.threads()).toBe(2);
  });
});

// ---------------------------------------------------------------- loading and the fallback

describe('kernel loading and selection', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('returns an Error (never throws) for a missing addon, a non-addon file and a foreign module', () => {
    vi.stubEnv('SAE_NATIVE_PATH', '/nonexistent/sae_kernels.node');
    const missing = loadNativeKernels(2);
    expect(missing).toBeInstanceOf(Error);
    expect(missing instanceof Error && missing.message).toBe('no addon at /nonexistent/sae_kernels.node');

    const junk = join(tmpdir(), `sae-junk-${process.pid}.node`);
    writeFileSync(junk, 'not a shared object');
    vi.stubEnv('SAE_NATIVE_PATH', junk);
    const broken = loadNativeKernels(2);
    expect(broken instanceof Error && broken.message).toMatch(/^cannot load .*sae-junk.*: /);

    vi.stubEnv('SAE_NATIVE_PATH', new URL('./fixtures/reference/adam.json', import.meta.url).pathname);
    const foreign = loadNativeKernels(2);
    expect(foreign instanceof Error && foreign.message).toMatch(/is a stale or foreign build/);
  });

  it("'auto' falls back to the reference with exactly one warning; 'native' throws a UserError", () => {
    vi.stubEnv('SAE_NATIVE_PATH', '/nonexistent/sae_kernels.node');
    const warn = vi.fn<(message: string) => void>();
    const engines = [new Engine({ threads: 2, kernels: 'auto', warn }), new Engine({ threads: 1, kernels: 'auto', warn })];
    for (const e of engines) expect(e.kernels.name).toBe('reference');
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toMatch(/no addon at \/nonexistent.*npm rebuild sparse-autoencoder/);
    expect(() => new Engine({ threads: 2, kernels: 'native', warn })).toThrow(UserError);
    expect(() => new Engine({ threads: 2, kernels: 'native', warn })).toThrow(/native kernels could not be loaded: no addon/);
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it.skipIf(native instanceof Error)("'auto' picks the native kernels when the addon is built", () => {
    const warn = vi.fn<(message: string) => void>();
    expect(new Engine({ threads: 2, kernels: 'auto', warn }).kernels.name).toBe('native');
    expect(warn).not.toHaveBeenCalled();
  });
});
