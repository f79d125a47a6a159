/**
 * The PCA baseline of inspection: reconstruction from the top k principal components of the
 * (preprocessed) training patches,
 *   C = cov(y) = U diag(l) U^T (l descending),  U_k = its first k columns,  mu = mean(y)
 *   x_hat = mu + U_k U_k^T (y - mu),   error = ||y - x_hat||^2 = ||y - mu||^2 - ||U_k^T (y - mu)||^2
 * (U_k has orthonormal columns). k is chosen to match an SAE's mean L0: as many numbers per patch.
 */
import { symmetricEigen } from '../data/eigen.js';
import { columnMeans, covariance } from '../data/whitening.js';
import type { Engine } from '../engine/index.js';
import type { PatchModel } from './inspect.js';

/** y: [rows, d] training patches (preprocessed) -> the PCA model with k components. */
export async function fitPcaModel(engine: Engine, y: Float32Array, rows: number, d: number, k: number): Promise<PatchModel> {
  if (!Number.isInteger(k) || k < 1 || k > d) throw new RangeError(`PCA: k must be an integer in [1, ${d}], got ${k}`);
  const mu = columnMeans(y, rows, d);
  const { vectors } = symmetricEigen(await covariance(y, rows, d, mu, engine), d);
  const u = new Float32Array(d * k); // [d, k]
  for (let i = 0; i < d; i++) for (let j = 0; j < k; j++) u[i * k + j] = vectors[i * d + j]!;
  return {
    name: `PCA (k = ${k})`,
    key: `pca:${d}x${k}`,
    dIn: d,
    feeds: { 'pca.mean': { data: Float32Array.from(mu), dims: [d] }, 'pca.U': { data: u, dims: [d, k] } },
    errorGraph(g, yv) {
      const c = g.sub(yv, g.input('pca.mean', [d])); // [batch, d]
      const z = g.matmul(c, g.input('pca.U', [d, k])); // [batch, k]
      return g.relu(g.sub(g.sum(g.square(c), [1]), g.sum(g.square(z), [1]))); // >= 0 despite rounding
    },
  };
}
