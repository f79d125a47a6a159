/**
 * Two small SVG charts for the calibration report: histograms of log10 reconstruction error (clean,
 * and anomalous where labels exist) with the threshold, and the ROC curve. Plain SVG text, no
 * scripts; every label is escaped.
 */
import { escapeHtml } from '../viz/report.js';
import type { RocPoint } from './roc.js';

const W = 560;
const H = 340;
const M = { left: 56, right: 16, top: 28, bottom: 44 };
const PLOT_W = W - M.left - M.right;
const PLOT_H = H - M.top - M.bottom;

export interface Series {
  readonly label: string;
  readonly colour: string;
  readonly values: ArrayLike<number>;
}

function svg(title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">${escapeHtml(title)}</text>`,
    ...body,
    '</svg>',
  ].join('\n');
}

function axes(xLabel: string, yLabel: string, xTicks: readonly { at: number; text: string }[], yTicks: readonly { at: number; text: string }[]): string[] {
  const out = [
    `<line x1="${M.left}" y1="${M.top + PLOT_H}" x2="${M.left + PLOT_W}" y2="${M.top + PLOT_H}" stroke="black"/>`,
    `<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${M.top + PLOT_H}" stroke="black"/>`,
    `<text x="${M.left + PLOT_W / 2}" y="${H - 8}" text-anchor="middle">${escapeHtml(xLabel)}</text>`,
    `<text transform="translate(14 ${M.top + PLOT_H / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(yLabel)}</text>`,
  ];
  for (const t of xTicks) out.push(`<text x="${t.at.toFixed(1)}" y="${M.top + PLOT_H + 16}" text-anchor="middle">${escapeHtml(t.text)}</text>`);
  for (const t of yTicks) out.push(`<text x="${M.left - 6}" y="${(t.at + 4).toFixed(1)}" text-anchor="end">${escapeHtml(t.text)}</text>`);
  return out;
}

/** Histograms (as fractions of each series) of log10 values, with a vertical line at `marker`. */
export function histogramSvg(title: string, xLabel: string, series: readonly Series[], marker: { at: number; label: string } | undefined, bins = 40): string {
  let lo = marker?.at ?? Infinity;
  let hi = marker?.at ?? -Infinity;
  for (const s of series) {
    for (let i = 0; i < s.values.length; i++) {
      const v = s.values[i]!;
      if (Number.isFinite(v)) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
    }
  }
  if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
  if (!(hi > lo)) [lo, hi] = [lo - 0.5, hi + 0.5];
  const width = (hi - lo) / bins;
  const counts = series.map((s) => {
    const c = new Float64Array(bins);
    let n = 0;
    for (let i = 0; i < s.values.length; i++) {
      const v = s.values[i]!;
      if (!Number.isFinite(v)) continue;
      c[Math.min(bins - 1, Math.floor((v - lo) / width))]! += 1;
      n++;
    }
    return c.map((k) => k / Math.max(1, n));
  });
  const top = counts.reduce((m, c) => Math.max(m, ...c), 1e-9);
  const x = (v: number): number => M.left + ((v - lo) / (hi - lo)) * PLOT_W;
  const y = (f: number): number => M.top + PLOT_H - (f / top) * PLOT_H;
  const body: string[] = [];
  series.forEach((s, i) => {
    counts[i]!.forEach((f, b) => {
      if (f > 0) body.push(`<rect x="${x(lo + b * width).toFixed(1)}" y="${y(f).toFixed(1)}" width="${(PLOT_W / bins).toFixed(1)}" height="${(M.top + PLOT_H - y(f)).toFixed(1)}" fill="${s.colour}" fill-opacity="0.5"/>`);
    });
    body.push(`<rect x="${M.left + 10}" y="${M.top + 6 + i * 18}" width="12" height="12" fill="${s.colour}" fill-opacity="0.6"/>`);
    body.push(`<text x="${M.left + 28}" y="${M.top + 16 + i * 18}">${escapeHtml(s.label)}</text>`);
  });
  if (marker) {
    body.push(`<line x1="${x(marker.at).toFixed(1)}" y1="${M.top}" x2="${x(marker.at).toFixed(1)}" y2="${M.top + PLOT_H}" stroke="black" stroke-dasharray="5 3"/>`);
    body.push(`<text x="${(x(marker.at) + 4).toFixed(1)}" y="${M.top + PLOT_H - 6}">${escapeHtml(marker.label)}</text>`);
  }
  const xTicks = Array.from({ length: 6 }, (_, k) => lo + (k * (hi - lo)) / 5).map((v) => ({ at: x(v), text: v.toFixed(2) }));
  const yTicks = [0, 0.5, 1].map((k) => ({ at: y(k * top), text: (k * top).toFixed(3) }));
  return svg(title, [...axes(xLabel, 'fraction of inputs', xTicks, yTicks), ...body]);
}

/** The ROC curve with the chance diagonal and an operating point. */
export function rocSvg(title: string, points: readonly RocPoint[], at: RocPoint | undefined): string {
  const x = (f: number): number => M.left + f * PLOT_W;
  const y = (t: number): number => M.top + PLOT_H - t * PLOT_H;
  const path = points.map((p, i) => `${i ? 'L' : 'M'}${x(p.fpr).toFixed(1)} ${y(p.tpr).toFixed(1)}`).join(' ');
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const body = [
    `<line x1="${x(0)}" y1="${y(0)}" x2="${x(1)}" y2="${y(1)}" stroke="#999" stroke-dasharray="4 4"/>`,
    `<path d="${path}" fill="none" stroke="#c0392b" stroke-width="2"/>`,
  ];
  if (at) {
    body.push(`<circle cx="${x(at.fpr).toFixed(1)}" cy="${y(at.tpr).toFixed(1)}" r="5" fill="none" stroke="black" stroke-width="2"/>`);
    body.push(`<text x="${(x(at.fpr) + 8).toFixed(1)}" y="${(y(at.tpr) + 16).toFixed(1)}">threshold</text>`);
  }
  return svg(title, [
    ...axes('false-positive rate', 'true-positive rate (recall)', ticks.map((t) => ({ at: x(t), text: String(t) })), ticks.map((t) => ({ at: y(t), text: String(t) }))),
    ...body,
  ]);
}
