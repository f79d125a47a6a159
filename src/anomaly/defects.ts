/**
 * Synthetic surface defects drawn onto images, with their true masks (for the defect demo and
 * tests; the report calls them synthetic). Each defect is a shape with a soft coverage a(r, c) in
 * [0, 1] (anti-aliased by distance: a = clip(edge + 0.5 - distance, 0, 1)), applied as
 *   scratch   x <- x + a delta                      (thin straight line, lighter or darker)
 *   crack     x <- x (1 - a k)                       (dark random-walk polyline)
 *   hole      x <- (1 - a) x + a v                   (disk of a dark value v)
 *   stain     x <- (1 - a o) x + a o x tone          (soft-edged ellipse, darker and tinted)
 *   missing   x <- (1 - a) x + a (m + b)             (texture gone: the image mean m shifted by b)
 *   colour    x <- (1 - a) x + a luma(x) tint        (foreign colour, texture kept; RGB images)
 * true mask = a >= 0.5. Sizes (small, medium, large) scale the shape to the image; contrasts (low,
 * high) scale delta, k, 1 - v, o, b and the tint. Everything is drawn from a seeded Rng.
 */
import type { Rng } from '../rng.js';

export type DefectKind = 'scratch' | 'crack' | 'hole' | 'stain' | 'missing' | 'colour';
export const DEFECT_KINDS: readonly DefectKind[] = ['scratch', 'crack', 'hole', 'stain', 'missing', 'colour'];
export type DefectSize = 'small' | 'medium' | 'large';
export type DefectContrast = 'low' | 'high';

export interface DefectSpec {
  readonly kind: DefectKind;
  readonly size: DefectSize;
  readonly contrast: DefectContrast;
}

/** An image to draw on: pixels [h, w, channels] in [0, 1]. */
export interface Canvas {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  readonly pixels: Float32Array;
}

export interface DrawnDefect {
  /** A copy of the image with the defect. */
  readonly pixels: Float32Array;
  /** [h, w], 1 on the defect. */
  readonly mask: Uint8Array;
  readonly spec: DefectSpec;
}

/** Shape scale as a fraction of the shorter side. */
const SIZE: Record<DefectSize, number> = { small: 0.06, medium: 0.12, large: 0.2 };

function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng.uniform();
}

/** Distance from (px, py) to the segment (ax, ay)-(bx, by). */
function segmentDistance(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  const [dx, dy] = [bx - ax, by - ay];
  const len2 = dx * dx + dy * dy;
  const t = len2 > 0 ? Math.min(1, Math.max(0, ((px - ax) * dx + (py - ay) * dy) / len2)) : 0;
  return Math.hypot(px - ax - t * dx, py - ay - t * dy);
}

/** Coverage [h, w] of a polyline of the given width. */
function polylineCoverage(w: number, h: number, points: readonly (readonly [number, number])[], width: number): Float32Array {
  const a = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let d = Infinity;
      for (let k = 1; k < points.length; k++) d = Math.min(d, segmentDistance(x + 0.5, y + 0.5, ...points[k - 1]!, ...points[k]!));
      a[y * w + x] = Math.min(1, Math.max(0, width / 2 + 0.5 - d));
    }
  }
  return a;
}

/** Coverage [h, w] of an ellipse (radii rx, ry, angle theta), with a soft edge of `soft` pixels. */
function ellipseCoverage(w: number, h: number, cx: number, cy: number, rx: number, ry: number, theta: number, soft = 1): Float32Array {
  const a = new Float32Array(w * h);
  const [c, s] = [Math.cos(theta), Math.sin(theta)];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [dx, dy] = [x + 0.5 - cx, y + 0.5 - cy];
      const u = (dx * c + dy * s) / rx;
      const v = (-dx * s + dy * c) / ry;
      const d = (Math.hypot(u, v) - 1) * Math.min(rx, ry); // ~ pixels outside the edge
      a[y * w + x] = Math.min(1, Math.max(0, 0.5 - d / soft));
    }
  }
  return a;
}

function luma(p: Float32Array, i: number, channels: number): number {
  return channels === 1 ? p[i]! : 0.299 * p[3 * i]! + 0.587 * p[3 * i + 1]! + 0.114 * p[3 * i + 2]!;
}

