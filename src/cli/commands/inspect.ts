/**
 * sae inspect: where the defect is. Maps each image with an SAE trained on image patches (its saved
 * preprocessing applied), thresholds the maps with a calibration made on clean images, and writes
 * per image an overlay, the raw map, a defect mask and a JSON line (see src/anomaly/inspect-files.ts).
 *   --clean IMAGES  calibrate the maps on these clean images first (saved next to the SAE, or to
 *                   --calibration); without it, the saved map calibration is read.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { calibrateMapFiles, INSPECT_RESULTS_FILENAME, inspectFiles, loadInspector } from '../../anomaly/inspect-files.js';
import { loadMapCalibration, MAP_CALIBRATION_DEFAULTS, MAP_CALIBRATION_FILENAME, saveMapCalibration } from '../../anomaly/map-calibration.js';
import { listImages } from '../../data/images.js';
import { UserError } from '../../errors.js';
import { defineCommand, print } from '../command.js';
import { formatTable } from './format.js';
import { ENGINE_OPTIONS, engineOf } from './inference-data.js';

const M = MAP_CALIBRATION_DEFAULTS;

export const inspectCommand = defineCommand(
  {
    name: 'inspect',
    summary:
      'Visual inspection: maps where each image departs from what an image SAE reconstructs (per-pixel error), thresholds it by a calibration on clean images, and writes overlays, raw maps (.npy), defect masks and one JSON line per image.',
    usage: 'sae inspect SAE_DIR IMAGE... --out DIR [--clean CLEAN_IMAGES] [options]',
    positionals: ['SAE_DIR', 'IMAGE...'],
    options: {
      out: { kind: 'string', help: 'folder for the results', required: true },
      clean: { kind: 'string', help: 'clean images (a file or folder) to calibrate the maps on first; else the saved map calibration is used' },
      calibration: { kind: 'string', help: `map calibration to read, or to write with --clean (default SAE_DIR/${MAP_CALIBRATION_FILENAME})` },
      stride: { kind: 'integer', help: 'step of the patch window in pixels, 1 .. the patch side (default 4; with a saved calibration, its stride)', min: 1 },
      pixelFpr: { kind: 'number', help: `with --clean: fraction of clean pixels allowed in a mask (default ${M.pixelFpr})` },
      imageFpr: { kind: 'number', help: `with --clean: fraction of clean images allowed to be flagged (default ${M.imageFpr})` },
      scoreQuantile: { kind: 'number', help: `with --clean: an image's score is this quantile of its map (default ${M.scoreQuantile}: the max)` },
      ...ENGINE_OPTIONS,
    },
  },
  async (v, io) => {
    const [dir, paths] = v.positionals;
    const calibrationPath = v.calibration ?? join(dir, MAP_CALIBRATION_FILENAME);
    const fitting = ['pixelFpr', 'imageFpr', 'scoreQuantile'].filter((k) => v.given.has(k));
    if (v.clean === undefined && fitting.length > 0)
      throw new UserError(`${fitting.map((k) => v.given.get(k)).join(', ')} only apply with --clean (calibrating the maps)`);
    const { sae, inspector } = await loadInspector(dir);
    const files = await listImages(paths);
    if (files.length === 0) throw new UserError(`no .jpg, .jpeg or .png image in ${paths.join(', ')}`);
    const engine = engineOf(v, io);
    try {
      let calibration;
      if (v.clean !== undefined) {
        const clean = await listImages([v.clean]);
        if (clean.length === 0) throw new UserError(`${v.clean}: no clean image to calibrate on`);
        calibration = await calibrateMapFiles(engine, inspector, clean, {
          stride: v.stride ?? 4,
          ...(v.pixelFpr !== undefined ? { pixelFpr: v.pixelFpr } : {}),
          ...(v.imageFpr !== undefined ? { imageFpr: v.imageFpr } : {}),
          ...(v.scoreQuantile !== undefined ? { scoreQuantile: v.scoreQuantile } : {}),
        });
      } else {
        if (!existsSync(calibrationPath)) throw new UserError(`${calibrationPath}: no map calibration; pass --clean CLEAN_IMAGES to make one`);
        const saved = await loadMapCalibration(calibrationPath, sae, dir);
        calibration = v.stride !== undefined && v.stride !== saved.stride ? undefined : saved;
        if (calibration === undefined)
          throw new UserError(
            `--stride ${v.stride}: the map calibration in ${calibrationPath} was made at stride ${saved.stride}; use it, or calibrate again with --clean`,
          );
      }
      const records = await inspectFiles(engine, inspector, calibration, files, v.out);
      if (v.clean !== undefined) await saveMapCalibration(calibrationPath, calibration, sae, { sae: dir, clean: v.clean });
      const rows: [string, string][] = records.map((r) => [
        r.image,
        `score ${r.score.toPrecision(4)}${r.flagged ? '  FLAGGED' : ''}  ${r.regions.length} region(s)${r.regions[0] ? `, largest ${r.regions[0].area} px at [${r.regions[0].bbox.join(', ')}]` : ''}`,
      ]);
      print(io.stdout, formatTable(rows));
      const flagged = records.filter((r) => r.flagged).length;
      print(
        io.stdout,
        `${flagged} of ${records.length} image(s) flagged (image threshold ${calibration.imageThreshold.toPrecision(4)}, pixel threshold ${calibration.pixelThreshold.toPrecision(4)}, stride ${calibration.stride})\n` +
          `wrote ${join(v.out, INSPECT_RESULTS_FILENAME)} and per image NAME.overlay.png, NAME.map.npy, NAME.mask.png in ${v.out}` +
          (v.clean !== undefined ? `; the map calibration to ${calibrationPath}` : ''),
      );
    } finally {
      await engine.release();
    }
    return 0;
  },
);
