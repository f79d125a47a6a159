/**
 * Builds the dashboard of an SAE over a dataset, a static site in one folder:
 *   index.html                the overview: metrics, firing-rate and L0 histograms, the feature list
 *   features/<i>.html         one page per latent that fires
 *   neuronpedia/batch-<k>.json the features in Neuronpedia's import layout (neuronpedia.ts)
 * One pass over the data computes the metrics (eval.ts) and, from the same latents, each latent's
 * statistics and examples (collect.ts) in memory bounded by the number of latents. Then the
 * examples are rendered feature by feature (token contexts are encoded again, a group of features
 * at a time) and every page is written as soon as it is made.
 */
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import { sequentialChunks } from '../data/sequential.js';
import { toPixelSpace, type ImagePreprocess } from '../data/whitening.js';
import type { Engine } from '../engine/index.js';
import { encoderDecoderCosine, evaluate, type EvalBatch, type Metrics } from '../eval.js';
import { ensureWritableDir, writeFileAtomic } from '../io/atomic.js';
import { rowsFor, type Sae } from '../sae.js';
import { patchSide } from '../viz/filters.js';
import { type CollectOptions, FeatureCollector, type FeatureStats, type QuantileBand } from './collect.js';
import { type ExampleRequest, ExampleRenderer, type ExampleSource, type ShownExample } from './examples.js';
import { pngDataUrl, singleFilter } from './images.js';
import { featureLogits, type FeatureLogits, type LogitSource, topLogitEffects } from './logit-effects.js';
import { layerOfHook, NEURONPEDIA_BATCH, type NeuronpediaFeature, neuronpediaFeature } from './neuronpedia.js';
import { type DashboardInfo, type FeaturePageData, featureFile, type FeatureRow, renderFeaturePage, renderOverview } from './pages.js';
import { cutToken } from './tokens.js';

export interface DashboardOptions extends CollectOptions {
  /** The output folder (created if needed). */
  readonly out: string;
  /** Shown in the pages' headers (default: the SAE's folder name, or "SAE"). */
  readonly title?: string;
  /** Rows per onnxruntime call in the pass over the data (default: 4096, fewer for wide SAEs, so that a [rows, d_sae] tensor stays near 64 MB). */
  readonly batchSize?: number;
  /** Read at most this many rows of the data. */
  readonly maxRows?: number;
  /** Top examples shown per feature (default 12; at most topK). */
  readonly showTop?: number;
  /** Quantile bands and examples shown per band (default 5 and 4). */
  readonly bands?: number;
  readonly perBand?: number;
  /** Image SAEs: the whitening, to show decoder filters in pixel space too. */
  readonly preprocess?: ImagePreprocess;
  /** Token SAEs of causal language models: where the features' logit effects come from (logit-effects.ts). */
  readonly logits?: LogitSource;
  /** The Neuronpedia batch header (defaults from the SAE's metadata: model_name, hook_name; sae_set = title). */
  readonly neuronpedia?: { readonly modelId?: string; readonly layer?: number; readonly saeSet?: string };
  /** Progress lines. */
  readonly log?: (message: string) => void;
}

export interface DashboardResult {
  readonly metrics: Metrics;
  /** Feature pages written (latents that fired). */
  readonly pages: number;
  /** Rows left out because they hold NaN or Inf. */
  readonly skippedRows: number;
  readonly index: string;
}

/** Features rendered together. */
const GROUP = 64;
/**
 * Features whose token contexts are computed together (a multiple of GROUP): each distinct row
 * of their contexts is encoded once. On the text demo (2048 latents, 60k rows) the contexts
 * visit ~18 rows per distinct row; 1024 features' contexts are ~32k examples, ~16 MB.
 */
const PREFETCH = 16 * GROUP;

