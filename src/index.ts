/** sparse-autoencoder: train, evaluate and interpret sparse autoencoders. */
export { ARCHITECTURES, architecture } from './arch/index.js';
export type { Architecture, ArchitectureDef, Dims, Params } from './arch/types.js';
export { Engine, type EngineOptions, type KernelsChoice } from './engine/index.js';
export type { Kernels } from './engine/kernels.js';
export { Sae, type SparseCode } from './sae.js';
export { loadSae, loadSparsity, saveSae } from './io/saelens.js';
export { evaluate, MetricsAccumulator, type Metrics } from './eval.js';
export { TrainConfig, type TrainConfigInput } from './train/config.js';
export { runTraining, type RunResult } from './train/run.js';
export { train, StepRunner, type TrainSettings, type TrainingData } from './train/trainer.js';
export { openDataset, type DataSpec } from './store/open.js';
export { memoryDataset } from './data/memory.js';
export { BatchStream } from './data/batches.js';
export type { Dataset } from './data/dataset.js';
export { runConformance, formatConformance } from './conformance.js';
export { UserError } from './errors.js';
