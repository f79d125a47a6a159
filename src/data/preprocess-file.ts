/**
 * An ImagePreprocess saved as safetensors: tensors mean [d], matrix [d, d], inverse [d, d] and
 * eigenvalues [d] (F32); the settings in the metadata (strings, as safetensors requires):
 *   format = "sparse-autoencoder/image-preprocess", version = "1", patch_size, mean_removal
 *   ("true" | "false"), whitening ("none" | "pca" | "zca"), eps, and channels ("1" grey, "3" RGB;
 *   absent in files written before colour patches: grey). d = channels patch_size^2.
 */
import { fileError } from '../errors.js';
import { formatShape } from '../io/atomic.js';
import { type LoadedTensor, readSafetensors, toFloat32, writeSafetensors } from '../io/safetensors.js';
import { type ImageChannels, type ImagePreprocess, patchWidth, type Whitening, WHITENINGS } from './whitening.js';

const FORMAT = 'sparse-autoencoder/image-preprocess';
const VERSION = '1';

export async function saveImagePreprocess(path: string, p: ImagePreprocess): Promise<void> {
  const d = patchWidth(p);
  await writeSafetensors(
    path,
    {
      mean: { dtype: 'F32', shape: [d], data: p.mean },
      matrix: { dtype: 'F32', shape: [d, d], data: p.matrix },
      inverse: { dtype: 'F32', shape: [d, d], data: p.inverse },
      eigenvalues: { dtype: 'F32', shape: [d], data: p.eigenvalues },
    },
    {
      format: FORMAT,
      version: VERSION,
      patch_size: String(p.patchSize),
      mean_removal: String(p.meanRemoval),
      whitening: p.whitening,
      eps: String(p.eps),
      channels: String(p.channels ?? 1),
    },
  );
}

/** Reads and checks a file written by saveImagePreprocess. */
export async function loadImagePreprocess(path: string): Promise<ImagePreprocess> {
  const { tensors, metadata } = await readSafetensors(path);
  if (metadata['format'] !== FORMAT) {
    throw fileError(path, `not an image preprocessing file (its metadata format is ${JSON.stringify(metadata['format'] ?? null)}, expected "${FORMAT}")`);
  }
  if (metadata['version'] !== VERSION)
    throw fileError(path, `image preprocessing version ${String(metadata['version'])} is not supported (expected ${VERSION})`);
  const patchSize = Number(metadata['patch_size']);
  const eps = Number(metadata['eps']);
  const whitening = WHITENINGS.find((w: Whitening) => w === metadata['whitening']);
  const meanRemoval = metadata['mean_removal'];
  if (!Number.isSafeInteger(patchSize) || patchSize < 1)
    throw fileError(path, `bad patch_size ${JSON.stringify(metadata['patch_size'] ?? null)} in the metadata`);
  if (!(eps > 0) || !Number.isFinite(eps)) throw fileError(path, `bad eps ${JSON.stringify(metadata['eps'] ?? null)} in the metadata`);
  if (whitening === undefined)
    throw fileError(path, `bad whitening ${JSON.stringify(metadata['whitening'] ?? null)} in the metadata (expected ${WHITENINGS.join(', ')})`);
  if (meanRemoval !== 'true' && meanRemoval !== 'false') throw fileError(path, `bad mean_removal ${JSON.stringify(meanRemoval ?? null)} in the metadata`);
  const channelsText = metadata['channels'] ?? '1';
  if (channelsText !== '1' && channelsText !== '3') throw fileError(path, `bad channels ${JSON.stringify(channelsText)} in the metadata (expected "1" or "3")`);
  const channels: ImageChannels = channelsText === '3' ? 3 : 1;
  const d = channels * patchSize * patchSize;
  const get = (name: string, shape: readonly number[]): Float32Array => checkedTensor(path, tensors.get(name), name, shape);
  return {
    patchSize,
    channels,
    meanRemoval: meanRemoval === 'true',
    whitening,
    eps,
    mean: get('mean', [d]),
    matrix: get('matrix', [d, d]),
    inverse: get('inverse', [d, d]),
    eigenvalues: get('eigenvalues', [d]),
  };
}

function checkedTensor(path: string, t: LoadedTensor | undefined, name: string, shape: readonly number[]): Float32Array {
  if (t === undefined) throw fileError(path, `the tensor '${name}' is missing`);
  if (t.shape.length !== shape.length || t.shape.some((n, i) => n !== shape[i])) {
    throw fileError(path, `tensor '${name}' has shape ${formatShape(t.shape)}, expected ${formatShape(shape)}`);
  }
  const x = toFloat32(t, path);
  if (!x.every(Number.isFinite)) throw fileError(path, `tensor '${name}' holds NaN or Inf`);
  return x;
}
