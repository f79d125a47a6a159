/**
 * Patch preprocessing for image SAEs, fitted once and reused on new images:
 *   x: [d] pixels of a patch, row-major [patchSize, patchSize, channels]: d = channels patchSize^2
 *      (channels 1: grey; 3: RGB, interleaved as in the image)
 *   mean removal (option):  x <- x - mean_i(x_i), one mean over all the patch's values (its
 *                           brightness; colour differences between channels are kept)
 *   whitening:              y = W (x - mu),   mu = the mean patch of the fitting sample
 *   C = cov(x) = U diag(l) U^T  (l descending)
 *     pca: W = diag(1 / sqrt(l + eps)) U^T        W^-1 = U diag(sqrt(l + eps))
 *     zca: W = U diag(1 / sqrt(l + eps)) U^T      W^-1 = U diag(sqrt(l + eps)) U^T   (symmetric)
 *     none: W = I, mu = 0
 * so cov(y) = diag(l / (l + eps)) (pca) or U diag(l / (l + eps)) U^T (zca): the identity where
 * l >> eps. W^-1 maps whitened vectors (an SAE's decoder rows) back to pixel space for display.
 */
import { UserError } from '../errors.js';
import type { Engine } from '../engine/index.js';
import { symmetricEigen } from './eigen.js';

/** How image patches are whitened: not at all, PCA or ZCA. */
export type Whitening = 'none' | 'pca' | 'zca';
/** Values per pixel of a patch: 1 grey, 3 RGB. */
export type ImageChannels = 1 | 3;
export const WHITENINGS: readonly Whitening[] = ['none', 'pca', 'zca'];

/** The fitted preprocessing of an image patch dataset: everything needed to treat new patches the same way. */
export interface ImagePreprocess {
  /** Patches are patchSize x patchSize pixels in [0, 1], row-major: d = channels patchSize^2. */
  readonly patchSize: number;
  /** 1 (grey, the default when absent) or 3 (RGB). */
  readonly channels?: ImageChannels;
  /** Each patch's own mean is subtracted first. */
  readonly meanRemoval: boolean;
  readonly whitening: Whitening;
  /** Added to every covariance eigenvalue before the inverse square root. */
  readonly eps: number;
  /** mu [d]: the mean of the fitting sample after mean removal (zeros for 'none'). */
  readonly mean: Float32Array;
  /** W [d, d]: y = W (x - mu) (the identity for 'none'). */
  readonly matrix: Float32Array;
  /** W^-1 [d, d]: x = mu + W^-1 y. */
  readonly inverse: Float32Array;
  /** l [d]: the covariance eigenvalues of the fitting sample, descending. */
  readonly eigenvalues: Float32Array;
}

export interface WhiteningSettings {
  readonly patchSize: number;
  /** 1 (grey, the default when absent) or 3 (RGB). */
  readonly channels?: ImageChannels;
  readonly meanRemoval: boolean;
  readonly whitening: Whitening;
  readonly eps: number;
}

/** d: the values of one patch, channels patchSize^2. */
export function patchWidth(s: { readonly patchSize: number; readonly channels?: ImageChannels }): number {
  return (s.channels ?? 1) * s.patchSize * s.patchSize;
}

/** Rows per matrix product when fitting or applying (bounds the scratch memory). */
const CHUNK_ROWS = 16384;

/** x: [rows, d], in place: each row minus its own mean. */
export function removePatchMeans(x: Float32Array, rows: number, d: number): void {
  for (let o = 0; o < rows * d; o += d) {
    let s = 0;
    for (let i = o; i < o + d; i++) s += x[i]!;
    const m = s / d;
    for (let i = o; i < o + d; i++) x[i] = x[i]! - m;
  }
}

/** sample: [rows, d] patches, already mean-removed if settings.meanRemoval -> the fitted preprocessing. */
export async function fitPreprocess(sample: Float32Array, rows: number, settings: WhiteningSettings, engine: Engine): Promise<ImagePreprocess> {
  const d = patchWidth(settings);
  if (sample.length !== rows * d) throw new RangeError(`fitPreprocess: ${sample.length} floats are not ${rows} patches of ${d}`);
  if (!(settings.eps > 0) || !Number.isFinite(settings.eps)) throw new UserError(`the whitening eps must be a positive number, got ${settings.eps}`);
  if (rows < 2) throw new UserError(`whitening needs at least 2 patches to fit, got ${rows}`);
  const mu = columnMeans(sample, rows, d);
  const { values, vectors } = symmetricEigen(await covariance(sample, rows, d, mu, engine), d);
  const l = values.map((v) => Math.max(v, 0));
  const { matrix, inverse } = whiteningMatrices(settings.whitening, vectors, l, settings.eps, d);
  return {
    ...settings,
    channels: settings.channels ?? 1,
    mean: settings.whitening === 'none' ? new Float32Array(d) : Float32Array.from(mu),
    matrix: Float32Array.from(matrix),
    inverse: Float32Array.from(inverse),
    eigenvalues: Float32Array.from(l),
  };
}

