/**
 * Turns an architecture's formulas into onnxruntime models: the training step (gradients, loss
 * terms and batch statistics, nothing bigger than a parameter comes back), inference encode and
 * decode.
 */
import { type Dim, GraphBuilder, type Value } from '../engine/onnx.js';
import type { Feeds } from '../engine/ort.js';
import type { Engine } from '../engine/index.js';
import type { ArchitectureDef, Dims, ParamValues, TrainContext, TrainGraph, TrainStep } from './types.js';

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

/** Prefixes of the training model's outputs: grad.<param>, loss.<term>, fwd.<intermediate>. */
const GRAD = 'grad.';
const LOSS = 'loss.';
const FWD = 'fwd.';

/** A dense architecture's training graph: its formulas with hand-written gradients. */
export type DenseTrain<H> = (ctx: TrainContext, h: H) => TrainGraph;

/**
 * Training step as one model. Inputs: x [batch, dIn], every parameter, coef (scalar). Outputs:
 * grad.<param>, loss.<term>, stats.fires [dSae] (inputs on which each latent fired), stats.sse
 * (sum of squared errors), stats.var (sum of squared deviations of x from its batch mean); with
 * `debug`, also fwd.<name> for the intermediates the architecture exposes.
 */
export function buildTrainModel<H>(def: ArchitectureDef<H>, trainGraph: DenseTrain<H>, h: H, d: Dims, debug = false): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input('x', ['batch', d.dIn]);
  const p = paramInputs(g, def, h, d);
  const coef = g.input('coef', []);
  const batch = batchSize(g, x);
  const expose = (name: string, value: Value, shape: readonly Dim[]): void => {
    if (debug) g.output(value, FWD + name, shape);
  };
  const t = trainGraph({ g, dims: d, x, p, coef, batch, expose }, h);
  for (const spec of def.params(d, h)) {
    const grad = t.grads[spec.name];
    if (!grad) throw new Error(`${def.name}: no gradient for ${spec.name}`);
    g.output(grad, GRAD + spec.name, spec.shape);
  }
  for (const [term, v] of Object.entries(t.losses)) g.output(v, LOSS + term, []);
  g.output(g.sum(g.cast(t.active, 'float32'), [0]), 'stats.fires', [d.dSae]);
  g.output(g.sum(g.square(g.sub(t.xHat, x))), 'stats.sse', []);
  g.output(g.sum(g.square(g.sub(x, g.op('ReduceMean', [x], { axes: [0], keepdims: 1 })))), 'stats.var', []);
  return g.encode();
}

/** The training step of a dense architecture: its graph compiled once, run with the parameters as inputs. */
export async function denseStep<H>(def: ArchitectureDef<H>, trainGraph: DenseTrain<H>, engine: Engine, d: Dims, h: H, debug: boolean): Promise<TrainStep> {
  const graph = await engine.graph(`${def.name}:${d.dIn}x${d.dSae}:${JSON.stringify(h)}:train${debug ? ':debug' : ''}`, () =>
    buildTrainModel(def, trainGraph, h, d, debug),
  );
  const specs = def.params(d, h);
  const coef = new Float32Array(1);
  return {
    async run(params, inputs) {
      const feeds: Feeds = { x: { data: inputs.x, dims: [inputs.rows, d.dIn] }, coef: { data: coef, dims: [] } };
      coef[0] = inputs.coef;
      for (const spec of specs) feeds[spec.name] = { data: params[spec.name]!, dims: spec.shape };
      const out = await graph.run(feeds);
      const f32 = (name: string): Float32Array => out[name]!.data as Float32Array;
      const grads: Record<string, Float32Array> = {};
      const losses: Record<string, number> = {};
      const forward: Record<string, Float32Array> = {};
      for (const name of Object.keys(out)) {
        if (name.startsWith('grad.')) grads[name.slice(5)] = f32(name);
        else if (name.startsWith('loss.')) losses[name.slice(5)] = f32(name)[0]!;
        else if (name.startsWith('fwd.')) forward[name.slice(4)] = f32(name);
      }
      return { grads, losses, forward, fires: f32('stats.fires'), sse: f32('stats.sse')[0]!, variance: f32('stats.var')[0]! };
    },
  };
}

/** Inference encode: x [batch, dIn] -> f [batch, dSae]. */
export function buildEncodeModel<H>(def: ArchitectureDef<H>, h: H, d: Dims): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input('x', ['batch', d.dIn]);
  const p = paramInputs(g, def, h, d);
  g.output(def.encode(g, x, p, h, d).f, 'f', ['batch', d.dSae]);
  return g.encode();
}

/** Inference decode: f [batch, dSae] -> x_hat [batch, dIn]. */
export function buildDecodeModel<H>(def: ArchitectureDef<H>, h: H, d: Dims): Uint8Array {
  const g = new GraphBuilder();
  const f = g.input('f', ['batch', d.dSae]);
  const p = paramInputs(g, def, h, d);
  g.output(def.decode(g, f, p, h, d), 'x_hat', ['batch', d.dIn]);
  return g.encode();
}