/** Draws one defect of `spec` at a random place of `image` (unchanged) -> the new pixels and the true mask. */
export function drawDefect(image: Canvas, spec: DefectSpec, rng: Rng): DrawnDefect {
  const { width: w, height: h, channels: ch } = image;
  const px = image.pixels.slice();
  const side = Math.min(w, h);
  const r = SIZE[spec.size] * side * uniform(rng, 0.8, 1.2);
  const high = spec.contrast === 'high';
  const cx = uniform(rng, 0.25, 0.75) * w;
  const cy = uniform(rng, 0.25, 0.75) * h;
  const angle = uniform(rng, 0, Math.PI);
  let a: Float32Array;
  let apply: (i: number, ai: number) => void;
  const perValue = (f: (v: number, k: number, i: number) => number) => (i: number, ai: number) => {
    for (let k = 0; k < ch; k++) px[i * ch + k] = Math.min(1, Math.max(0, f(px[i * ch + k]!, k, i) * ai + px[i * ch + k]! * (1 - ai)));
  };
  switch (spec.kind) {
    case 'scratch': {
      const half = 1.5 * r;
      const [dx, dy] = [Math.cos(angle) * half, Math.sin(angle) * half];
      a = polylineCoverage(
        w,
        h,
        [
          [cx - dx, cy - dy],
          [cx + dx, cy + dy],
        ],
        spec.size === 'large' ? 2 : 1.2,
      );
      const delta = (rng.uniform() < 0.5 ? -1 : 1) * (high ? uniform(rng, 0.25, 0.4) : uniform(rng, 0.08, 0.14));
      apply = perValue((v) => v + delta);
      break;
    }
    case 'crack': {
      const points: [number, number][] = [[cx, cy]];
      let dir = angle;
      const steps = 6;
      for (let k = 0; k < steps; k++) {
        dir += uniform(rng, -0.7, 0.7);
        const [x, y] = points[points.length - 1]!;
        points.push([x + (Math.cos(dir) * 2 * r) / steps, y + (Math.sin(dir) * 2 * r) / steps]);
      }
      a = polylineCoverage(w, h, points, spec.size === 'small' ? 1 : 1.6);
      const k = high ? uniform(rng, 0.5, 0.7) : uniform(rng, 0.2, 0.3);
      apply = perValue((v) => v * (1 - k));
      break;
    }
    case 'hole': {
      a = ellipseCoverage(w, h, cx, cy, 0.6 * r, 0.6 * r * uniform(rng, 0.7, 1), angle);
      const v = high ? uniform(rng, 0.05, 0.15) : uniform(rng, 0.4, 0.5);
      apply = perValue(() => v);
      break;
    }
    case 'stain': {
      a = ellipseCoverage(w, h, cx, cy, r, r * uniform(rng, 0.5, 0.9), angle, 0.3 * r);
      const o = high ? uniform(rng, 0.5, 0.7) : uniform(rng, 0.2, 0.3);
      const tone = [0.75, 0.65, 0.5];
      apply = perValue((v, k) => v * (1 - o) + o * v * (ch === 1 ? 0.65 : tone[k]!));
      break;
    }
    case 'missing': {
      a = ellipseCoverage(w, h, cx, cy, 0.8 * r, 0.8 * r * uniform(rng, 0.6, 1), angle);
      const mean = new Float64Array(ch);
      for (let i = 0; i < w * h; i++) for (let k = 0; k < ch; k++) mean[k]! += image.pixels[i * ch + k]! / (w * h);
      const b = (rng.uniform() < 0.5 ? -1 : 1) * (high ? uniform(rng, 0.12, 0.2) : uniform(rng, 0.03, 0.06));
      apply = perValue((_, k) => mean[k]! + b);
      break;
    }
    case 'colour': {
      a = ellipseCoverage(w, h, cx, cy, r, r * uniform(rng, 0.6, 1), angle, 0.15 * r);
      const tints = [
        [0.7, 0.9, 1.4],
        [0.8, 1.25, 0.8],
        [1.35, 0.75, 0.75],
      ];
      const base = tints[rng.int(tints.length)]!;
      const tint = base.map((t) => 1 + (t - 1) * (high ? 1 : 0.4));
      apply = perValue((_, k, i) => luma(image.pixels, i, ch) * (ch === 1 ? tint[0]! : tint[k]!));
      break;
    }
  }
  const mask = new Uint8Array(w * h);
  for (let i = 0; i < w * h; i++) {
    if (a[i]! > 0) apply(i, a[i]!);
    if (a[i]! >= 0.5) mask[i] = 1;
  }
  return { pixels: px, mask, spec };
}
