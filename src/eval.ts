/**
 * Metrics of an SAE on data, as pure functions of sums accumulated over batches, so that the CLI,
 * the trainer and the dashboard compute them the same way. Over n inputs x with reconstructions
 * x_hat, latents f and firing mask a (the architecture's `active`):
 *   mse                 = (1/n) sum_r ||x_hat_r - x_r||^2       (summed over dimensions, as the training loss)
 *   fvu                 = sum_r ||x_hat_r - x_r||^2 / sum_r ||x_r - mean(x)||^2   (batch-level over the whole
 *                         evaluation set, as sparsify's ForwardOutput.fvu); explained_variance = 1 - fvu
 *   explained_variance_legacy = (1/n') sum_r [1 - ||x_hat_r - x_r||^2 / ||x_r - mean_batch(x)||^2]: the mean of a
 *                         per-input ratio, centred on the mean of the input's evaluation batch, as SAELens's
 *                         `explained_variance_legacy` (sae_lens/evals.py); inputs equal to their batch mean
 *                         (a zero denominator) are left out (n' counts the others)
 *   l0                  = (1/n) sum_r sum_i a_ri;   l1 = (1/n) sum_r sum_i |f_ri|
 *   dead_fraction       = latents with sum_r a_ri = 0, over d_sae
 *   dense_fraction_1pct, dense_fraction_10pct = latents firing on more than 1% / 10% of inputs, over d_sae
 *   log10 firing rate   = log10(sum_r a_ri / n + 1e-10) per latent (SAELens's sparsity.safetensors)
 *   l2_ratio            = (1/n) sum_r ||x_hat_r|| / ||x_r|| (a norm below 1e-4 divides as 1, as SAELens)
 *   relative_reconstruction_bias = sum_r ||x_hat_r||^2 / sum_r <x_r, x_hat_r>: the gamma minimising
 *                         E ||x_hat / gamma - x||^2 (Rajamanoharan et al. 2024, Gated SAEs, eq. 10; as SAELens);
 *                         1 is unbiased, below 1 means shrinkage
 *   encoder-decoder cosine per latent = cos(W_enc[:, i], W_dec[i, :]) (SAELens's encoder_decoder_cosine_sim)
 * The total variance is combined across batches with Chan et al.'s pairwise update (batch means and
 * centred sums of squares), not as sum x^2 - (sum x)^2 / n, which cancels badly when the mean is large.
 * Non-finite numbers: every sum is float64, in the graph too (x, x_hat and f are cast to float64
 * before they are squared or summed, so data at 1e30 gives mse 1e60, not Inf). A batch whose
 * latents or reconstruction hold NaN or Inf is an error (inputs with NaN or Inf are the caller's to
 * drop or refuse before), and so is a sum that is not finite: metrics are never Inf.
 */
import { paramInputs } from './arch/graphs.js';
import type { ArchitectureDef, Dims } from './arch/types.js';
import { GraphBuilder as Builder } from './engine/onnx.js';
import type { Engine } from './engine/index.js';
import type { Feeds } from './engine/ort.js';
import { UserError } from './errors.js';
import type { Sae } from './sae.js';

/** Sums the evaluation graph gives in float64 (float32 arrays are accepted too). */
type Sums = Float64Array | Float32Array;

/** Outputs of the evaluation graph for one batch of `rows` inputs. */
export interface BatchOutputs {
  /** [rows] ||x_hat - x||^2 */
  readonly row_sse: Sums;
  /** [rows] firing latents */
  readonly row_l0: Float32Array;
  /** [rows] sum_i |f_i| */
  readonly row_l1: Sums;
  /** [rows] ||x||^2 */
  readonly x_sq: Sums;
  /** [rows] ||x_hat||^2 */
  readonly x_hat_sq: Sums;
  /** [rows] <x, x_hat> */
  readonly x_dot: Sums;
  /** [rows] ||x - mean_batch(x)||^2 */
  readonly row_centered_sq: Sums;
  /** [dIn] mean_batch(x) */
  readonly x_mean: Sums;
  /** [dSae] inputs of the batch on which each latent fired */
  readonly fires: Float32Array;
}

/** The float64 outputs of the evaluation graph. */
const SUM_OUTPUTS = ['row_sse', 'row_l1', 'x_sq', 'x_hat_sq', 'x_dot', 'row_centered_sq', 'x_mean'] as const;

/** The name of the optional output: [batch, dSae] latents where they fire, 0 elsewhere. */
export const LATENTS_OUTPUT = 'latents';

