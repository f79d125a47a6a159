/**
 * sae calibrate: picks the anomaly threshold of an SAE from clean inputs (the q-quantile of their
 * reconstruction errors) and stores it with the reference distribution of normalised scores (see
 * src/anomaly/score.ts); with labels, reports precision, recall and ROC-AUC.
 *   --labels alone labels the rows of --data: the threshold comes from the rows labelled 0, and the
 *   figures are measured on all rows. With --test, --labels labels the rows of --test instead.
 */
import { join } from 'node:path';
import { CALIBRATION_FILENAME, readLabels, saveCalibration } from '../../anomaly/files.js';
import { datasetErrors, type Detection, detection, detectionRecord, writeCalibrationReport } from '../../anomaly/detect.js';
import { type Calibration, fitCalibration } from '../../anomaly/score.js';
import { Engine } from '../../engine/index.js';
import { UserError, fileError } from '../../errors.js';
import { loadAnySaeAsSae } from '../../formats/index.js';
import type { Sae } from '../../sae.js';
import { type CliIO, defineCommand, print } from '../command.js';
import { formatTable } from './format.js';
import { INPUT_OPTIONS, type InputArgs, openInput } from './inference-data.js';

/** The errors of an input file given by `flag` (--data or --test), opened like --data. */
async function errorsOf(
  args: InputArgs & { readonly batchSize: number },
  file: string,
  dir: string,
  sae: Sae,
  engine: Engine,
  io: CliIO,
): Promise<Float32Array> {
  const ds = await openInput({ ...args, data: file }, dir, sae, engine);
  try {
    const { errors, nonFinite } = await datasetErrors(engine, sae, ds, args.batchSize);
    if (nonFinite > 0) print(io.stderr, `${ds.name}: ${nonFinite} rows hold NaN or Inf; they are left out`);
    return errors;
  } finally {
    await ds.close();
  }
}

async function labelsFor(path: string, rows: number, dataFlag: string): Promise<Uint8Array> {
  const labels = await readLabels(path);
  if (labels.length !== rows) throw fileError(path, `holds ${labels.length} labels, but ${dataFlag} has ${rows} rows`);
  return labels;
}

export interface CalibrationRun {
  readonly calibration: Calibration;
  readonly cleanErrors: Float32Array;
  readonly labelled?: { errors: Float32Array; labels: Uint8Array; detection: Detection };
}

export function formatCalibration(r: CalibrationRun): string {
  const c = r.calibration;
  const rows: [string, string][] = [
    ['clean inputs', String(c.rows)],
    ['quantile', String(c.quantile)],
    ['threshold (error)', c.threshold.toPrecision(5)],
    ['score scale: m, s', `${c.logErrorMedian.toFixed(4)}, ${c.logErrorScale.toFixed(4)}`],
  ];
  const d = r.labelled?.detection;
  if (d) {
    const pct = (v: number): string => (Number.isNaN(v) ? 'n/a' : v.toFixed(4));
    rows.push(
      ['labelled inputs', `${d.rows} (${d.anomalies} anomalies)`],
      ['ROC-AUC', Number.isNaN(d.auc) ? 'n/a (the labels hold one class)' : d.auc.toFixed(4)],
      ['precision', pct(d.atThreshold.precision)],
      ['recall', pct(d.atThreshold.recall)],
      ['false-positive rate', pct(d.atThreshold.falsePositiveRate)],
    );
  }
  return formatTable(rows);
}