export async function buildDashboard(engine: Engine, sae: Sae, ds: Dataset, source: ExampleSource, o: DashboardOptions): Promise<DashboardResult> {
  if (ds.dIn !== sae.dims.dIn) throw new RangeError(`buildDashboard: data rows of ${ds.dIn} for an SAE of d_in ${sae.dims.dIn}`);
  await ensureWritableDir(o.out);
  await ensureWritableDir(join(o.out, 'features'));
  await ensureWritableDir(join(o.out, 'neuronpedia'));
  const log = o.log ?? (() => undefined);
  const info: DashboardInfo = {
    title: o.title ?? 'SAE',
    architecture: sae.architecture,
    dIn: sae.dims.dIn,
    dSae: sae.dims.dSae,
    data: ds.name,
    kind: source.kind,
  };

  log(`dashboard: one pass over ${Math.min(ds.rows, o.maxRows ?? Infinity)} rows`);
  const { acc, collector, skipped } = await collectFeatures(engine, sae, ds, o);
  const metrics = acc.metrics();
  const cosine = await encoderDecoderCosine(engine, sae);
  const wDec = sae.params['W_dec']; // [dSae, dIn] when the architecture has one
  const filters = await imageFilters(engine, sae, source, o.preprocess);

  const logitPlan = planLogits(sae, o.logits);
  const alive = Array.from({ length: sae.dims.dSae }, (_, i) => i).filter((i) => collector.fires[i]! > 0);
  const renderer = new ExampleRenderer(engine, sae, ds, source, o.out);
  const rows: FeatureRow[] = Array.from({ length: sae.dims.dSae }, (_, i) => featureRow(collector.stats(i), cosine?.[i], filters?.whitened[i]));
  const np = new NeuronpediaWriter(o.out, {
    model_id: o.neuronpedia?.modelId ?? stringOr(sae.metadata['model_name'], 'unknown'),
    layer: o.neuronpedia?.layer ?? layerOfHook(sae.metadata['hook_name']) ?? 0,
    sae_set: o.neuronpedia?.saeSet ?? info.title,
  });
  let plans: FeaturePlan[] = []; // of the features alive[g - g % PREFETCH ...]
  for (let g = 0; g < alive.length; g += GROUP) {
    if (g % PREFETCH === 0) {
      plans = alive.slice(g, g + PREFETCH).map((i) => planOf(i, collector, o));
      await renderer.prefetch(plans.flatMap((p) => p.requests));
    }
    const group = alive.slice(g, g + GROUP);
    const pages = await renderGroup(plans.slice(g % PREFETCH, (g % PREFETCH) + GROUP), renderer);
    const logits = await groupLogits(engine, sae, group, logitPlan);
    for (const [k, i] of group.entries()) {
      const { stats, top, bands } = pages[k]!;
      const row = rows[i]!;
      if (source.kind === 'tokens' && top[0]) rows[i] = { ...row, preview: previewOf(top[0]) };
      const decoderRow = wDec?.length === sae.dims.dSae * sae.dims.dIn ? wDec.subarray(i * sae.dims.dIn, (i + 1) * sae.dims.dIn) : undefined;
      const page: FeaturePageData = {
        stats,
        cosine: cosine?.[i],
        decoderNorm: decoderRow ? norm(decoderRow) : undefined,
        top,
        bands,
        ...(filters ? { filters: filters.captions.map((caption, f) => ({ caption, src: filters.urls[f]![i]! })) } : {}),
        ...(source.kind === 'images' ? { locators: await renderer.locators(stats.top.slice(0, top.length)) } : {}),
        ...(logits ? { logits: logits[k]! } : {}),
        prev: alive[g + k - 1],
        next: alive[g + k + 1],
      };
      await writeFileAtomic(join(o.out, featureFile(i)), renderFeaturePage(info, page));
      const effects = logits?.[k];
      await np.add(
        neuronpediaFeature(
          stats,
          decoderRow ?? new Float32Array(0),
          top,
          bands,
          { inputs: metrics.inputs, dataset: info.data },
          effects && !('reason' in effects) ? effects : undefined,
        ),
      );
    }
    log(`dashboard: ${Math.min(alive.length, g + GROUP)} of ${alive.length} feature pages`);
  }
  await np.flush();
  const index = join(o.out, 'index.html');
  await writeFileAtomic(index, renderOverview(info, metrics, acc.firingRateHistogram(), acc.l0Histogram(), rows));
  return { metrics, pages: alive.length, skippedRows: skipped, index };
}