/** x: [rows, d] -> [d] column means (float64). */
export function columnMeans(x: Float32Array, rows: number, d: number): Float64Array {
  const mu = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < d; i++) mu[i] = mu[i]! + x[r * d + i]!;
  }
  return mu.map((s) => s / rows);
}

/** x: [rows, d], mu: [d] -> [d, d] = (x - mu)^T (x - mu) / (rows - 1), products on the engine, sums in float64. */
export async function covariance(x: Float32Array, rows: number, d: number, mu: Float64Array, engine: Engine): Promise<Float64Array> {
  const sum = new Float64Array(d * d);
  for (let start = 0; start < rows; start += CHUNK_ROWS) {
    const n = Math.min(CHUNK_ROWS, rows - start);
    const centred = new Float32Array(n * d); // [n, d]
    const transposed = new Float32Array(d * n); // [d, n]
    for (let r = 0; r < n; r++) {
      for (let i = 0; i < d; i++) {
        const v = x[(start + r) * d + i]! - mu[i]!;
        centred[r * d + i] = v;
        transposed[i * n + r] = v;
      }
    }
    const part = await engine.matmul(transposed, centred, d, n, d); // [d, d]
    for (let k = 0; k < sum.length; k++) sum[k] = sum[k]! + part[k]!;
  }
  // Symmetrise: the float32 products may differ in the last bit across the diagonal.
  const c = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) c[i * d + j] = (sum[i * d + j]! + sum[j * d + i]!) / (2 * (rows - 1));
  }
  return c;
}

/** u: [d, d] eigenvectors in columns, l: [d] -> W and W^-1, both [d, d] (see the formulas at the top). */
function whiteningMatrices(kind: Whitening, u: Float64Array, l: Float64Array, eps: number, d: number): { matrix: Float64Array; inverse: Float64Array } {
  if (kind === 'none') return { matrix: identity(d), inverse: identity(d) };
  const shrink = l.map((v) => 1 / Math.sqrt(v + eps));
  const grow = l.map((v) => Math.sqrt(v + eps));
  const matrix = new Float64Array(d * d);
  const inverse = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      if (kind === 'pca') {
        matrix[i * d + j] = shrink[i]! * u[j * d + i]!; // row i: u_i^T / sqrt(l_i + eps)
        inverse[i * d + j] = u[i * d + j]! * grow[j]!; // column j: u_j sqrt(l_j + eps)
      } else {
        let a = 0;
        let b = 0;
        for (let k = 0; k < d; k++) {
          const uu = u[i * d + k]! * u[j * d + k]!;
          a += uu * shrink[k]!;
          b += uu * grow[k]!;
        }
        matrix[i * d + j] = a;
        inverse[i * d + j] = b;
      }
    }
  }
  return { matrix, inverse };
}

function identity(d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) out[i * d + i] = 1;
  return out;
}

/** m: [d, d] -> m^T. */
function transpose(m: Float32Array, d: number): Float32Array {
  const out = new Float32Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) out[j * d + i] = m[i * d + j]!;
  }
  return out;
}

/**
 * patches: [rows, d] raw pixel patches, in place -> preprocessed as `p` says (mean removal,
 * then y = W (x - mu) for every row, as chunked products on the engine).
 */
export async function preprocessPatches(p: ImagePreprocess, patches: Float32Array, rows: number, engine: Engine): Promise<void> {
  const d = patchWidth(p);
  if (patches.length !== rows * d) throw new RangeError(`preprocessPatches: ${patches.length} floats are not ${rows} patches of ${d}`);
  if (p.meanRemoval) removePatchMeans(patches, rows, d);
  if (p.whitening !== 'none') await applyLinear(patches, rows, d, p.mean, transpose(p.matrix, d), engine);
}

/** x: [rows, d], in place: x <- (x - mu) @ mT, chunk by chunk. */
async function applyLinear(x: Float32Array, rows: number, d: number, mu: Float32Array, mT: Float32Array, engine: Engine): Promise<void> {
  for (let start = 0; start < rows; start += CHUNK_ROWS) {
    const n = Math.min(CHUNK_ROWS, rows - start);
    const chunk = x.subarray(start * d, (start + n) * d); // [n, d]
    for (let o = 0; o < chunk.length; o += d) {
      for (let i = 0; i < d; i++) chunk[o + i] = chunk[o + i]! - mu[i]!;
    }
    chunk.set(await engine.matmul(chunk.slice(), mT, n, d, d));
  }
}

/**
 * w: [rows, d] whitened-space directions (e.g. decoder rows) -> [rows, d] the same directions in
 * pixel space, W^-1 w (no mean added: these are directions, not patches).
 */
export async function toPixelSpace(p: ImagePreprocess, w: Float32Array, rows: number, engine: Engine): Promise<Float32Array> {
  const d = patchWidth(p);
  if (w.length !== rows * d) throw new RangeError(`toPixelSpace: ${w.length} floats are not ${rows} rows of ${d}`);
  if (p.whitening === 'none') return w.slice();
  return engine.matmul(w, transpose(p.inverse, d), rows, d, d);
}
