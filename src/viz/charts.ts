/**
 * SVG charts as plain text, no script, no library: histograms as bar charts (one series in the
 * dashboard, several overlaid in the anomaly report) and the ROC curve. One frame for all: a plot
 * area inside margins, round ticks, axis titles; every label is escaped.
 *
 * Elements carry both classes (bar, grid, axis, tick, label, empty) and presentation attributes:
 * a page's CSS restyles them (the dashboard's svg.chart rules), a standalone .svg file still draws.
 *
 * Scales: x(v) = left + (v - lo) / (hi - lo) * plotWidth;  y(c) = top + plotHeight * (1 - c / yTop).
 */
import type { Histogram } from '../eval.js';
import { escapeHtml } from './report.js';

export interface ChartOptions {
  readonly xLabel: string;
  readonly yLabel: string;
  /** Tick label of an x value (default: a short number). */
  readonly xFormat?: (v: number) => string;
  /** Tick positions on x (default: about five round values). */
  readonly xTicks?: readonly number[];
  readonly width?: number;
  readonly height?: number;
  /** Accessible name of the chart. */
  readonly title: string;
}

/** A histogram series drawn over the others: its label in the legend, its colour. */
export interface Series {
  readonly label: string;
  readonly colour: string;
  readonly values: ArrayLike<number>;
}

/** A point of a ROC curve: false-positive rate and true-positive rate. */
export interface RatePoint {
  readonly fpr: number;
  readonly tpr: number;
}

interface Margin {
  readonly left: number;
  readonly right: number;
  readonly top: number;
  readonly bottom: number;
}

/** The plot area of a chart and its two linear scales. */
class Frame {
  readonly plotW: number;
  readonly plotH: number;

  constructor(
    readonly width: number,
    readonly height: number,
    readonly margin: Margin,
    /** The x range [lo, hi] and the top of the y axis. */
    readonly x0: number,
    readonly x1: number,
    readonly yTop: number,
  ) {
    this.plotW = width - margin.left - margin.right;
    this.plotH = height - margin.top - margin.bottom;
  }

  x(v: number): number {
    return this.margin.left + ((v - this.x0) / (this.x1 - this.x0 || 1)) * this.plotW;
  }

  y(c: number): number {
    return this.margin.top + this.plotH - (c / this.yTop) * this.plotH;
  }

  get base(): number {
    return this.margin.top + this.plotH;
  }

  /** Grid lines and labels at yTicks, the x axis with its ticks, and both axis titles. */
  axes(
    xLabel: string,
    yLabel: string,
    xTicks: readonly number[],
    yTicks: readonly number[],
    xFormat: (v: number) => string,
    yFormat: (v: number) => string,
  ): string[] {
    const { margin: m, width, height, base } = this;
    const parts: string[] = [];
    for (const t of yTicks) {
      const y = this.y(t).toFixed(1);
      parts.push(`<line class="grid" x1="${m.left}" x2="${width - m.right}" y1="${y}" y2="${y}" stroke="#edf0f3"/>`);
      parts.push(
        `<text class="tick" x="${m.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" font-size="10.5" fill="#5d6775">${escapeHtml(yFormat(t))}</text>`,
      );
    }
    parts.push(`<line class="axis" x1="${m.left}" x2="${width - m.right}" y1="${base}" y2="${base}" stroke="#9aa4b1"/>`);
    for (const t of xTicks) {
      const x = this.x(t).toFixed(1);
      parts.push(`<line class="axis" x1="${x}" x2="${x}" y1="${base}" y2="${base + 4}" stroke="#9aa4b1"/>`);
      parts.push(`<text class="tick" x="${x}" y="${base + 15}" text-anchor="middle" font-size="10.5" fill="#5d6775">${escapeHtml(xFormat(t))}</text>`);
    }
    parts.push(
      `<text class="label" x="${m.left + this.plotW / 2}" y="${height - 6}" text-anchor="middle" font-size="11.5" fill="#364150">${escapeHtml(xLabel)}</text>`,
    );
    parts.push(
      `<text class="label" transform="translate(13 ${m.top + this.plotH / 2}) rotate(-90)" text-anchor="middle" font-size="11.5" fill="#364150">${escapeHtml(yLabel)}</text>`,
    );
    return parts;
  }