/** The one pass: metrics and per-latent statistics from the same latents; NaN/Inf rows are left out. */
async function collectFeatures(engine: Engine, sae: Sae, ds: Dataset, o: DashboardOptions) {
  const collector = new FeatureCollector(sae.dims.dSae, o);
  let skipped = 0;
  const batches = async function* (): AsyncGenerator<EvalBatch & { ids: Float64Array }> {
    for await (const c of sequentialChunks(ds, engine.kernels, o.batchSize ?? defaultBatch(sae.dims.dSae), o.maxRows)) {
      const ids = new Float64Array(c.rows - c.nonFinite);
      let kept = 0;
      for (let r = 0; r < c.rows; r++) {
        if (c.mask[r]) continue;
        if (kept !== r) c.x.copyWithin(kept * ds.dIn, r * ds.dIn, (r + 1) * ds.dIn);
        ids[kept++] = c.start + r;
      }
      skipped += c.nonFinite;
      yield { x: c.x, rows: kept, ids };
    }
  };
  const acc = await evaluate(engine, sae, batches(), (latents, b) => collector.add(latents, b.rows, b.ids));
  return { acc, collector, skipped };
}

type LogitPlan = Extract<LogitSource, { kind: 'model' }> | { readonly kind: 'none'; readonly reason: string } | undefined;

/** The source, checked against the SAE: its decoder rows must be d_model wide to multiply W_U. */
function planLogits(sae: Sae, source: LogitSource | undefined): LogitPlan {
  if (source === undefined || source.kind === 'none') return source;
  const { dIn, dSae } = sae.dims;
  if (sae.params['W_dec']?.length !== dSae * dIn) return { kind: 'none', reason: `the ${sae.architecture} SAE has no decoder matrix W_dec` };
  if (source.unembedding.dModel !== dIn)
    return {
      kind: 'none',
      reason: `the SAE reads ${dIn}-wide vectors, but ${source.model}'s unembedding takes d_model = ${source.unembedding.dModel} (logit effects need a hook that is added into the residual stream)`,
    };
  return source;
}

/** Each feature of the group: its logit effects, or the reason there are none; undefined when no model is named. */
async function groupLogits(engine: Engine, sae: Sae, group: readonly number[], plan: LogitPlan): Promise<(FeatureLogits | { reason: string })[] | undefined> {
  if (plan === undefined) return undefined;
  if (plan.kind === 'none') return group.map(() => ({ reason: plan.reason }));
  const e = await topLogitEffects(engine, sae.param('W_dec'), plan.unembedding, group);
  return group.map((_, j) => featureLogits(e, j, plan.vocab));
}

/** Rows per batch such that rows * dSae is about 2^24 (the graph holds a few [rows, dSae] tensors), within [256, 4096]. */
export function defaultBatch(dSae: number): number {
  return rowsFor(dSae, 2 ** 24);
}

interface RenderedFeature {
  readonly stats: FeatureStats;
  readonly top: ShownExample[];
  readonly bands: { band: FeaturePageData['bands'][number]['band']; examples: ShownExample[] }[];
}

/** A feature's examples to show: the top ones and a few from each quantile band, and all of them as requests. */
interface FeaturePlan {
  readonly stats: FeatureStats;
  readonly top: FeatureStats['top'];
  readonly bands: QuantileBand[];
  readonly requests: ExampleRequest[];
}

