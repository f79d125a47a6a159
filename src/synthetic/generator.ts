/**
 * Synthetic data with a known dictionary: sparse combinations of n unit-norm features in d dimensions.
 *   F: [n, d], rows drawn from N(0, I) and normalised (the true features)
 *   fires[r, i] ~ Bernoulli(p);  a[r, i] = fires[r, i] * m[r, i],  m ~ the magnitude distribution
 *   x = a @ F + noise * N(0, I):  [rows, d]
 * Correlated groups: features are split into consecutive groups of `groupSize`; in every row each
 * feature copies its group's shared Bernoulli(p) draw with probability c = sqrt(groupCorrelation), and
 * otherwise draws on its own. Every feature still fires with probability p, and two features of one
 * group fire with correlation c^2 = groupCorrelation (features of different groups are independent).
 * Batches are addressed by step (batch s is drawn from a generator seeded with (seed, s)), so a
 * stream is infinite and reproducible, and a resumed run sees the same data.
 */
import type { Engine } from '../engine/index.js';
import { Rng } from '../rng.js';
import type { TrainingData } from '../train/trainer.js';

export type Magnitude =
  | { readonly kind: 'constant'; readonly value: number }
  | { readonly kind: 'uniform'; readonly low: number; readonly high: number }
  | { readonly kind: 'exponential'; readonly mean: number };

export interface SyntheticSpec {
  /** d: dimension of the inputs. */
  readonly dIn: number;
  /** n: number of true features. */
  readonly features: number;
  /** p: probability that a feature is active in an input. */
  readonly firingProbability: number;
  readonly magnitude: Magnitude;
  /** Features per correlated group (1: no groups). */
  readonly groupSize: number;
  /** Correlation of the firing of two features of one group, in [0, 1]. */
  readonly groupCorrelation: number;
  /** Standard deviation of the Gaussian noise added to every coordinate. */
  readonly noise: number;
  /** Rows per training batch. */
  readonly batchSize: number;
  readonly seed: number;
}

export const SYNTHETIC_DEFAULTS = {
  firingProbability: 0.02,
  magnitude: { kind: 'uniform', low: 0.5, high: 1.5 },
  groupSize: 1,
  groupCorrelation: 0,
  noise: 0,
  batchSize: 1024,
  seed: 0,
} as const satisfies Partial<SyntheticSpec>;

/** Independent random streams of one generator. */
const STREAM = { features: 0, batch: 1, sample: 2, eval: 3 } as const;

/** A batch with its ground truth. */
export interface SyntheticBatch {
  /** [rows, d] inputs. */
  readonly x: Float32Array;
  /** [rows, n] true coefficients a (0 where a feature is off). */
  readonly codes: Float32Array;
  readonly rows: number;
}

/** Checks a spec; the message names the field (a programming or user error caught at the boundary). */
export function checkSyntheticSpec(s: SyntheticSpec): void {
  const bad = (what: string): never => {
    throw new RangeError(`synthetic data: ${what}`);
  };
  if (!Number.isInteger(s.dIn) || s.dIn < 1) bad(`dIn must be a positive integer, got ${s.dIn}`);
  if (!Number.isInteger(s.features) || s.features < 1) bad(`features must be a positive integer, got ${s.features}`);
  if (!(s.firingProbability > 0 && s.firingProbability <= 1)) bad(`firingProbability must be in (0, 1], got ${s.firingProbability}`);
  if (!Number.isInteger(s.groupSize) || s.groupSize < 1) bad(`groupSize must be a positive integer, got ${s.groupSize}`);
  if (!(s.groupCorrelation >= 0 && s.groupCorrelation <= 1)) bad(`groupCorrelation must be in [0, 1], got ${s.groupCorrelation}`);
  if (!(s.noise >= 0)) bad(`noise must be >= 0, got ${s.noise}`);
  if (!Number.isInteger(s.batchSize) || s.batchSize < 1) bad(`batchSize must be a positive integer, got ${s.batchSize}`);
  const m = s.magnitude;
  if (m.kind === 'constant' && !(m.value > 0)) bad(`a constant magnitude must be > 0, got ${m.value}`);
  if (m.kind === 'uniform' && !(m.low >= 0 && m.high > m.low)) bad(`uniform magnitudes need 0 <= low < high, got [${m.low}, ${m.high}]`);
  if (m.kind === 'exponential' && !(m.mean > 0)) bad(`an exponential magnitude needs mean > 0, got ${m.mean}`);
}