  /** One bar per bin of h with a non-zero height (heights[b], default the counts), its range and count in its tooltip. */
  bars(h: Histogram, heights: readonly number[], fill: string, xFormat: (v: number) => string): string[] {
    const parts: string[] = [];
    for (let b = 0; b < h.counts.length; b++) {
      const c = heights[b]!;
      if (c <= 0) continue;
      const x0 = this.x(h.edges[b]!);
      const x1 = this.x(h.edges[b + 1]!);
      const tip = `${xFormat(h.edges[b]!)} to ${xFormat(h.edges[b + 1]!)}: ${h.counts[b]!}`;
      parts.push(
        `<rect class="bar" x="${x0.toFixed(1)}" y="${this.y(c).toFixed(1)}" width="${Math.max(0.5, x1 - x0 - 1).toFixed(1)}" height="${(this.y(0) - this.y(c)).toFixed(1)}" fill="${fill}"><title>${escapeHtml(tip)}</title></rect>`,
      );
    }
    return parts;
  }

  /** The chart as one <svg> element; standalone adds the namespace, a white background and a visible title. */
  svg(title: string, parts: readonly string[], standalone: boolean): string {
    const { width: w, height: h } = this;
    const open = `<svg class="chart" role="img" aria-label="${escapeHtml(title)}" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" font-family="sans-serif"`;
    if (!standalone) return `${open}>${parts.join('')}</svg>`;
    return [
      `${open} xmlns="http://www.w3.org/2000/svg">`,
      `<rect width="${w}" height="${h}" fill="white"/>`,
      `<text x="${w / 2}" y="18" text-anchor="middle" font-size="14">${escapeHtml(title)}</text>`,
      ...parts,
      '</svg>',
    ].join('\n');
  }
}

