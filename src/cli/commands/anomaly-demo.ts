/** sae anomaly-demo: anomaly detection on real labelled data (see src/anomaly/demo.ts). */
import { join } from 'node:path';
import { ANOMALY_DEMO_DEFAULTS, type DemoAnomalies, runAnomalyDemo } from '../../anomaly/demo.js';
import { UserError } from '../../errors.js';
import { defineCommand, print } from '../command.js';
import { formatCalibration } from './calibrate.js';
import { ENGINE_OPTIONS, engineOf } from './inference-data.js';

const D = ANOMALY_DEMO_DEFAULTS;

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
      'Anomaly detection on real data: an SAE trained on handwritten digits, calibrated on clean ones, scores Fashion-MNIST images (or a left-out digit) as anomalies; prints ROC-AUC, precision and recall and writes a report page.',
    usage: 'sae anomaly-demo [options]',
    options: {
      anomalies: { kind: 'string', help: "fashion (Fashion-MNIST, needs Debian's dataset-fashion-mnist) | digit:K (digit K left out of training) (default fashion)", default: 'fashion' },
      out: { kind: 'string', help: `results folder (default ${D.out})`, default: D.out },
      steps: { kind: 'integer', help: `training steps of 256 digits (default ${D.steps})`, default: D.steps, min: 1 },
      quantile: { kind: 'number', help: `threshold quantile of the calibration errors (default ${D.quantile})`, default: D.quantile },
      seed: { kind: 'integer', help: `seed of the split and the training (default ${D.seed})`, default: D.seed },
      ...ENGINE_OPTIONS,
      quiet: { kind: 'boolean', help: 'no progress output', default: false },
    },
  },
  async (v, io) => {
    const { out, steps, quantile, seed, quiet } = v;
    if (!(quantile > 0 && quantile < 1)) throw new UserError(`--quantile must be in (0, 1), got ${quantile}`);
    const engine = engineOf(v, io);
    try {
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
          formatCalibration({ calibration: r.calibration, cleanErrors: r.cleanErrors, labelled: { errors: r.testErrors, labels: r.labels, detection: r.detection } }),
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