/**
 * Evaluation pass: x [batch, dIn] -> the BatchOutputs; with `latents`, also latents [batch, dSae]
 * (f where the latent fires, 0 elsewhere) for callers that look at individual latents (the dashboard).
 */
export function buildEvalModel<H>(def: ArchitectureDef<H>, h: H, d: Dims, latents = false): Uint8Array {
  const g = new Builder();
  const x = g.input('x', ['batch', d.dIn]);
  const p = paramInputs(g, def, h, d);
  const { f, active } = def.encode(g, x, p, h, d); // [batch, dSae]
  const xHat = def.decode(g, f, p, h, d); // [batch, dIn]
  const activeF = g.cast(active, 'float32'); // [batch, dSae]
  const [x64, xHat64] = [g.cast(x, 'float64'), g.cast(xHat, 'float64')]; // [batch, dIn] float64
  const xMean = g.op('ReduceMean', [x64], { axes: [0], keepdims: 1 }); // [1, dIn]
  const out64 = (v: typeof x, name: string, shape: (string | number)[]): void => g.output(v, name, shape, 'float64');
  out64(g.sum(g.square(g.sub(xHat64, x64)), [1]), 'row_sse', ['batch']);
  g.output(g.sum(activeF, [1]), 'row_l0', ['batch']);
  out64(g.sum(g.op('Abs', [g.cast(f, 'float64')]), [1]), 'row_l1', ['batch']);
  out64(g.sum(g.square(x64), [1]), 'x_sq', ['batch']);
  out64(g.sum(g.square(xHat64), [1]), 'x_hat_sq', ['batch']);
  out64(g.sum(g.mul(x64, xHat64), [1]), 'x_dot', ['batch']);
  out64(g.sum(g.square(g.sub(x64, xMean)), [1]), 'row_centered_sq', ['batch']);
  out64(g.op('Squeeze', [xMean, g.axes(0)]), 'x_mean', [d.dIn]);
  g.output(g.sum(activeF, [0]), 'fires', [d.dSae]);
  if (latents) g.output(g.where(active, f, g.scalar(0)), LATENTS_OUTPUT, ['batch', d.dSae]);
  return g.encode();
}

/** Evaluation metrics of an SAE over a set of inputs (SAELens's names). */
export interface Metrics {
  readonly inputs: number;
  readonly mse: number;
  /** 1 - fvu (batch-level). */
  readonly explained_variance: number;
  /** SAELens's legacy per-input mean; see the module header. */
  readonly explained_variance_legacy: number;
  readonly fvu: number;
  readonly l0: number;
  readonly l1: number;
  readonly dead_fraction: number;
  /** Latents firing on more than 1% of inputs, as a fraction of d_sae. */
  readonly dense_fraction_1pct: number;
  /** Latents firing on more than 10% of inputs, as a fraction of d_sae. */
  readonly dense_fraction_10pct: number;
  /** ||x_hat|| / ||x||, averaged over inputs. */
  readonly l2_ratio: number;
  /** sum ||x_hat||^2 / sum <x, x_hat>. */
  readonly relative_reconstruction_bias: number;
}

/** The sums the metrics are computed from (float64). */
export interface MetricSums {
  readonly inputs: number;
  readonly sse: number;
  readonly l0: number;
  readonly l1: number;
  /** sum_r ||x_hat_r|| / max'(||x_r||) */
  readonly l2Ratio: number;
  readonly xHatSq: number;
  readonly dot: number;
  /** sum_r ||x_r - mean(x)||^2 over all inputs */
  readonly variance: number;
  /** sum over inputs with a nonzero denominator of the legacy per-input explained variance, and their count */
  readonly legacySum: number;
  readonly legacyRows: number;
  /** [dSae] inputs on which each latent fired */
  readonly fires: Float64Array;
}

/** Below this norm, ||x|| divides the l2 ratio as 1 (SAELens). */
const L2_NORM_FLOOR = 1e-4;

/** The metrics from their sums. */
export function metricsFromSums(s: MetricSums): Metrics {
  const n = Math.max(1, s.inputs);
  const fvu = s.variance > 0 ? s.sse / s.variance : NaN;
  const dSae = Math.max(1, s.fires.length);
  const latentsWith = (test: (rate: number) => boolean): number => {
    let k = 0;
    for (const f of s.fires) if (test(f / n)) k++;
    return k / dSae;
  };
  return {
    inputs: s.inputs,
    mse: s.sse / n,
    explained_variance: 1 - fvu,
    explained_variance_legacy: s.legacyRows > 0 ? s.legacySum / s.legacyRows : NaN,
    fvu,
    l0: s.l0 / n,
    l1: s.l1 / n,
    dead_fraction: latentsWith((r) => r === 0),
    dense_fraction_1pct: latentsWith((r) => r > 0.01),
    dense_fraction_10pct: latentsWith((r) => r > 0.1),
    l2_ratio: s.l2Ratio / n,
    relative_reconstruction_bias: s.dot !== 0 ? s.xHatSq / s.dot : NaN,
  };
}

