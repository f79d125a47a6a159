/**
 * Image data in the dashboard: a patch shown with the pixels around it in its source image, the
 * source images shrunk (written once, shared by every page, the patches marked on them by the page)
 * and single decoder filters. Small pictures are inlined in the pages as data: URLs. Pixels are shown
 * as they are in the photograph (grey, not whitened, not contrast-stretched).
 */
import type { GreyImage } from '../data/images.js';
import { encodePng, type PngImage } from '../io/png.js';
import { filterGrid } from '../viz/filters.js';

/** PNG bytes as a data: URL for an img src. */
export function pngDataUrl(img: PngImage): string {
  return `data:image/png;base64,${Buffer.from(encodePng(img)).toString('base64')}`;
}

function grey(v: number): number {
  return Math.max(0, Math.min(255, Math.round(v * 255)));
}

/** Canvas outside the image: a dark checkerboard, so that it is not taken for image pixels. */
function outside(x: number, y: number): number {
  return ((x >> 1) + (y >> 1)) % 2 === 0 ? 34 : 52;
}

/**
 * The p x p patch with top-left corner (x, y) of `im`, centred on a square canvas of side
 * p + 2 margin holding the pixels around it (a dark checkerboard outside the image) -> grey image.
 * The patch itself spans [margin, margin + p) on both axes (the page outlines it).
 */
export function patchInContext(im: GreyImage, x: number, y: number, p: number, margin: number): PngImage {
  const side = p + 2 * margin;
  const data = new Uint8Array(side * side);
  for (let cy = 0; cy < side; cy++) {
    for (let cx = 0; cx < side; cx++) {
      const ix = x - margin + cx;
      const iy = y - margin + cy;
      const inside = ix >= 0 && iy >= 0 && ix < im.width && iy < im.height;
      data[cy * side + cx] = inside ? grey(im.pixels[iy * im.width + ix]!) : outside(cx, cy);
    }
  }
  return { width: side, height: side, channels: 1, data };
}

/** `im` shrunk by the smallest integer factor (block means) that brings it to at most `maxSide` pixels a side. */
export function shrinkImage(im: GreyImage, maxSide: number): { image: PngImage; factor: number } {
  const f = Math.max(1, Math.ceil(Math.max(im.width, im.height) / maxSide));
  const width = Math.ceil(im.width / f);
  const height = Math.ceil(im.height / f);
  const data = new Uint8Array(width * height);
  for (let sy = 0; sy < height; sy++) {
    for (let sx = 0; sx < width; sx++) {
      let sum = 0;
      let n = 0;
      for (let y = sy * f; y < Math.min(im.height, (sy + 1) * f); y++) {
        for (let x = sx * f; x < Math.min(im.width, (sx + 1) * f); x++, n++) sum += im.pixels[y * im.width + x]!;
      }
      data[sy * width + sx] = grey(sum / n);
    }
  }
  return { image: { width, height, channels: 1, data }, factor: f };
}

/**
 * Short distinct names for image files: the fewest trailing path parts that tell them apart, less
 * the parts they all share, less a prefix they all share up to a "-", "_" or " ".
 */
export function imageNames(paths: readonly string[]): string[] {
  const parts = paths.map((p) => p.split(/[\\/]/).filter((s) => s.length > 0));
  let k = 1;
  const suffix = (n: number): string[][] => parts.map((ps) => ps.slice(-n));
  while (k < Math.max(...parts.map((ps) => ps.length)) && new Set(suffix(k).map((s) => s.join('/'))).size < paths.length) k++;
  const chosen = suffix(k);
  if (paths.length < 2) return chosen.map((s) => s.join('/'));
  const shared = (j: number): boolean => chosen.every((s) => s.length === k && s[j] === chosen[0]![j]);
  const keep = Array.from({ length: k }, (_, j) => !shared(j));
  const names = chosen.map((s) => s.filter((_, j) => s.length < k || keep[j]).join('/'));
  const cut = sharedPrefix(names).search(/[-_ ][^-_ ]*$/) + 1;
  return cut > 0 && names.every((n) => n.length > cut) ? names.map((n) => n.slice(cut)) : names;
}

function sharedPrefix(xs: readonly string[]): string {
  let p = xs[0] ?? '';
  for (const x of xs) while (!x.startsWith(p)) p = p.slice(0, -1);
  return p;
}

/** rows: [n, p * p] filters -> filter i as a p x p grey image (0 mid grey, its largest |value| black or white). */
export function singleFilter(rows: Float32Array, n: number, p: number, i: number): PngImage {
  return filterGrid(rows, n, p, { columns: 1, zoom: 1, gap: 0 }, [i]);
}
