/**
 * Initialisation: decoder rows in random directions at a chosen norm, W_enc = W_dec^T, b_enc = 0,
 * b_dec at the geometric median (or the mean) of a sample of inputs.
 */
import { paramsOf } from '../arch/common.js';
import type { ArchitectureDef, Dims, Params } from '../arch/types.js';
import type { Kernels } from '../engine/kernels.js';
import type { Rng } from '../rng.js';

/** How b_dec starts: the geometric median or the mean of a data sample, or zeros. */
export type BDecInit = 'geometric_median' | 'mean' | 'zeros';

export function initParams<H>(def: ArchitectureDef<H>, h: H, d: Dims, rng: Rng, decoderNorm: number, kernels: Kernels): Params {
  const params: Params = {};
  for (const spec of def.params(d, h)) params[spec.name] = new Float32Array(spec.shape.reduce((a, b) => a * b, 1));
  Object.assign(params, def.initExtra?.(d, h));
  const { W_enc, W_dec } = paramsOf(params, 'W_enc', 'W_dec'); // [dIn, dSae], [dSae, dIn]
  for (let i = 0; i < W_dec.length; i++) W_dec[i] = rng.normal();
  kernels.normalizeRows(W_dec, d.dSae, d.dIn, decoderNorm);
  for (let i = 0; i < d.dSae; i++) for (let j = 0; j < d.dIn; j++) W_enc[j * d.dSae + i] = W_dec[i * d.dIn + j]!;
  return params;
}

/** x: [rows, dIn] -> mean over rows: [dIn] */
export function mean(x: Float32Array, rows: number, dIn: number): Float32Array {
  const m = new Float64Array(dIn);
  for (let r = 0; r < rows; r++) for (let j = 0; j < dIn; j++) m[j]! += x[r * dIn + j]!;
  return Float32Array.from(m, (v) => v / rows);
}

/**
 * Geometric median of the rows of x (Weiszfeld's algorithm): the point minimising the sum of
 * Euclidean distances, robust to outliers. O(rows * dIn) per iteration.
 */
export function geometricMedian(x: Float32Array, rows: number, dIn: number, maxIter = 100, tol = 1e-6): Float32Array {
  let y = Float64Array.from(mean(x, rows, dIn));
  const next = new Float64Array(dIn);
  for (let it = 0; it < maxIter; it++) {
    next.fill(0);
    let wSum = 0;
    for (let r = 0; r < rows; r++) {
      let d2 = 0;
      for (let j = 0; j < dIn; j++) d2 += (x[r * dIn + j]! - y[j]!) ** 2;
      const w = 1 / Math.max(Math.sqrt(d2), 1e-12);
      wSum += w;
      for (let j = 0; j < dIn; j++) next[j]! += w * x[r * dIn + j]!;
    }
    let shift = 0;
    let norm = 0;
    for (let j = 0; j < dIn; j++) {
      const v = next[j]! / wSum;
      shift += (v - y[j]!) ** 2;
      norm += v * v;
      next[j] = v;
    }
    y = Float64Array.from(next);
    if (Math.sqrt(shift) <= tol * Math.max(1, Math.sqrt(norm))) break;
  }
  return Float32Array.from(y);
}

/** sqrt(dIn) / mean ||x_r||: the factor that makes E||x|| = sqrt(dIn) (SAELens's expected_average_only_in). */
export function normScalingFactor(x: Float32Array, rows: number, dIn: number): number {
  let sum = 0;
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < dIn; j++) s += x[r * dIn + j]! ** 2;
    sum += Math.sqrt(s);
  }
  const meanNorm = sum / rows;
  return meanNorm > 0 ? Math.sqrt(dIn) / meanNorm : 1;
}
