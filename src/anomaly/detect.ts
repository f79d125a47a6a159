/**
 * Calibration and its evaluation, shared by `sae calibrate`, `sae score` and the anomaly demo:
 * errors of a whole dataset, detection metrics on labelled errors, and the report page.
 */
import { join } from 'node:path';
import type { Dataset } from '../data/dataset.js';
import { sequentialChunks } from '../data/sequential.js';
import type { Engine } from '../engine/index.js';
import { ensureWritableDir, writeFileAtomic } from '../io/atomic.js';
import type { Sae } from '../sae.js';
import { renderReport, type ReportSection } from '../viz/report.js';
import { histogramSvg, rocSvg, type Series } from '../viz/charts.js';
import { type Confusion, confusionAt, rocAuc, rocCurve } from './roc.js';
import { type Calibration, reconstructionErrors } from './score.js';

export interface DatasetErrors {
  /** [rows] in the dataset's order; NaN where the row holds NaN or Inf. */
  readonly errors: Float32Array;
  readonly nonFinite: number;
}

/** The reconstruction error of every row of `ds`, read in order in chunks of `batch` rows. */
export async function datasetErrors(engine: Engine, sae: Sae, ds: Dataset, batch = 4096): Promise<DatasetErrors> {
  let nonFinite = 0;
  async function* chunks(): AsyncGenerator<{ x: Float32Array; rows: number; mask: Uint8Array }> {
    for await (const c of sequentialChunks(ds, engine.kernels, batch)) {
      nonFinite += c.nonFinite;
      yield { x: c.x, rows: c.rows, mask: c.mask };
    }
  }
  return { errors: await reconstructionErrors(engine, sae, chunks()), nonFinite };
}

export interface Detection {
  /** Rows evaluated (rows with a NaN error are left out). */
  readonly rows: number;
  readonly anomalies: number;
  /** Exact ROC-AUC of the error as a score (ties count one half); NaN with one class only. */
  readonly auc: number;
  /** Counts, precision and recall at the calibration's threshold. */
  readonly atThreshold: Confusion;
}

/** The finite-error rows of errors and labels. */
export function finiteRows(errors: Float32Array, labels: Uint8Array): { errors: Float32Array; labels: Uint8Array } {
  const keep: number[] = [];
  for (let i = 0; i < errors.length; i++) if (!Number.isNaN(errors[i]!)) keep.push(i);
  return { errors: Float32Array.from(keep, (i) => errors[i]!), labels: Uint8Array.from(keep, (i) => labels[i]!) };
}

/** How well errors separate labelled anomalies (labels: [rows], 1 = anomaly) at the threshold. */
export function detection(errors: Float32Array, labels: Uint8Array, threshold: number): Detection {
  const f = finiteRows(errors, labels);
  let anomalies = 0;
  for (const l of f.labels) anomalies += l;
  return { rows: f.errors.length, anomalies, auc: rocAuc(f.errors, f.labels), atThreshold: confusionAt(f.errors, f.labels, threshold) };
}

/** Detection figures as a flat record (JSON, tables). */
export function detectionRecord(d: Detection): Record<string, number | null> {
  const c = d.atThreshold;
  const num = (v: number): number | null => (Number.isNaN(v) ? null : v);
  return {
    rows: d.rows,
    anomalies: d.anomalies,
    roc_auc: num(d.auc),
    precision: num(c.precision),
    recall: num(c.recall),
    false_positive_rate: num(c.falsePositiveRate),
    tp: c.tp,
    fp: c.fp,
    tn: c.tn,
    fn: c.fn,
  };
}

export interface ReportInput {
  readonly title: string;
  readonly intro: string;
  readonly calibration: Calibration;
  /** Errors of the clean calibration inputs. */
  readonly cleanErrors: Float32Array;
  /** Labelled inputs, where there are some. */
  readonly labelled?: { readonly errors: Float32Array; readonly labels: Uint8Array; readonly detection: Detection };
  readonly settings: Readonly<Record<string, unknown>>;
  /** More sections (pictures written by the caller) before the settings. */
  readonly extra?: readonly ReportSection[];
}

function log10Of(errors: Float32Array, keep: (i: number) => boolean): Float32Array {
  const out: number[] = [];
  for (let i = 0; i < errors.length; i++) if (keep(i) && Number.isFinite(errors[i]!)) out.push(Math.log10(Math.max(errors[i]!, 1e-30)));
  return Float32Array.from(out);
}

/** Writes dir/index.html with the error histograms (errors.svg) and, with labels, the ROC curve (roc.svg). */
export async function writeCalibrationReport(dir: string, r: ReportInput): Promise<void> {
  await ensureWritableDir(dir);
  const c = r.calibration;
  const series: Series[] = [{ label: `clean calibration inputs (${r.cleanErrors.length})`, colour: '#2e86c1', values: log10Of(r.cleanErrors, () => true) }];
  const l = r.labelled;
  if (l) {
    series.push({
      label: `labelled normal (${l.detection.rows - l.detection.anomalies})`,
      colour: '#27ae60',
      values: log10Of(l.errors, (i) => l.labels[i] === 0),
    });
    series.push({ label: `labelled anomalies (${l.detection.anomalies})`, colour: '#c0392b', values: log10Of(l.errors, (i) => l.labels[i] === 1) });
  }
  const marker = { at: Math.log10(Math.max(c.threshold, 1e-30)), label: `threshold (q = ${c.quantile})` };
  await writeFileAtomic(join(dir, 'errors.svg'), histogramSvg('Reconstruction error', 'log10 ||x - x_hat||^2', series, marker));
  const sections: ReportSection[] = [
    { heading: 'What this is', text: r.intro },
    {
      heading: 'Calibration',
      table: {
        'clean inputs': c.rows,
        quantile: c.quantile,
        threshold: c.threshold,
        'median ln error (m)': c.logErrorMedian,
        'scale of ln error (s)': c.logErrorScale,
      },
    },
  ];
  if (l) {
    const f = finiteRows(l.errors, l.labels);
    const at = l.detection.atThreshold;
    await writeFileAtomic(
      join(dir, 'roc.svg'),
      rocSvg(`ROC curve (AUC ${l.detection.auc.toFixed(4)})`, rocCurve(f.errors, f.labels), { fpr: at.falsePositiveRate, tpr: at.recall }),
    );
    sections.push({ heading: 'Detection on labelled inputs', table: detectionRecord(l.detection) });
  }
  sections.push({
    heading: 'Pictures',
    images: [
      { src: 'errors.svg', caption: 'Histograms of log10 reconstruction error; inputs right of the dashed line are flagged' },
      ...(l ? [{ src: 'roc.svg', caption: 'ROC curve of the reconstruction error as an anomaly score; the circle is the threshold' }] : []),
    ],
  });
  sections.push(...(r.extra ?? []), { heading: 'Settings', table: r.settings });
  await writeFileAtomic(join(dir, 'index.html'), renderReport(r.title, sections));
}
