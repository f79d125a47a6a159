/**
 * Training configuration, grouped by concern and validated once at the boundary. The same schema
 * reads a JSON config file and the CLI's flags (flags override the file).
 */
import { z } from 'zod';
import { ARCHITECTURES } from '../arch/index.js';

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().min(0);

export const DataConfig = z
  .object({
    /** A .npy, .safetensors or raw float32 file, an activation store folder, an image file or a folder of images (several: images only). */
    path: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    /** Inferred from the extension when absent (a folder: images). */
    format: z.enum(['npy', 'safetensors', 'raw', 'images', 'store']).optional(),
    /** The tensor to read from a .safetensors file (default: the only one). */
    tensor: z.string().optional(),
    /** Row width of a raw float32 file. */
    width: positiveInt.optional(),
    /** Images: side of the square grey patches (default 12). */
    patchSize: positiveInt.optional(),
    /** Images: how many patches to cut (default 100,000). */
    patches: positiveInt.optional(),
    /** Images: subtract each patch's mean (default true). */
    meanRemoval: z.boolean().optional(),
    /** Images: whitening fitted on a sample of patches (default zca). */
    whitening: z.enum(['none', 'pca', 'zca']).optional(),
    /** Images: whitening regulariser added to the covariance's eigenvalues, pixels in [0, 1] (default 1e-3). */
    whiteningEps: z.number().positive().optional(),
    /** Images: a saved preprocessing (preprocess.safetensors) to apply instead of fitting one. */
    preprocess: z.string().optional(),
    /** Fraction of rows held out for evaluation. */
    heldOut: z.number().min(0).lt(1).default(0.05),
    /** Rows shuffled together (default: 128 MiB of rows). */
    shuffleWindow: positiveInt.optional(),
    /** What to do with rows holding NaN or Inf: stop with an error, or skip them. */
    nonFinite: z.enum(['error', 'skip']).default('error'),
    batchSize: positiveInt.default(4096),
  })
  .strict();

export const ModelConfig = z
  .object({
    architecture: z.enum(ARCHITECTURES as [string, ...string[]]).default('standard'),
    /** Number of latents; default expansionFactor * d_in. */
    dSae: positiveInt.optional(),
    expansionFactor: z.number().positive().default(8),
    /** The architecture's sparsity coefficient (standard: l1_coefficient, kl: beta); default per architecture. */
    coefficient: z.number().min(0).optional(),
    /** Architecture-specific hyper-parameters, checked by the architecture's own schema. */
    hyper: z.record(z.string(), z.unknown()).default({}),
    /** Keep decoder rows at unit norm (and remove the gradient's component along each row); default per architecture (on for the TopK family). */
    unitNormDecoder: z.boolean().optional(),
    /** Norm of the decoder rows at initialisation. */
    decoderInitNorm: z.number().positive().default(0.1),
    bDecInit: z.enum(['geometric_median', 'mean', 'zeros']).default('geometric_median'),
    /** Scale inputs so that E||x|| = sqrt(d_in) while training; folded into the saved weights. */
    normalizeActivations: z.enum(['none', 'expected_average_only_in']).default('none'),
  })
  .strict();

export const OptimizerConfig = z
  .object({
    lr: z.number().positive().default(4e-4),
    beta1: z.number().min(0).lt(1).default(0.9),
    beta2: z.number().min(0).lt(1).default(0.999),
    eps: z.number().positive().default(1e-8),
  })
  .strict();

export const ScheduleConfig = z
  .object({
    steps: positiveInt.default(10_000),
    /** Linear learning-rate warm-up from 0. */
    warmupSteps: nonNegativeInt.default(0),
    /** Learning-rate decay over the last steps (0: none). */
    decaySteps: nonNegativeInt.default(0),
    decay: z.enum(['linear', 'cosine']).default('linear'),
    decayTo: z.number().min(0).max(1).default(0),
    /** Linear warm-up of the sparsity coefficient from 0 (SAELens's l1_warm_up_steps). */
    coefficientWarmupSteps: nonNegativeInt.default(0),
  })
  .strict();

export const LoggingConfig = z
  .object({
    /** Output folder: the SAE (SAELens layout), metrics, log and checkpoint. */
    out: z.string().min(1),
    logEvery: positiveInt.default(100),
    /** Checkpoint every N steps (0: only at the end). */
    checkpointEvery: nonNegativeInt.default(1000),
    /** A latent is dead when it fired on none of the last N inputs. */
    deadWindow: positiveInt.default(4_096_000),
    quiet: z.boolean().default(false),
  })
  .strict();

/**
 * The training configuration (the schema; the type of the same name is a parsed one): data, model,
 * optimiser, schedule and logging, each option with its default. `TrainConfig.parse` fills in the
 * defaults and throws on a bad field; `sae train --config` reads the same object from JSON.
 *
 * @example
 * ```ts
 * const config = TrainConfig.parse({
 *   data: { path: 'activations.npy', batchSize: 4096 },
 *   model: { architecture: 'topk', dSae: 16384, hyper: { k: 32 } },
 *   optimizer: { lr: 4e-4 },
 *   schedule: { steps: 10_000 },
 *   logging: { out: 'out/topk' },
 * });
 * ```
 */
export const TrainConfig = z
  .object({
    data: DataConfig,
    model: ModelConfig.default(ModelConfig.parse({})),
    optimizer: OptimizerConfig.default(OptimizerConfig.parse({})),
    schedule: ScheduleConfig.default(ScheduleConfig.parse({})),
    logging: LoggingConfig,
    seed: nonNegativeInt.default(0),
    /** Threads for onnxruntime and the native kernels (default: every core). */
    threads: positiveInt.optional(),
    kernels: z.enum(['auto', 'native', 'reference']).default('auto'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.schedule.warmupSteps + c.schedule.decaySteps > c.schedule.steps) {
      ctx.addIssue({
        code: 'custom',
        path: ['schedule', 'decaySteps'],
        message: `warmupSteps + decaySteps (${c.schedule.warmupSteps + c.schedule.decaySteps}) exceed steps (${c.schedule.steps})`,
      });
    }
    if (c.data.format === 'raw' && c.data.width === undefined) {
      ctx.addIssue({ code: 'custom', path: ['data', 'width'], message: 'a raw float32 file needs its row width (--width)' });
    }
  });

/** A parsed training configuration (every default filled in). */
export type TrainConfig = z.infer<typeof TrainConfig>;
/** A training configuration as written (a JSON file, CLI flags): defaults may be left out. */
export type TrainConfigInput = z.input<typeof TrainConfig>;
