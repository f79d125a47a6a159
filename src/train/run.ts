/**
 * A whole training run from a validated config: open the data, train (or resume), evaluate on the
 * held-out rows and write the output folder:
 *   cfg.json, sae_weights.safetensors, sparsity.safetensors  the SAE, SAELens layout (loads in Python)
 *   metrics.json        held-out metrics and the last training step's figures
 *   train_log.jsonl     one JSON line every logEvery steps
 *   checkpoint.safetensors  the state to --resume from
 *   preprocess.safetensors  (image data) the patch preprocessing, to treat new images the same way
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { architecture } from '../arch/index.js';
import { BatchStream } from '../data/batches.js';
import type { Dataset } from '../data/dataset.js';
import { isImagePatchDataset } from '../data/image-dataset.js';
import { openDataset, type DataSpec } from '../store/open.js';
import { loadImagePreprocess, saveImagePreprocess } from '../data/preprocess-file.js';
import type { ImagePreprocess } from '../data/whitening.js';
import { Engine } from '../engine/index.js';
import { UserError } from '../errors.js';
import { evaluate, type Metrics } from '../eval.js';
import { ensureWritableDir, writeFileAtomic } from '../io/atomic.js';
import { saveSae } from '../io/saelens.js';
import { isStoreDataset } from '../store/dataset.js';
import { saelensMetadata } from '../store/manifest.js';
import type { Sae } from '../sae.js';
import { loadCheckpoint } from './checkpoint.js';
import type { TrainConfig } from './config.js';
import type { OutStream } from '../io/terminal.js';
import { Progress, type StepStats } from './progress.js';
import { train, type TrainSettings } from './trainer.js';

export const CHECKPOINT_FILENAME = 'checkpoint.safetensors';
export const LOG_FILENAME = 'train_log.jsonl';
export const METRICS_FILENAME = 'metrics.json';
export const PREPROCESS_FILENAME = 'preprocess.safetensors';

/** How runTraining reports and treats an existing output folder. */
export interface RunOptions {
  readonly stderr: OutStream;
  /** Continue from the output folder's checkpoint. */
  readonly resume?: boolean;
  /** Start afresh even if the output folder holds a checkpoint. */
  readonly overwrite?: boolean;
  /** Names options in error messages (config key -> flag). */
  readonly flags?: ReadonlyMap<string, string>;
}

/** What runTraining made: the SAE, its folder and its held-out metrics. */
export interface RunResult {
  readonly sae: Sae;
  readonly out: string;
  readonly metrics: Metrics;
  readonly lastStats: StepStats | undefined;
  readonly seconds: number;
  readonly preprocess: ImagePreprocess | undefined;
  readonly log10FiringRates: Float32Array;
}

/** The data spec of a config (image options only where set). */
export async function dataSpec(c: TrainConfig['data'], seed: number): Promise<DataSpec> {
  const images = {
    seed,
    ...(c.patchSize !== undefined ? { patchSize: c.patchSize } : {}),
    ...(c.patches !== undefined ? { patches: c.patches } : {}),
    ...(c.meanRemoval !== undefined ? { meanRemoval: c.meanRemoval } : {}),
    ...(c.whitening !== undefined ? { whitening: c.whitening } : {}),
    ...(c.whiteningEps !== undefined ? { eps: c.whiteningEps } : {}),
    ...(c.preprocess !== undefined ? { preprocess: await loadImagePreprocess(c.preprocess) } : {}),
  };
  return {
    path: c.path,
    ...(c.format !== undefined ? { format: c.format } : {}),
    ...(c.tensor !== undefined ? { tensor: c.tensor } : {}),
    ...(c.width !== undefined ? { width: c.width } : {}),
    images,
  };
}

/** The architecture's hyper-parameters from the config, with errors that name the flags. */
function parseHyper(c: TrainConfig, flags: ReadonlyMap<string, string>): unknown {
  const def = architecture(c.model.architecture);
  const r = def.hyper.safeParse(c.model.hyper);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => {
    if (i.code === 'unrecognized_keys') {
      const names = i.keys.map((k) => flags.get(`model.hyper.${k}`) ?? `model.hyper.${k}`);
      return `${names.join(', ')} ${names.length > 1 ? 'do' : 'does'} not apply to architecture '${def.name}'`;
    }
    const key = `model.hyper.${i.path.map(String).join('.')}`;
    return `${flags.get(key) ?? key}: ${i.message}`;
  });
  throw new UserError(issues.join('; '));
}

