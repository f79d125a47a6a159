/**
 * A Dataset held in memory (image patches, tests). Also the range check every Dataset shares.
 */
import type { Dataset } from './dataset.js';

/** Throws (a programming error, not a user error) unless rows [start, start + count) exist and fit in out. */
export function checkRead(ds: Pick<Dataset, 'name' | 'rows' | 'dIn'>, start: number, count: number, out: Float32Array): void {
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > ds.rows) {
    throw new RangeError(`${ds.name}: rows [${start}, ${start + count}) are outside [0, ${ds.rows})`);
  }
  if (out.length < count * ds.dIn) throw new RangeError(`${ds.name}: the output holds ${out.length} floats, ${count * ds.dIn} needed`);
}

/** x: [rows, dIn], kept by reference (not copied). */
export function memoryDataset(name: string, x: Float32Array, dIn: number, description: Readonly<Record<string, unknown>> = { format: 'memory' }): Dataset {
  if (!Number.isInteger(dIn) || dIn < 1 || x.length % dIn !== 0) {
    throw new RangeError(`${name}: ${x.length} floats do not make rows of width ${dIn}`);
  }
  const ds: Dataset = {
    name,
    dIn,
    rows: x.length / dIn,
    description,
    read(start, count, out) {
      checkRead(ds, start, count, out);
      out.set(x.subarray(start * dIn, (start + count) * dIn));
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
  return ds;
}
