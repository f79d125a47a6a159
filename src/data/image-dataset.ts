/**
 * An in-memory dataset of preprocessed image patches: N patches p x p cut at seeded random positions
 * (images weighted by area), then mean removal and whitening, either fitted here on a sample of the
 * patches or given (a saved ImagePreprocess), so that new images get exactly the same treatment.
 */
import { UserError } from '../errors.js';
import type { Engine } from '../engine/index.js';
import { Rng } from '../rng.js';
import type { Dataset } from './dataset.js';
import { cutPatches, type GreyImage, listImages, type PatchOrigins, readGreyImage, samplePatchOrigins } from './images.js';
import { memoryDataset } from './memory.js';
import { fitPreprocess, type ImagePreprocess, preprocessPatches, removePatchMeans, type Whitening, WHITENINGS, type WhiteningSettings } from './whitening.js';

/** How patches are cut from images and preprocessed. */
export interface ImagePatchOptions {
  /** Patch side in pixels (default 12, or the preprocess's). */
  readonly patchSize?: number;
  /** How many patches to cut (default 100,000). */
  readonly patches?: number;
  /** Seed of the patch positions (default 0). */
  readonly seed?: number;
  /** Subtract each patch's own mean (default true, or the preprocess's). */
  readonly meanRemoval?: boolean;
  /** 'none' | 'pca' | 'zca' (default 'zca', or the preprocess's). */
  readonly whitening?: Whitening;
  /** Whitening regulariser added to each covariance eigenvalue, pixels in [0, 1] (default 1e-3). */
  readonly eps?: number;
  /** The whitening is fitted on the first this many patches (default 50,000). */
  readonly fitPatches?: number;
  /** Apply this fitted preprocessing instead of fitting one (its settings win; conflicting options are an error). */
  readonly preprocess?: ImagePreprocess;
}

export const IMAGE_DEFAULTS = {
  patchSize: 12,
  patches: 100_000,
  seed: 0,
  meanRemoval: true,
  whitening: 'zca',
  eps: 1e-3,
  fitPatches: 50_000,
} as const satisfies Required<Omit<ImagePatchOptions, 'preprocess'>>;

/** A Dataset of patches, with the preprocessing that made them (save it with saveImagePreprocess). */
export interface ImagePatchDataset extends Dataset {
  readonly preprocess: ImagePreprocess;
  /** The image files the patches come from. */
  readonly images: readonly string[];
  /** Where each patch (row) was cut: an index into `images` and its top-left corner. */
  readonly origins: PatchOrigins;
}

export function isImagePatchDataset(ds: Dataset): ds is ImagePatchDataset {
  return 'preprocess' in ds && 'images' in ds;
}

/** Label of the patch-position stream in Rng.derive. */
const PATCH_STREAM = 0x9a7c;

/** paths: image files or folders -> [patches, patchSize^2] preprocessed patches. */
export async function imagePatchDataset(paths: readonly string[], options: ImagePatchOptions, engine: Engine): Promise<ImagePatchDataset> {
  const settings = resolveSettings(options);
  const count = options.patches ?? IMAGE_DEFAULTS.patches;
  const seed = options.seed ?? IMAGE_DEFAULTS.seed;
  checkCount('patches', count, 1);
  const name = paths.length === 1 ? paths[0]! : `${paths.length} image paths`;
  const files = await listImages(paths);
  if (files.length === 0) throw new UserError(`${name}: the dataset is empty (no .jpg, .jpeg or .png image)`);
  const images: GreyImage[] = [];
  for (const f of files) images.push(await readGreyImage(f));
  const origins = samplePatchOrigins(images, settings.patchSize, count, Rng.derive(seed, PATCH_STREAM));
  const x = cutPatches(images, settings.patchSize, origins); // [count, d]
  const preprocess = options.preprocess ?? (await fitOnSample(x, count, settings, options.fitPatches ?? IMAGE_DEFAULTS.fitPatches, engine));
  await preprocessPatches(preprocess, x, count, engine);
  const d = settings.patchSize ** 2;
  const description = {
    format: 'images',
    images: files.length,
    patches: count,
    seed,
    patchSize: preprocess.patchSize,
    meanRemoval: preprocess.meanRemoval,
    whitening: preprocess.whitening,
    eps: preprocess.eps,
  };
  return { ...memoryDataset(name, x, d, description), preprocess, images: files, origins };
}

/** The options, checked, with defaults filled in; with a preprocess, its settings (a different explicit value is an error). */
function resolveSettings(o: ImagePatchOptions): WhiteningSettings {
  const p = o.preprocess;
  if (p !== undefined) {
    if ((p.channels ?? 1) !== 1)
      throw new UserError(
        'the saved image preprocessing reads colour (RGB) patches; image datasets cut grey patches (use the inspection API, src/anomaly/inspect.ts, for colour images)',
      );
    const conflicts = (['patchSize', 'meanRemoval', 'whitening', 'eps'] as const).filter((k) => o[k] !== undefined && o[k] !== p[k]);
    if (conflicts.length > 0) {
      const list = conflicts.map((k) => `${k} ${String(o[k])} (saved: ${String(p[k])})`).join(', ');
      throw new UserError(`the options ${list} contradict the saved image preprocessing; leave them out to use the saved ones`);
    }
    return { patchSize: p.patchSize, meanRemoval: p.meanRemoval, whitening: p.whitening, eps: p.eps };
  }
  const s = {
    patchSize: o.patchSize ?? IMAGE_DEFAULTS.patchSize,
    meanRemoval: o.meanRemoval ?? IMAGE_DEFAULTS.meanRemoval,
    whitening: o.whitening ?? IMAGE_DEFAULTS.whitening,
    eps: o.eps ?? IMAGE_DEFAULTS.eps,
  };
  checkCount('patch size', s.patchSize, 1);
  if (!WHITENINGS.includes(s.whitening)) throw new UserError(`unknown whitening '${s.whitening}': choose one of ${WHITENINGS.join(', ')}`);
  return s;
}

function checkCount(what: string, n: number, min: number): void {
  if (!Number.isSafeInteger(n) || n < min) throw new UserError(`the ${what} must be an integer >= ${min}, got ${n}`);
}

/** x: [count, d] raw patches (unchanged) -> the preprocessing fitted on the first `fit` of them. */
async function fitOnSample(x: Float32Array, count: number, s: WhiteningSettings, fit: number, engine: Engine): Promise<ImagePreprocess> {
  checkCount('number of patches to fit on', fit, 2);
  const d = s.patchSize ** 2;
  const rows = Math.min(count, fit);
  const sample = x.slice(0, rows * d); // [rows, d]
  if (s.meanRemoval) removePatchMeans(sample, rows, d);
  return fitPreprocess(sample, rows, s, engine);
}
