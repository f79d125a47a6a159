/** sae train: trains an SAE on a data file and writes the output folder (see src/train/run.ts). */
import { ARCHITECTURES, architecture } from '../../arch/index.js';
import { formatIssues, UserError } from '../../errors.js';
import { TrainConfig } from '../../train/config.js';
import { runTraining } from '../../train/run.js';
import { configObject, kebab, merge, type Option, type Options, type Parsed } from '../args.js';
import { defineCommand, print } from '../command.js';
import { readJsonObject } from '../../io/json.js';
import { formatMetrics } from './format.js';

const defs = ARCHITECTURES.map((a) => architecture(a));
const coefficientFlags = [...new Set(defs.map((d) => kebab(d.coefficient.name.replace(/_/g, '-'))))];
const hyperOptions = [...new Map(defs.flatMap((d) => d.options.map((o) => [o.key, o] as const))).values()];

/** Keyed by flag; `path` places each value in the config object that TrainConfig validates. */
export const TRAIN_OPTIONS: Options = {
  config: { path: 'config', kind: 'string', help: 'JSON config file ({data, model, optimizer, schedule, logging, seed}); flags override it', group: 'run' },
  out: { path: 'logging.out', kind: 'string', help: 'output folder', group: 'run', required: true },
  resume: { path: 'resume', kind: 'boolean', help: "continue the output folder's checkpoint", group: 'run' },
  overwrite: { path: 'overwrite', kind: 'boolean', help: 'start afresh even if the output folder holds a checkpoint', group: 'run' },
  seed: { path: 'seed', kind: 'integer', help: 'seed of the initialisation, split and shuffles (default 0)', group: 'run' },
  threads: { path: 'threads', kind: 'integer', help: 'threads (default: every core)', group: 'run' },
  kernels: { path: 'kernels', kind: 'string', help: 'auto | native | reference (default auto)', group: 'run' },

  data: { path: 'data.path', kind: 'string', help: '.npy (f32/f16), .safetensors, raw float32 file, image or folder of images', group: 'data', required: true },
  format: { path: 'data.format', kind: 'string', help: 'npy | safetensors | raw | images (default: from the extension)', group: 'data' },
  tensor: { path: 'data.tensor', kind: 'string', help: 'the tensor of a .safetensors file (default: the only one)', group: 'data' },
  width: { path: 'data.width', kind: 'integer', help: 'row width of a raw float32 file', group: 'data' },
  'batch-size': { path: 'data.batchSize', kind: 'integer', help: 'inputs per step (default 4096)', group: 'data' },
  'held-out': { path: 'data.heldOut', kind: 'number', help: 'fraction of rows held out for evaluation (default 0.05)', group: 'data' },
  'shuffle-window': { path: 'data.shuffleWindow', kind: 'integer', help: 'rows shuffled together (default: 128 MiB of rows)', group: 'data' },
  nonfinite: { path: 'data.nonFinite', kind: 'string', help: 'rows with NaN/Inf: error | skip (default error)', group: 'data' },
  'patch-size': { path: 'data.patchSize', kind: 'integer', help: 'images: patch side in pixels (default 12)', group: 'data' },
  patches: { path: 'data.patches', kind: 'integer', help: 'images: patches to cut (default 100000)', group: 'data' },
  'mean-removal': { path: 'data.meanRemoval', kind: 'boolean', help: "images: subtract each patch's mean (default true; --no-mean-removal)", group: 'data' },
  whitening: { path: 'data.whitening', kind: 'string', help: 'images: none | pca | zca (default zca)', group: 'data' },
  'whitening-eps': { path: 'data.whiteningEps', kind: 'number', help: 'images: whitening regulariser (default 1e-3)', group: 'data' },
  preprocess: { path: 'data.preprocess', kind: 'string', help: 'images: apply this saved preprocess.safetensors instead of fitting one', group: 'data' },

  architecture: { path: 'model.architecture', kind: 'string', help: `${ARCHITECTURES.join(' | ')} (default standard)`, group: 'model' },
  'd-sae': { path: 'model.dSae', kind: 'integer', help: 'number of latents (default expansion-factor * d_in)', group: 'model' },
  'expansion-factor': { path: 'model.expansionFactor', kind: 'number', help: 'd_sae / d_in when --d-sae is not given (default 8)', group: 'model' },
  ...Object.fromEntries(
    coefficientFlags.map((flag): [string, Option] => {
      const users = defs.filter((d) => kebab(d.coefficient.name.replace(/_/g, '-')) === flag);
      return [
        flag,
        {
          path: 'model.coefficient',
          kind: 'number',
          help: `sparsity coefficient of ${users.map((d) => `${d.name} (default ${d.coefficient.default})`).join(', ')}`,
          group: 'model',
        },
      ];
    }),
  ),
  ...Object.fromEntries(
    hyperOptions.map((o): [string, Option] => [
      kebab(o.key),
      {
        path: `model.hyper.${o.key}`,
        kind: o.kind,
        help: `${defs
          .filter((d) => d.options.some((x) => x.key === o.key))
          .map((d) => d.name)
          .join(', ')}: ${o.help}`,
        group: 'model',
      },
    ]),
  ),
  'unit-norm-decoder': { path: 'model.unitNormDecoder', kind: 'boolean', help: 'keep decoder rows at unit norm', group: 'model' },
  'decoder-init-norm': { path: 'model.decoderInitNorm', kind: 'number', help: 'decoder row norm at initialisation (default 0.1)', group: 'model' },
  'b-dec-init': { path: 'model.bDecInit', kind: 'string', help: 'geometric_median | mean | zeros (default geometric_median)', group: 'model' },
  'normalize-activations': {
    path: 'model.normalizeActivations',
    kind: 'string',
    help: 'none | expected_average_only_in (scale to E||x|| = sqrt(d_in), folded into the saved weights)',
    group: 'model',
  },

  lr: { path: 'optimizer.lr', kind: 'number', help: 'Adam learning rate (default 4e-4)', group: 'optimizer' },
  'adam-beta1': { path: 'optimizer.beta1', kind: 'number', help: 'default 0.9', group: 'optimizer' },
  'adam-beta2': { path: 'optimizer.beta2', kind: 'number', help: 'default 0.999', group: 'optimizer' },
  'adam-eps': { path: 'optimizer.eps', kind: 'number', help: 'default 1e-8', group: 'optimizer' },

  steps: { path: 'schedule.steps', kind: 'integer', help: 'training steps (default 10000)', group: 'schedule' },
  'warmup-steps': { path: 'schedule.warmupSteps', kind: 'integer', help: 'linear learning-rate warm-up (default 0)', group: 'schedule' },
  'decay-steps': { path: 'schedule.decaySteps', kind: 'integer', help: 'learning-rate decay over the last steps (default 0)', group: 'schedule' },
  decay: { path: 'schedule.decay', kind: 'string', help: 'linear | cosine (default linear)', group: 'schedule' },
  'decay-to': { path: 'schedule.decayTo', kind: 'number', help: 'final learning rate as a fraction of --lr (default 0)', group: 'schedule' },
  'coefficient-warmup-steps': {
    path: 'schedule.coefficientWarmupSteps',
    kind: 'integer',
    help: 'linear warm-up of the sparsity coefficient (default 0)',
    group: 'schedule',
  },

  'log-every': { path: 'logging.logEvery', kind: 'integer', help: 'log a line every N steps (default 100)', group: 'logging' },
  'checkpoint-every': {
    path: 'logging.checkpointEvery',
    kind: 'integer',
    help: 'checkpoint every N steps (default 1000; 0: at the end only)',
    group: 'logging',
  },
  'dead-window': {
    path: 'logging.deadWindow',
    kind: 'integer',
    help: 'a latent is dead after this many inputs without firing (default 4096000)',
    group: 'logging',
  },
  quiet: { path: 'logging.quiet', kind: 'boolean', help: 'no progress output', group: 'logging' },
};

