/**
 * sae score: each input's reconstruction error, its normalised score (a robust z-score of the log
 * error against the clean inputs of `sae calibrate`, see src/anomaly/score.ts) and whether it is
 * flagged (error above the calibrated threshold), written as .csv or .npy in the inputs' order.
 */
import { join } from 'node:path';
import { datasetErrors } from '../../anomaly/detect.js';
import { CALIBRATION_FILENAME, loadCalibration, writeScores } from '../../anomaly/files.js';
import { quantile } from '../../anomaly/roc.js';
import { normalisedScores } from '../../anomaly/score.js';
import { Engine } from '../../engine/index.js';
import { UserError, fileError } from '../../errors.js';
import { loadAnySaeAsSae } from '../../formats/index.js';
import { defineCommand, print } from '../command.js';
import { formatTable } from './format.js';
import { INPUT_OPTIONS, openInput } from './inference-data.js';

function summary(errors: Float32Array, scores: Float32Array, flagged: number, threshold: number): string {
  const finite = errors.filter((e) => !Number.isNaN(e));
  const finiteScores = scores.filter((s) => !Number.isNaN(s));
  const q = (a: Float32Array, p: number): string => (a.length ? quantile(a, p).toPrecision(4) : 'n/a');
  return formatTable([
    ['inputs', String(errors.length)],
    ['flagged', `${flagged} (${((100 * flagged) / Math.max(1, finite.length)).toFixed(2)}%, error > ${threshold.toPrecision(4)})`],
    ['error: median, p99, max', `${q(finite, 0.5)}, ${q(finite, 0.99)}, ${q(finite, 1)}`],
    ['score: median, p99, max', `${q(finiteScores, 0.5)}, ${q(finiteScores, 0.99)}, ${q(finiteScores, 1)}`],
  ]);
}

export const scoreCommand = defineCommand(
  {
    name: 'score',
    summary:
      "Scores inputs for anomalies: each input's reconstruction error, a normalised score (robust z-score of the log error against sae calibrate's clean inputs) and a flag (error above the calibrated threshold).",
    usage: 'sae score SAE_DIR --data FILE --out scores.csv [options]',
    positionals: ['SAE_DIR'],
    options: {
      out: { kind: 'string', help: 'per-input results: .csv (row,error,score,flagged) or .npy (float32 [rows, 3])', group: 'scoring', required: true },
      calibration: { kind: 'string', help: `calibration from sae calibrate (default SAE_DIR/${CALIBRATION_FILENAME})`, group: 'scoring' },
      ...INPUT_OPTIONS,
    },
  },
  async (v, io) => {
    const {
      positionals: [dir],
      out,
    } = v;
    if (!/\.(csv|npy)$/i.test(out)) throw fileError(out, 'scores are written as .csv or .npy: choose one of these extensions');
    const calibrationPath = v.calibration ?? join(dir, CALIBRATION_FILENAME);
    const sae = await loadAnySaeAsSae(dir);
    const calibration = await loadCalibration(calibrationPath, sae, dir).catch((e: unknown) => {
      if (e instanceof UserError && e.message.endsWith('no such file') && v.calibration === undefined) {
        throw fileError(calibrationPath, `no such file: calibrate first (sae calibrate ${dir} --data CLEAN_INPUTS), or pass --calibration FILE`);
      }
      throw e;
    });
    const engine = new Engine({ warn: (m) => print(io.stderr, m) });
    const ds = await openInput(v, dir, sae, engine);
    try {
      const { errors, nonFinite } = await datasetErrors(engine, sae, ds, v.batchSize);
      if (nonFinite > 0) print(io.stderr, `${ds.name}: ${nonFinite} rows hold NaN or Inf; their error and score are NaN and they are not flagged`);
      const scores = normalisedScores(errors, calibration);
      const flagged = Uint8Array.from(errors, (e) => (e > calibration.threshold ? 1 : 0));
      await writeScores(out, errors, scores, flagged);
      const count = flagged.reduce((n, f) => n + f, 0);
      print(io.stdout, `${summary(errors, scores, count, calibration.threshold)}\nwrote ${out}`);
    } finally {
      await ds.close();
      await engine.release();
    }
    return 0;
  },
);
