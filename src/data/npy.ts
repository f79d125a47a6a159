/**
 * A .npy array of float32 or float16 as a Dataset: shape [rows, ...rest] is read as
 * [rows, product(rest)]. Only the header is read at open.
 */
import { fileError } from '../errors.js';
import { formatShape } from '../io/atomic.js';
import { type NpyDescr, readNpyHeader } from '../io/npy.js';
import type { Dataset } from './dataset.js';
import { type ElementType, openRowFile } from './file-rows.js';

const ELEMENTS: Partial<Record<NpyDescr, ElementType>> = { '<f4': 'f32', '<f2': 'f16' };

export async function npyDataset(path: string): Promise<Dataset> {
  const header = await readNpyHeader(path);
  const element = ELEMENTS[header.descr];
  if (element === undefined) throw fileError(path, `dtype ${header.descr} is not supported for data; use float32 (<f4) or float16 (<f2)`);
  const [rows, ...rest] = header.shape;
  if (rows === undefined || rest.length === 0) {
    throw fileError(path, `the array has shape ${formatShape(header.shape)}; data must have at least 2 dimensions, [rows, width]`);
  }
  return openRowFile(path, {
    element,
    dataOffset: header.dataOffset,
    rows,
    dIn: rest.reduce((a, b) => a * b, 1),
    description: { format: 'npy', dtype: header.descr, shape: header.shape },
  });
}
