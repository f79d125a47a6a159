/**
 * Calibration of anomaly maps on clean images, and the verdict on a new map:
 *   pixel threshold  t_px = the (1 - pixelFpr)-quantile of every clean map pixel, so about a fraction
 *                    pixelFpr of clean pixels lands in a defect mask: mask(r, c) = map(r, c) > t_px
 *   image score      the q-quantile of the image's map values (q = scoreQuantile; 1: the max)
 *   image threshold  t_img = the (1 - imageFpr)-quantile of the clean images' scores: flagged = score > t_img
 *   regions          the 8-connected regions of the mask, with bounding boxes and areas
 * Quantiles interpolate linearly between order statistics (numpy's default). The calibration is
 * stored as JSON with the SAE's fingerprint, so it is not applied to another SAE by mistake.
 */
import { z } from 'zod';
import { fileError, UserError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { readJsonObject } from '../io/json.js';
import type { Sae } from '../sae.js';
import { saeFingerprint } from './files.js';
import { connectedRegions, type Region } from './regions.js';
import { quantile } from './roc.js';

export const MAP_CALIBRATION_FILENAME = 'map-calibration.json';

export interface MapCalibrationOptions {
  /** Stride of the patch window (the maps being calibrated were made with it). */
  readonly stride: number;
  /** Fraction of clean pixels allowed in a mask (default 0.01). */
  readonly pixelFpr?: number;
  /** Fraction of clean images allowed to be flagged (default 0.05). */
  readonly imageFpr?: number;
  /** The image score is this quantile of its map (default 1: the max). */
  readonly scoreQuantile?: number;
}

export const MAP_CALIBRATION_DEFAULTS = { pixelFpr: 0.01, imageFpr: 0.05, scoreQuantile: 1 } as const;

const Fraction = z.number().min(0).max(1);

const MapCalibrationSchema = z.object({
  stride: z.number().int().positive(),
  pixelFpr: Fraction,
  pixelThreshold: z.number().min(0),
  pixelMedian: z.number().min(0),
  imageFpr: Fraction,
  scoreQuantile: Fraction,
  imageThreshold: z.number().min(0),
  images: z.number().int().positive(),
  pixels: z.number().int().positive(),
  saeSha256: z.string().optional(),
});

export type MapCalibration = Omit<z.infer<typeof MapCalibrationSchema>, 'saeSha256'>;

/** The q-quantile of a map's values; q = 1 is its max. */
export function imageScore(map: ArrayLike<number>, q: number): number {
  if (q === 1) {
    let m = -Infinity;
    for (let i = 0; i < map.length; i++) m = Math.max(m, map[i]!);
    return m;
  }
  return quantile(map, q);
}

function fraction(name: string, v: number): number {
  if (!(v >= 0 && v <= 1)) throw new UserError(`${name} must be in [0, 1], got ${v}`);
  return v;
}

/** maps: the anomaly maps of clean images -> the calibration (see the formulas at the top). */
export function fitMapCalibration(maps: readonly ArrayLike<number>[], o: MapCalibrationOptions): MapCalibration {
  const pixelFpr = fraction('the pixel false-positive rate', o.pixelFpr ?? MAP_CALIBRATION_DEFAULTS.pixelFpr);
  const imageFpr = fraction('the image false-positive rate', o.imageFpr ?? MAP_CALIBRATION_DEFAULTS.imageFpr);
  const scoreQuantile = fraction('the score quantile', o.scoreQuantile ?? MAP_CALIBRATION_DEFAULTS.scoreQuantile);
  if (maps.length === 0) throw new UserError('no clean images to calibrate on');
  const pixels = maps.reduce((n, m) => n + m.length, 0);
  const all = new Float64Array(pixels);
  let at = 0;
  for (const m of maps) for (let i = 0; i < m.length; i++) all[at++] = m[i]!;
  all.sort();
  const sortedQuantile = (q: number): number => {
    const pos = q * (all.length - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(all.length - 1, lo + 1);
    return all[lo]! + (pos - lo) * (all[hi]! - all[lo]!);
  };
  return {
    stride: o.stride,
    pixelFpr,
    pixelThreshold: sortedQuantile(1 - pixelFpr),
    pixelMedian: sortedQuantile(0.5),
    imageFpr,
    scoreQuantile,
    imageThreshold: quantile(
      maps.map((m) => imageScore(m, scoreQuantile)),
      1 - imageFpr,
    ),
    images: maps.length,
    pixels,
  };
}

/** What inspection says of one image. */
export interface Verdict {
  readonly score: number;
  readonly flagged: boolean;
  /** [h, w]: 1 where map > the pixel threshold. */
  readonly mask: Uint8Array;
  /** Largest first. */
  readonly regions: Region[];
}

/** map: [h, w] -> the image score, flag, defect mask and its regions. */
export function judgeMap(map: Float32Array, w: number, h: number, c: MapCalibration): Verdict {
  const mask = Uint8Array.from(map, (v) => (v > c.pixelThreshold ? 1 : 0));
  const regions = connectedRegions(mask, w, h).regions.sort((a, b) => b.area - a.area);
  const score = imageScore(map, c.scoreQuantile);
  return { score, flagged: score > c.imageThreshold, mask, regions };
}

/** Writes the calibration of `sae`'s maps with what it was made from (`about`: SAE folder, images ...). */
export async function saveMapCalibration(path: string, c: MapCalibration, sae: Sae, about: Readonly<Record<string, unknown>>): Promise<void> {
  const record = {
    description:
      'sae inspect: pixels with map > pixelThreshold form the defect mask; an image is flagged when the scoreQuantile-quantile of its map > imageThreshold',
    ...about,
    ...c,
    saeSha256: saeFingerprint(sae),
  };
  await writeFileAtomic(path, `${JSON.stringify(record, null, 2)}\n`);
}

/** Reads a map calibration and checks that it was made for `sae` (`saeDir` names it in the error). */
export async function loadMapCalibration(path: string, sae: Sae, saeDir: string): Promise<MapCalibration> {
  const r = MapCalibrationSchema.safeParse(await readJsonObject(path));
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw fileError(path, `not a map calibration (${i.path.map(String).join('.') || 'file'}: ${i.message})`);
  }
  const { saeSha256, ...c } = r.data;
  if (saeSha256 !== undefined && saeSha256 !== saeFingerprint(sae))
    throw fileError(path, `was made for another SAE than the one in ${saeDir} (its weights differ); calibrate the maps again`);
  return c;
}