/** fires: [dSae] -> [dSae] log10(fires / inputs + 1e-10). */
export function log10FiringRates(fires: ArrayLike<number>, inputs: number): Float32Array {
  const n = Math.max(1, inputs);
  return Float32Array.from({ length: fires.length }, (_, i) => Math.log10(fires[i]! / n + 1e-10));
}

/** Counts in bins: edges has counts.length + 1 ascending values; bin b holds [edges[b], edges[b + 1]). */
export interface Histogram {
  readonly edges: readonly number[];
  readonly counts: readonly number[];
}

/** values -> counts in `bins` equal bins over [lo, hi]; values outside are clamped into the end bins. */
export function histogram(values: Iterable<number>, lo: number, hi: number, bins: number): Histogram {
  if (!(hi > lo) || !Number.isInteger(bins) || bins < 1) throw new RangeError(`histogram: need lo < hi and bins >= 1, got [${lo}, ${hi}] and ${bins}`);
  const counts = new Array<number>(bins).fill(0);
  const width = (hi - lo) / bins;
  for (const v of values) {
    if (Number.isNaN(v)) continue;
    counts[Math.min(bins - 1, Math.max(0, Math.floor((v - lo) / width)))]!++;
  }
  return { edges: Array.from({ length: bins + 1 }, (_, b) => lo + b * width), counts };
}

/** The firing rates of the live latents in log10 bins, and how many latents never fired. */
export interface FiringRateHistogram extends Histogram {
  readonly dead: number;
}

/**
 * fires: [dSae] over `inputs` -> log10 firing rates of the latents that fired, in bins of 1 /
 * binsPerDecade from the lowest rate seen to the highest (both rounded out to bin edges, widened to
 * half a decade at least, never above 10^0). By default about 40 bins over that range.
 */
export function firingRateHistogram(fires: ArrayLike<number>, inputs: number, binsPerDecade?: number): FiringRateHistogram {
  const n = Math.max(1, inputs);
  const live: number[] = [];
  for (let i = 0; i < fires.length; i++) if (fires[i]! > 0) live.push(Math.log10(fires[i]! / n));
  const lowest = live.length ? live.reduce((a, b) => Math.min(a, b)) : -1;
  const highest = live.length ? live.reduce((a, b) => Math.max(a, b)) : 0;
  const perDecade = binsPerDecade ?? Math.max(4, Math.floor(40 / Math.max(0.5, highest - lowest)));
  const step = 1 / perDecade;
  let lo = Math.floor(lowest * perDecade) / perDecade;
  let hi = Math.min(0, Math.ceil(highest * perDecade) / perDecade);
  while (hi - lo < 0.5 - 1e-9 || hi <= lo) {
    if (hi < 0) hi = Math.min(0, hi + step);
    if (hi - lo < 0.5 - 1e-9) lo -= step;
  }
  const h = histogram(live, lo, hi, Math.round((hi - lo) * perDecade));
  return { ...h, dead: fires.length - live.length };
}

/**
 * l0Counts: [maxL0 + 1] inputs with each number of firing latents -> bins of integer width: one per
 * value up to maxBins values, wider (a whole number of values each) beyond, up to the largest L0 seen.
 */
export function l0Histogram(l0Counts: ArrayLike<number>, maxBins = 50): Histogram {
  let top = 0;
  for (let k = 0; k < l0Counts.length; k++) if (l0Counts[k]! > 0) top = k;
  const width = Math.max(1, Math.ceil((top + 1) / maxBins));
  const bins = Math.ceil((top + 1) / width);
  const counts = new Array<number>(bins).fill(0);
  for (let k = 0; k <= top; k++) counts[Math.floor(k / width)]! += l0Counts[k]!;
  return { edges: Array.from({ length: bins + 1 }, (_, b) => b * width), counts };
}

/** Running sums over evaluated batches. */
export class MetricsAccumulator {
  inputs = 0;
  private sse = 0;
  private l0 = 0;
  private l1 = 0;
  private l2Ratio = 0;
  private xHatSq = 0;
  private dot = 0;
  private variance = 0;
  private legacySum = 0;
  private legacyRows = 0;
  /** [dIn] mean of the inputs so far */
  private readonly mean: Float64Array;
  /** [dSae] inputs on which each latent fired */
  readonly fires: Float64Array;
  /** [dSae + 1] inputs with each number of firing latents */
  readonly l0Counts: Float64Array;

