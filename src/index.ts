/**
 * sparse-autoencoder: train, evaluate and interpret sparse autoencoders in TypeScript, with
 * onnxruntime for the dense products and a native addon (or the TypeScript reference) for the rest.
 *
 * The main entry points, each with a worked example on its own page:
 * - {@link Engine}: where everything runs (onnxruntime sessions, kernels, threads).
 * - {@link loadSae} / {@link saveSae} and {@link Sae}: SAELens-compatible folders; encode, decode
 *   (narrow on `sae.architecture` for its {@link HyperOf | hyper-parameters}).
 * - {@link runTraining} with a {@link TrainConfig}: train an SAE on a data file into an output folder.
 * - {@link openDataset} and {@link BatchStream}: data files as datasets, datasets as seeded batches.
 * - {@link evaluate}: reconstruction and sparsity metrics of an SAE over batches.
 * - {@link ARCHITECTURES} and {@link ArchitectureDef}: the architectures and what defines one.
 *
 * @packageDocumentation
 */
export { ARCHITECTURES, architecture, parseHyper, type Architecture, type ArchitectureHyper, type HyperOf } from './arch/index.js';
export type {
  ArchitectureDef,
  DecoderKind,
  Dims,
  Encoded,
  HyperOption,
  Params,
  ParamSpec,
  ParamValues,
  RecoverySettings,
  ReferenceCase,
  ReferenceHyper,
  ReferenceMapping,
  SparsityKnob,
  StepInputs,
  StepResult,
  TrainContext,
  TrainGraph,
  TrainStep,
} from './arch/types.js';
export { Engine, type EngineOptions, type KernelsChoice } from './engine/index.js';
export type { AdamHyper, CsrRows, Kernels, KernelsName, ScatterLayout } from './engine/kernels.js';
export type { AttrValue, ConstData, Dim, GraphBuilder, Value } from './engine/onnx.js';
export type { CompileOptions, Feeds, Graph, HostTensor, OrtApi, TensorData } from './engine/ort.js';
export { Sae, saeOf, SparseAutoencoder, type SparseCode } from './sae.js';
export { loadSae, loadSparsity, saveSae, type SaveOptions } from './io/saelens.js';
export {
  evaluate,
  MetricsAccumulator,
  type BatchOutputs,
  type EvalBatch,
  type FiringRateHistogram,
  type Histogram,
  type LatentsSink,
  type Metrics,
  type MetricSums,
} from './eval.js';
export { TrainConfig, type TrainConfigInput } from './train/config.js';
export { runTraining, type RunOptions, type RunResult } from './train/run.js';
export type { StepStats } from './train/progress.js';
export type { Adam } from './train/adam.js';
export type { BDecInit } from './train/init.js';
export type { ScheduleOptions } from './train/schedule.js';
export { train, StepRunner, type StepOutput, type TrainResult, type TrainRunOptions, type TrainSettings, type TrainingData } from './train/trainer.js';
export { openDataset, type DataFormat, type DataSpec } from './store/open.js';
export { memoryDataset } from './data/memory.js';
export { BatchStream, type Batch, type BatchOptions, type NonFinitePolicy, type RowSample } from './data/batches.js';
export type { Dataset } from './data/dataset.js';
export type { ImagePatchOptions } from './data/image-dataset.js';
export type { Split } from './data/split.js';
export type { ImageChannels, ImagePreprocess, Whitening } from './data/whitening.js';
export type { OutStream } from './io/terminal.js';
export { runConformance, formatConformance, type ConformanceReport, type ConformanceRow } from './conformance.js';
export { UserError } from './errors.js';
