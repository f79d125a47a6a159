/**
 * The two kinds of page, as pure functions from their data to HTML: the overview (metrics,
 * firing-rate and L0 histograms, the sortable feature list) and one page per feature (density,
 * activation histogram, top examples, examples from quantile bands; for images the decoder filter
 * and the source images). Examples arrive as HTML already made safe by their renderers.
 */
import type { FiringRateHistogram, Histogram, Metrics } from '../eval.js';
import { escapeHtml } from '../viz/report.js';
import { barChart, rateLabel, shortNumber } from '../viz/charts.js';
import type { FeatureStats, QuantileBand } from './collect.js';
import type { FeatureLogits, TokenEffect } from './logit-effects.js';
import { card, page } from './html.js';
import { isolatedText, tokenText } from './tokens.js';

export type DataKind = 'images' | 'tokens' | 'rows';

/** What the dashboard is about (plain text; escaped when shown). */
export interface DashboardInfo {
  readonly title: string;
  readonly architecture: string;
  readonly dIn: number;
  readonly dSae: number;
  readonly data: string;
  readonly kind: DataKind;
}

/** One line of the feature list. */
export interface FeatureRow {
  readonly index: number;
  readonly fires: number;
  readonly density: number;
  readonly maxActivation: number;
  readonly meanActivation: number;
  readonly cosine: number | undefined;
  /** A data: URL of the decoder filter (image SAEs). */
  readonly thumb?: string;
  /** Token SAEs: the top example's token and a few around it (plain text). */
  readonly preview?: { readonly before: string; readonly token: string; readonly after: string };
}

/** An example ready to show: `html` is safe markup made by an example renderer. */
export interface RenderedExample {
  readonly value: number;
  readonly html: string;
}

export interface FeaturePageData {
  readonly stats: FeatureStats;
  readonly cosine: number | undefined;
  readonly decoderNorm: number | undefined;
  readonly top: readonly RenderedExample[];
  readonly bands: readonly { readonly band: QuantileBand; readonly examples: readonly RenderedExample[] }[];
  /** Image SAEs: the decoder filter as trained and in pixel space (data: URLs). */
  readonly filters?: readonly { readonly src: string; readonly caption: string }[];
  /** Image SAEs: source images with the top patches marked (safe HTML, from ExampleRenderer.locators). */
  readonly locators?: readonly string[];
  /** Token SAEs: the top logit effects of the decoder direction, or why there are none. */
  readonly logits?: FeatureLogits | { readonly reason: string };
  readonly prev: number | undefined;
  readonly next: number | undefined;
}

export function featureFile(index: number): string {
  return `features/${index}.html`;
}

function percent(x: number): string {
  if (x === 0) return '0%';
  if (x < 1e-4) return `${(x * 100).toExponential(1)}%`;
  return `${Number((x * 100).toPrecision(3))}%`;
}

function fixed(x: number | undefined, digits: number): string {
  return x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(digits);
}

function subtitle(info: DashboardInfo): string {
  return `${info.architecture} SAE, ${info.dIn} → ${info.dSae} latents · data: ${info.data}`;
}

export function renderOverview(info: DashboardInfo, m: Metrics, firing: FiringRateHistogram, l0: Histogram, rows: readonly FeatureRow[]): string {
  const cards = [
    card('inputs', m.inputs.toLocaleString('en-US')),
    card('explained variance', fixed(m.explained_variance, 4), `fvu ${fixed(m.fvu, 4)}`),
    card('explained variance (legacy)', fixed(m.explained_variance_legacy, 4), "SAELens's per-input mean"),
    card('mse', shortNumber(m.mse), 'sum over dimensions, mean over inputs'),
    card('L0', fixed(m.l0, 2), 'latents firing per input'),
    card('L1', shortNumber(m.l1)),
    card('dead', percent(m.dead_fraction), `${Math.round(m.dead_fraction * info.dSae)} of ${info.dSae} never fire`),
    card('dense > 1%', percent(m.dense_fraction_1pct), 'of latents fire on > 1% of inputs'),
    card('dense > 10%', percent(m.dense_fraction_10pct), 'of latents fire on > 10% of inputs'),
    card('l2 ratio', fixed(m.l2_ratio, 4), '‖x̂‖ / ‖x‖'),
    card('reconstruction bias', fixed(m.relative_reconstruction_bias, 4), '1 is unbiased, < 1 shrinkage'),
  ];
  const firingChart = barChart(firing, {
    title: 'firing-rate histogram',
    xLabel: 'firing rate (log scale)',
    yLabel: 'latents',
    xFormat: rateLabel,
    xTicks: rateTicks(firing),
  });
  const l0Chart = barChart(l0, { title: 'L0 histogram', xLabel: 'latents firing on an input (L0)', yLabel: 'inputs' });
  const body = `
<section class="panel" id="metrics"><h2>Metrics</h2><div class="cards">${cards.join('')}</div></section>
<div class="grid2">
<section class="panel" id="firing-histogram"><h2>Firing rates</h2><figure>${firingChart}<figcaption>How often each latent fires, over ${escapeHtml(m.inputs.toLocaleString('en-US'))} inputs. ${firing.dead} dead latent${firing.dead === 1 ? '' : 's'} (never firing) not shown.</figcaption></figure></section>
<section class="panel" id="l0-histogram"><h2>Latents per input</h2><figure>${l0Chart}<figcaption>How many latents fire on each input; mean ${escapeHtml(fixed(m.l0, 2))}.</figcaption></figure></section>
</div>
<section class="panel"><h2>Features</h2>${featureList(info, rows)}</section>`;
  return page(`${info.title}: SAE features`, body, { heading: `${info.title}: features`, subtitle: subtitle(info), listScript: true });
}

