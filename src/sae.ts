/**
 * A sparse autoencoder: its architecture, sizes, hyper-parameters and parameters, with inference
 * (encode, decode, sparse top-k encode) on the engine.
 */
import { architecture as architectureDef } from './arch/index.js';
import { buildDecodeModel, buildEncodeModel } from './arch/graphs.js';
import type { Architecture, ArchitectureDef, Dims, Params } from './arch/types.js';
import type { Engine } from './engine/index.js';
import { GraphBuilder, type Value } from './engine/onnx.js';
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

export interface SparseCode {
  /** [rows, k] latent indices, largest activation first. */
  readonly indices: Int32Array;
  /** [rows, k] their activations. */
  readonly values: Float32Array;
  readonly k: number;
}

/** The engine's cache key for the graphs of SAEs like this one. */
export function graphKey(architecture: Architecture, dims: Dims, hyper: unknown): string {
  return `${architecture}:${dims.dIn}x${dims.dSae}:${JSON.stringify(hyper)}`;
}

export class Sae {
  readonly def: ArchitectureDef<unknown>;
  readonly key: string;

  constructor(
    readonly architecture: Architecture,
    readonly dims: Dims,
    /** Architecture-specific hyper-parameters (parsed by the architecture's schema). */
    readonly hyper: unknown,
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

  /** Runs `graph` over x in chunks of rows, concatenating the output `name` of `width` per row. */
  private async chunked(engine: Engine, kind: string, build: () => Uint8Array, input: string, x: Float32Array, inWidth: number, outs: readonly { name: string; width: number; make: (n: number) => Float32Array | Int32Array }[]): Promise<(Float32Array | Int32Array)[]> {
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
        const data = out[o.name]!.data;
        if (data instanceof BigInt64Array) results[i]!.set(Int32Array.from(data, Number), start * o.width);
        else results[i]!.set(data as Float32Array | Int32Array, start * o.width);
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
      const g = new GraphBuilder();
      const xv = g.input('x', ['batch', dIn]);
      const p: Record<string, Value> = {};
      for (const spec of this.def.params(this.dims, this.hyper)) p[spec.name] = g.input(spec.name, spec.shape);
      const { f } = this.def.encode(g, xv, p, this.hyper, this.dims);
      const [values, indices] = g.topk(f, g.constant(new BigInt64Array([BigInt(k)]), [1]));
      g.output(values, 'values', ['batch', k]);
      g.output(g.cast(indices, 'int32'), 'indices', ['batch', k], 'int32');
      return g.encode();
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
    if (this.def.decoder(this.hyper) !== 'affine') {
      const f = new Float32Array(rows * dSae);
      for (let r = 0; r < rows; r++) for (let j = 0; j < code.k; j++) f[r * dSae + code.indices[r * code.k + j]!] = code.values[r * code.k + j]!;
      return this.decode(engine, f);
    }
    const out = new Float32Array(rows * dIn);
    const rowPtr = Int32Array.from({ length: rows + 1 }, (_, r) => r * code.k);
    engine.kernels.sparseDecode({ rowPtr, idx: code.indices, rows }, code.values, this.params['W_dec']!, dIn, out);
    const bDec = this.params['b_dec']!;
    for (let r = 0; r < rows; r++) for (let j = 0; j < dIn; j++) out[r * dIn + j]! += bDec[j]!;
    return out;
  }

  /** The form it is saved and used in after training (see ArchitectureDef.exportForm); itself if the same. */
  exported(): Sae {
    const form = this.def.exportForm?.(this.hyper, this.dims, this.params);
    return form ? new Sae(form.architecture, this.dims, form.hyper, form.params, this.metadata) : this;
  }

  /**
   * The same SAE for inputs c times smaller: the one trained on x' = c x, rewritten to take x
   * (W_enc * c, W_dec / c, b_dec / c; the latents are unchanged).
   */
  foldInputScaling(c: number): Sae {
    const params: Params = {};
    for (const [name, p] of Object.entries(this.params)) {
      const k = name === 'W_enc' ? c : name === 'W_dec' || name === 'b_dec' ? 1 / c : 1;
      params[name] = k === 1 ? p.slice() : p.map((v) => v * k);
    }
    return new Sae(this.architecture, this.dims, this.hyper, params, this.metadata);
  }
}