/** What must match for a checkpoint to be resumed: everything but the length of the run and logging. */
function resumeKeyOf(c: TrainConfig): string {
  const { logging: _l, threads: _t, kernels: _k, schedule, ...rest } = c;
  const { steps: _s, decaySteps: _d, ...sched } = schedule;
  return JSON.stringify({ ...rest, schedule: sched });
}

async function prepareOutput(out: string, o: RunOptions): Promise<string> {
  await ensureWritableDir(out);
  const checkpoint = join(out, CHECKPOINT_FILENAME);
  const exists = existsSync(checkpoint);
  if (o.resume && !exists) throw new UserError(`${checkpoint}: no checkpoint to resume from`);
  if (!o.resume && exists && !o.overwrite) {
    throw new UserError(`${out}: holds the checkpoint of an earlier run; pass --resume to continue it, or --overwrite to start afresh`);
  }
  return checkpoint;
}

/** Keeps the log's lines up to `step` (a resumed run rewrites what came after its checkpoint). */
async function trimLog(path: string, step: number): Promise<void> {
  if (!existsSync(path)) return;
  const lines = (await readFile(path, 'utf8')).split('\n').filter((l) => {
    if (!l.trim()) return false;
    try {
      return (JSON.parse(l) as { step?: number }).step! <= step;
    } catch {
      return false;
    }
  });
  await writeFileAtomic(path, lines.map((l) => `${l}\n`).join(''));
}

// eslint-disable-next-line @typescript-eslint/require-await -- an AsyncIterable (what evaluate takes) of rows already in memory
async function* rowBatches(x: Float32Array, rows: number, dIn: number, batch: number): AsyncGenerator<{ x: Float32Array; rows: number }> {
  for (let r = 0; r < rows; r += batch) {
    const n = Math.min(batch, rows - r);
    yield { x: x.subarray(r * dIn, (r + n) * dIn), rows: n };
  }
}

export function settingsOf(c: TrainConfig, dataset: Dataset, hyper: unknown): TrainSettings {
  const def = architecture(c.model.architecture);
  const dIn = dataset.dIn;
  return {
    architecture: def.name,
    dims: { dIn, dSae: c.model.dSae ?? Math.max(1, Math.round(c.model.expansionFactor * dIn)) },
    hyper,
    schedule: {
      steps: c.schedule.steps,
      lr: c.optimizer.lr,
      warmupSteps: c.schedule.warmupSteps,
      decaySteps: c.schedule.decaySteps,
      decay: c.schedule.decay,
      decayTo: c.schedule.decayTo,
      coefficient: c.model.coefficient ?? def.coefficient.default,
      coefWarmupSteps: c.schedule.coefficientWarmupSteps,
    },
    adam: { beta1: c.optimizer.beta1, beta2: c.optimizer.beta2, eps: c.optimizer.eps },
    unitNormDecoder: c.model.unitNormDecoder ?? def.unitNormDecoder,
    decoderInitNorm: c.model.decoderInitNorm,
    bDecInit: c.model.bDecInit,
    normalizeActivations: c.model.normalizeActivations,
    deadWindow: c.logging.deadWindow,
    seed: c.seed,
  };
}

/**
 * Trains an SAE as `c` says: opens the data, holds some out, trains with checkpoints in the output
 * folder (resumable), evaluates on the held-out rows and saves the SAE there as a SAELens folder.
 *
 * @example
 * ```ts
 * import { runTraining, TrainConfig } from 'sparse-autoencoder';
 *
 * const config = TrainConfig.parse({ data: { path: 'activations.npy' }, model: { architecture: 'standard', dSae: 4096 }, logging: { out: 'out/run' } });
 * const result = await runTraining(config, { stderr: process.stderr });
 * console.log(result.out, result.metrics.explained_variance, result.metrics.l0);
 * ```
 */
