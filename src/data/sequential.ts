/** Reading a dataset in order, in chunks (for encoding and evaluation), with NaN/Inf rows flagged. */
import type { Kernels } from '../engine/kernels.js';
import { fileError } from '../errors.js';
import type { Dataset } from './dataset.js';

export interface Chunk {
  /** First row of the chunk in the dataset. */
  readonly start: number;
  /** [rows, dIn] */
  readonly x: Float32Array;
  readonly rows: number;
  /** Rows of this chunk that hold NaN or Inf. */
  readonly nonFinite: number;
  /** [rows]: 1 where a row holds NaN or Inf. */
  readonly mask: Uint8Array;
}

/** Rows [0, min(maxRows, ds.rows)) in chunks of `chunkRows`; the arrays are reused between chunks. */
export async function* sequentialChunks(ds: Dataset, kernels: Kernels, chunkRows: number, maxRows = Infinity): AsyncGenerator<Chunk> {
  const total = Math.min(ds.rows, maxRows);
  const buf = new Float32Array(chunkRows * ds.dIn);
  const mask = new Uint8Array(chunkRows);
  for (let start = 0; start < total; start += chunkRows) {
    const rows = Math.min(chunkRows, total - start);
    const x = buf.subarray(0, rows * ds.dIn);
    await ds.read(start, rows, x);
    const m = mask.subarray(0, rows);
    const nonFinite = kernels.nonFiniteRows(x, rows, ds.dIn, m);
    yield { start, x, rows, nonFinite, mask: m };
  }
}

/** x: [rows, dIn] -> the rows whose mask is 0, packed at the front; returns how many. */
export function dropMasked(x: Float32Array, rows: number, dIn: number, mask: Uint8Array): number {
  let kept = 0;
  for (let r = 0; r < rows; r++) {
    if (mask[r]) continue;
    if (kept !== r) x.copyWithin(kept * dIn, r * dIn, (r + 1) * dIn);
    kept++;
  }
  return kept;
}

/**
 * Refuses NaN or Inf in `values` [rows, width], computed from finite rows starting at dataset row
 * `first` of `file` (the non-finite policy: outputs are never written with Inf in them).
 */
export function assertFiniteOutput(kernels: Kernels, values: Float32Array, rows: number, width: number, first: number, file: string, what: string): void {
  const mask = new Uint8Array(rows);
  if (kernels.nonFiniteRows(values, rows, width, mask) === 0) return;
  throw fileError(
    file,
    `row ${first + mask.indexOf(1)}: the ${what} hold NaN or Inf although the row is finite (the SAE overflows on this data); nothing was written`,
  );
}
