/**
 * How well a learned dictionary recovers known features.
 *   cos[i, j] = <F_i, W_dec_j> / (||F_i|| ||W_dec_j||)      F: [n, d] true features, W_dec: [m, d] decoder rows
 *   maxCos_i  = max_j cos[i, j]                              (signed: a feature learned with the wrong sign is not recovered)
 *   MMCS      = mean_i maxCos_i;   recovered = #{i : maxCos_i > threshold} / n
 */
import type { Engine } from '../engine/index.js';

/** Rows scaled to unit norm (a zero row stays zero): [rows, d] -> [rows, d], a copy. */
export function unitRows(w: Float32Array, rows: number, d: number): Float32Array {
  const out = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += w[r * d + j]! ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < d; j++) out[r * d + j] = w[r * d + j]! * inv;
  }
  return out;
}

/** w: [rows, cols] -> w^T: [cols, rows] */
export function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c]!;
  return out;
}

/** truth: [n, d], decoder: [m, d] -> maxCos: [n], the best cosine of each true feature with any decoder row. */
export async function maxCosines(engine: Engine, truth: Float32Array, n: number, decoder: Float32Array, m: number, d: number): Promise<Float32Array> {
  const cos = await engine.matmul(unitRows(truth, n, d), transpose(unitRows(decoder, m, d), m, d), n, d, m); // [n, m]
  const best = new Float32Array(n).fill(-1);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) best[i] = Math.max(best[i]!, cos[i * m + j]!);
  return best;
}

export interface RecoveryScores {
  /** Mean over true features of the best cosine with a decoder row. */
  readonly mmcs: number;
  /** Fraction of true features whose best cosine exceeds the threshold. */
  readonly recovered: number;
  readonly threshold: number;
}

export function recoveryScores(maxCos: Float32Array, threshold = 0.9): RecoveryScores {
  let sum = 0;
  let above = 0;
  for (const c of maxCos) {
    sum += c;
    if (c > threshold) above++;
  }
  const n = Math.max(1, maxCos.length);
  return { mmcs: sum / n, recovered: above / n, threshold };
}
