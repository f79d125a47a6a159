/** Pieces shared by several architectures. */
import type { GraphBuilder, Value } from '../engine/onnx.js';
import type { Dims, ParamSpec, ParamValues } from './types.js';

/**
 * The named parameters (arrays or graph values) as a typed record: `const { W_enc, b_dec } =
 * paramsOf(p, 'W_enc', 'b_dec')`. A missing one throws, naming it and those present (the shapes
 * were checked where the parameters were made, so this is a bug upstream, not bad input).
 */
export function paramsOf<T, const N extends string>(p: Readonly<Record<string, T>>, ...names: N[]): { readonly [K in N]: T } {
  const out: Record<string, T> = {};
  for (const name of names) {
    const v = p[name];
    if (v === undefined) throw new Error(`parameter ${name} is missing (have ${Object.keys(p).join(', ') || 'none'})`);
    out[name] = v;
  }
  return out as { readonly [K in N]: T }; // every name in N was set just above
}

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
  const { W_dec, b_dec } = paramsOf(p, 'W_dec', 'b_dec');
  return g.gemm(f, W_dec, { c: b_dec });
}

/** w: [rows, cols] -> ||w[i, :]||: [rows] */
export function rowNormsOf(g: GraphBuilder, w: Value): Value {
  return g.sqrt(g.sum(g.square(w), [1]));
}

/** A reference file's hyper-parameter as a number (NaN when absent or not a number). */
export function refNumber(v: number | string | number[] | undefined): number {
  return typeof v === 'number' ? v : NaN;
}