  constructor(
    readonly dIn: number,
    readonly dSae: number,
  ) {
    this.mean = new Float64Array(dIn);
    this.fires = new Float64Array(dSae);
    this.l0Counts = new Float64Array(dSae + 1);
  }

  /** Adds one batch of `rows` inputs, given the evaluation graph's outputs for it. */
  add(rows: number, out: BatchOutputs): void {
    if (rows === 0) return;
    let centred = 0;
    for (let r = 0; r < rows; r++) {
      const sse = out.row_sse[r]!;
      const l0 = out.row_l0[r]!;
      const c = out.row_centered_sq[r]!;
      this.sse += sse;
      this.l0 += l0;
      this.l0Counts[Math.min(this.dSae, Math.max(0, Math.round(l0)))]!++;
      this.l1 += out.row_l1[r]!;
      this.xHatSq += out.x_hat_sq[r]!;
      this.dot += out.x_dot[r]!;
      const norm = Math.sqrt(out.x_sq[r]!);
      this.l2Ratio += Math.sqrt(out.x_hat_sq[r]!) / (norm < L2_NORM_FLOOR ? 1 : norm);
      if (c > 0) {
        this.legacySum += 1 - sse / c;
        this.legacyRows++;
      }
      centred += c;
    }
    this.mergeVariance(rows, out.x_mean, centred);
    for (let i = 0; i < this.dSae; i++) this.fires[i]! += out.fires[i]!;
    this.inputs += rows;
  }

  /** Chan et al.: combines (inputs, mean, variance) with a batch of `rows`, its mean [dIn] and centred sum of squares. */
  private mergeVariance(rows: number, batchMean: Sums, centred: number): void {
    const n = this.inputs + rows;
    let shift = 0;
    for (let j = 0; j < this.dIn; j++) {
      const delta = batchMean[j]! - this.mean[j]!;
      shift += delta * delta;
      this.mean[j]! += (delta * rows) / n;
    }
    this.variance += centred + (shift * this.inputs * rows) / n;
  }

  /** The running sums, to merge accumulators or checkpoint them. */
  sums(): MetricSums {
    const { inputs, sse, l0, l1, l2Ratio, xHatSq, dot, variance, legacySum, legacyRows, fires } = this;
    return { inputs, sse, l0, l1, l2Ratio, xHatSq, dot, variance, legacySum, legacyRows, fires };
  }

  /** The metrics; a UserError if a sum is not finite (metrics are never Inf). */
  metrics(): Metrics {
    const s = this.sums();
    for (const [name, v] of Object.entries(s)) {
      if (typeof v === 'number' && !Number.isFinite(v))
        throw new UserError(`the metric sum '${name}' is ${v} over ${s.inputs} inputs: the SAE or the data gives numbers beyond float64`);
    }
    return metricsFromSums(s);
  }

  /** [dSae] log10 firing rate per latent. */
  log10FiringRates(): Float32Array {
    return log10FiringRates(this.fires, this.inputs);
  }

  /** The live latents' firing rates in log10 bins, and the count of dead ones. */
  firingRateHistogram(binsPerDecade?: number): FiringRateHistogram {
    return firingRateHistogram(this.fires, this.inputs, binsPerDecade);
  }

  /** Inputs by how many latents fired on them. */
  l0Histogram(maxBins?: number): Histogram {
    return l0Histogram(this.l0Counts, maxBins);
  }
}

/** A batch to evaluate: x [rows, dIn] (longer arrays are read up to rows * dIn). */
export interface EvalBatch {
  readonly x: Float32Array;
  readonly rows: number;
}

/** Receives each batch's latents [rows, dSae] (f where the latent fires, 0 elsewhere); the array is the caller's to keep. */
export type LatentsSink<B extends EvalBatch> = (latents: Float32Array, batch: B) => void;

/**
 * Evaluates `sae` on batches of x [rows, dIn]. With `onLatents`, each batch's latents also come
 * back (the dashboard's one pass over the data gathers its examples from them).
 *
 * @example
 * ```ts
 * async function* batches() {
 *   yield { x, rows: x.length / sae.dims.dIn };
 * }
 * const m = (await evaluate(engine, sae, batches())).metrics();
 * console.log(m.explained_variance, m.l0);
 * ```
 */
