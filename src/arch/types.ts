/**
 * What an architecture is: its formulas as onnxruntime graphs (inference encode/decode and the
 * training step with hand-written gradients), its parameters and its hyper-parameters. One short
 * file per architecture, gathered in the table in index.ts.
 */
import type { z } from 'zod';
import type { Engine } from '../engine/index.js';
import type { Dim, GraphBuilder, Value } from '../engine/onnx.js';

export type Architecture = 'standard' | 'kl' | 'topk' | 'batchtopk' | 'matryoshka' | 'jumprelu' | 'gated';

export interface Dims {
  readonly dIn: number;
  readonly dSae: number;
}

/** Parameters by name (SAELens names: W_enc [dIn, dSae], b_enc [dSae], W_dec [dSae, dIn], b_dec [dIn], ...). */
export type Params = Record<string, Float32Array>;

export interface ParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
  /** false for state the step updates itself (BatchTopK's threshold): no gradient, no Adam. */
  readonly trainable?: boolean;
}

/** What one training step sees besides the parameters. */
export interface StepInputs {
  /** [rows, dIn] */
  readonly x: Float32Array;
  readonly rows: number;
  /** The scheduled sparsity coefficient. */
  readonly coef: number;
  /** [dSae] 1 where a latent is dead (for auxiliary losses such as AuxK). */
  readonly deadMask: Uint8Array;
}

/** What one training step computed. */
export interface StepResult {
  /** d total / d param for every trainable parameter. */
  readonly grads: Readonly<Record<string, Float32Array>>;
  /** Loss terms, `total` among them. */
  readonly losses: Readonly<Record<string, number>>;
  /** [dSae] inputs of the batch on which each latent fired. */
  readonly fires: Float32Array;
  /** Sum of squared reconstruction errors over the batch. */
  readonly sse: number;
  /** Sum of squared deviations of x from its batch mean (explained variance = 1 - sse / variance). */
  readonly variance: number;
  /** Intermediates by name (only when the step was built for conformance checks). */
  readonly forward: Readonly<Record<string, Float32Array>>;
}

/** The forward and backward pass of one training step (state such as BatchTopK's threshold is updated in place). */
export interface TrainStep {
  run(params: Params, inputs: StepInputs): Promise<StepResult>;
}

/** Graph values of the parameters, by name. */
export type ParamValues = Readonly<Record<string, Value>>;

/** What a training graph sees: the batch, the parameters and the scheduled scalars. */
export interface TrainContext {
  readonly g: GraphBuilder;
  readonly dims: Dims;
  /** [batch, dIn] */
  readonly x: Value;
  readonly p: ParamValues;
  /** The scheduled sparsity coefficient (after warm-up), a float scalar. */
  readonly coef: Value;
  /** The batch size as a float scalar. */
  readonly batch: Value;
  /** Makes an intermediate a graph output when the graph is built for conformance checks. */
  expose(name: string, value: Value, shape: readonly Dim[]): void;
}

/** A dense architecture's training step as graph values (see denseStep in graphs.ts). */
export interface TrainGraph {
  /** d total / d param, for every parameter. */
  readonly grads: Readonly<Record<string, Value>>;
  /** Scalar loss terms, `total` among them. */
  readonly losses: Readonly<Record<string, Value>>;
  /** [batch, dIn] reconstruction. */
  readonly xHat: Value;
  /** [batch, dSae] bool: which latents count as firing (for L0 and dead latents). */
  readonly active: Value;
}

export interface Encoded {
  /** [batch, dSae] latent activations. */
  readonly f: Value;
  /** [batch, dSae] bool: which latents fire. */
  readonly active: Value;
}

/** A hyper-parameter as the CLI shows it: its key in the hyper object, its kind and a one-line help. */
export interface HyperOption {
  readonly key: string;
  readonly kind: 'number' | 'integer' | 'string' | 'boolean' | 'list';
  readonly help: string;
}

export interface ArchitectureDef<H> {
  readonly name: Architecture;
  /** The forward pass and loss, in one line, for --help and docs. */
  readonly formulas: string;
  /** The scheduled sparsity coefficient: its option name and default. */
  readonly coefficient: { readonly name: string; readonly default: number };
  /** Architecture-specific hyper-parameters, with defaults. */
  readonly hyper: z.ZodType<H>;
  /** The same hyper-parameters described for the CLI (flags are the keys in kebab-case). */
  readonly options: readonly HyperOption[];
  /** Whether decoder rows are kept at unit norm unless the user says otherwise. */
  readonly unitNormDecoder?: boolean;
  /** Whether the encoder sees x - b_dec (SAELens's apply_b_dec_to_input). */
  applyBDecToInput(h: H): boolean;
  /** b_dec at initialisation from the centre of a data sample (default: the centre itself). */
  initBDec?(center: Float32Array, h: H): Float32Array;
  params(d: Dims, h: H): readonly ParamSpec[];
  /** Initial values of the parameters beyond the four common ones (which init.ts sets). */
  initExtra?(d: Dims, h: H): Params;
  /**
   * The form it is saved and used in after training, when that differs (BatchTopK is saved as
   * JumpReLU with its threshold, a log-threshold as the threshold).
   */
  exportForm?(h: H, d: Dims, p: Params): { architecture: Architecture; hyper: unknown; params: Params };
  encode(g: GraphBuilder, x: Value, p: ParamValues, h: H, d: Dims): Encoded;
  decode(g: GraphBuilder, f: Value, p: ParamValues, h: H, d: Dims): Value;
  /**
   * Builds the training step; `debug` also reports the intermediates the reference vectors hold.
   * Dense architectures run one onnxruntime graph (denseStep in graphs.ts, from a TrainGraph
   * function); sparse ones run the encoder there and the rest on the kernels.
   */
  step(engine: Engine, d: Dims, h: H, debug: boolean): Promise<TrainStep>;
  /** Extra cfg.json fields for this architecture (names that do not collide with SAELens's). */
  toCfg(h: H): Record<string, unknown>;
  /** Reads the hyper-parameters back from a cfg.json object (already known to be of this architecture). */
  fromCfg(cfg: Readonly<Record<string, unknown>>): H;
}
