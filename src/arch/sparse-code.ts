/**
 * Sparse codes: which latents each row selected, as CSR rows (src/engine/kernels.ts CsrRows), with
 * their pre-activations; how they are made (TopK per row, BatchTopK over the batch, a latent range
 * for Matryoshka's prefixes) and read (activations, firing counts, a dense matrix).
 *   f_e = relu(pre_e);  fires[i] = #{e : i_e = i, f_e > 0}
 */
import type { CsrRows, Kernels } from '../engine/kernels.js';

/** A selection of latents per row and their pre-activations. */
export interface Selection {
  readonly code: CsrRows;
  /** [nnz] pre-activation of each entry. */
  readonly pre: Float32Array;
}

/** rows x k entries in row order: rowPtr[r] = r k. */
export function fixedRows(rows: number, k: number, idx: Int32Array): CsrRows {
  return { rows, idx, rowPtr: Int32Array.from({ length: rows + 1 }, (_, r) => r * k) };
}

/** [nnz] relu of the pre-activations: the latent activations f. */
export function reluOf(pre: Float32Array): Float32Array {
  return pre.map((v) => (v > 0 ? v : 0));
}

/** x: [rows, d], in place: every row plus b: [d]. */
export function addRowVector(x: Float32Array, rows: number, b: Float32Array): void {
  const d = b.length;
  for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) x[r * d + j]! += b[j]!;
}

/** [dSae] inputs on which each latent fired (f > 0). */
export function firesOf(kernels: Kernels, s: Selection, dSae: number): Float32Array {
  const fires = new Float32Array(dSae);
  kernels.sparseScatterSum(
    s.code,
    s.pre.map((v) => (v > 0 ? 1 : 0)),
    dSae,
    fires,
    false,
  );
  return fires;
}

/** Entries as a dense [rows, dSae] matrix (for conformance checks only). */
export function densify(s: Selection, values: Float32Array, dSae: number): Float32Array {
  const out = new Float32Array(s.code.rows * dSae);
  for (let r = 0; r < s.code.rows; r++) {
    for (let e = s.code.rowPtr[r]!; e < s.code.rowPtr[r + 1]!; e++) out[r * dSae + s.code.idx[e]!] = values[e]!;
  }
  return out;
}

/** [dSae] 0 for dead latents, -inf for live ones (added to pre to select among the dead only). */
export function deadBias(deadMask: Uint8Array): { bias: Float32Array; dead: number } {
  let dead = 0;
  const bias = Float32Array.from(deadMask, (m) => (m ? (dead++, 0) : Number.NEGATIVE_INFINITY));
  return { bias, dead };
}

/** The n-th largest of values (1-based), by quickselect on a copy. */
export function nthLargest(values: Float32Array, n: number): number {
  const a = values.slice();
  let lo = 0;
  let hi = a.length - 1;
  const target = n - 1; // index in descending order
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! > pivot) i++;
      while (a[j]! < pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i++] = a[j]!;
        a[j--] = t;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return pivot;
  }
  return a[lo]!;
}

export interface BatchSelection {
  readonly selection: Selection;
  /** The smallest kept value (0 when nothing was kept). */
  readonly minKept: number;
  /** A row had all its candidates kept: it may hold more of the batch's largest values. */
  readonly overflow: boolean;
}

/**
 * BatchTopK: from per-row candidates (each row's kCand largest pre-activations, in descending
 * order), keep the `total` largest positive values of the whole batch. Ties at the boundary go to
 * earlier rows, then earlier candidates, so the kept entries of a row are a prefix of its candidates.
 */