export const calibrateCommand = defineCommand(
  {
    name: 'calibrate',
    summary:
      'Picks an anomaly threshold from clean inputs (a quantile of their reconstruction errors) and writes the calibration that sae score uses; with labels, reports precision, recall and ROC-AUC.',
    usage: 'sae calibrate SAE_DIR --data CLEAN [--quantile q] [--test FILE] [--labels FILE] [options]',
    positionals: ['SAE_DIR'],
    options: {
      quantile: {
        kind: 'number',
        help: 'the threshold is this quantile of the clean errors (default 0.99: about 1% of clean inputs flagged)',
        group: 'calibration',
        default: 0.99,
      },
      labels: {
        kind: 'string',
        help: 'labels (1 = anomaly) of the rows of --test, or of --data without --test: .npy or text, one per line',
        group: 'calibration',
      },
      test: { kind: 'string', help: 'labelled inputs to measure precision, recall and ROC-AUC on (same format as --data)', group: 'calibration' },
      out: { kind: 'string', help: `calibration file to write (default SAE_DIR/${CALIBRATION_FILENAME})`, group: 'calibration' },
      report: { kind: 'string', help: 'write a page (index.html, error histograms, ROC curve) to this folder', group: 'calibration' },
      ...INPUT_OPTIONS,
    },
  },
  async (args, io) => {
    const {
      positionals: [dir],
      data,
      quantile: q,
      labels: labelsPath,
      test,
      report,
    } = args;
    if (!(q > 0 && q < 1)) throw new UserError(`--quantile must be in (0, 1), got ${String(q)}`);
    if (test !== undefined && labelsPath === undefined) throw new UserError('--test needs --labels (one label per row of --test)');
    const out = args.out ?? join(dir, CALIBRATION_FILENAME);
    const sae = await loadAnySaeAsSae(dir);
    const engine = new Engine({ warn: (m) => print(io.stderr, m) });
    try {
      const dataErrors = await errorsOf(args, data, dir, sae, engine, io);
      let run: CalibrationRun;
      if (labelsPath === undefined) {
        run = { calibration: calibrationOf(dataErrors, q, data), cleanErrors: dataErrors };
      } else if (test === undefined) {
        const labels = await labelsFor(labelsPath, dataErrors.length, '--data');
        const clean = dataErrors.filter((_, i) => labels[i] === 0);
        const calibration = calibrationOf(clean, q, `${data} (rows labelled 0)`);
        run = { calibration, cleanErrors: clean, labelled: { errors: dataErrors, labels, detection: detection(dataErrors, labels, calibration.threshold) } };
        print(
          io.stderr,
          'note: the threshold comes from the normal rows it is measured on; pass held-out labelled rows with --test for figures that are not in-sample',
        );
      } else {
        const calibration = calibrationOf(dataErrors, q, data);
        const testErrors = await errorsOf(args, test, dir, sae, engine, io);
        const labels = await labelsFor(labelsPath, testErrors.length, '--test');
        run = {
          calibration,
          cleanErrors: dataErrors,
          labelled: { errors: testErrors, labels, detection: detection(testErrors, labels, calibration.threshold) },
        };
      }
      const about = { sae: dir, data, ...(test !== undefined ? { test } : {}), ...(labelsPath !== undefined ? { labels: labelsPath } : {}) };
      await saveCalibration(out, run.calibration, sae, { ...about, ...(run.labelled ? { detection: detectionRecord(run.labelled.detection) } : {}) });
      print(io.stdout, `${formatCalibration(run)}\nwrote ${out}`);
      if (report !== undefined) {
        await writeCalibrationReport(report, {
          title: 'Anomaly calibration',
          intro: `Reconstruction errors of the SAE in ${dir}. The threshold is the ${q}-quantile of the errors of clean inputs (${data}).`,
          calibration: run.calibration,
          cleanErrors: run.cleanErrors,
          ...(run.labelled ? { labelled: run.labelled } : {}),
          settings: about,
        });
        print(io.stdout, `wrote ${join(report, 'index.html')}`);
      }
    } finally {
      await engine.release();
    }
    return 0;
  },
);

function calibrationOf(errors: Float32Array, q: number, what: string): Calibration {
  if (!errors.some((e) => !Number.isNaN(e))) throw new UserError(`${what}: no clean rows with finite values to calibrate on`);
  return fitCalibration(errors, q);
}
