/**
 * The training loop: one onnxruntime call for the forward and backward pass, then the optimiser and
 * the decoder constraint in place on the parameters, bookkeeping, progress and checkpoints. Given
 * the same seed and settings the trajectory is the same, also across a resume after a kill.
 */
import { existsSync } from 'node:fs';
import { paramsOf } from '../arch/common.js';
import type { Architecture, Dims, Params, TrainStep } from '../arch/types.js';
import type { Engine } from '../engine/index.js';
import { UserError } from '../errors.js';
import { Rng } from '../rng.js';
import { type Sae, saeOf } from '../sae.js';
import { Adam } from './adam.js';
import { type Checkpoint, saveCheckpoint } from './checkpoint.js';
import { DeadTracker } from './dead.js';
import { type BDecInit, geometricMedian, initParams, mean, normScalingFactor } from './init.js';
import { Progress, type StepStats } from './progress.js';
import { type ScheduleOptions, learningRate, sparsityCoefficient } from './schedule.js';
import { architecture as architectureDef } from '../arch/index.js';

/** What the trainer reads: batches addressed by step (so a resumed run sees the same data) and a sample. */
export interface TrainingData {
  /** The batch of a step: x [rows, dIn]; the same step gives the same batch. */
  batchAt(step: number): Promise<{ readonly x: Float32Array; readonly rows: number }>;
  /** A seeded sample of training rows: [rows, dIn]. */
  sample(rows: number): Promise<Float32Array>;
}

/** What train() needs: architecture, sizes, schedule, optimiser settings. */
export interface TrainSettings {
  readonly architecture: Architecture;
  readonly dims: Dims;
  /** Architecture-specific hyper-parameters, parsed by its schema. */
  readonly hyper: unknown;
  readonly schedule: ScheduleOptions;
  readonly adam: { readonly beta1: number; readonly beta2: number; readonly eps: number };
  readonly unitNormDecoder: boolean;
  readonly decoderInitNorm: number;
  readonly bDecInit: BDecInit;
  /** 'expected_average_only_in': scale inputs so that E||x|| = sqrt(dIn), folded into the weights when saving. */
  readonly normalizeActivations: 'none' | 'expected_average_only_in';
  /** Inputs without a firing after which a latent counts as dead. */
  readonly deadWindow: number;
  readonly seed: number;
}

/** Progress, checkpoints and resumption of a train() call. */
export interface TrainRunOptions {
  /** Checkpoint file; none: no checkpoints. */
  readonly checkpointPath?: string | undefined;
  readonly checkpointEvery: number;
  /** Resume from this checkpoint. */
  readonly resumeFrom?: Checkpoint | undefined;
  readonly progress: Progress;
  /** Identifies the settings; a checkpoint made under another key is not resumed. */
  readonly key: string;
  /** Rows sampled for the b_dec initialisation and the normalisation factor. */
  readonly sampleRows?: number;
}

/** The trained parameters and the last step's figures. */
export interface TrainResult {
  /** The trained SAE, for raw inputs (the normalisation factor folded in). */
  readonly sae: Sae;
  readonly steps: number;
  readonly lastStats: StepStats | undefined;
  readonly scale: number;
  readonly seconds: number;
}

async function initialState(engine: Engine, s: TrainSettings, data: TrainingData, sampleRows: number, key: string): Promise<Checkpoint> {
  const def = architectureDef(s.architecture);
  const { dIn } = s.dims;
  const needSample = s.normalizeActivations !== 'none' || s.bDecInit !== 'zeros';
  const sample = needSample ? await data.sample(sampleRows) : new Float32Array(0);
  const rows = sample.length / dIn;
  const scale = s.normalizeActivations === 'none' ? 1 : normScalingFactor(sample, rows, dIn);
  if (scale !== 1) engine.kernels.scale(sample, scale);
  const params = initParams(def, s.hyper, s.dims, Rng.derive(s.seed, 1), s.unitNormDecoder ? 1 : s.decoderInitNorm, engine.kernels);
  if (s.bDecInit !== 'zeros') {
    const center = s.bDecInit === 'mean' ? mean(sample, rows, dIn) : geometricMedian(sample, rows, dIn);
    paramsOf(params, 'b_dec').b_dec.set(def.initBDec?.(center, s.hyper) ?? center);
  }
  const adam = new Adam(params, s.adam);
  return { step: 0, params, m: adam.m, v: adam.v, dead: new DeadTracker(s.dims.dSae, s.deadWindow), scale, key };
}

