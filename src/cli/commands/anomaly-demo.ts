/** sae anomaly-demo: anomaly detection on real labelled data (see src/anomaly/demo.ts). */
import { join } from 'node:path';
import { ANOMALY_DEMO_DEFAULTS, type DemoAnomalies, runAnomalyDemo } from '../../anomaly/demo.js';
import { Engine, kernelsChoice } from '../../engine/index.js';
import { UserError } from '../../errors.js';
import type { OptionSpec } from '../args.js';
import { commandArgs, type Command, print } from '../command.js';
import { formatCalibration } from './calibrate.js';

const D = ANOMALY_DEMO_DEFAULTS;

const options: OptionSpec[] = [
  { flag: 'anomalies', key: 'anomalies', kind: 'string', help: "fashion (Fashion-MNIST, needs Debian's dataset-fashion-mnist) | digit:K (digit K left out of training) (default fashion)" },
  { flag: 'out', key: 'out', kind: 'string', help: `results folder (default ${D.out})` },
  { flag: 'steps', key: 'steps', kind: 'integer', help: `training steps of 256 digits (default ${D.steps})` },
  { flag: 'quantile', key: 'quantile', kind: 'number', help: `threshold quantile of the calibration errors (default ${D.quantile})` },
  { flag: 'seed', key: 'seed', kind: 'integer', help: `seed of the split and the training (default ${D.seed})` },
  { flag: 'threads', key: 'threads', kind: 'integer', help: 'threads (default: every core)' },
  { flag: 'kernels', key: 'kernels', kind: 'string', help: 'auto | native | reference (default auto)' },
  { flag: 'quiet', key: 'quiet', kind: 'boolean', help: 'no progress output' },
];

export function parseAnomalies(text: string): DemoAnomalies {
  if (text === 'fashion') return { kind: 'fashion' };
  const m = /^digit:(\d)$/.exec(text);
  if (m) return { kind: 'digit', digit: Number(m[1]) };
  throw new UserError(`--anomalies: expected fashion or digit:K with K in 0..9, got '${text}'`);
}

export const anomalyDemoCommand: Command = {
  name: 'anomaly-demo',
  summary:
    'Anomaly detection on real data: an SAE trained on handwritten digits, calibrated on clean ones, scores Fashion-MNIST images (or a left-out digit) as anomalies; prints ROC-AUC, precision and recall and writes a report page.',
  usage: 'sae anomaly-demo [options]',
  options,
  async run(argv, io) {
    const args = commandArgs(this, argv, io);
    if (!args) return 0;
    if (args.positionals.length) throw new UserError(`unexpected argument '${args.positionals[0]}' (see sae anomaly-demo --help)`);
    const v = args.values;
    const steps = typeof v['steps'] === 'number' ? v['steps'] : D.steps;
    const quantile = typeof v['quantile'] === 'number' ? v['quantile'] : D.quantile;
    if (steps < 1) throw new UserError('--steps must be at least 1');
    if (!(quantile > 0 && quantile < 1)) throw new UserError(`--quantile must be in (0, 1), got ${quantile}`);
    const out = typeof v['out'] === 'string' ? v['out'] : D.out;
    const engine = new Engine({
      ...(typeof v['threads'] === 'number' ? { threads: v['threads'] } : {}),
      ...(typeof v['kernels'] === 'string' ? { kernels: kernelsChoice(v['kernels']) } : {}),
      warn: (m) => print(io.stderr, m),
    });
    try {
      const r = await runAnomalyDemo(
        engine,
        {
          out,
          anomalies: parseAnomalies(typeof v['anomalies'] === 'string' ? v['anomalies'] : 'fashion'),
          steps,
          quantile,
          seed: typeof v['seed'] === 'number' ? v['seed'] : D.seed,
          quiet: v['quiet'] === true,
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
};
