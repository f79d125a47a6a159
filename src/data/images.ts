/**
 * Images as data: JPEG and PNG files (or folders of them) decoded to grey, and square patches cut
 * at seeded random positions. Luma: grey = (0.299 R + 0.587 G + 0.114 B) / 255, in [0, 1].
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { decode as decodeJpeg } from 'jpeg-js';
import { PNG } from 'pngjs';
import { fileError, UserError } from '../errors.js';
import { readWholeFile } from '../io/atomic.js';
import type { Rng } from '../rng.js';
import { lastAtOrBelow } from './search.js';

export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png'];

/** A decoded image: pixels: [height, width] grey in [0, 1], row-major. */
export interface GreyImage {
  readonly path: string;
  readonly width: number;
  readonly height: number;
  readonly pixels: Float32Array;
}

export function isImagePath(path: string): boolean {
  return IMAGE_EXTENSIONS.includes(extname(path).toLowerCase());
}

/** Files and folders -> the image files they name, folders walked recursively and sorted. */
export async function listImages(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const path of paths) {
    const info = await stat(path).catch(() => undefined);
    if (info === undefined) throw fileError(path, 'no such file');
    if (info.isDirectory()) out.push(...(await imagesInFolder(path)));
    else if (isImagePath(path)) out.push(path);
    else throw fileError(path, `not an image: expected ${IMAGE_EXTENSIONS.join(', ')}`);
  }
  return out;
}

/** The images under dir, sorted by name, following symbolic links (each folder once: a link back up is not a loop). */
async function imagesInFolder(dir: string, seen = new Set<string>()): Promise<string[]> {
  const real = await realpath(dir);
  if (seen.has(real)) return [];
  seen.add(real);
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: string[] = [];
  for (const e of entries) {
    const path = join(dir, e.name);
    const target = e.isSymbolicLink() ? await stat(path).catch(() => undefined) : e; // a dangling link is skipped
    if (target?.isDirectory()) out.push(...(await imagesInFolder(path, seen)));
    else if (target?.isFile() && isImagePath(path)) out.push(path);
  }
  return out;
}

/** Reads and decodes a JPEG or PNG file to grey. */
export async function readGreyImage(path: string): Promise<GreyImage> {
  const bytes = await readWholeFile(path);
  const isPng = extname(path).toLowerCase() === '.png';
  let rgba: { width: number; height: number; data: Uint8Array };
  try {
    rgba = isPng ? PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)) : decodeJpeg(bytes, { useTArray: true, formatAsRGBA: true });
  } catch (err) {
    throw fileError(path, `cannot decode the ${isPng ? 'PNG' : 'JPEG'} image (${err instanceof Error ? err.message : String(err)})`);
  }
  return { path, width: rgba.width, height: rgba.height, pixels: luma(rgba.data, rgba.width * rgba.height) };
}

/** rgba: [pixels, 4] bytes -> [pixels] grey in [0, 1]. */
export function luma(rgba: Uint8Array, pixels: number): Float32Array {
  const out = new Float32Array(pixels);
  for (let i = 0; i < pixels; i++) {
    out[i] = (0.299 * rgba[4 * i]! + 0.587 * rgba[4 * i + 1]! + 0.114 * rgba[4 * i + 2]!) / 255;
  }
  return out;
}

/** Where patches were cut: for each, the index of its image and its top-left corner in pixels. */
export interface PatchOrigins {
  /** [count] index into the images the patches were cut from */
  readonly image: Int32Array;
  /** [count] column of the patch's left edge */
  readonly x: Int32Array;
  /** [count] row of the patch's top edge */
  readonly y: Int32Array;
}

/**
 * -> [count, p * p]: patches p x p (row-major) cut at positions drawn uniformly from every position
 * of every image that holds one, so each image is weighted by its area.
 */
export function samplePatches(images: readonly GreyImage[], p: number, count: number, rng: Rng): Float32Array {
  return cutPatches(images, p, samplePatchOrigins(images, p, count, rng));
}

/** The positions samplePatches cuts at (the same draws from rng, in the same order). */
export function samplePatchOrigins(images: readonly GreyImage[], p: number, count: number, rng: Rng): PatchOrigins {
  const positions = images.map((im) => Math.max(0, im.width - p + 1) * Math.max(0, im.height - p + 1));
  const starts = cumulative(positions); // [images + 1]
  const total = starts[starts.length - 1]!;
  if (total === 0) throw new UserError(`no image is at least ${p} x ${p} pixels, the patch size`);
  const origins = { image: new Int32Array(count), x: new Int32Array(count), y: new Int32Array(count) };
  for (let n = 0; n < count; n++) {
    const at = rng.int(total);
    const i = lastAtOrBelow(starts, at);
    const across = images[i]!.width - p + 1;
    const offset = at - starts[i]!;
    origins.image[n] = i;
    origins.y[n] = Math.floor(offset / across);
    origins.x[n] = offset % across;
  }
  return origins;
}

/** -> [count, p * p]: the p x p patches at the given origins. */
export function cutPatches(images: readonly GreyImage[], p: number, origins: PatchOrigins): Float32Array {
  const count = origins.image.length;
  const out = new Float32Array(count * p * p);
  for (let n = 0; n < count; n++) copyPatch(images[origins.image[n]!]!, origins.y[n]!, origins.x[n]!, p, out, n * p * p);
  return out;
}

function cumulative(xs: readonly number[]): number[] {
  const out = [0];
  for (const x of xs) out.push(out[out.length - 1]! + x);
  return out;
}

/** The p x p patch of im with top-left corner (top, left) -> out[at .. at + p * p). */
function copyPatch(im: GreyImage, top: number, left: number, p: number, out: Float32Array, at: number): void {
  const pixels = im.pixels;
  for (let r = 0; r < p; r++) {
    const from = (top + r) * im.width + left;
    for (let c = 0; c < p; c++) out[at + r * p + c] = pixels[from + c]!;
  }
}
