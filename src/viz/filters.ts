/**
 * Decoder rows of an image SAE as a grid of small grey pictures: each filter is scaled on its own
 * so that 0 is mid grey and its largest |value| is black or white, and enlarged for viewing.
 */
import type { PngImage } from '../io/png.js';

export interface FilterGridOptions {
  /** Filters per row of the grid (default: about square). */
  readonly columns?: number;
  /** Integer enlargement of each pixel (default 4). */
  readonly zoom?: number;
  /** Background pixels between filters (default 1). */
  readonly gap?: number;
}

/**
 * rows: [n, p * p] filters, each a p x p patch in row-major order -> one grey image.
 * `order` lists which filters to draw, in which order (default: all, as given).
 */
export function filterGrid(rows: Float32Array, n: number, p: number, options: FilterGridOptions = {}, order?: readonly number[]): PngImage {
  const which = order ?? Array.from({ length: n }, (_, i) => i);
  const cols = options.columns ?? Math.ceil(Math.sqrt(which.length));
  const gridRows = Math.ceil(which.length / cols);
  const zoom = options.zoom ?? 4;
  const gap = options.gap ?? 1;
  const cell = p * zoom + gap;
  const width = cols * cell + gap;
  const height = gridRows * cell + gap;
  const data = new Uint8Array(width * height).fill(40); // dark background
  which.forEach((f, slot) => {
    const base = f * p * p;
    let max = 0;
    for (let i = 0; i < p * p; i++) max = Math.max(max, Math.abs(rows[base + i]!));
    const x0 = gap + (slot % cols) * cell;
    const y0 = gap + Math.floor(slot / cols) * cell;
    for (let y = 0; y < p * zoom; y++) {
      for (let x = 0; x < p * zoom; x++) {
        const v = rows[base + Math.floor(y / zoom) * p + Math.floor(x / zoom)]!;
        const g = max > 0 ? 127.5 + (127.5 * v) / max : 127.5;
        data[(y0 + y) * width + x0 + x] = Math.max(0, Math.min(255, Math.round(g)));
      }
    }
  });
  return { width, height, channels: 1, data };
}

/** The side of the square patches an SAE of width dIn reads, or undefined if dIn is not a square. */
export function patchSide(dIn: number): number | undefined {
  const p = Math.round(Math.sqrt(dIn));
  return p * p === dIn ? p : undefined;
}

/** Latents ordered by firing rate, most frequent first (ties by index). */
export function byFrequency(log10Rates: Float32Array): number[] {
  return Array.from(log10Rates.keys()).sort((a, b) => log10Rates[b]! - log10Rates[a]! || a - b);
}
