/**
 * A small PNG encoder for heatmaps and feature images (8 bits per channel, no interlacing):
 *
 *   signature, IHDR(width, height, depth 8, colour type), IDAT(zlib(rows)), IEND
 *   each chunk = [length: u32 BE] [type] [data] [crc32(type + data): u32 BE]
 *   each row   = [filter byte] [filtered bytes]; per row we keep the filter (None, Sub, Up, Average,
 *                Paeth) whose output has the smallest sum of |signed byte|, libpng's heuristic.
 */
import { deflateSync } from 'node:zlib';
import { concatBytes, writeFileAtomic } from './atomic.js';

export interface PngImage {
  width: number;
  height: number;
  /** 1: grey, 3: RGB, 4: RGBA. */
  channels: 1 | 3 | 4;
  /** [height, width, channels], row-major. */
  data: Uint8Array;
}

const COLOUR_TYPE = { 1: 0, 3: 2, 4: 6 } as const satisfies Record<PngImage['channels'], number>;
const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

let crcTable: Uint32Array | undefined; // [256]

function crc32(bytes: Uint8Array): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

/**
 * Writes filter `type` of `row` (given the previous row `prev`, zeros for the first) into `out`
 * and returns the sum of |signed byte| of the result.
 */
function filterRow(type: number, row: Uint8Array, prev: Uint8Array, bpp: number, out: Uint8Array): number {
  let cost = 0;
  for (let i = 0; i < row.length; i++) {
    const a = i >= bpp ? row[i - bpp]! : 0;
    const b = prev[i]!;
    const c = i >= bpp ? prev[i - bpp]! : 0;
    const x = row[i]!;
    const predicted = type === 0 ? 0 : type === 1 ? a : type === 2 ? b : type === 3 ? (a + b) >>> 1 : paeth(a, b, c);
    const v = (x - predicted) & 0xff;
    out[i] = v;
    cost += v < 128 ? v : 256 - v;
  }
  return cost;
}

/** The filtered scanlines: [height, 1 + width * channels]. */
function filteredRows(img: PngImage): Uint8Array {
  const stride = img.width * img.channels;
  const out = new Uint8Array(img.height * (stride + 1));
  let prev: Uint8Array = new Uint8Array(stride);
  const trial = new Uint8Array(stride);
  for (let y = 0; y < img.height; y++) {
    const row = img.data.subarray(y * stride, (y + 1) * stride);
    const dest = out.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    let best = filterRow(0, row, prev, img.channels, dest);
    out[y * (stride + 1)] = 0;
    for (let type = 1; type <= 4 && best > 0; type++) {
      const cost = filterRow(type, row, prev, img.channels, trial);
      if (cost < best) {
        best = cost;
        dest.set(trial);
        out[y * (stride + 1)] = type;
      }
    }
    prev = row;
  }
  return out;
}

/** The bytes of a PNG file showing `img`. */
export function encodePng(img: PngImage): Uint8Array {
  const { width, height, channels, data } = img;
  for (const [name, v] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 0x7fffffff) throw new RangeError(`encodePng: ${name} ${v} is not a positive integer`);
  }
  if (data.length !== width * height * channels) {
    throw new RangeError(`encodePng: ${data.length} bytes for a ${width}x${height} image of ${channels} channels (needs ${width * height * channels})`);
  }
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([8, COLOUR_TYPE[channels], 0, 0, 0], 8);
  const parts = [Uint8Array.from(SIGNATURE), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(filteredRows(img))), chunk('IEND', new Uint8Array(0))];
  return concatBytes(parts);
}

/** Writes `img` as a PNG file, atomically. */
export async function writePng(path: string, img: PngImage): Promise<void> {
  await writeFileAtomic(path, encodePng(img));
}
