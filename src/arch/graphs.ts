/**
 * Turns an architecture's formulas into onnxruntime models: the training step (gradients, loss
 * terms and batch statistics, nothing bigger than a parameter comes back), inference encode and
 * decode.
 */
import type { Dim, GraphBuilder, Value } from '../engine/onnx.js';
import { GraphBuilder as Builder } from '../engine/onnx.js';
import type { ArchitectureDef, Dims, ParamValues } from './types.js';

export function paramInputs<H>(g: GraphBuilder, def: ArchitectureDef<H>, h: H, d: Dims): ParamValues {
  const p: Record<string, Value> = {};
  for (const spec of def.params(d, h)) p[spec.name] = g.input(spec.name, spec.shape);
  return p;
}

/** The batch size of x: [batch, ...] as a float scalar. */
function batchSize(g: GraphBuilder, x: Value): Value {
  const n = g.op('Gather', [g.op('Shape', [x]), g.constant(new BigInt64Array([0n]))], { axis: 0 });
  return g.cast(g.op('Squeeze', [n]), 'float32');
}

/** Names of the training model's outputs. */
export const gradOutput = (param: string): string => `grad.${param}`;
export const lossOutput = (term: string): string => `loss.${term}`;
export const forwardOutput = (name: string): string => `fwd.${name}`;

/**
 * Training step. Inputs: x [batch, dIn], every parameter, coef (scalar). Outputs: grad.<param>,
 * loss.<term>, stats.fires [dSae] (inputs on which each latent fired), stats.sse (sum of squared
 * errors), stats.var (sum of squared deviations of x from its batch mean: explained variance =
 * 1 - sse / var); with `debug`, also fwd.<name> for the intermediates the architecture exposes.
 */
export function buildTrainModel<H>(def: ArchitectureDef<H>, h: H, d: Dims, debug = false): Uint8Array {
  const g = new Builder();
  const x = g.input('x', ['batch', d.dIn]);
  const p = paramInputs(g, def, h, d);
  const coef = g.input('coef', []);
  const batch = batchSize(g, x);
  const expose = (name: string, value: Value, shape: readonly Dim[]): void => {
    if (debug) g.output(value, forwardOutput(name), shape);
  };
  const t = def.train({ g, dims: d, x, p, coef, batch, expose }, h);
  for (const spec of def.params(d, h)) {
    const grad = t.grads[spec.name];
    if (!grad) throw new Error(`${def.name}: no gradient for ${spec.name}`);
    g.output(grad, gradOutput(spec.name), spec.shape);
  }
  for (const [term, v] of Object.entries(t.losses)) g.output(v, lossOutput(term), []);
  g.output(g.sum(g.cast(t.active, 'float32'), [0]), 'stats.fires', [d.dSae]);
  g.output(g.sum(g.square(g.sub(t.xHat, x))), 'stats.sse', []);
  g.output(g.sum(g.square(g.sub(x, g.op('ReduceMean', [x], { axes: [0], keepdims: 1 })))), 'stats.var', []);
  return g.encode();
}

/** Inference encode: x [batch, dIn] -> f [batch, dSae]. */
export function buildEncodeModel<H>(def: ArchitectureDef<H>, h: H, d: Dims): Uint8Array {
  const g = new Builder();
  const x = g.input('x', ['batch', d.dIn]);
  const p = paramInputs(g, def, h, d);
  g.output(def.encode(g, x, p, h, d).f, 'f', ['batch', d.dSae]);
  return g.encode();
}

/** Inference decode: f [batch, dSae] -> x_hat [batch, dIn]. */
export function buildDecodeModel<H>(def: ArchitectureDef<H>, h: H, d: Dims): Uint8Array {
  const g = new Builder();
  const f = g.input('f', ['batch', d.dSae]);
  const p = paramInputs(g, def, h, d);
  g.output(def.decode(g, f, p, h, d), 'x_hat', ['batch', d.dIn]);
  return g.encode();
}
