/**
 * One 2-D float tensor of a safetensors file as a Dataset: [rows, dIn] F32, F16 or BF16, chosen by
 * name or, when the file holds only one tensor, that one. Only the header is read at open.
 */
import { fileError } from '../errors.js';
import { formatShape, quoteName } from '../io/atomic.js';
import { readSafetensorsHeader, type StTensorInfo } from '../io/safetensors.js';
import type { Dataset } from './dataset.js';
import { type ElementType, openRowFile, TWO_D_ONLY } from './file-rows.js';

const ELEMENTS: Partial<Record<StTensorInfo['dtype'], ElementType>> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

/** path: the tensor `tensor` (or the only one) of shape [rows, dIn]. */
export async function safetensorsDataset(path: string, tensor: string | undefined): Promise<Dataset> {
  const header = await readSafetensorsHeader(path);
  const info = chooseTensor(path, header.tensors, tensor);
  const element = ELEMENTS[info.dtype];
  if (element === undefined) throw fileError(path, `tensor ${quoteName(info.name)} has dtype ${info.dtype}; data must be F32, F16 or BF16`);
  const [rows, dIn, ...rest] = info.shape;
  if (rows === undefined || dIn === undefined || rest.length > 0) {
    throw fileError(path, `tensor ${quoteName(info.name)} has shape ${formatShape(info.shape)}; ${TWO_D_ONLY}`);
  }
  return openRowFile(path, {
    element,
    dataOffset: info.begin,
    rows,
    dIn,
    description: { format: 'safetensors', tensor: info.name, dtype: info.dtype, shape: info.shape },
  });
}

function chooseTensor(path: string, tensors: readonly StTensorInfo[], name: string | undefined): StTensorInfo {
  const names = (): string => tensors.map((t) => quoteName(t.name)).join(', ');
  if (name !== undefined) {
    const found = tensors.find((t) => t.name === name);
    if (found === undefined) {
      throw fileError(path, `no tensor named ${quoteName(name)}; ${tensors.length === 0 ? 'the file holds no tensors' : `it holds ${names()}`}`);
    }
    return found;
  }
  const [only, ...others] = tensors;
  if (only === undefined) throw fileError(path, 'the dataset is empty (the file holds no tensors)');
  if (others.length > 0) throw fileError(path, `the file holds ${tensors.length} tensors (${names()}); choose one with --tensor`);
  return only;
}
