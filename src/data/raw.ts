/**
 * Raw little-endian float32 rows with no header: the width comes from the user, the row count from
 * the file size, which must be a whole number of rows.
 */
import { stat } from 'node:fs/promises';
import { fileError } from '../errors.js';
import type { Dataset } from './dataset.js';
import { openRowFile } from './file-rows.js';

/** path: [size / (width * 4), width] float32, little-endian, no header. */
export async function rawDataset(path: string, width: number | undefined): Promise<Dataset> {
  if (width === undefined) throw fileError(path, 'raw float32 data needs a width (the number of floats per row)');
  if (!Number.isSafeInteger(width) || width < 1) throw fileError(path, `the width must be a positive integer, got ${width}`);
  const size = (await stat(path).catch(() => undefined))?.size;
  if (size === undefined) throw fileError(path, 'no such file');
  const rowBytes = width * 4;
  if (size % rowBytes !== 0) {
    throw fileError(path, `the file has ${size} bytes, which is not a multiple of width * 4 = ${rowBytes} bytes (${width} float32 per row)`);
  }
  return openRowFile(path, {
    element: 'f32',
    dataOffset: 0,
    rows: size / rowBytes,
    dIn: width,
    description: { format: 'raw', dtype: 'float32', width },
  });
}
