/**
 * A sparse autoencoder: its architecture, sizes, hyper-parameters and parameters, with inference
 * (encode, decode, sparse top-k encode) on the engine.
 */
import { architecture as architectureDef, type HyperOf, parseHyper } from './arch/index.js';
import { buildDecodeModel, buildEncodeModel, paramInputs } from './arch/graphs.js';
import { addRowVector, densify, fixedRows } from './arch/sparse-code.js';
import { outputTopK } from './arch/sparse-encoder.js';
import type { Architecture, ArchitectureDef, Dims, Params } from './arch/types.js';
import type { Engine } from './engine/index.js';
import { GraphBuilder } from './engine/onnx.js';
import type { Feeds } from './engine/ort.js';

/** A power of two of rows, within [256, 4096], such that a [rows, dSae] tensor holds about `floats` floats. */
export function rowsFor(dSae: number, floats: number): number {
  return Math.max(256, Math.min(4096, 2 ** Math.floor(Math.log2(floats / dSae))));
}

/**
 * Rows per onnxruntime call in inference: a [rows, dSae] intermediate near 2^23 floats (32 MB), so
 * that what follows the encoder product (TopK, the nonlinearity) reads it from cache. At
 * 768 -> 16384 the sparse encode ran at 3300 rows/s in calls of 4096 rows.
 */
const INFERENCE_FLOATS = 2 ** 23;

/** The k largest activations of each row, as (indices, values) pairs. */
export interface SparseCode {
  /** [rows, k] latent indices, largest activation first. */
  readonly indices: Int32Array;
  /** [rows, k] their activations. */
  readonly values: Float32Array;
  readonly k: number;
}

/** The engine's cache key for the graphs of SAEs like this one. */
export function graphKey<A extends Architecture>(architecture: A, dims: Dims, hyper: HyperOf<A>): string {
  return `${architecture}:${dims.dIn}x${dims.dSae}:${JSON.stringify(hyper)}`;
}

/**
 * A sparse autoencoder of architecture A: sizes, hyper-parameters and parameters, with inference on
 * an Engine. Code that holds one of any architecture types it as {@link Sae}, the union over the
 * architectures, and narrows on `architecture` to reach the hyper-parameters:
 *
 * @example
 * ```ts
 * const sae = await loadSae('out/sae');
 * const f = await sae.encode(engine, x); // [rows, dIn] -> [rows, dSae]
 * const xHat = await sae.decode(engine, f); // [rows, dSae] -> [rows, dIn]
 * const code = await sae.encodeTopK(engine, x, 16); // the 16 largest latents of each row
 * const xHat16 = await sae.decodeSparse(engine, code);
 * if (sae.architecture === 'topk') console.log(sae.hyper.k); // hyper: TopKHyper
 * ```
 */
export class SparseAutoencoder<A extends Architecture> {
  /** Its architecture's definition, hyper-parameter type erased (`hyper` comes from that definition's schema). */
  readonly def: ArchitectureDef<unknown>;
  readonly key: string;

  /** Checks the parameters against the architecture's shapes; see saeOf to build one from unchecked hyper-parameters. */
  constructor(
    readonly architecture: A,
    readonly dims: Dims,
    /** Architecture-specific hyper-parameters (what the architecture's `hyper` schema outputs). */
    readonly hyper: HyperOf<A>,
    readonly params: Params,
    /** How it was made: data, settings; saved as cfg.json metadata. */
    readonly metadata: Readonly<Record<string, unknown>> = {},
  ) {
    this.def = architectureDef(architecture);
    for (const spec of this.def.params(dims, hyper)) {
      const n = spec.shape.reduce((a, b) => a * b, 1);
      const p = params[spec.name];
      if (!p || p.length !== n) throw new Error(`${architecture} SAE: parameter ${spec.name} must have ${n} values, got ${p?.length ?? 'none'}`);
    }
    // Graphs take the parameters as inputs: SAEs of the same architecture, shape and hyper-parameters share them.
    this.key = graphKey(architecture, dims, hyper);
  }

  private feeds(): Feeds {
    const feeds: Feeds = {};
    for (const spec of this.def.params(this.dims, this.hyper)) feeds[spec.name] = { data: this.params[spec.name]!, dims: spec.shape };
    return feeds;
  }

  /** The parameter `name` (W_dec: [dSae, dIn] ...); throws, naming those it has, if it has none of that name. */
  param(name: string): Float32Array {
    const p = this.params[name];
    if (p === undefined) throw new Error(`${this.architecture} SAE has no parameter ${name} (it has ${Object.keys(this.params).join(', ')})`);
    return p;
  }

  /** Runs `graph` over x in chunks of rows, concatenating the output `name` of `width` per row. */
  private async chunked(
    engine: Engine,
    kind: string,
    build: () => Uint8Array,
    input: string,
    x: Float32Array,
    inWidth: number,
    outs: readonly { name: string; width: number; make: (n: number) => Float32Array | Int32Array }[],
  ): Promise<(Float32Array | Int32Array)[]> {
    if (x.length % inWidth !== 0) throw new Error(`input length ${x.length} is not a multiple of its width ${inWidth}`);
    const rows = x.length / inWidth;
    const graph = await engine.graph(`${this.key}:${kind}`, build);
    const results = outs.map((o) => o.make(rows * o.width));
    const feeds = this.feeds();
    const chunk = rowsFor(this.dims.dSae, INFERENCE_FLOATS);
    for (let start = 0; start < rows; start += chunk) {
      const n = Math.min(chunk, rows - start);
      feeds[input] = { data: x.subarray(start * inWidth, (start + n) * inWidth), dims: [n, inWidth] };
      const out = await graph.run(feeds);
      outs.forEach((o, i) => {
        // The graphs output float32 and int32 only (encodeTopK casts TopK's int64 indices).
        const data = out[o.name]!.data;
        if (!(data instanceof Float32Array || data instanceof Int32Array)) throw new Error(`${kind} graph: output ${o.name} is neither float32 nor int32`);
        results[i]!.set(data, start * o.width);
      });
    }
    return results;
  }

