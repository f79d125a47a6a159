/**
 * Eigendecomposition of a small symmetric matrix (a patch covariance, 144 x 144), in float64:
 *   A = V diag(values) V^T,  V orthogonal, values sorted in descending order.
 * Cyclic Jacobi: each rotation J(p, q, theta) zeroes A[p, q] (A <- J^T A J, V <- V J); sweeps over
 * every pair repeat until the off-diagonal mass is at rounding level. O(n^3) per sweep and a handful
 * of sweeps: fine up to a few hundred rows, accurate for small eigenvalues too.
 */

export interface SymmetricEigen {
  /** [n], descending. */
  readonly values: Float64Array;
  /** [n, n]: eigenvector j is column j, vectors[i * n + j]. */
  readonly vectors: Float64Array;
}

const MAX_SWEEPS = 60;
/** Stop when the off-diagonal sum of squares is below this fraction of the total. */
const TOLERANCE = 1e-30;

/** a: [n, n] symmetric (only read) -> its eigenvalues and eigenvectors. */
export function symmetricEigen(a: Float64Array, n: number): SymmetricEigen {
  if (a.length !== n * n) throw new RangeError(`symmetricEigen: ${a.length} entries do not make a ${n} x ${n} matrix`);
  const m = Float64Array.from(a); // [n, n], rotated towards diagonal
  const v = identity(n); // [n, n]
  const total = sumOfSquares(m);
  for (let sweep = 0; sweep < MAX_SWEEPS && offDiagonal(m, n) > TOLERANCE * total; sweep++) {
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) rotate(m, v, n, p, q);
    }
  }
  return sorted(m, v, n);
}

/** One Jacobi rotation in the (p, q) plane that zeroes m[p, q]. */
function rotate(m: Float64Array, v: Float64Array, n: number, p: number, q: number): void {
  const apq = m[p * n + q]!;
  if (apq === 0) return;
  const theta = (m[q * n + q]! - m[p * n + p]!) / (2 * apq);
  const t = Math.abs(theta) > 1e150 ? 1 / (2 * theta) : Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
  const c = 1 / Math.sqrt(t * t + 1);
  const s = t * c;
  rotateColumns(m, n, p, q, c, s); // m <- m J
  for (let k = 0; k < n; k++) {
    // m <- J^T m
    const mpk = m[p * n + k]!;
    const mqk = m[q * n + k]!;
    m[p * n + k] = c * mpk - s * mqk;
    m[q * n + k] = s * mpk + c * mqk;
  }
  m[p * n + q] = 0;
  m[q * n + p] = 0;
  rotateColumns(v, n, p, q, c, s); // v <- v J
}

/** x: [n, n], in place: columns p and q replaced by c x_p - s x_q and s x_p + c x_q. */
function rotateColumns(x: Float64Array, n: number, p: number, q: number, c: number, s: number): void {
  for (let k = 0; k < n; k++) {
    const xp = x[k * n + p]!;
    const xq = x[k * n + q]!;
    x[k * n + p] = c * xp - s * xq;
    x[k * n + q] = s * xp + c * xq;
  }
}

function identity(n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) out[i * n + i] = 1;
  return out;
}

function sumOfSquares(m: Float64Array): number {
  let s = 0;
  for (const x of m) s += x * x;
  return s;
}

function offDiagonal(m: Float64Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) if (i !== j) s += m[i * n + j]! ** 2;
  }
  return s;
}

/** Diagonal of m as values, columns of v reordered to match, largest first. */
function sorted(m: Float64Array, v: Float64Array, n: number): SymmetricEigen {
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => m[j * n + j]! - m[i * n + i]!);
  const values = Float64Array.from(order, (i) => m[i * n + i]!);
  const vectors = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < n; j++) vectors[k * n + j] = v[k * n + order[j]!]!;
  }
  return { values, vectors };
}
