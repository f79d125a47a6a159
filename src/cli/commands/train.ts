/** sae train: trains an SAE on a data file and writes the output folder (see src/train/run.ts). */
import { ARCHITECTURES, architecture } from '../../arch/index.js';
import { UserError } from '../../errors.js';
import { TrainConfig, formatIssues } from '../../train/config.js';
import { runTraining } from '../../train/run.js';
import { type OptionSpec, type ParsedArgs, kebab, merge } from '../args.js';
import { commandArgs, type CliIO, type Command, print } from '../command.js';
import { readJsonObject } from '../../io/json.js';
import { formatMetrics } from './format.js';

const defs = ARCHITECTURES.map((a) => architecture(a));
const coefficientFlags = [...new Set(defs.map((d) => kebab(d.coefficient.name.replace(/_/g, '-'))))];
const hyperOptions = [...new Map(defs.flatMap((d) => d.options.map((o) => [o.key, o] as const))).values()];

export const TRAIN_OPTIONS: readonly OptionSpec[] = [
  { flag: 'config', key: 'config', kind: 'string', help: 'JSON config file ({data, model, optimizer, schedule, logging, seed}); flags override it', group: 'run' },
  { flag: 'out', key: 'logging.out', kind: 'string', help: 'output folder', group: 'run', required: true },
  { flag: 'resume', key: 'resume', kind: 'boolean', help: "continue the output folder's checkpoint", group: 'run' },
  { flag: 'overwrite', key: 'overwrite', kind: 'boolean', help: 'start afresh even if the output folder holds a checkpoint', group: 'run' },
  { flag: 'seed', key: 'seed', kind: 'integer', help: 'seed of the initialisation, split and shuffles (default 0)', group: 'run' },
  { flag: 'threads', key: 'threads', kind: 'integer', help: 'threads (default: every core)', group: 'run' },
  { flag: 'kernels', key: 'kernels', kind: 'string', help: 'auto | native | reference (default auto)', group: 'run' },

  { flag: 'data', key: 'data.path', kind: 'string', help: '.npy (f32/f16), .safetensors, raw float32 file, image or folder of images', group: 'data', required: true },
  { flag: 'format', key: 'data.format', kind: 'string', help: 'npy | safetensors | raw | images (default: from the extension)', group: 'data' },
  { flag: 'tensor', key: 'data.tensor', kind: 'string', help: 'the tensor of a .safetensors file (default: the only one)', group: 'data' },
  { flag: 'width', key: 'data.width', kind: 'integer', help: 'row width of a raw float32 file', group: 'data' },
  { flag: 'batch-size', key: 'data.batchSize', kind: 'integer', help: 'inputs per step (default 4096)', group: 'data' },
  { flag: 'held-out', key: 'data.heldOut', kind: 'number', help: 'fraction of rows held out for evaluation (default 0.05)', group: 'data' },
  { flag: 'shuffle-window', key: 'data.shuffleWindow', kind: 'integer', help: 'rows shuffled together (default: 128 MiB of rows)', group: 'data' },
  { flag: 'nonfinite', key: 'data.nonFinite', kind: 'string', help: 'rows with NaN/Inf: error | skip (default error)', group: 'data' },
  { flag: 'patch-size', key: 'data.patchSize', kind: 'integer', help: 'images: patch side in pixels (default 12)', group: 'data' },
  { flag: 'patches', key: 'data.patches', kind: 'integer', help: 'images: patches to cut (default 100000)', group: 'data' },
  { flag: 'mean-removal', key: 'data.meanRemoval', kind: 'boolean', help: "images: subtract each patch's mean (default true; --no-mean-removal)", group: 'data' },
  { flag: 'whitening', key: 'data.whitening', kind: 'string', help: 'images: none | pca | zca (default zca)', group: 'data' },
  { flag: 'whitening-eps', key: 'data.whiteningEps', kind: 'number', help: 'images: whitening regulariser (default 1e-3)', group: 'data' },
  { flag: 'preprocess', key: 'data.preprocess', kind: 'string', help: 'images: apply this saved preprocess.safetensors instead of fitting one', group: 'data' },

  { flag: 'architecture', key: 'model.architecture', kind: 'string', help: `${ARCHITECTURES.join(' | ')} (default standard)`, group: 'model' },
  { flag: 'd-sae', key: 'model.dSae', kind: 'integer', help: 'number of latents (default expansion-factor * d_in)', group: 'model' },
  { flag: 'expansion-factor', key: 'model.expansionFactor', kind: 'number', help: 'd_sae / d_in when --d-sae is not given (default 8)', group: 'model' },
  ...coefficientFlags.map((flag): OptionSpec => {
    const users = defs.filter((d) => kebab(d.coefficient.name.replace(/_/g, '-')) === flag);
    return { flag, key: 'model.coefficient', kind: 'number', help: `sparsity coefficient of ${users.map((d) => `${d.name} (default ${d.coefficient.default})`).join(', ')}`, group: 'model' };
  }),
  ...hyperOptions.map((o): OptionSpec => ({ flag: kebab(o.key), key: `model.hyper.${o.key}`, kind: o.kind, help: `${defs.filter((d) => d.options.some((x) => x.key === o.key)).map((d) => d.name).join(', ')}: ${o.help}`, group: 'model' })),
  { flag: 'unit-norm-decoder', key: 'model.unitNormDecoder', kind: 'boolean', help: 'keep decoder rows at unit norm', group: 'model' },
  { flag: 'decoder-init-norm', key: 'model.decoderInitNorm', kind: 'number', help: 'decoder row norm at initialisation (default 0.1)', group: 'model' },
  { flag: 'b-dec-init', key: 'model.bDecInit', kind: 'string', help: 'geometric_median | mean | zeros (default geometric_median)', group: 'model' },
  { flag: 'normalize-activations', key: 'model.normalizeActivations', kind: 'string', help: 'none | expected_average_only_in (scale to E||x|| = sqrt(d_in), folded into the saved weights)', group: 'model' },

  { flag: 'lr', key: 'optimizer.lr', kind: 'number', help: 'Adam learning rate (default 4e-4)', group: 'optimizer' },
  { flag: 'adam-beta1', key: 'optimizer.beta1', kind: 'number', help: 'default 0.9', group: 'optimizer' },
  { flag: 'adam-beta2', key: 'optimizer.beta2', kind: 'number', help: 'default 0.999', group: 'optimizer' },
  { flag: 'adam-eps', key: 'optimizer.eps', kind: 'number', help: 'default 1e-8', group: 'optimizer' },

  { flag: 'steps', key: 'schedule.steps', kind: 'integer', help: 'training steps (default 10000)', group: 'schedule' },
  { flag: 'warmup-steps', key: 'schedule.warmupSteps', kind: 'integer', help: 'linear learning-rate warm-up (default 0)', group: 'schedule' },
  { flag: 'decay-steps', key: 'schedule.decaySteps', kind: 'integer', help: 'learning-rate decay over the last steps (default 0)', group: 'schedule' },
  { flag: 'decay', key: 'schedule.decay', kind: 'string', help: 'linear | cosine (default linear)', group: 'schedule' },
  { flag: 'decay-to', key: 'schedule.decayTo', kind: 'number', help: 'final learning rate as a fraction of --lr (default 0)', group: 'schedule' },
  { flag: 'coefficient-warmup-steps', key: 'schedule.coefficientWarmupSteps', kind: 'integer', help: 'linear warm-up of the sparsity coefficient (default 0)', group: 'schedule' },

  { flag: 'log-every', key: 'logging.logEvery', kind: 'integer', help: 'log a line every N steps (default 100)', group: 'logging' },
  { flag: 'checkpoint-every', key: 'logging.checkpointEvery', kind: 'integer', help: 'checkpoint every N steps (default 1000; 0: at the end only)', group: 'logging' },
  { flag: 'dead-window', key: 'logging.deadWindow', kind: 'integer', help: 'a latent is dead after this many inputs without firing (default 4096000)', group: 'logging' },
  { flag: 'quiet', key: 'logging.quiet', kind: 'boolean', help: 'no progress output', group: 'logging' },
];

