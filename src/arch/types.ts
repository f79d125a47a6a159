/**
 * What an architecture is: its formulas as onnxruntime graphs (inference encode/decode and the
 * training step with hand-written gradients), its parameters and its hyper-parameters. One short
 * file per architecture, gathered in the table in index.ts.
 */
import type { z } from 'zod';
import type { Engine } from '../engine/index.js';
import type { Dim, GraphBuilder, Value } from '../engine/onnx.js';
import type { Architecture } from './index.js';

/** The names of the table in index.ts (derived from its keys). */
export type { Architecture };

/** The sizes of an SAE: input width and number of latents. */
export interface Dims {
  readonly dIn: number;
  readonly dSae: number;
}

/** Parameters by name (SAELens names: W_enc [dIn, dSae], b_enc [dSae], W_dec [dSae, dIn], b_dec [dIn], ...). */
export type Params = Record<string, Float32Array>;

/** A parameter of an architecture: its name (as saved) and shape. */
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
  /** Fraction of the run done before this step: step / steps, in [0, 1) (for warm-up phases). */
  readonly progress: number;
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
  /** One step on a batch: gradients, loss terms and statistics (state parameters updated in place). */
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

/** What an encoder graph computes: the latent activations f and where they fire. */
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

/**
 * What the decoder computes from the latents: 'affine' is f W_dec + b_dec (a sparse code decodes
 * in O(k dIn) on the kernels, input scaling folds into the weights); 'sigmoid' is sigmoid of that.
 */
export type DecoderKind = 'affine' | 'sigmoid';

/** How the recovery benchmark (src/synthetic/bench.ts) brings an architecture to a target L0. */
export type SparsityKnob =
  /** A hyper-parameter equal to the target L0 (top-k's k): set, not searched. */
  | { readonly kind: 'l0'; readonly key: string }
  /** The architecture's sparsity coefficient (larger is sparser), searched from its default. */
  | { readonly kind: 'coefficient' }
  /** A hyper-parameter that grows with L0 (a target firing rate), searched below `max`. */
  | { readonly kind: 'rate'; readonly key: string; readonly start: number; readonly max: number };

/** How the ground-truth recovery benchmark trains this architecture at a matched sparsity. */
export interface RecoverySettings {
  readonly knob: SparsityKnob;
  /** Keep decoder rows at unit norm while training in the benchmark. */
  readonly unitNormDecoder: boolean;
  /** Hyper-parameters the benchmark derives from the target L0 (jumprelu's TopK warm-up); given ones override them. */
  readonly hyper?: (targetL0: number) => Readonly<Record<string, unknown>>;
}

/** The hyper-parameters of a reference vector file (tools/, float64 PyTorch), by their names there. */
export type ReferenceHyper = Readonly<Record<string, number | string | number[] | undefined>>;

/** A reference vector file's architecture mapped to ours (src/conformance.ts). */
export interface ReferenceCase<H> {
  readonly hyper: H;
  readonly coef: number;
  /** Reference parameter names that we call otherwise (reference -> ours). */
  readonly rename?: Readonly<Record<string, string>>;
  /** Parameters of ours that the reference gives as hyper-parameters. */
  readonly extra?: Readonly<Record<string, Float32Array>>;
}

/** How `sae conformance` reads this architecture's PyTorch reference vectors. */
export interface ReferenceMapping<H> {
  /** The `architecture` names of the reference files this architecture checks against. */
  readonly files: readonly string[];
  /** The reference file's hyper-parameters as ours (with the coefficient and extra parameters). */
  map(h: ReferenceHyper): ReferenceCase<H>;
}

/**
 * Everything the library knows about one architecture, in one object of the table (src/arch/index.ts):
 * its formulas, hyper-parameters (schema and CLI options), parameters, encoder and decoder as graph
 * builders, training step, saved form and SAELens cfg mapping. Adding an architecture is one such
 * object and one line in the table.
 */
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
  readonly unitNormDecoder: boolean;
  /** What its decoder computes (see DecoderKind). */
  decoder(h: H): DecoderKind;
  /** How the recovery benchmark sets its sparsity. */
  readonly recovery: RecoverySettings;
  /** Its reference vector files, for `sae conformance` (none: not checked there). */
  readonly reference?: ReferenceMapping<H>;
  /** Whether the encoder sees x - b_dec (SAELens's apply_b_dec_to_input). */
  applyBDecToInput(h: H): boolean;
  /** b_dec at initialisation from the centre of a data sample (default: the centre itself). */
  initBDec?(center: Float32Array, h: H): Float32Array;
  /** Its parameters (names and shapes) at these sizes. */
  params(d: Dims, h: H): readonly ParamSpec[];
  /** Initial values of the parameters beyond the four common ones (which init.ts sets). */
  initExtra?(d: Dims, h: H): Params;
  /**
   * The form it is saved and used in after training, when that differs (BatchTopK is saved as
   * JumpReLU with its threshold, a log-threshold as the threshold).
   */
  exportForm?(h: H, d: Dims, p: Params): { architecture: Architecture; hyper: unknown; params: Params };
  /** Adds the encoder to a graph: x [batch, dIn] -> f [batch, dSae]. */
  encode(g: GraphBuilder, x: Value, p: ParamValues, h: H, d: Dims): Encoded;
  /** Adds the decoder to a graph: f [batch, dSae] -> x_hat [batch, dIn]. */
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