function planOf(i: number, c: FeatureCollector, o: DashboardOptions): FeaturePlan {
  const stats = c.stats(i);
  const top = stats.top.slice(0, Math.min(o.showTop ?? 12, c.topK));
  const bands = c.quantileBands(i, o.bands ?? 5, o.perBand ?? 4);
  const req = (e: { row: number; value: number }): ExampleRequest => ({ ...e, latent: stats.index, scale: stats.maxActivation });
  return { stats, top, bands, requests: [...top.map(req), ...bands.flatMap((b) => b.examples.map(req))] };
}

/** Renders the examples of a group of features in one call. */
async function renderGroup(plans: readonly FeaturePlan[], renderer: ExampleRenderer): Promise<RenderedFeature[]> {
  const shown = await renderer.render(plans.flatMap((p) => p.requests));
  let at = 0;
  const take = (n: number): ShownExample[] => shown.slice(at, (at += n));
  return plans.map(({ stats, top, bands }) => ({ stats, top: take(top.length), bands: bands.map((band) => ({ band, examples: take(band.examples.length) })) }));
}

function featureRow(s: FeatureStats, cosine: number | undefined, thumb: string | undefined): FeatureRow {
  return {
    index: s.index,
    fires: s.fires,
    density: s.density,
    maxActivation: s.maxActivation,
    meanActivation: s.meanActivation,
    cosine,
    ...(thumb ? { thumb } : {}),
  };
}

/** A token example's own token and up to 6 before and 2 after it, as plain text (whitespace runs as one space, long tokens cut). */
function previewOf(e: ShownExample): { before: string; token: string; after: string } {
  const squash = (ts: readonly string[]): string =>
    ts
      .map((t) => cutToken(t))
      .join('')
      .replace(/\s+/g, ' ');
  return {
    before: squash(e.tokens.slice(Math.max(0, e.highlight - 6), e.highlight)).trimStart(),
    token: e.tokens[e.highlight] ?? '',
    after: squash(e.tokens.slice(e.highlight + 1, e.highlight + 3)).trimEnd(),
  };
}

/** ||v||_2 */
function norm(v: Float32Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

function stringOr(v: unknown, fallback: string): string {
  return typeof v === 'string' && v.length > 0 ? v : fallback;
}

/** Image SAEs: each decoder row as a small picture, as trained and (with the whitening) in pixel space. */
async function imageFilters(engine: Engine, sae: Sae, source: ExampleSource, preprocess: ImagePreprocess | undefined) {
  if (source.kind !== 'images') return undefined;
  const { dIn, dSae } = sae.dims;
  const p = patchSide(dIn);
  const wDec = sae.params['W_dec'];
  if (p === undefined || wDec?.length !== dSae * dIn) return undefined;
  const spaces: { caption: string; rows: Float32Array }[] = [{ caption: 'as trained (whitened space)', rows: wDec }];
  if (preprocess && preprocess.whitening !== 'none') spaces.push({ caption: 'in pixel space', rows: await toPixelSpace(preprocess, wDec, dSae, engine) });
  const urls = spaces.map((s) => Array.from({ length: dSae }, (_, i) => pngDataUrl(singleFilter(s.rows, dSae, p, i))));
  return { captions: spaces.map((s) => s.caption), urls, whitened: urls[0]! };
}

/** Writes features to neuronpedia/batch-<k>.json, NEURONPEDIA_BATCH at a time. */
class NeuronpediaWriter {
  private features: NeuronpediaFeature[] = [];
  private batch = 0;

  constructor(
    private readonly out: string,
    private readonly header: { model_id: string; layer: number; sae_set: string },
  ) {}

  async add(f: NeuronpediaFeature): Promise<void> {
    this.features.push(f);
    if (this.features.length >= NEURONPEDIA_BATCH) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.features.length === 0) return;
    const path = join(this.out, 'neuronpedia', `batch-${this.batch++}.json`);
    await writeFileAtomic(path, JSON.stringify({ ...this.header, features: this.features }));
    this.features = [];
  }
}