/** Throws a UserError naming the first of `groups` (parameters, Adam moments) that holds NaN or Inf. */
function assertFinite(engine: Engine, groups: Readonly<Record<string, Params>>, step: number): void {
  const flag = new Uint8Array(1);
  for (const [group, params] of Object.entries(groups)) {
    for (const [name, p] of Object.entries(params)) {
      if (engine.kernels.nonFiniteRows(p, 1, p.length, flag) > 0)
        throw new UserError(`step ${step}: ${group} ${name} holds NaN or Inf after the update (the run diverged)`);
    }
  }
}

/** What one step produced. */
export interface StepOutput {
  readonly losses: Record<string, number>;
  /** [dSae] inputs of the batch on which each latent fired. */
  readonly fires: Float32Array;
  readonly explainedVariance: number;
  readonly lr: number;
  readonly coefficient: number;
}

/**
 * One training step: the architecture's forward and backward pass (onnxruntime, and the kernels for
 * sparse architectures), then, in place on the kernels, the decoder-gradient projection, Adam on the
 * trainable parameters and the decoder renormalisation.
 */
export class StepRunner {
  readonly adam: Adam;
  private readonly trainable: Params = {};

  private constructor(
    private readonly engine: Engine,
    private readonly s: TrainSettings,
    readonly params: Params,
    private readonly trainStep: TrainStep,
  ) {
    const def = architectureDef(s.architecture);
    for (const spec of def.params(s.dims, s.hyper)) if (spec.trainable !== false) this.trainable[spec.name] = params[spec.name]!;
    this.adam = new Adam(this.trainable, s.adam);
  }

  /** A runner for these settings, starting from `params`. */
  static async create(engine: Engine, s: TrainSettings, params: Params): Promise<StepRunner> {
    const def = architectureDef(s.architecture);
    return new StepRunner(engine, s, params, await def.step(engine, s.dims, s.hyper, false));
  }

  /**
   * x: [rows, dIn] (already scaled); step: 0-based. Throws a UserError if the loss is not finite or
   * if, after the update, a parameter or an Adam moment holds NaN or Inf: divergence is caught at
   * the step it happens, whatever the schedule (a warm-up can keep the loss finite while Adam's
   * second moment overflows and freezes the weights).
   */
  async step(x: Float32Array, rows: number, step: number, deadMask: Uint8Array): Promise<StepOutput> {
    const { engine, s, params } = this;
    const { dIn, dSae } = s.dims;
    const coefficient = sparsityCoefficient(s.schedule, step);
    const out = await this.trainStep.run(params, { x, rows, coef: coefficient, deadMask, progress: step / s.schedule.steps });
    if (!Number.isFinite(out.losses['total'])) {
      const terms = Object.entries(out.losses)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      throw new UserError(`step ${step + 1}: the loss is not finite (${terms})`);
    }
    const wDec = paramsOf(params, 'W_dec').W_dec;
    if (s.unitNormDecoder) engine.kernels.removeParallelComponent(paramsOf(out.grads, 'W_dec').W_dec, wDec, dSae, dIn);
    const lr = learningRate(s.schedule, step);
    this.adam.update(engine.kernels, this.trainable, out.grads, lr, step + 1);
    if (s.unitNormDecoder) engine.kernels.normalizeRows(wDec, dSae, dIn, 1);
    assertFinite(engine, { parameter: params, 'Adam first moment of': this.adam.m, 'Adam second moment of': this.adam.v }, step + 1);
    return { losses: out.losses, fires: out.fires, explainedVariance: 1 - out.sse / out.variance, lr, coefficient };
  }
}

