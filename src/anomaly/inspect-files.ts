/**
 * Inspection of image files with a saved SAE: load the SAE with its image preprocessing, calibrate
 * maps on clean images, and write per image
 *   NAME.overlay.png  the map as heat over the image       NAME.map.npy  the raw map, float32 [h, w]
 *   NAME.mask.png     the defect mask (255: defect)
 * and inspect.jsonl, one line per image: {"image", "score", "flagged", "regions": [{"bbox": [x, y,
 * w, h], "area"}]}. Everything is written into a staging folder first and moved into place only when
 * every image succeeded: a bad image (unreadable, truncated, other channels than the SAE's, smaller
 * than a patch) stops the run with one line naming it, and nothing is left behind.
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, rmdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { type ChannelImage, readChannelImage } from '../data/images.js';
import { loadImagePreprocess } from '../data/preprocess-file.js';
import { patchWidth } from '../data/whitening.js';
import type { Engine } from '../engine/index.js';
import { fileError } from '../errors.js';
import { ensureWritableDir, writeFileAtomic } from '../io/atomic.js';
import { serializeNpy } from '../io/npy.js';
import { encodePng } from '../io/png.js';
import { loadSae } from '../io/saelens.js';
import type { Sae } from '../sae.js';
import { PREPROCESS_FILENAME } from '../train/run.js';
import { checkImage, type Inspector, inspector, mapImage, saeModel } from './inspect.js';
import { fitMapCalibration, judgeMap, type MapCalibration, type MapCalibrationOptions, type Verdict } from './map-calibration.js';
import { heatOverlay, maskPicture } from './overlay.js';
import type { Region } from './regions.js';

export const INSPECT_RESULTS_FILENAME = 'inspect.jsonl';

/** An SAE folder with its image preprocessing, ready to inspect images. */
export async function loadInspector(saeDir: string): Promise<{ sae: Sae; inspector: Inspector }> {
  const sae = await loadSae(saeDir);
  const path = join(saeDir, PREPROCESS_FILENAME);
  if (!existsSync(path)) throw fileError(saeDir, `holds no image preprocessing (${PREPROCESS_FILENAME}): inspection needs an SAE trained on image patches`);
  const pre = await loadImagePreprocess(path);
  if (patchWidth(pre) !== sae.dims.dIn)
    throw fileError(path, `makes patches of ${patchWidth(pre)} values, but the SAE in ${saeDir} takes d_in = ${sae.dims.dIn}`);
  return { sae, inspector: inspector(pre, saeModel(sae)) };
}

/** Reads an image and checks it fits the inspector. */
export async function readInspectable(ins: Inspector, path: string): Promise<ChannelImage> {
  const image = await readChannelImage(path);
  checkImage(ins, image);
  return image;
}

/** The maps of clean image files -> their calibration. */
export async function calibrateMapFiles(engine: Engine, ins: Inspector, files: readonly string[], o: MapCalibrationOptions): Promise<MapCalibration> {
  const maps: Float32Array[] = [];
  for (const f of files) maps.push((await mapImage(engine, ins, await readInspectable(ins, f), o.stride)).map);
  return fitMapCalibration(maps, o);
}

/** One image's JSON line. */
export interface InspectRecord {
  readonly image: string;
  readonly score: number;
  readonly flagged: boolean;
  readonly regions: readonly Region[];
  /** Files written for it (in the output folder). */
  readonly files: { readonly overlay: string; readonly map: string; readonly mask: string };
}

/** Unique file stems for the images (a repeated name gets -2, -3 ...). */
function stems(files: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return files.map((f) => {
    const stem = basename(f, extname(f));
    const n = (seen.get(stem) ?? 0) + 1;
    seen.set(stem, n);
    return n === 1 ? stem : `${stem}-${n}`;
  });
}

/** Inspects each image: its map at the calibration's stride, the verdict and the pictures (see the top). */
export async function inspectFiles(engine: Engine, ins: Inspector, c: MapCalibration, files: readonly string[], out: string): Promise<InspectRecord[]> {
  const existed = existsSync(out);
  await ensureWritableDir(out);
  const staging = join(out, `.inspect-${process.pid}-${randomBytes(6).toString('hex')}`);
  await mkdir(staging);
  const names = stems(files);
  const records: InspectRecord[] = [];
  try {
    for (let k = 0; k < files.length; k++) {
      const image = await readInspectable(ins, files[k]!);
      const m = await mapImage(engine, ins, image, c.stride);
      const v: Verdict = judgeMap(m.map, m.width, m.height, c);
      const f = { overlay: `${names[k]}.overlay.png`, map: `${names[k]}.map.npy`, mask: `${names[k]}.mask.png` };
      await writeFileAtomic(join(staging, f.overlay), encodePng(heatOverlay(image.pixels, image.channels, m.map, m.width, m.height, c)));
      await writeFileAtomic(join(staging, f.map), serializeNpy(m.map, [m.height, m.width]));
      await writeFileAtomic(join(staging, f.mask), encodePng(maskPicture(v.mask, m.width, m.height)));
      records.push({ image: files[k]!, score: v.score, flagged: v.flagged, regions: v.regions, files: f });
    }
    for (const r of records) for (const name of Object.values(r.files)) await rename(join(staging, name), join(out, name));
    const lines = records.map((r) => JSON.stringify({ image: r.image, score: r.score, flagged: r.flagged, regions: r.regions }));
    await writeFileAtomic(join(out, INSPECT_RESULTS_FILENAME), lines.map((l) => `${l}\n`).join(''));
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    if (!existed) await rmdir(out).catch(() => undefined); // the folder made here, if still empty
    throw err;
  }
  await rm(staging, { recursive: true, force: true });
  return records;
}
