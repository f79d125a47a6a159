/** Pieces shared by several architectures. */
import type { GraphBuilder, Value } from '../engine/onnx.js';
import type { Dims, ParamSpec, ParamValues } from './types.js';

/** The four parameters every SAE has, in SAELens's orientation. */
export function saeParams(d: Dims): ParamSpec[] {
  return [
    { name: 'W_enc', shape: [d.dIn, d.dSae] },
    { name: 'b_enc', shape: [d.dSae] },
    { name: 'W_dec', shape: [d.dSae, d.dIn] },
    { name: 'b_dec', shape: [d.dIn] },
  ];
}

/** f: [B, dSae] -> f @ W_dec + b_dec: [B, dIn] */
export function decodeAffine(g: GraphBuilder, f: Value, p: ParamValues): Value {
  return g.gemm(f, p['W_dec']!, { c: p['b_dec']! });
}

/** w: [rows, cols] -> ||w[i, :]||: [rows] */
export function rowNormsOf(g: GraphBuilder, w: Value): Value {
  return g.sqrt(g.sum(g.square(w), [1]));
}

/** A reference file's hyper-parameter as a number (NaN when absent or not a number). */
export function refNumber(v: number | string | number[] | undefined): number {
  return typeof v === 'number' ? v : NaN;
}
