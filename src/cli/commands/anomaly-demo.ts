/**
 * sae anomaly-demo: anomaly detection on real labelled data (see src/anomaly/demo.ts); with
 * --defects, where the defect is: visual inspection of a real texture with synthetic defects, the
 * SAE against PCA and a dense autoencoder (see src/anomaly/defect-demo.ts).
 */
import { join } from 'node:path';
import { comparisonNote, DEFECT_DEMO_DEFAULTS, type DefectDemoResult, runDefectDemo } from '../../anomaly/defect-demo.js';
import { ANOMALY_DEMO_DEFAULTS, type DemoAnomalies, runAnomalyDemo } from '../../anomaly/demo.js';
import type { Engine } from '../../engine/index.js';
import { UserError } from '../../errors.js';
import { type CliIO, defineCommand, print } from '../command.js';
import { formatCalibration } from './calibrate.js';
import { formatTable } from './format.js';
import { ENGINE_OPTIONS, engineOf } from './inference-data.js';

const D = ANOMALY_DEMO_DEFAULTS;
const DD = DEFECT_DEMO_DEFAULTS;

/** The defect demo's figures, one row per model. */
export function formatDefectDemo(r: DefectDemoResult): string {
  const rows: [string, string][] = [['model', 'image AUROC  pixel AUROC  AU-PRO (FPR <= 0.3)']];
  for (const f of r.figures) rows.push([f.model, `${f.imageAuroc.toFixed(3).padEnd(13)}${f.pixelAuroc.toFixed(3).padEnd(13)}${f.auPro30.toFixed(3)}`]);
  return formatTable(rows);
}

async function defectDemo(engine: Engine, o: { out: string; steps: number; seed: number; stride: number; quiet: boolean }, io: CliIO): Promise<void> {
  const r = await runDefectDemo(engine, o, io.stderr);
  const f = r.files;
  print(
    io.stdout,
    [
      `${r.description} (the defects are synthetic)`,
      formatDefectDemo(r),
      comparisonNote(r),
      `SAE: held-out L0 ${r.sae.l0.toFixed(1)}, FVU ${r.sae.fvu.toFixed(3)}; dense AE: L0 ${r.dense.l0.toFixed(1)}, FVU ${r.dense.fvu.toFixed(3)}; ${r.seconds.toFixed(0)} s in all`,
      `wrote ${f.report} (figures, best and worst detections), ${f.overlay}, the SAE in ${f.sae}/, the dense AE in ${f.dense}/, the tiles in ${f.data}/`,
      `the same with the CLI: sae inspect ${f.sae} ${join(f.data, 'test')} --out ${join(o.out, 'inspect')}`,
    ].join('\n'),
  );
}

export function parseAnomalies(text: string): DemoAnomalies {
  if (text === 'fashion') return { kind: 'fashion' };
  const m = /^digit:(\d)$/.exec(text);
  if (m) return { kind: 'digit', digit: Number(m[1]) };
  throw new UserError(`--anomalies: expected fashion or digit:K with K in 0..9, got '${text}'`);
}

export const anomalyDemoCommand = defineCommand(
  {
    name: 'anomaly-demo',
    summary:
      'Anomaly detection on real data: an SAE trained on handwritten digits, calibrated on clean ones, scores Fashion-MNIST images (or a left-out digit) as anomalies; prints ROC-AUC, precision and recall and writes a report page. With --defects: where the defect is, on a real texture with synthetic defects (image AUROC, pixel AUROC, PRO for the SAE, PCA and a dense autoencoder).',
    usage: 'sae anomaly-demo [--defects] [options]',
    options: {
      anomalies: {
        kind: 'string',
        help: "fashion (Fashion-MNIST, needs Debian's dataset-fashion-mnist) | digit:K (digit K left out of training) (default fashion)",
        default: 'fashion',
      },
      defects: {
        kind: 'boolean',
        help: 'visual inspection instead: a real texture with synthetic defects, the SAE against PCA and a dense autoencoder (image AUROC, pixel AUROC, PRO)',
        default: false,
      },
      out: { kind: 'string', help: `results folder (default ${D.out}; with --defects ${DD.out})` },
      steps: { kind: 'integer', help: `training steps of 256 rows (default ${D.steps}; with --defects ${DD.steps} per autoencoder)`, min: 1 },
      stride: { kind: 'integer', help: `with --defects: step of the patch window in the maps (default ${DD.stride})`, min: 1 },
      quantile: { kind: 'number', help: `threshold quantile of the calibration errors (default ${D.quantile})`, default: D.quantile },
      seed: { kind: 'integer', help: `seed of the split and the training (default ${D.seed})`, default: D.seed },
      ...ENGINE_OPTIONS,
      quiet: { kind: 'boolean', help: 'no progress output', default: false },
    },
  },
  async (v, io) => {
    const { quantile, seed, quiet } = v;
    if (v.defects) {
      const other = ['anomalies', 'quantile'].filter((k) => v.given.has(k));
      if (other.length > 0) throw new UserError(`${other.map((k) => v.given.get(k)).join(', ')} do not apply with --defects`);
    } else if (v.stride !== undefined) throw new UserError('--stride applies only with --defects');
    if (!(quantile > 0 && quantile < 1)) throw new UserError(`--quantile must be in (0, 1), got ${quantile}`);
    const out = v.out ?? (v.defects ? DD.out : D.out);
    const steps = v.steps ?? (v.defects ? DD.steps : D.steps);
    const engine = engineOf(v, io);
    try {
      if (v.defects) {
        await defectDemo(engine, { out, steps, seed, stride: v.stride ?? DD.stride, quiet }, io);
        return 0;
      }
      const r = await runAnomalyDemo(
        engine,
        {
          out,
          anomalies: parseAnomalies(v.anomalies),
          steps,
          quantile,
          seed,
          quiet,
        },
        io.stderr,
      );
      const f = r.files;
      print(
        io.stdout,
        [
          r.description,
          formatCalibration({
            calibration: r.calibration,
            cleanErrors: r.cleanErrors,
            labelled: { errors: r.testErrors, labels: r.labels, detection: r.detection },
          }),
          `wrote ${f.report} (error histograms, ROC curve, most anomalous inputs), the SAE and its calibration in ${f.sae}/, the data in ${f.data}/; ${r.trainSeconds.toFixed(0)} s of training`,
          `the same with the CLI: sae calibrate ${f.sae} --data ${join(f.data, 'calibration.npy')} --test ${join(f.data, 'test.npy')} --labels ${join(f.data, 'test_labels.npy')}`,
        ].join('\n'),
      );
    } finally {
      await engine.release();
    }
    return 0;
  },
);
