/**
 * Anomaly scores from an SAE's reconstruction error.
 *   error(x)  = ||x_hat - x||^2, summed over the d_in coordinates (x_hat = decode(encode(x)))
 *   score(x)  = (ln error(x) - m) / s,  a robust z-score of the log error against clean data:
 *               m = median of ln error over the calibration inputs, s = 1.4826 * their median
 *               absolute deviation from m (s equals the standard deviation for normally distributed
 *               log errors). 0 is a typical clean input, 3 is three "standard deviations" above it.
 *               Logs, because reconstruction errors are positive and skewed over orders of magnitude.
 *   flagged   = error > threshold, the threshold being the q-quantile of the calibration errors
 *               (so about a fraction 1 - q of clean inputs is flagged).
 * The score is a monotone function of the error: both rank inputs alike (the same ROC-AUC).
 * The error is summed in float64 (data at 1e30 does not overflow the sum); an error that is NaN or
 * Inf, or beyond float32, for a finite input is an error, never a score of Inf.
 */
import { paramInputs } from '../arch/graphs.js';
import type { ArchitectureDef, Dims } from '../arch/types.js';
import type { Engine } from '../engine/index.js';
import { GraphBuilder } from '../engine/onnx.js';
import type { Feeds } from '../engine/ort.js';
import { UserError } from '../errors.js';
import { concatArrays } from '../io/atomic.js';
import type { Sae } from '../sae.js';
import { quantile } from './roc.js';

/** x: [batch, dIn] -> error: [batch], the squared reconstruction error of each row. */
function buildErrorModel<H>(def: ArchitectureDef<H>, h: H, d: Dims): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input('x', ['batch', d.dIn]);
  const p = paramInputs(g, def, h, d);
  const { f } = def.encode(g, x, p, h, d);
  const xHat = def.decode(g, f, p, h, d); // [batch, dIn]
  g.output(g.sum(g.square(g.sub(g.cast(xHat, 'float64'), g.cast(x, 'float64'))), [1]), 'error', ['batch'], 'float64');
  return g.encode();
}

/** Rows of data in order: x [rows, dIn], with a mask of rows holding NaN or Inf. */
export interface RowChunk {
  readonly x: Float32Array;
  readonly rows: number;
  /** [rows] 1 where the row holds NaN or Inf (its error is NaN). */
  readonly mask?: Uint8Array;
}

/** The reconstruction error of every row, in order: [rows] (NaN for masked rows). */
export async function reconstructionErrors(engine: Engine, sae: Sae, chunks: AsyncIterable<RowChunk>): Promise<Float32Array> {
  const graph = await engine.graph(`${sae.key}:error`, () => buildErrorModel(sae.def, sae.hyper, sae.dims));
  const feeds: Feeds = {};
  for (const spec of sae.def.params(sae.dims, sae.hyper)) feeds[spec.name] = { data: sae.params[spec.name]!, dims: spec.shape };
  const parts: Float32Array[] = [];
  for await (const c of chunks) {
    if (c.rows === 0) continue;
    feeds['x'] = { data: c.x.subarray(0, c.rows * sae.dims.dIn), dims: [c.rows, sae.dims.dIn] };
    const err64: unknown = (await graph.run(feeds))['error']?.data; // [rows] float64
    if (!(err64 instanceof Float64Array)) throw new Error("error graph: output 'error' is not float64");
    const err = Float32Array.from(err64);
    for (let r = 0; r < c.rows; r++) {
      if (c.mask?.[r]) err[r] = NaN;
      else if (!Number.isFinite(err[r]!)) {
        const row = parts.reduce((n, p) => n + p.length, 0) + r;
        throw new UserError(
          `input ${row}: its reconstruction error is ${err64[r]} (NaN, Inf or beyond float32) although the input is finite; this SAE cannot score this data`,
        );
      }
    }
    parts.push(err);
  }
  return concatArrays(parts, (n) => new Float32Array(n));
}

/** What `sae calibrate` stores and `sae score` reads. */
export interface Calibration {
  /** The quantile of clean errors that makes the threshold. */
  readonly quantile: number;
  /** Inputs above this reconstruction error are flagged. */
  readonly threshold: number;
  /** m: median of ln error on the clean inputs. */
  readonly logErrorMedian: number;
  /** s: 1.4826 * median absolute deviation of ln error. */
  readonly logErrorScale: number;
  /** Clean inputs it was fitted on. */
  readonly rows: number;
}

/** ln of an error, kept finite for an exact reconstruction. */
function logError(e: number): number {
  return Math.log(Math.max(e, 1e-30));
}

/** Fits the calibration on the errors of clean inputs (NaN errors are left out). */
export function fitCalibration(cleanErrors: ArrayLike<number>, q: number): Calibration {
  const errors = Float64Array.from(cleanErrors).filter((e) => !Number.isNaN(e));
  if (errors.length === 0) throw new RangeError('no clean errors to calibrate on');
  const logs = errors.map(logError);
  const m = quantile(logs, 0.5);
  const mad = quantile(
    logs.map((v) => Math.abs(v - m)),
    0.5,
  );
  return { quantile: q, threshold: quantile(errors, q), logErrorMedian: m, logErrorScale: Math.max(1.4826 * mad, 1e-6), rows: errors.length };
}

/** errors: [rows] -> scores: [rows], the robust z-scores of their logs (NaN stays NaN). */
export function normalisedScores(errors: ArrayLike<number>, c: Calibration): Float32Array {
  return Float32Array.from(errors, (e) => (Number.isNaN(e) ? NaN : (logError(e) - c.logErrorMedian) / c.logErrorScale));
}
