/**
 * Images as data: JPEG and PNG files (or folders of them) decoded to grey, or in their own channels
 * (grey or RGB), and square patches cut at seeded random positions.
 * Luma: grey = (0.299 R + 0.587 G + 0.114 B) / 255, in [0, 1]; colour: (R, G, B) / 255.
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { decode as decodeJpeg } from 'jpeg-js';
import { PNG } from 'pngjs';
import { fileError, UserError } from '../errors.js';
import { readWholeFile } from '../io/atomic.js';
import type { Rng } from '../rng.js';
import { lastAtOrBelow } from './search.js';
import type { ImageChannels } from './whitening.js';

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

/** A decoded image in the channels its file holds: pixels: [height, width, channels] in [0, 1], row-major. */
export interface ChannelImage {
  readonly path: string;
  readonly width: number;
  readonly height: number;
  /** 1: the file is grey (PNG grey or grey + alpha, single-component JPEG); 3: colour. Alpha is dropped. */
  readonly channels: ImageChannels;
  readonly pixels: Float32Array;
}

interface Rgba {
  readonly width: number;
  readonly height: number;
  /** [height, width, 4] bytes. */
  readonly data: Uint8Array;
  readonly channels: ImageChannels;
}

/** The number of components in a JPEG's start-of-frame header (SOF0..SOF15 but DHT, JPG, DAC), or undefined. */
function jpegComponents(bytes: Uint8Array): number | undefined {
  let at = 2; // after SOI
  while (at + 9 < bytes.length) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at++;
      continue;
    }
    const length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) return bytes[at + 9];
    at += 2 + length;
  }
  return undefined;
}

/** Reads and decodes a JPEG or PNG file to RGBA bytes; a truncated or corrupt file is a one-line error. */
async function readRgba(path: string): Promise<Rgba> {
  const bytes = await readWholeFile(path);
  const isPng = extname(path).toLowerCase() === '.png';
  try {
    if (isPng) {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
      return { width: png.width, height: png.height, data: png.data, channels: png.colorType === 0 || png.colorType === 4 ? 1 : 3 };
    }
    const jpeg = decodeJpeg(bytes, { useTArray: true, formatAsRGBA: true });
    return { width: jpeg.width, height: jpeg.height, data: jpeg.data, channels: jpegComponents(bytes) === 1 ? 1 : 3 };
  } catch (err) {
    throw fileError(path, `cannot decode the ${isPng ? 'PNG' : 'JPEG'} image (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** Reads and decodes a JPEG or PNG file to grey. */
export async function readGreyImage(path: string): Promise<GreyImage> {
  const rgba = await readRgba(path);
  return { path, width: rgba.width, height: rgba.height, pixels: luma(rgba.data, rgba.width * rgba.height) };
}

/** Reads and decodes a JPEG or PNG file in its own channels (grey or RGB). */
export async function readChannelImage(path: string): Promise<ChannelImage> {
  const rgba = await readRgba(path);
  const n = rgba.width * rgba.height;
  const pixels = rgba.channels === 1 ? luma(rgba.data, n) : rgbOf(rgba.data, n);
  return { path, width: rgba.width, height: rgba.height, channels: rgba.channels, pixels };
}

/** rgba: [pixels, 4] bytes -> [pixels, 3] in [0, 1]. */
export function rgbOf(rgba: Uint8Array, pixels: number): Float32Array {
  const out = new Float32Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    out[3 * i] = rgba[4 * i]! / 255;
    out[3 * i + 1] = rgba[4 * i + 1]! / 255;
    out[3 * i + 2] = rgba[4 * i + 2]! / 255;
  }
  return out;
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
