/**
 * A 2-D .npy array of float32 or float16, [rows, width], as a Dataset. Only the header is read at
 * open. Other ranks are refused as in every data format (see TWO_D_ONLY in file-rows.ts).
 */
import { fileError } from '../errors.js';
import { formatShape } from '../io/atomic.js';
import { type NpyDescr, readNpyHeader } from '../io/npy.js';
import type { Dataset } from './dataset.js';
import { type ElementType, openRowFile, TWO_D_ONLY } from './file-rows.js';

const ELEMENTS: Partial<Record<NpyDescr, ElementType>> = { '<f4': 'f32', '<f2': 'f16' };

export async function npyDataset(path: string): Promise<Dataset> {
  const header = await readNpyHeader(path);
  const element = ELEMENTS[header.descr];
  if (element === undefined) throw fileError(path, `dtype ${header.descr} is not supported for data; use float32 (<f4) or float16 (<f2)`);
  const [rows, dIn, ...rest] = header.shape;
  if (rows === undefined || dIn === undefined || rest.length > 0) throw fileError(path, `the array has shape ${formatShape(header.shape)}; ${TWO_D_ONLY}`);
  return openRowFile(path, {
    element,
    dataOffset: header.dataOffset,
    rows,
    dIn,
    description: { format: 'npy', dtype: header.descr, shape: header.shape },
  });
}