/** A short label for a number: 3 significant digits, no trailing zeros, k/M for thousands and millions. */
export function shortNumber(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${trim((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${trim((v / 1e3).toPrecision(3))}k`;
  if (a !== 0 && a < 1e-3) return v.toExponential(1);
  return trim(Number(v.toPrecision(3)).toString());
}

function trim(s: string): string {
  return s.includes('.') && !s.includes('e') ? s.replace(/\.?0+$/, '') : s;
}

/** Round tick values (steps of 1, 2 or 5 times a power of ten) covering [lo, hi], about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) ticks.push(Math.abs(t) < step * 1e-9 ? 0 : Number(t.toPrecision(12)));
  return ticks;
}

/** A firing rate given as log10 -> a label: a percentage down to 0.01%, then a power of ten. */
export function rateLabel(log10Rate: number): string {
  const rate = 10 ** log10Rate;
  if (rate >= 1e-4) return `${shortNumber(rate * 100)}%`;
  return rate.toExponential(0).replace('e-', 'e−');
}

const BAR_COLOUR = '#3d7bc4'; // the dashboard's --bar

/** The histogram as an SVG bar chart for a page (the dashboard); an empty histogram gives a chart saying so. */
export function barChart(h: Histogram, o: ChartOptions): string {
  const n = h.counts.length;
  const lo = h.edges[0] ?? 0;
  const hi = h.edges[n] ?? 1;
  const yTicks = niceTicks(0, Math.max(1, ...h.counts), 4);
  const frame = new Frame(o.width ?? 420, o.height ?? 220, { left: 52, right: 12, top: 12, bottom: 40 }, lo, hi, yTicks[yTicks.length - 1]!);
  const fmt = o.xFormat ?? shortNumber;
  const xTicks = (o.xTicks ?? (n > 0 ? niceTicks(lo, hi, 5) : [])).filter((t) => t >= lo - 1e-9 && t <= hi + 1e-9);
  const parts = [...frame.axes(o.xLabel, o.yLabel, xTicks, yTicks, fmt, shortNumber), ...frame.bars(h, h.counts, BAR_COLOUR, fmt)];
  if (n === 0)
    parts.push(
      `<text class="empty" x="${frame.margin.left + frame.plotW / 2}" y="${frame.margin.top + frame.plotH / 2}" text-anchor="middle" fill="#9aa4b1">no data</text>`,
    );
  return frame.svg(o.title, parts, false);
}

const REPORT_SIZE = { width: 560, height: 340, margin: { left: 56, right: 16, top: 28, bottom: 44 } } as const;

/**
 * Overlaid histograms (as fractions of each series' finite values) over one set of bins, with a
 * legend and a dashed vertical line at `marker`: a standalone .svg file (the anomaly report).
 */
export function histogramSvg(title: string, xLabel: string, series: readonly Series[], marker: { at: number; label: string } | undefined, bins = 40): string {
  const finite = series.map((s) => Array.from(s.values).filter(Number.isFinite));
  let [lo, hi] = [marker?.at ?? Infinity, marker?.at ?? -Infinity];
  for (const v of finite.flat()) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
  if (!(hi > lo)) [lo, hi] = [lo - 0.5, hi + 0.5];
  const width = (hi - lo) / bins;
  const hists = finite.map((values): Histogram => {
    const counts = new Array<number>(bins).fill(0);
    for (const v of values) counts[Math.min(bins - 1, Math.floor((v - lo) / width))]!++;
    return { edges: Array.from({ length: bins + 1 }, (_, b) => lo + b * width), counts };
  });
  const fractions = hists.map((h, i) => h.counts.map((c) => c / Math.max(1, finite[i]!.length)));
  const yTicks = niceTicks(0, Math.max(1e-9, ...fractions.flat()), 4);
  const { width: w, height: h, margin } = REPORT_SIZE;
  const frame = new Frame(w, h, margin, lo, hi, yTicks[yTicks.length - 1]!);
  const fmt = (v: number): string => v.toFixed(2);
  const parts = frame.axes(xLabel, 'fraction of inputs', niceTicks(lo, hi, 5), yTicks, fmt, shortNumber);
  series.forEach((s, i) => {
    parts.push(...frame.bars(hists[i]!, fractions[i]!, s.colour, fmt).map((bar) => bar.replace('<rect ', '<rect fill-opacity="0.5" ')));
    parts.push(`<rect x="${margin.left + 10}" y="${margin.top + 6 + i * 18}" width="12" height="12" fill="${s.colour}" fill-opacity="0.6"/>`);
    parts.push(`<text x="${margin.left + 28}" y="${margin.top + 16 + i * 18}" font-size="12">${escapeHtml(s.label)}</text>`);
  });
  if (marker) {
    const x = frame.x(marker.at).toFixed(1);
    parts.push(`<line x1="${x}" y1="${margin.top}" x2="${x}" y2="${frame.base}" stroke="black" stroke-dasharray="5 3"/>`);
    parts.push(`<text x="${(frame.x(marker.at) + 4).toFixed(1)}" y="${frame.base - 6}" font-size="12">${escapeHtml(marker.label)}</text>`);
  }
  return frame.svg(title, parts, true);
}

/** The ROC curve with the chance diagonal and an operating point: a standalone .svg file. */
export function rocSvg(title: string, points: readonly RatePoint[], at: RatePoint | undefined): string {
  const { width: w, height: h, margin } = REPORT_SIZE;
  const frame = new Frame(w, h, margin, 0, 1, 1);
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const path = points.map((p, i) => `${i ? 'L' : 'M'}${frame.x(p.fpr).toFixed(1)} ${frame.y(p.tpr).toFixed(1)}`).join(' ');
  const parts = [
    ...frame.axes('false-positive rate', 'true-positive rate (recall)', ticks, ticks, String, String),
    `<line x1="${frame.x(0)}" y1="${frame.y(0)}" x2="${frame.x(1)}" y2="${frame.y(1)}" stroke="#999" stroke-dasharray="4 4"/>`,
    `<path d="${path}" fill="none" stroke="#c0392b" stroke-width="2"/>`,
  ];
  if (at) {
    parts.push(`<circle cx="${frame.x(at.fpr).toFixed(1)}" cy="${frame.y(at.tpr).toFixed(1)}" r="5" fill="none" stroke="black" stroke-width="2"/>`);
    parts.push(`<text x="${(frame.x(at.fpr) + 8).toFixed(1)}" y="${(frame.y(at.tpr) + 16).toFixed(1)}" font-size="12">threshold</text>`);
  }
  return frame.svg(title, parts, true);
}