export async function evaluate<B extends EvalBatch>(
  engine: Engine,
  sae: Sae,
  batches: AsyncIterable<B>,
  onLatents?: LatentsSink<B>,
): Promise<MetricsAccumulator> {
  const withLatents = onLatents !== undefined;
  const graph = await engine.graph(`${sae.key}:eval${withLatents ? '+latents' : ''}`, () => buildEvalModel(sae.def, sae.hyper, sae.dims, withLatents));
  const acc = new MetricsAccumulator(sae.dims.dIn, sae.dims.dSae);
  const feeds: Feeds = paramFeeds(sae);
  for await (const batch of batches) {
    const { x, rows } = batch;
    if (rows === 0) continue;
    feeds['x'] = { data: x.subarray(0, rows * sae.dims.dIn), dims: [rows, sae.dims.dIn] };
    const out = await graph.run(feeds);
    const get = (name: string): Float32Array => out[name]!.data as Float32Array;
    const sums = Object.fromEntries(SUM_OUTPUTS.map((k) => [k, float64Output(out[k]?.data, k)])) as Record<(typeof SUM_OUTPUTS)[number], Float64Array>;
    checkFiniteBatch(sums, rows, acc.inputs);
    acc.add(rows, { ...sums, row_l0: get('row_l0'), fires: get('fires') });
    onLatents?.(get(LATENTS_OUTPUT), batch);
  }
  return acc;
}

/** A float64 output of a graph (a bug if it is anything else). */
function float64Output(data: unknown, name: string): Float64Array {
  if (!(data instanceof Float64Array)) throw new Error(`evaluation graph: output '${name}' is not float64`);
  return data;
}

/**
 * The non-finite policy for one batch (inputs first + [0, rows)): an input with NaN or Inf should
 * have been dropped or refused before; finite inputs whose latents or reconstruction are NaN or Inf
 * (an SAE whose weights overflow on this data) are an error, never metrics of Inf.
 */
function checkFiniteBatch(s: Readonly<Record<(typeof SUM_OUTPUTS)[number], Float64Array>>, rows: number, first: number): void {
  for (let r = 0; r < rows; r++) {
    if (!Number.isFinite(s.x_sq[r]!)) throw new UserError(`input ${first + r} holds NaN or Inf, or values beyond float64 when squared; drop such rows first`);
    if (!Number.isFinite(s.row_sse[r]!) || !Number.isFinite(s.row_l1[r]!) || !Number.isFinite(s.x_hat_sq[r]!)) {
      throw new UserError(
        `input ${first + r}: the SAE's latents or reconstruction hold NaN or Inf (the input is finite); this SAE cannot be applied to this data`,
      );
    }
  }
}

function paramFeeds(sae: Sae): Feeds {
  const feeds: Feeds = {};
  for (const spec of sae.def.params(sae.dims, sae.hyper)) feeds[spec.name] = { data: sae.params[spec.name]!, dims: spec.shape };
  return feeds;
}

/**
 * [dSae] cos(W_enc[:, i], W_dec[i, :]) per latent (0 where either is zero), computed on the engine;
 * undefined for an SAE without both W_enc [dIn, dSae] and W_dec [dSae, dIn].
 */
export async function encoderDecoderCosine(engine: Engine, sae: Sae): Promise<Float32Array | undefined> {
  const { dIn, dSae } = sae.dims;
  const wEnc = sae.params['W_enc'];
  const wDec = sae.params['W_dec'];
  if (wEnc?.length !== dIn * dSae || wDec?.length !== dSae * dIn) return undefined;
  const graph = await engine.graph('encoder-decoder-cosine', () => {
    const g = new Builder();
    const enc = g.op('Transpose', [g.input('W_enc', ['d_in', 'd_sae'])], { perm: [1, 0] }); // [dSae, dIn]
    const dec = g.input('W_dec', ['d_sae', 'd_in']); // [dSae, dIn]
    const norms = g.mul(g.sqrt(g.sum(g.square(enc), [1])), g.sqrt(g.sum(g.square(dec), [1]))); // [dSae]
    g.output(g.div(g.sum(g.mul(enc, dec), [1]), g.op('Max', [norms, g.scalar(1e-12)])), 'cos', ['d_sae']);
    return g.encode();
  });
  const out = await graph.run({ W_enc: { data: wEnc, dims: [dIn, dSae] }, W_dec: { data: wDec, dims: [dSae, dIn] } });
  return out['cos']!.data as Float32Array;
}

/** Mean, median, least and greatest of some per-latent values (NaN for none). */
export interface Summary {
  readonly mean: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export function summarize(values: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) return { mean: NaN, median: NaN, min: NaN, max: NaN };
  const median = n % 2 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  return { mean: sorted.reduce((a, b) => a + b, 0) / n, median, min: sorted[0]!, max: sorted[n - 1]! };
}
