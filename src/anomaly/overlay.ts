/**
 * Pictures of anomaly maps: a heat overlay on the image, and the binary defect mask.
 *   heat t = (map - m) / (2 (t_px - m)), clipped to [0, 1]: 0 at the clean median m, 0.5 at the pixel
 *   threshold t_px, 1 at twice its distance from the median
 *   colour = dimmed grey image blended with red -> yellow (alpha 0.8 t; nothing below t = 0.25)
 * An optional true mask is outlined in green (its pixels with a 4-neighbour outside it).
 */
import type { PngImage } from '../io/png.js';

/** pixels: [h, w, channels] in [0, 1] -> [h, w] grey in [0, 1]. */
function greyOf(pixels: Float32Array, n: number, channels: number): Float32Array {
  if (channels === 1) return pixels;
  return Float32Array.from({ length: n }, (_, i) => 0.299 * pixels[3 * i]! + 0.587 * pixels[3 * i + 1]! + 0.114 * pixels[3 * i + 2]!);
}

/** Pixels of mask [h, w] with a 4-neighbour outside it (or on the border). */
function outlineOf(mask: ArrayLike<number>, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h);
  const inside = (x: number, y: number): boolean => x >= 0 && y >= 0 && x < w && y < h && Boolean(mask[y * w + x]);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (inside(x, y) && !(inside(x - 1, y) && inside(x + 1, y) && inside(x, y - 1) && inside(x, y + 1))) out[y * w + x] = 1;
    }
  }
  return out;
}

export interface OverlayScale {
  /** The clean median of the map. */
  readonly pixelMedian: number;
  /** The pixel threshold. */
  readonly pixelThreshold: number;
}

/**
 * image: [h, w, channels] in [0, 1], map: [h, w] -> an RGB picture of the map over the image;
 * `truth` (a true mask [h, w]) is outlined in green.
 */
export function heatOverlay(
  pixels: Float32Array,
  channels: number,
  map: Float32Array,
  w: number,
  h: number,
  s: OverlayScale,
  truth?: ArrayLike<number>,
): PngImage {
  const grey = greyOf(pixels, w * h, channels);
  const span = Math.max(2 * (s.pixelThreshold - s.pixelMedian), 1e-30);
  const edge = truth ? outlineOf(truth, w, h) : undefined;
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    const g = 0.25 + 0.6 * grey[i]!;
    const t = Math.min(1, Math.max(0, (map[i]! - s.pixelMedian) / span));
    const a = t < 0.25 ? 0 : 0.8 * t;
    let rgb = [g + a * (1 - g), g + a * (Math.max(0, 2 * t - 1) - g), g - a * g];
    if (edge?.[i]) rgb = [0, 0.9, 0.2];
    for (let k = 0; k < 3; k++) data[3 * i + k] = Math.round(255 * Math.min(1, Math.max(0, rgb[k]!)));
  }
  return { width: w, height: h, channels: 3, data };
}

/** mask: [h, w] -> a grey PNG, 255 where set. */
export function maskPicture(mask: ArrayLike<number>, w: number, h: number): PngImage {
  return { width: w, height: h, channels: 1, data: Uint8Array.from({ length: w * h }, (_, i) => (mask[i] ? 255 : 0)) };
}

/** Copies picture p into the RGB canvas data [.., w, 3] at (x0, y0); grey pictures become RGB. */
function blit(data: Uint8Array, w: number, p: PngImage, x0: number, y0: number): void {
  for (let y = 0; y < p.height; y++) {
    for (let x = 0; x < p.width; x++) {
      for (let k = 0; k < 3; k++) data[((y0 + y) * w + x0 + x) * 3 + k] = p.data[(y * p.width + x) * p.channels + (p.channels === 1 ? 0 : k)]!;
    }
  }
}

/** Pictures side by side (`gap` white pixels between them) or stacked top to bottom, as one RGB picture. */
export function montage(pictures: readonly PngImage[], direction: 'across' | 'down', gap = 4): PngImage {
  const across = direction === 'across';
  const along = pictures.reduce((s, p) => s + (across ? p.width : p.height), 0) + gap * (pictures.length - 1);
  const side = Math.max(...pictures.map((p) => (across ? p.height : p.width)));
  const [w, h] = across ? [along, side] : [side, along];
  const data = new Uint8Array(w * h * 3).fill(255);
  let at = 0;
  for (const p of pictures) {
    blit(data, w, p, across ? at : 0, across ? 0 : at);
    at += (across ? p.width : p.height) + gap;
  }
  return { width: w, height: h, channels: 3, data };
}

/** Enlarges a picture by an integer factor (nearest neighbour). */
export function enlarged(p: PngImage, zoom: number): PngImage {
  const w = p.width * zoom;
  const h = p.height * zoom;
  const data = new Uint8Array(w * h * p.channels);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const from = (Math.floor(y / zoom) * p.width + Math.floor(x / zoom)) * p.channels;
      data.set(p.data.subarray(from, from + p.channels), (y * w + x) * p.channels);
    }
  }
  return { width: w, height: h, channels: p.channels, data };
}
