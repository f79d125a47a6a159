/**
 * Histograms as inline SVG bar charts: bars over the bin edges, a y axis of counts, a few ticks at
 * round values, axis titles, and each bar's range and count in its tooltip. No script, no library.
 */
import type { Histogram } from '../eval.js';
import { escapeHtml } from '../viz/report.js';

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

const MARGIN = { left: 52, right: 12, top: 12, bottom: 40 } as const;

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

/** The histogram as an SVG bar chart; an empty histogram gives a chart saying so. */
export function barChart(h: Histogram, o: ChartOptions): string {
  const width = o.width ?? 420;
  const height = o.height ?? 220;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const parts: string[] = [];
  const n = h.counts.length;
  const lo = h.edges[0] ?? 0;
  const hi = h.edges[n] ?? 1;
  const maxCount = h.counts.reduce((a, b) => Math.max(a, b), 0);
  const yTicks = niceTicks(0, Math.max(1, maxCount), 4);
  const yTop = yTicks[yTicks.length - 1]!;
  const sx = (v: number): number => MARGIN.left + ((v - lo) / (hi - lo || 1)) * plotW;
  const sy = (c: number): number => MARGIN.top + plotH - (c / yTop) * plotH;
  const fmt = o.xFormat ?? shortNumber;
  for (const t of yTicks) {
    const y = sy(t).toFixed(1);
    parts.push(`<line class="grid" x1="${MARGIN.left}" x2="${width - MARGIN.right}" y1="${y}" y2="${y}"/>`);
    parts.push(`<text class="tick" x="${MARGIN.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeHtml(shortNumber(t))}</text>`);
  }
  for (let b = 0; b < n; b++) {
    const x0 = sx(h.edges[b]!);
    const x1 = sx(h.edges[b + 1]!);
    const c = h.counts[b]!;
    if (c <= 0) continue;
    const tip = `${fmt(h.edges[b]!)} to ${fmt(h.edges[b + 1]!)}: ${c}`;
    parts.push(`<rect class="bar" x="${x0.toFixed(1)}" y="${sy(c).toFixed(1)}" width="${Math.max(0.5, x1 - x0 - 1).toFixed(1)}" height="${(sy(0) - sy(c)).toFixed(1)}"><title>${escapeHtml(tip)}</title></rect>`);
  }
  const baseY = MARGIN.top + plotH;
  parts.push(`<line class="axis" x1="${MARGIN.left}" x2="${width - MARGIN.right}" y1="${baseY}" y2="${baseY}"/>`);
  const xTicks = (o.xTicks ?? (n > 0 ? niceTicks(lo, hi, 5) : [])).filter((t) => t >= lo - 1e-9 && t <= hi + 1e-9);
  for (const t of xTicks) {
    const x = sx(t).toFixed(1);
    parts.push(`<line class="axis" x1="${x}" x2="${x}" y1="${baseY}" y2="${baseY + 4}"/>`);
    parts.push(`<text class="tick" x="${x}" y="${baseY + 15}" text-anchor="middle">${escapeHtml(fmt(t))}</text>`);
  }
  if (n === 0) parts.push(`<text class="empty" x="${MARGIN.left + plotW / 2}" y="${MARGIN.top + plotH / 2}" text-anchor="middle">no data</text>`);
  parts.push(`<text class="label" x="${MARGIN.left + plotW / 2}" y="${height - 6}" text-anchor="middle">${escapeHtml(o.xLabel)}</text>`);
  parts.push(`<text class="label" transform="translate(13 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(o.yLabel)}</text>`);
  return `<svg class="chart" role="img" aria-label="${escapeHtml(o.title)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

/** A firing rate given as log10 -> a label: a percentage down to 0.01%, then a power of ten. */
export function rateLabel(log10Rate: number): string {
  const rate = 10 ** log10Rate;
  if (rate >= 1e-4) return `${shortNumber(rate * 100)}%`;
  return rate.toExponential(0).replace('e-', 'e−');
}
