/**
 * Per-latent statistics gathered in one streaming pass over the data, in memory bounded by the
 * number of latents (never by the number of inputs):
 *   fires_i, sum_i             inputs on which latent i fired, and the sum of its activations there
 *   top_i                      the K largest activations and their rows: a min-heap of K per latent
 *   sample_i                   S activations and rows drawn uniformly from the inputs where i fired
 *                              (reservoir sampling, Vitter's algorithm R, seeded): the quantile examples
 *   hist_i                     B bins of width w_i = 2^e over [0, B w_i): when an activation reaches
 *                              B w_i, pairs of bins merge and w_i doubles, so the counts stay exact and
 *                              the largest activation always lies in the upper half of the range
 * An activation counts where it is > 0 (the evaluation graph zeroes latents that do not fire).
 */
import { UserError } from '../errors.js';
import type { Histogram } from '../eval.js';
import { Rng } from '../rng.js';

export interface CollectOptions {
  /** Top activating examples kept per latent (default 20). */
  readonly topK?: number;
  /** Uniformly sampled firing examples kept per latent, for the quantile examples (default 64). */
  readonly samples?: number;
  /** Activation histogram bins per latent, even (default 32). */
  readonly bins?: number;
  /** Seed of the reservoir sampling (default 0). */
  readonly seed?: number;
}

export const COLLECT_DEFAULTS = { topK: 20, samples: 64, bins: 32, seed: 0 } as const satisfies Required<CollectOptions>;

/** An input on which a latent fired: its row in the dataset and the activation. */
export interface Example {
  readonly row: number;
  readonly value: number;
}

/** Firing inputs whose activation lies between two quantiles of the latent's firing activations. */
export interface QuantileBand {
  /** Quantiles of the firing activations bounding the band, e.g. 0.8 and 1. */
  readonly from: number;
  readonly to: number;
  /** The smallest and largest sampled activation in the band. */
  readonly lo: number;
  readonly hi: number;
  /** Examples spread over the band, largest first. */
  readonly examples: readonly Example[];
}

export interface FeatureStats {
  readonly index: number;
  readonly fires: number;
  /** fires / inputs */
  readonly density: number;
  readonly meanActivation: number;
  readonly maxActivation: number;
  /** Largest activations, largest first (ties: earlier row first). */
  readonly top: readonly Example[];
  /** Activation histogram of the firing inputs (empty bins at both ends trimmed). */
  readonly histogram: Histogram;
}

/** Label of the reservoir stream in Rng.derive. */
const SAMPLE_STREAM = 0x5a3e;

export class FeatureCollector {
  inputs = 0;
  readonly topK: number;
  readonly samples: number;
  readonly bins: number;
  /** [dSae] */
  readonly fires: Float64Array;
  private readonly sum: Float64Array; // [dSae]
  private readonly topValue: Float32Array; // [dSae, topK] min-heaps
  private readonly topRow: Float64Array; // [dSae, topK]
  private readonly topSize: Int32Array; // [dSae]
  private readonly sampleValue: Float32Array; // [dSae, samples]
  private readonly sampleRow: Float64Array; // [dSae, samples]
  private readonly binWidth: Float64Array; // [dSae], 0 until the first activation
  private readonly binCounts: Float64Array; // [dSae, bins]
  private readonly rng: Rng;

  constructor(
    readonly dSae: number,
    options: CollectOptions = {},
  ) {
    const d = COLLECT_DEFAULTS;
    const o = { topK: options.topK ?? d.topK, samples: options.samples ?? d.samples, bins: options.bins ?? d.bins, seed: options.seed ?? d.seed };
    for (const [k, v] of Object.entries(o))
      if (!Number.isSafeInteger(v) || v < (k === 'seed' ? 0 : 1)) throw new RangeError(`FeatureCollector: ${k} must be a positive integer, got ${v}`);
    if (o.bins % 2 !== 0) throw new RangeError(`FeatureCollector: bins must be even, got ${o.bins}`);
    this.topK = o.topK;
    this.samples = o.samples;
    this.bins = o.bins;
    this.fires = new Float64Array(dSae);
    this.sum = new Float64Array(dSae);
    this.topValue = new Float32Array(dSae * o.topK);
    this.topRow = new Float64Array(dSae * o.topK);
    this.topSize = new Int32Array(dSae);
    this.sampleValue = new Float32Array(dSae * o.samples);
    this.sampleRow = new Float64Array(dSae * o.samples);
    this.binWidth = new Float64Array(dSae);
    this.binCounts = new Float64Array(dSae * o.bins);
    this.rng = Rng.derive(o.seed, SAMPLE_STREAM);
  }

  /** latents: [rows, dSae] (0 where a latent does not fire, finite); ids: [rows] the dataset row of each. An Inf is a UserError. */
  add(latents: Float32Array, rows: number, ids: ArrayLike<number>): void {
    const { dSae } = this;
    for (let r = 0; r < rows; r++) {
      const row = ids[r]!;
      const base = r * dSae;
      for (let i = 0; i < dSae; i++) {
        const v = latents[base + i]!;
        if (v > 0) {
          if (v === Infinity) throw new UserError(`row ${row}: latent ${i} is Inf; the SAE overflows on this data`);
          this.record(i, v, row);
        }
      }
    }
    this.inputs += rows;
  }

