/** Tables shared by the commands. */
import type { Metrics } from '../../eval.js';

export function formatTable(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

export function formatMetrics(m: Metrics): string {
  return formatTable([
    ['inputs', String(m.inputs)],
    ['mse', m.mse.toPrecision(4)],
    ['explained variance', m.explained_variance.toFixed(4)],
    ['fvu', m.fvu.toFixed(4)],
    ['l0', m.l0.toFixed(2)],
    ['l1', m.l1.toPrecision(4)],
    ['dead fraction', m.dead_fraction.toFixed(4)],
    ['l2 ratio', m.l2_ratio.toFixed(4)],
  ]);
}
