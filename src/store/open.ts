/**
 * One entry point from a data spec (what the CLI and configs name) to a Dataset. It opens every
 * format, the activation store included, so it sits in the store layer, above src/data/.
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileError, UserError } from '../errors.js';
import type { Engine } from '../engine/index.js';
import type { Dataset } from '../data/dataset.js';
import { imagePatchDataset, type ImagePatchOptions } from '../data/image-dataset.js';
import { IMAGE_EXTENSIONS, listImages } from '../data/images.js';
import { npyDataset } from '../data/npy.js';
import { rawDataset } from '../data/raw.js';
import { safetensorsDataset } from '../data/safetensors.js';
import { openStore } from './dataset.js';
import { MANIFEST_FILENAME } from './manifest.js';

/** The data formats openDataset reads. */
export type DataFormat = 'npy' | 'safetensors' | 'raw' | 'images' | 'store';
export const DATA_FORMATS: readonly DataFormat[] = ['npy', 'safetensors', 'raw', 'images', 'store'];

/** A data file (or folder) and how to read it: what the CLI's data flags and a config's `data` name. */
export interface DataSpec {
  /** A file, or a folder of images; several paths for images only. */
  readonly path: string | readonly string[];
  /** Default: from the extension (.npy, .safetensors, .bin/.raw/.f32, .jpg/.jpeg/.png), 'store' for a folder with a manifest.json (an activation store), or 'images' for another folder. */
  readonly format?: DataFormat;
  /** safetensors: the tensor to read (needed when the file holds several). */
  readonly tensor?: string;
  /** raw: floats per row (required). */
  readonly width?: number;
  /** images: patch sampling and preprocessing. */
  readonly images?: ImagePatchOptions;
}

const EXTENSIONS: Readonly<Record<string, DataFormat>> = {
  '.npy': 'npy',
  '.safetensors': 'safetensors',
  '.bin': 'raw',
  '.raw': 'raw',
  '.f32': 'raw',
  ...Object.fromEntries(IMAGE_EXTENSIONS.map((e) => [e, 'images'])),
};

/**
 * Opens a data spec as a Dataset of rows: .npy, .safetensors, raw float32, images (patches), or an
 * activation store folder, by its extension or `format`. Nothing is read until rows are asked for.
 *
 * @example
 * ```ts
 * import { BatchStream, Engine, openDataset } from 'sparse-autoencoder';
 *
 * const engine = new Engine();
 * const ds = await openDataset({ path: 'activations.npy' }, engine);
 * const stream = await BatchStream.open(ds, { batchSize: 4096, seed: 0 }, engine);
 * const batch = await stream.batchAt(0); // batch.x: [batch.rows, ds.dIn]
 * ```
 */
export async function openDataset(spec: DataSpec, engine: Engine): Promise<Dataset> {
  const paths = typeof spec.path === 'string' ? [spec.path] : spec.path;
  const [first, ...others] = paths;
  if (first === undefined) throw new UserError('no data path given');
  for (const p of paths) await checkDataPath(p);
  const format = spec.format ?? (await inferFormat(first, others.length > 0));
  if (!DATA_FORMATS.includes(format)) throw new UserError(`unknown data format '${format}': choose one of ${DATA_FORMATS.join(', ')}`);
  if (format !== 'images' && others.length > 0) throw new UserError(`several data paths are only allowed for images, not ${format}`);
  const ds = await openFormat(format, first, paths, spec, engine);
  if (ds.rows === 0 || ds.dIn === 0) {
    await ds.close();
    throw fileError(ds.name, ds.rows === 0 ? 'the dataset is empty' : 'the dataset is empty (its rows have width 0)');
  }
  return ds;
}

function openFormat(format: DataFormat, path: string, paths: readonly string[], spec: DataSpec, engine: Engine): Promise<Dataset> {
  switch (format) {
    case 'npy':
      return npyDataset(path);
    case 'safetensors':
      return safetensorsDataset(path, spec.tensor);
    case 'raw':
      return rawDataset(path, spec.width);
    case 'images':
      return imagePatchDataset(paths, spec.images ?? {}, engine);
    case 'store':
      return openStore(path);
  }
}

/**
 * Data is a regular file or a folder: a FIFO, socket or device is refused at once, from its stat
 * (opening a FIFO for reading would wait for a writer).
 */
async function checkDataPath(path: string): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (info === undefined) throw fileError(path, 'no such file');
  if (info.isFile() || info.isDirectory()) return;
  const kind = info.isFIFO()
    ? 'a FIFO (named pipe)'
    : info.isSocket()
      ? 'a socket'
      : info.isCharacterDevice() || info.isBlockDevice()
        ? 'a device'
        : 'not a regular file';
  throw fileError(path, `is ${kind}; data must be a regular file or a folder`);
}

async function inferFormat(path: string, several: boolean): Promise<DataFormat> {
  if (several) return 'images';
  const info = await stat(path).catch(() => undefined);
  if (info === undefined) throw fileError(path, 'no such file');
  if (info.isDirectory()) {
    if (existsSync(join(path, MANIFEST_FILENAME))) return 'store';
    if ((await listImages([path])).length > 0) return 'images';
    throw fileError(path, `is neither an activation store (no ${MANIFEST_FILENAME}) nor a folder of images (no ${IMAGE_EXTENSIONS.join(', ')} file in it)`);
  }
  const ext = extname(path).toLowerCase();
  const format = EXTENSIONS[ext];
  if (format === undefined) {
    throw fileError(
      path,
      `unknown data format '${ext || '(no extension)'}': use .npy, .safetensors, raw float32 (.bin, .raw, .f32, with a width), ` +
        `images (${IMAGE_EXTENSIONS.join(', ')}, or a folder of them), or name the format (${DATA_FORMATS.join(', ')})`,
    );
  }
  return format;
}
