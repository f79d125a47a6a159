/** Tables shared by the commands. */
import type { Metrics } from '../../eval.js';

export function formatTable(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

/** The metrics as a two-column table, one row each, with a short gloss where the name needs one. */
export function metricRows(m: Metrics): [string, string][] {
  return [
    ['inputs', String(m.inputs)],
    ['mse', m.mse.toPrecision(4)],
    ['explained variance', m.explained_variance.toFixed(4)],
    ['fvu', m.fvu.toFixed(4)],
    ['explained variance (legacy)', `${m.explained_variance_legacy.toFixed(4)}  (SAELens's per-input mean)`],
    ['l0', m.l0.toFixed(2)],
    ['l1', m.l1.toPrecision(4)],
    ['dead fraction', m.dead_fraction.toFixed(4)],
    ['dense fraction > 1%', m.dense_fraction_1pct.toFixed(4)],
    ['dense fraction > 10%', m.dense_fraction_10pct.toFixed(4)],
    ['l2 ratio', `${m.l2_ratio.toFixed(4)}  (||x_hat|| / ||x||)`],
    ['relative reconstruction bias', `${m.relative_reconstruction_bias.toFixed(4)}  (1: unbiased, < 1: shrinkage)`],
  ];
}

export function formatMetrics(m: Metrics): string {
  return formatTable(metricRows(m));
}