/** Flags merged over the config file, validated; the coefficient flag must be the architecture's. */
export async function trainConfigFrom(args: ParsedArgs): Promise<TrainConfig> {
  const { config: configPath, resume: _r, overwrite: _o, ...values } = args.values;
  const base = typeof configPath === 'string' ? await readJsonObject(configPath) : {};
  const merged = merge(base, values);
  const r = TrainConfig.safeParse(merged);
  if (!r.success) {
    const fromFile = typeof configPath === 'string';
    const messages = r.error.issues.map((i) => {
      const key = i.path.map(String).join('.');
      const missing = i.code === 'invalid_type' && i.message.endsWith('received undefined');
      // a whole group missing means its required option was not given: data (--data), logging (--out)
      const required = TRAIN_OPTIONS.find((o) => o.required && (o.key === key || o.key.startsWith(`${key}.`)));
      const flag = args.given.get(key) ?? (missing && required && !fromFile ? `--${required.flag}` : undefined);
      if (flag) return `${flag}: ${missing ? 'is required' : i.message}`;
      return formatIssues([i], fromFile ? configPath : '');
    });
    throw new UserError(messages.join('; '));
  }
  const c = r.data;
  const given = args.given.get('model.coefficient');
  const expected = `--${kebab(architecture(c.model.architecture).coefficient.name.replace(/_/g, '-'))}`;
  if (given && given !== expected) throw new UserError(`${given} does not apply to architecture '${c.model.architecture}': its sparsity coefficient is ${expected}`);
  return c;
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'Trains a sparse autoencoder and writes the SAE (SAELens layout), metrics.json, train_log.jsonl and a checkpoint to --out.',
  usage: 'sae train --data FILE --out DIR [options]',
  options: TRAIN_OPTIONS,
  async run(argv: readonly string[], io: CliIO) {
    const args = commandArgs(this, argv, io);
    if (!args) return 0;
    if (args.positionals.length) throw new UserError(`unexpected argument '${args.positionals[0]}' (sae train takes options only; see sae train --help)`);
    const c = await trainConfigFrom(args);
    const result = await runTraining(c, { stderr: io.stderr, resume: args.values['resume'] === true, overwrite: args.values['overwrite'] === true, flags: args.given });
    print(io.stdout, `${formatMetrics(result.metrics)}\nsaved to ${result.out} (${result.seconds.toFixed(1)} s of training)`);
    return 0;
  },
};