  private record(i: number, v: number, row: number): void {
    const n = ++this.fires[i]!;
    this.sum[i]! += v;
    this.pushTop(i, v, row);
    const s = this.samples;
    const slot = n <= s ? n - 1 : this.rng.int(n);
    if (slot < s) {
      this.sampleValue[i * s + slot] = v;
      this.sampleRow[i * s + slot] = row;
    }
    this.addToHistogram(i, v);
  }

  /** Min-heap of the K largest (value, row) of latent i; a new value must beat the smallest kept. */
  private pushTop(i: number, v: number, row: number): void {
    const k = this.topK;
    const o = i * k;
    const vals = this.topValue;
    const rows = this.topRow;
    const size = this.topSize[i]!;
    if (size < k) {
      let c = size;
      while (c > 0) {
        const parent = (c - 1) >> 1;
        if (vals[o + parent]! <= v) break;
        vals[o + c] = vals[o + parent]!;
        rows[o + c] = rows[o + parent]!;
        c = parent;
      }
      vals[o + c] = v;
      rows[o + c] = row;
      this.topSize[i] = size + 1;
      return;
    }
    if (!(v > vals[o]!)) return;
    let c = 0;
    for (;;) {
      const l = 2 * c + 1;
      if (l >= k) break;
      const m = l + 1 < k && vals[o + l + 1]! < vals[o + l]! ? l + 1 : l;
      if (vals[o + m]! >= v) break;
      vals[o + c] = vals[o + m]!;
      rows[o + c] = rows[o + m]!;
      c = m;
    }
    vals[o + c] = v;
    rows[o + c] = row;
  }

  private addToHistogram(i: number, v: number): void {
    const b = this.bins;
    let w = this.binWidth[i]!;
    if (w === 0) w = 2 ** (Math.floor(Math.log2(v / b)) + 1);
    while (v >= b * w) {
      const o = i * b;
      for (let j = 0; j < b / 2; j++) this.binCounts[o + j] = this.binCounts[o + 2 * j]! + this.binCounts[o + 2 * j + 1]!;
      this.binCounts.fill(0, o + b / 2, o + b);
      w *= 2;
    }
    this.binWidth[i] = w;
    this.binCounts[i * b + Math.min(b - 1, Math.floor(v / w))]!++;
  }

  /** The statistics of latent i. */
  stats(i: number): FeatureStats {
    const fires = this.fires[i]!;
    const top = this.topExamples(i);
    return {
      index: i,
      fires,
      density: this.inputs > 0 ? fires / this.inputs : 0,
      meanActivation: fires > 0 ? this.sum[i]! / fires : 0,
      maxActivation: top[0]?.value ?? 0,
      top,
      histogram: this.histogram(i),
    };
  }

  private topExamples(i: number): Example[] {
    const o = i * this.topK;
    const out: Example[] = [];
    for (let j = 0; j < this.topSize[i]!; j++) out.push({ value: this.topValue[o + j]!, row: this.topRow[o + j]! });
    return out.sort(byValueDescending);
  }

  /** The sampled firing examples of latent i, smallest activation first. */
  sampled(i: number): Example[] {
    const s = this.samples;
    const n = Math.min(s, this.fires[i]!);
    const out: Example[] = [];
    for (let j = 0; j < n; j++) out.push({ value: this.sampleValue[i * s + j]!, row: this.sampleRow[i * s + j]! });
    return out.sort((a, b) => a.value - b.value || a.row - b.row);
  }

  /** `bands` quantile bands of latent i's sampled firing activations, top band first, with up to `perBand` examples each. */
  quantileBands(i: number, bands = 5, perBand = 4): QuantileBand[] {
    const sample = this.sampled(i);
    const out: QuantileBand[] = [];
    if (sample.length === 0) return out;
    for (let q = bands - 1; q >= 0; q--) {
      const from = Math.floor((q * sample.length) / bands);
      const to = Math.floor(((q + 1) * sample.length) / bands);
      if (to <= from) continue;
      const band = sample.slice(from, to);
      out.push({ from: q / bands, to: (q + 1) / bands, lo: band[0]!.value, hi: band[band.length - 1]!.value, examples: spread(band, perBand).reverse() });
    }
    return out;
  }

  private histogram(i: number): Histogram {
    const b = this.bins;
    const w = this.binWidth[i]!;
    const counts = Array.from(this.binCounts.subarray(i * b, (i + 1) * b));
    const first = counts.findIndex((c) => c > 0);
    if (first < 0) return { edges: [], counts: [] };
    const last = counts.length - 1 - [...counts].reverse().findIndex((c) => c > 0);
    return { edges: Array.from({ length: last - first + 2 }, (_, j) => (first + j) * w), counts: counts.slice(first, last + 1) };
  }
}

function byValueDescending(a: Example, b: Example): number {
  return b.value - a.value || a.row - b.row;
}

/** Up to n items evenly spread over xs (its ends included). */
function spread<T>(xs: readonly T[], n: number): T[] {
  if (xs.length <= n) return [...xs];
  if (n === 1) return [xs[xs.length - 1]!];
  return Array.from({ length: n }, (_, j) => xs[Math.round((j * (xs.length - 1)) / (n - 1))]!);
}