/** F: [n, d], unit-norm rows drawn from N(0, I). */
export function randomUnitFeatures(n: number, d: number, rng: Rng): Float32Array {
  const f = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const row = f.subarray(i * d, (i + 1) * d);
    let norm = 0;
    do {
      norm = 0;
      for (let j = 0; j < d; j++) {
        row[j] = rng.normal();
        norm += row[j]! ** 2;
      }
    } while (norm === 0);
    const inv = 1 / Math.sqrt(norm);
    for (let j = 0; j < d; j++) row[j]! *= inv;
  }
  return f;
}

export function drawMagnitude(m: Magnitude, rng: Rng): number {
  switch (m.kind) {
    case 'constant':
      return m.value;
    case 'uniform':
      return m.low + (m.high - m.low) * rng.uniform();
    case 'exponential':
      return -m.mean * Math.log(1 - rng.uniform());
  }
}

/**
 * Calls visit(k) for each k in [0, total) where an independent Bernoulli(p) fires, drawing only
 * once per firing (geometric gaps), so the cost follows the number of firings.
 */
export function forEachBernoulli(total: number, p: number, rng: Rng, visit: (k: number) => void): void {
  if (p >= 1) {
    for (let k = 0; k < total; k++) visit(k);
    return;
  }
  if (p <= 0) return;
  const logQ = Math.log1p(-p);
  for (let k = -1; ;) {
    k += 1 + Math.floor(Math.log(1 - rng.uniform()) / logQ);
    if (k >= total) return;
    visit(k);
  }
}

/** codes: [rows, n] -> the sparse codes of the spec (firings and magnitudes), filled in place. */
export function drawCodes(s: SyntheticSpec, rows: number, rng: Rng, codes: Float32Array): void {
  const n = s.features;
  const p = s.firingProbability;
  codes.fill(0);
  forEachBernoulli(rows * n, p, rng, (k) => (codes[k] = drawMagnitude(s.magnitude, rng)));
  const copy = Math.sqrt(s.groupCorrelation);
  if (s.groupSize < 2 || copy === 0) return;
  // Features that copy their group's draw: their own draw above is replaced by the group's.
  const groups = Math.ceil(n / s.groupSize);
  const shared = new Uint8Array(rows * groups); // [rows, groups]
  forEachBernoulli(rows * groups, p, rng, (k) => (shared[k] = 1));
  forEachBernoulli(rows * n, copy, rng, (k) => {
    const r = Math.floor(k / n);
    const i = k - r * n;
    const on = shared[r * groups + Math.floor(i / s.groupSize)] === 1;
    codes[k] = on ? (codes[k]! > 0 ? codes[k]! : drawMagnitude(s.magnitude, rng)) : 0;
  });
}

/** An infinite, seeded stream of synthetic batches; also the trainer's TrainingData. */
export class SyntheticData implements TrainingData {
  /** [n, d] the true features, unit-norm rows. */
  readonly features: Float32Array;

  constructor(
    private readonly engine: Engine,
    readonly spec: SyntheticSpec,
  ) {
    checkSyntheticSpec(spec);
    this.features = randomUnitFeatures(spec.features, spec.dIn, Rng.derive(spec.seed, STREAM.features));
  }

  /** `rows` inputs from the generator `rng`: x = codes @ F + noise. */
  async draw(rows: number, rng: Rng): Promise<SyntheticBatch> {
    const { features: n, dIn: d, noise } = this.spec;
    const codes = new Float32Array(rows * n); // [rows, n]
    drawCodes(this.spec, rows, rng, codes);
    const x = await this.engine.matmul(codes, this.features, rows, n, d); // [rows, d]
    if (noise > 0) for (let k = 0; k < x.length; k++) x[k]! += noise * rng.normal();
    return { x, codes, rows };
  }

  /** Training batch `step` (0-based): the same batch for the same seed and step. */
  batchAt(step: number): Promise<SyntheticBatch> {
    return this.draw(this.spec.batchSize, Rng.derive(this.spec.seed, STREAM.batch, step));
  }

  async sample(rows: number): Promise<Float32Array> {
    return (await this.draw(rows, Rng.derive(this.spec.seed, STREAM.sample))).x;
  }

  /** Held-out inputs for evaluation, from a stream no training batch uses. */
  evalSet(rows: number): Promise<SyntheticBatch> {
    return this.draw(rows, Rng.derive(this.spec.seed, STREAM.eval));
  }
}
