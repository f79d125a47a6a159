/**
 * The TopK-family encoder on onnxruntime: the encoder product and each row's selection in one graph,
 * which returns only the selected entries, in chunks of rows that keep the pre-activations in cache.
 *   xc = x - b_dec (or x);  pre = xc W_enc + b_enc  [rows, dSae];  (val, idx) = topk(pre, k)  [rows, k]
 *   AuxK: (aux_val, aux_idx) = topk(pre + dead_bias, k_aux), dead_bias 0 on dead latents, -inf on live
 */
import type { Engine } from '../engine/index.js';
import { type Dim, GraphBuilder, type Value } from '../engine/onnx.js';
import type { Feeds, HostTensor } from '../engine/ort.js';
import { paramsOf } from './common.js';
import { fixedRows, type Selection } from './sparse-code.js';
import type { Dims, Params } from './types.js';

/**
 * Outputs the k largest entries of each row of v [batch, n] (k: an int64 [1] value): their values
 * (float32) and latent indices (int32), both [batch, kDim], largest first.
 */
export function outputTopK(builder: GraphBuilder, v: Value, k: Value, names: { values: string; indices: string }, kDim: Dim): void {
  const [values, indices] = builder.topk(v, k);
  builder.output(values, names.values, ['batch', kDim]);
  builder.output(builder.cast(indices, 'int32'), names.indices, ['batch', kDim], 'int32');
}

/** Options of the TopK-family encoder graph. */
export interface EncoderGraphOptions {
  /** Subtract b_dec from x first (SAELens's apply_b_dec_to_input). */
  readonly applyBDec: boolean;
  /** Also select among dead latents (AuxK): inputs dead_bias [dSae] (0 dead, -inf live) and k_aux [1]. */
  readonly aux: boolean;
  /** Also return pre [batch, dSae] (conformance checks). */
  readonly debug: boolean;
}

/**
 * The encoder and the per-row selection: x [batch, dIn] (and the parameters) -> xc [batch, dIn],
 * val/idx [batch, k] (the k largest pre-activations of each row; k is an input [1]), and with aux
 * aux_val/aux_idx [batch, k_aux] among dead latents.
 */
export function encoderGraph(d: Dims, o: EncoderGraphOptions): Uint8Array {
  const builder = new GraphBuilder();
  const x = builder.input('x', ['batch', d.dIn]);
  const wEnc = builder.input('W_enc', [d.dIn, d.dSae]);
  const bEnc = builder.input('b_enc', [d.dSae]);
  const bDec = builder.input('b_dec', [d.dIn]);
  const k = builder.input('k', [1], 'int64');
  const xc = o.applyBDec ? builder.sub(x, bDec) : x;
  const pre = builder.gemm(xc, wEnc, { c: bEnc }); // [B, dSae]
  outputTopK(builder, pre, k, { values: 'val', indices: 'idx' }, 'k');
  if (o.aux)
    outputTopK(
      builder,
      builder.add(pre, builder.input('dead_bias', [d.dSae])),
      builder.input('k_aux', [1], 'int64'),
      { values: 'aux_val', indices: 'aux_idx' },
      'k',
    );
  builder.output(o.applyBDec ? xc : builder.op('Identity', [x]), 'xc', ['batch', d.dIn]);
  if (o.debug) builder.output(pre, 'pre', ['batch', d.dSae]);
  return builder.encode();
}

export interface EncoderOutput {
  readonly xc: Float32Array;
  readonly main: Selection;
  readonly aux: Selection | undefined;
  readonly pre: Float32Array | undefined;
}

/**
 * Rows per encoder call. The [rows, dSae] pre-activations of one call stay in cache for TopK
 * (512 x 16384 floats = 32 MB) instead of going through memory: measured here at 768 -> 16384,
 * the Gemm + TopK of 4096 rows took 0.97-1.1 s in one call and 0.80-0.83 s in calls of 256-1024.
 */
export const ENCODER_CHUNK = 512;

/** Runs the encoder graph, ENCODER_CHUNK rows a call: k per row (and kAux among dead latents when deadBias is given). */
export async function runEncoder(
  engine: Engine,
  key: string,
  d: Dims,
  o: EncoderGraphOptions,
  params: Params,
  x: Float32Array,
  rows: number,
  k: number,
  aux?: { deadBias: Float32Array; kAux: number },
): Promise<EncoderOutput> {
  const graph = await engine.graph(`${key}:encoder:${o.applyBDec}:${o.aux}:${o.debug}`, () => encoderGraph(d, o));
  const { dIn, dSae } = d;
  const kAux = aux?.kAux ?? 0;
  const xc = new Float32Array(rows * dIn);
  const main = { idx: new Int32Array(rows * k), pre: new Float32Array(rows * k) };
  const auxOut = { idx: new Int32Array(rows * kAux), pre: new Float32Array(rows * kAux) };
  const pre = o.debug ? new Float32Array(rows * dSae) : undefined;
  const { W_enc, b_enc, b_dec } = paramsOf(params, 'W_enc', 'b_enc', 'b_dec');
  const feeds: Feeds = {
    W_enc: { data: W_enc, dims: [dIn, dSae] },
    b_enc: { data: b_enc, dims: [dSae] },
    b_dec: { data: b_dec, dims: [dIn] },
    k: { data: BigInt64Array.of(BigInt(k)), dims: [1] },
  };
  if (aux) {
    feeds['dead_bias'] = { data: aux.deadBias, dims: [dSae] };
    feeds['k_aux'] = { data: BigInt64Array.of(BigInt(kAux)), dims: [1] };
  }
  for (let r0 = 0; r0 < rows; r0 += ENCODER_CHUNK) {
    const n = Math.min(ENCODER_CHUNK, rows - r0);
    const out = await graph.run({ ...feeds, x: { data: x.subarray(r0 * dIn, (r0 + n) * dIn), dims: [n, dIn] } });
    const take = (name: string): Float32Array | Int32Array => (out[name] as HostTensor<Float32Array | Int32Array>).data;
    xc.set(take('xc'), r0 * dIn);
    main.idx.set(take('idx'), r0 * k);
    main.pre.set(take('val'), r0 * k);
    if (aux) {
      auxOut.idx.set(take('aux_idx'), r0 * kAux);
      auxOut.pre.set(take('aux_val'), r0 * kAux);
    }
    if (pre) pre.set(take('pre'), r0 * dSae);
  }
  return {
    xc,
    main: { code: fixedRows(rows, k, main.idx), pre: main.pre },
    aux: aux ? { code: fixedRows(rows, kAux, auxOut.idx), pre: auxOut.pre } : undefined,
    pre,
  };
}