export function batchSelect(cand: Selection, kCand: number, total: number, dSae: number): BatchSelection {
  const { rows } = cand.code;
  const positive = cand.pre.filter((v) => v > 0);
  const n = Math.min(total, positive.length);
  const counts = new Int32Array(rows);
  let minKept = 0;
  if (n > 0) {
    minKept = nthLargest(positive, n);
    let ties = n;
    for (const v of positive) if (v > minKept) ties--;
    for (let r = 0; r < rows; r++) {
      let c = 0;
      for (let j = 0; j < kCand; j++) {
        const v = cand.pre[r * kCand + j]!;
        if (v > minKept) c++;
        else if (v === minKept && ties > 0) {
          c++;
          ties--;
        } else break;
      }
      counts[r] = c;
    }
  }
  const rowPtr = new Int32Array(rows + 1);
  for (let r = 0; r < rows; r++) rowPtr[r + 1] = rowPtr[r]! + counts[r]!;
  const nnz = rowPtr[rows]!;
  const idx = new Int32Array(nnz);
  const pre = new Float32Array(nnz);
  let overflow = false;
  for (let r = 0; r < rows; r++) {
    const c = counts[r]!;
    idx.set(cand.code.idx.subarray(r * kCand, r * kCand + c), rowPtr[r]);
    pre.set(cand.pre.subarray(r * kCand, r * kCand + c), rowPtr[r]);
    if (c === kCand && kCand < dSae) overflow = true;
  }
  return { selection: { code: { rowPtr, idx, rows }, pre }, minKept, overflow };
}

/** The first k entries of each row of per-row candidates ([rows, kCand], descending): each row's k largest, as TopK keeps them. */
export function rowPrefixes(cand: Selection, kCand: number, k: number): Selection {
  const { rows } = cand.code;
  const idx = new Int32Array(rows * k);
  const pre = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    idx.set(cand.code.idx.subarray(r * kCand, r * kCand + k), r * k);
    pre.set(cand.pre.subarray(r * kCand, r * kCand + k), r * k);
  }
  return { code: fixedRows(rows, k, idx), pre };
}

/**
 * BatchTopK's choice among each row's kCand largest pre-activations (cand: [rows, kCand],
 * descending): the k * rows largest of the batch, or during a TopK warm-up each row's own k largest;
 * either way `minKept` is the batch selection's smallest kept value (what the inference threshold follows).
 */
export class BatchSelector {
  kCand: number;
  minKept = 0;

  constructor(
    private readonly k: number,
    private readonly dSae: number,
  ) {
    this.kCand = Math.min(dSae, 4 * k);
  }

  /** undefined: a row had all its candidates kept; kCand has doubled and the encoder must run again. */
  select(cand: Selection, rows: number, perRowOnly: boolean): Selection | undefined {
    const chosen = batchSelect(cand, this.kCand, this.k * rows, this.dSae);
    if (chosen.overflow) {
      this.kCand = Math.min(this.dSae, 2 * this.kCand);
      return undefined;
    }
    this.minKept = chosen.minKept;
    return perRowOnly ? rowPrefixes(cand, this.kCand, this.k) : chosen.selection;
  }

  /**
   * The inference threshold after this step: an EMA (factor beta) of minKept, starting at the first
   * step's value rather than at the initial one, which would bias it for ~1 / (1 - beta) steps;
   * unchanged when the step kept nothing.
   */
  nextThreshold(current: number, beta: number, first: boolean): number {
    if (this.minKept <= 0) return current;
    return first ? this.minKept : beta * current + (1 - beta) * this.minKept;
  }
}

/** Entries of s whose latent lies in [lo, hi), as a code of the same rows (with their positions in s). */
export function entriesIn(s: Selection, lo: number, hi: number): { sel: Selection; at: Int32Array } {
  const { rows, rowPtr, idx } = s.code;
  const ptr = new Int32Array(rows + 1);
  const at: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let e = rowPtr[r]!; e < rowPtr[r + 1]!; e++) if (idx[e]! >= lo && idx[e]! < hi) at.push(e);
    ptr[r + 1] = at.length;
  }
  const pos = Int32Array.from(at);
  return {
    sel: { code: { rows, rowPtr: ptr, idx: pos.map((e) => idx[e]!) }, pre: pos.length ? Float32Array.from(pos, (e) => s.pre[e]!) : new Float32Array(0) },
    at: pos,
  };
}