/** Ticks of a log10 firing-rate axis: decades, with 2x and 5x (or every multiple, below a decade) when the range is short. */
function rateTicks(h: Histogram): number[] {
  const lo = h.edges[0] ?? -1;
  const hi = h.edges[h.edges.length - 1] ?? 0;
  const steps = hi - lo <= 1 ? [1, 2, 3, 4, 5, 6, 7, 8, 9] : hi - lo <= 2.5 ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let d = Math.floor(lo); d <= Math.ceil(hi); d++) for (const k of steps) ticks.push(Math.log10(k) + d);
  return ticks.filter((t) => t >= lo - 1e-9 && t <= hi + 1e-9);
}

function featureList(info: DashboardInfo, rows: readonly FeatureRow[]): string {
  const alive = rows.filter((r) => r.fires > 0).length;
  const maxDensity = rows.reduce((a, r) => Math.max(a, r.density), 1e-12);
  const sorted = [...rows].sort((a, b) => b.density - a.density || a.index - b.index);
  const head = [
    '<th class="l">feature</th>',
    info.kind === 'images' ? '<th class="l">filter</th>' : '',
    '<th>density</th><th>max activation</th><th>mean activation</th><th title="cosine of the encoder and decoder directions">enc·dec cos</th>',
    info.kind === 'tokens' ? '<th class="l">top example</th>' : '',
  ].join('');
  const body = sorted.map((r) => {
    const name = r.fires > 0 ? `<a href="${featureFile(r.index)}">#${r.index}</a>` : `#${r.index} <span class="muted">dead</span>`;
    const cells = [
      `<td class="l">${name}</td>`,
      info.kind === 'images' ? `<td class="l">${r.thumb ? `<img class="px thumb" src="${r.thumb}" alt="decoder filter ${r.index}">` : ''}</td>` : '',
      `<td>${percent(r.density)}<span class="meter"><i style="width:${((100 * r.density) / maxDensity).toFixed(1)}%"></i></span></td>`,
      `<td>${r.fires > 0 ? escapeHtml(shortNumber(r.maxActivation)) : '–'}</td>`,
      `<td>${r.fires > 0 ? escapeHtml(shortNumber(r.meanActivation)) : '–'}</td>`,
      `<td>${fixed(r.cosine, 3)}</td>`,
      info.kind === 'tokens'
        ? `<td class="l preview">${r.preview ? `${isolatedText(r.preview.before)}<mark>${tokenText(r.preview.token)}</mark>${isolatedText(r.preview.after)}` : ''}</td>`
        : '',
    ];
    return `<tr${r.fires > 0 ? '' : ' class="dead"'} data-index="${r.index}" data-density="${r.density}" data-max="${r.maxActivation}">${cells.join('')}</tr>`;
  });
  const toolbar = `<div class="toolbar"><span class="muted">${alive} live of ${rows.length} · sort by</span>
<button type="button" id="sort-density" data-sort="density" class="on" aria-pressed="true">density</button>
<button type="button" id="sort-max" data-sort="max" aria-pressed="false">max activation</button>
<button type="button" id="sort-index" data-sort="index" aria-pressed="false">index</button></div>`;
  return `${toolbar}<table class="features" id="features" data-sorted="density"><thead><tr>${head}</tr></thead><tbody>\n${body.join('\n')}\n</tbody></table>`;
}