  /** x: [rows, dIn] -> f: [rows, dSae] */
  async encode(engine: Engine, x: Float32Array): Promise<Float32Array> {
    const { dIn, dSae } = this.dims;
    const [f] = await this.chunked(engine, 'encode', () => buildEncodeModel(this.def, this.hyper, this.dims), 'x', x, dIn, [
      { name: 'f', width: dSae, make: (n) => new Float32Array(n) },
    ]);
    return f as Float32Array;
  }

  /** f: [rows, dSae] -> x_hat: [rows, dIn] */
  async decode(engine: Engine, f: Float32Array): Promise<Float32Array> {
    const { dIn, dSae } = this.dims;
    const [xHat] = await this.chunked(engine, 'decode', () => buildDecodeModel(this.def, this.hyper, this.dims), 'f', f, dSae, [
      { name: 'x_hat', width: dIn, make: (n) => new Float32Array(n) },
    ]);
    return xHat as Float32Array;
  }

  /** x: [rows, dIn] -> the k largest activations of each row, as (indices, values) [rows, k]. */
  async encodeTopK(engine: Engine, x: Float32Array, k: number): Promise<SparseCode> {
    const { dIn, dSae } = this.dims;
    if (!Number.isInteger(k) || k < 1 || k > dSae) throw new RangeError(`k must be an integer in [1, ${dSae}], got ${k}`);
    const build = (): Uint8Array => {
      const builder = new GraphBuilder();
      const xv = builder.input('x', ['batch', dIn]);
      const { f } = this.def.encode(builder, xv, paramInputs(builder, this.def, this.hyper, this.dims), this.hyper, this.dims);
      outputTopK(builder, f, builder.constant(BigInt64Array.of(BigInt(k)), [1]), { values: 'values', indices: 'indices' }, k);
      return builder.encode();
    };
    const [indices, values] = await this.chunked(engine, `topk${k}`, build, 'x', x, dIn, [
      { name: 'indices', width: k, make: (n) => new Int32Array(n) },
      { name: 'values', width: k, make: (n) => new Float32Array(n) },
    ]);
    return { indices: indices as Int32Array, values: values as Float32Array, k };
  }

  /**
   * Sparse decode: (indices, values) [rows, k] -> x_hat [rows, dIn] in O(rows k dIn) on the kernels
   * (architectures with an affine decoder; others go through the dense decode).
   */
  async decodeSparse(engine: Engine, code: SparseCode): Promise<Float32Array> {
    const { dIn, dSae } = this.dims;
    const rows = code.indices.length / code.k;
    const csr = fixedRows(rows, code.k, code.indices);
    if (this.def.decoder(this.hyper) !== 'affine') return this.decode(engine, densify({ code: csr, pre: code.values }, code.values, dSae));
    const out = new Float32Array(rows * dIn);
    engine.kernels.sparseDecode(csr, code.values, this.param('W_dec'), dIn, out);
    addRowVector(out, rows, this.param('b_dec'));
    return out;
  }

  /** The form it is saved and used in after training (see ArchitectureDef.exportForm); itself if the same. */
  exported(this: Sae): Sae {
    const form = this.def.exportForm?.(this.hyper, this.dims, this.params);
    return form ? saeOf(form.architecture, this.dims, form.hyper, form.params, this.metadata) : this;
  }

  /** The same SAE with this metadata (saved as cfg.json metadata) in place of its own. */
  withMetadata(metadata: Readonly<Record<string, unknown>>): SparseAutoencoder<A> {
    return new SparseAutoencoder(this.architecture, this.dims, this.hyper, this.params, metadata);
  }

  /**
   * The same SAE for inputs c times smaller: the one trained on x' = c x, rewritten to take x
   * (W_enc * c, W_dec / c, b_dec / c; the latents are unchanged).
   */
  foldInputScaling(c: number): SparseAutoencoder<A> {
    const params: Params = {};
    for (const [name, p] of Object.entries(this.params)) {
      const k = name === 'W_enc' ? c : name === 'W_dec' || name === 'b_dec' ? 1 / c : 1;
      params[name] = k === 1 ? p.slice() : p.map((v) => v * k);
    }
    return new SparseAutoencoder(this.architecture, this.dims, this.hyper, params, this.metadata);
  }
}

/**
 * A sparse autoencoder of any architecture (of those in A): the union of SparseAutoencoder<K> over
 * them, so that narrowing on `architecture` narrows `hyper` to that architecture's type.
 * `new Sae(...)` makes one from typed hyper-parameters; see saeOf for unchecked ones.
 */
export type Sae<A extends Architecture = Architecture> = { [K in A]: SparseAutoencoder<K> }[A];

/** SparseAutoencoder's constructor under the name Sae: `new Sae('topk', dims, { k: 32 }, params)` (Sae is also the union type). */
export const Sae = SparseAutoencoder;

/**
 * A sparse autoencoder whose hyper-parameters are not yet typed (read from a file, or from an
 * architecture's exported form): they go through the architecture's schema first, which throws
 * if they do not fit it.
 */
export function saeOf<A extends Architecture>(
  architecture: A,
  dims: Dims,
  hyper: unknown,
  params: Params,
  metadata: Readonly<Record<string, unknown>> = {},
): Sae<A> {
  return new SparseAutoencoder(architecture, dims, parseHyper(architecture, hyper), params, metadata);
}