/**
 * The training loop on any batch source: steps, schedule, dead-latent bookkeeping and checkpoints (runTraining wraps it with data, evaluation and saving).
 */
export async function train(engine: Engine, s: TrainSettings, data: TrainingData, run: TrainRunOptions): Promise<TrainResult> {
  const state = run.resumeFrom ?? (await initialState(engine, s, data, run.sampleRows ?? 8192, run.key));
  if (state.key !== run.key) {
    throw new UserError(`${run.checkpointPath ?? 'checkpoint'}: made with other settings; resume with the same settings, or train into a new output folder`);
  }
  const { params, dead } = state;
  const runner = await StepRunner.create(engine, s, params);
  Object.assign(runner.adam.m, state.m);
  Object.assign(runner.adam.v, state.v);
  const { dIn } = s.dims;
  const deadMask = new Uint8Array(s.dims.dSae);
  const start = performance.now();
  let windowStart = start;
  let windowInputs = 0;
  let lastStats: StepStats | undefined = state.lastStats;
  let lastCheckpoint = state.step;
  if (run.resumeFrom && state.step >= s.schedule.steps) {
    run.progress.message(`the run is already finished (step ${state.step} of ${s.schedule.steps}): nothing to train; its outputs are written again`);
  }

  let next = state.step < s.schedule.steps ? data.batchAt(state.step) : undefined;
  for (let step = state.step; step < s.schedule.steps; step++) {
    const batch = await next!;
    next = step + 1 < s.schedule.steps ? data.batchAt(step + 1) : undefined; // read ahead while this one trains
    const x = batch.x.subarray(0, batch.rows * dIn);
    if (state.scale !== 1) engine.kernels.scale(x, state.scale);
    let out: StepOutput;
    try {
      out = await runner.step(x, batch.rows, step, dead.mask(deadMask));
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      const kept =
        run.checkpointPath !== undefined && lastCheckpoint > 0 && existsSync(run.checkpointPath)
          ? `the last good checkpoint (step ${lastCheckpoint}) is kept in ${run.checkpointPath}`
          : 'no checkpoint was saved before it';
      throw new UserError(`${e.message}; the run stopped and ${kept}. Try a lower learning rate or check the data.`);
    }
    dead.update(out.fires, batch.rows);
    let l0 = 0;
    for (const f of out.fires) l0 += f;
    const now = performance.now();
    windowInputs += batch.rows;
    const rate = (windowInputs * 1000) / Math.max(1, now - windowStart);
    if (now - windowStart > 5000) [windowStart, windowInputs] = [now, 0];
    lastStats = {
      step: step + 1,
      steps: s.schedule.steps,
      inputs: dead.seen,
      lr: out.lr,
      coefficient: out.coefficient,
      losses: out.losses,
      explainedVariance: out.explainedVariance,
      l0: l0 / batch.rows,
      deadFraction: dead.deadFraction(),
      inputsPerSecond: rate,
      elapsedSeconds: (now - start) / 1000,
    };
    run.progress.update(lastStats);

    const done = step + 1 === s.schedule.steps;
    if (run.checkpointPath && ((run.checkpointEvery > 0 && (step + 1) % run.checkpointEvery === 0) || done)) {
      await saveCheckpoint(run.checkpointPath, { ...state, step: step + 1, m: runner.adam.m, v: runner.adam.v, lastStats });
      lastCheckpoint = step + 1;
    }
  }
  run.progress.finish();
  const trained = saeOf(s.architecture, s.dims, s.hyper, params);
  return {
    sae: state.scale === 1 ? trained : trained.foldInputScaling(state.scale),
    steps: s.schedule.steps,
    lastStats,
    scale: state.scale,
    seconds: (performance.now() - start) / 1000,
  };
}