/** Flags merged over the config file, validated; the coefficient flag must be the architecture's. */
export async function trainConfigFrom(args: Parsed<typeof TRAIN_SPEC>): Promise<TrainConfig> {
  const { config: configPath, resume: _r, overwrite: _o, ...values } = configObject(TRAIN_OPTIONS, args, args.given);
  const base = typeof configPath === 'string' ? await readJsonObject(configPath) : {};
  const merged = merge(base, values);
  const r = TrainConfig.safeParse(merged);
  if (!r.success) {
    const fromFile = typeof configPath === 'string';
    const messages = r.error.issues.map((i) => {
      const key = i.path.map(String).join('.');
      const missing = i.code === 'invalid_type' && i.message.endsWith('received undefined');
      // a whole group missing means its required option was not given: data (--data), logging (--out)
      const required = Object.entries(TRAIN_OPTIONS).find(([, o]) => o.required && (o.path === key || o.path?.startsWith(`${key}.`)));
      const flag = args.given.get(key) ?? (missing && required && !fromFile ? `--${required[0]}` : undefined);
      if (flag) return `${flag}: ${missing ? 'is required' : i.message}`;
      return formatIssues([i], fromFile ? configPath : '');
    });
    throw new UserError(messages.join('; '));
  }
  const c = r.data;
  const given = args.given.get('model.coefficient');
  const expected = `--${kebab(architecture(c.model.architecture).coefficient.name.replace(/_/g, '-'))}`;
  if (given && given !== expected)
    throw new UserError(`${given} does not apply to architecture '${c.model.architecture}': its sparsity coefficient is ${expected}`);
  return c;
}

const TRAIN_SPEC = {
  name: 'train',
  summary: 'Trains a sparse autoencoder and writes the SAE (SAELens layout), metrics.json, train_log.jsonl and a checkpoint to --out.',
  usage: 'sae train --data FILE --out DIR [options]',
  options: TRAIN_OPTIONS,
  configOption: 'config',
} as const;

export const trainCommand = defineCommand(TRAIN_SPEC, async (args, io) => {
  const c = await trainConfigFrom(args);
  const result = await runTraining(c, { stderr: io.stderr, resume: args['resume'] === true, overwrite: args['overwrite'] === true, flags: args.given });
  print(io.stdout, `${formatMetrics(result.metrics)}\nsaved to ${result.out} (${result.seconds.toFixed(1)} s of training)`);
  return 0;
});