export function renderFeaturePage(info: DashboardInfo, d: FeaturePageData): string {
  const s = d.stats;
  const cards = [
    card('density', percent(s.density), `fires on ${s.fires.toLocaleString('en-US')} inputs`),
    card('max activation', shortNumber(s.maxActivation)),
    card('mean activation', shortNumber(s.meanActivation), 'where it fires'),
    card('encoder-decoder cosine', fixed(d.cosine, 3)),
    card('decoder norm', fixed(d.decoderNorm, 3)),
  ];
  const hist = barChart(s.histogram, { title: 'activation histogram', xLabel: 'activation', yLabel: 'inputs' });
  const filters = d.filters?.length
    ? `<section class="panel" id="filter"><h2>Decoder direction</h2><div class="filters">${d.filters.map((f) => `<figure><img class="px" src="${f.src}" alt="${escapeHtml(f.caption)}"><figcaption>${escapeHtml(f.caption)}</figcaption></figure>`).join('')}</div></section>`
    : '';
  const locators = d.locators?.length
    ? `<section class="panel" id="sources"><h2>Where the top patches are</h2><div class="locators">${d.locators.join('')}</div></section>`
    : '';
  const bands = d.bands
    .map(({ band, examples }) => {
      const title = `${Math.round(band.from * 100)}–${Math.round(band.to * 100)}% quantile band`;
      return `<div class="band"><h3>${escapeHtml(title)} <span class="muted">activations ${escapeHtml(shortNumber(band.lo))} to ${escapeHtml(shortNumber(band.hi))}</span></h3>${exampleList(info.kind, examples)}</div>`;
    })
    .join('');
  const body = `
<section class="panel" id="stats"><div class="cards">${cards.join('')}</div></section>
<div class="grid2">
<section class="panel" id="activation-histogram"><h2>Activations where it fires</h2><figure>${hist}<figcaption>Activation of feature ${s.index} on the ${s.fires.toLocaleString('en-US')} inputs where it fires.</figcaption></figure></section>
${filters}
</div>
<section class="panel" id="top"><h2>Top activations</h2>${exampleList(info.kind, d.top)}</section>
${locators}
${logitPanel(d.logits)}
<section class="panel" id="quantiles"><h2>Examples across the activation range</h2><p class="muted">Firing inputs sampled uniformly, split into bands by quantile of their activation.</p>${bands}</section>`;
  const nav: [string, string][] = [['../index.html', '← all features']];
  if (d.prev !== undefined) nav.push([`${d.prev}.html`, `‹ #${d.prev}`]);
  if (d.next !== undefined) nav.push([`${d.next}.html`, `#${d.next} ›`]);
  return page(`Feature ${s.index}: ${info.title}`, body, { heading: `Feature #${s.index}`, subtitle: subtitle(info), nav });
}

function exampleList(kind: DataKind, xs: readonly RenderedExample[]): string {
  if (xs.length === 0) return '<p class="muted">none</p>';
  return `<div class="examples ${kind}">${xs.map((x) => x.html).join('')}</div>`;
}

/** The tokens whose logits the decoder direction raises and lowers most (W_dec[i] @ W_U), or why none are shown. */
function logitPanel(l: FeaturePageData['logits']): string {
  if (l === undefined) return '';
  if ('reason' in l) return `<section class="panel" id="logits"><h2>Logit effects</h2><p class="muted">None shown: ${escapeHtml(l.reason)}.</p></section>`;
  const table = (cls: string, xs: readonly TokenEffect[]): string =>
    `<table class="logit ${cls}">${xs.map((x) => `<tr><td class="t"><span>${tokenText(x.token)}</span></td><td class="v">${escapeHtml(x.value >= 0 ? `+${x.value.toFixed(3)}` : x.value.toFixed(3))}</td></tr>`).join('')}</table>`;
  return `<section class="panel" id="logits"><h2>Logit effects</h2><p class="muted">W_dec[i] · W_U: the direct effect of the decoder direction on the next-token logits (the final layer norm's scale ignored).</p>
<div class="logits"><div><h3>raises</h3>${table('pos', l.pos)}</div><div><h3>lowers</h3>${table('neg', l.neg)}</div></div></section>`;
}