export async function runTraining(c: TrainConfig, o: RunOptions, engine?: Engine): Promise<RunResult> {
  const flags = o.flags ?? new Map<string, string>();
  const hyper = parseHyper(c, flags);
  const decoder = architecture(c.model.architecture).decoder(hyper);
  if (c.model.normalizeActivations !== 'none' && decoder !== 'affine') {
    throw new UserError(
      `${flags.get('model.normalizeActivations') ?? 'model.normalizeActivations'}: input normalisation cannot be folded into a ${decoder} decoder; use 'none'`,
    );
  }
  const out = c.logging.out;
  const checkpointPath = await prepareOutput(out, o);
  const eng = engine ?? new Engine({ ...(c.threads !== undefined ? { threads: c.threads } : {}), kernels: c.kernels, warn: (m) => o.stderr.write(`${m}\n`) });
  const say = (m: string): void => {
    if (!c.logging.quiet) o.stderr.write(`${m}\n`);
  };

  const dataset = await openDataset(await dataSpec(c.data, c.seed), eng);
  try {
    const stream = await BatchStream.open(
      dataset,
      {
        batchSize: c.data.batchSize,
        seed: c.seed,
        heldOutFraction: c.data.heldOut,
        nonFinite: c.data.nonFinite,
        ...(c.data.shuffleWindow !== undefined ? { windowRows: c.data.shuffleWindow } : {}),
      },
      eng,
    );
    if (stream.nonFiniteRows > 0) say(`${dataset.name}: ${stream.nonFiniteRows} rows contain NaN or Inf; they are skipped`);
    const s = settingsOf(c, dataset, hyper);
    const d = stream.describe();
    say(
      `training ${s.architecture} SAE ${s.dims.dIn} -> ${s.dims.dSae} on ${dataset.name} (${d['trainingRows']} training rows, ${d['heldOutRows']} held out), ` +
        `${s.schedule.steps} steps of ${c.data.batchSize}, ${eng.kernels.name} kernels, ${eng.threads} threads`,
    );
    const key = resumeKeyOf(c);
    const resumeFrom = o.resume ? await loadCheckpoint(checkpointPath) : undefined;
    if (resumeFrom && resumeFrom.key !== key) {
      throw new UserError(`${checkpointPath}: made with other settings than these; resume with the same settings, or train into a new output folder`);
    }
    if (resumeFrom) say(`resuming from step ${resumeFrom.step} (${checkpointPath})`);
    const logFile = join(out, LOG_FILENAME);
    if (resumeFrom) await trimLog(logFile, resumeFrom.step);
    else await writeFile(logFile, '');
    const progress = new Progress({ stream: o.stderr, logFile, every: c.logging.logEvery, quiet: c.logging.quiet });
    const result = await train(
      eng,
      s,
      { batchAt: (step) => stream.batchAt(step), sample: async (n) => (await stream.sampleTraining(n)).x },
      { checkpointPath, checkpointEvery: c.logging.checkpointEvery, resumeFrom, progress, key },
    );

    let evalSet = await stream.heldOut();
    let evalName = 'held_out';
    if (evalSet.rows === 0) {
      evalSet = await stream.sampleTraining(50_000);
      evalName = 'training_sample';
      say('no held-out rows (heldOut 0): metrics are computed on a sample of the training rows');
    }
    const acc = await evaluate(eng, result.sae, rowBatches(evalSet.x, evalSet.rows, s.dims.dIn, 4096));
    const metrics = acc.metrics();
    const log10FiringRates = acc.log10FiringRates();
    const preprocess = isImagePatchDataset(dataset) ? dataset.preprocess : undefined;
    const trained = result.sae.exported();
    const sae = trained.withMetadata({
      dataset_path: dataset.name,
      dataset: dataset.description,
      ...(isStoreDataset(dataset) ? saelensMetadata(dataset.manifest) : {}),
      ...(preprocess ? { preprocess: PREPROCESS_FILENAME } : {}),
      training: {
        steps: s.schedule.steps,
        batch_size: c.data.batchSize,
        [architecture(s.architecture).coefficient.name]: s.schedule.coefficient,
        lr: s.schedule.lr,
        unit_norm_decoder: s.unitNormDecoder,
        normalize_activations_folded: result.scale === 1 ? null : result.scale,
        seed: c.seed,
      },
    });
    await saveSae(out, sae, { log10FiringRates });
    if (preprocess) await saveImagePreprocess(join(out, PREPROCESS_FILENAME), preprocess);
    const record = { [evalName]: metrics, last_step: result.lastStats ?? null, seconds: result.seconds, kernels: eng.kernels.name, threads: eng.threads };
    await writeFileAtomic(join(out, METRICS_FILENAME), `${JSON.stringify(record, null, 2)}\n`);
    return { sae, out, metrics, lastStats: result.lastStats, seconds: result.seconds, preprocess, log10FiringRates };
  } finally {
    await dataset.close();
  }
}
