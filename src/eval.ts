/**
 * Metrics of an SAE on data, as pure functions of accumulated sums so that the CLI, the trainer and
 * the dashboard compute them the same way.
 *   mse = mean over inputs of sum_d (x_hat - x)^2
 *   explained_variance = 1 - sum sse / sum_d sum_r (x - mean_r x)^2   (batch-level, as sparsify); fvu = 1 - that
 *   l0 = mean number of firing latents;  l1 = mean sum_i |f_i|;  dead_fraction = latents that never fired
 *   log10 firing rate per latent = log10(fires / inputs + 1e-10) (SAELens's sparsity.safetensors)
 */
import { paramInputs } from './arch/graphs.js';
import type { ArchitectureDef, Dims } from './arch/types.js';
import { GraphBuilder as Builder } from './engine/onnx.js';
import type { Engine } from './engine/index.js';
import type { Feeds } from './engine/ort.js';
import type { Sae } from './sae.js';

/**
 * Evaluation pass: x [batch, dIn] -> row_sse [batch] (squared error per input), row_l0 [batch],
 * row_l1 [batch] (sum of activations), fires [dSae], x_hat_sq [batch] (||x_hat||^2).
 */
function buildEvalModel<H>(def: ArchitectureDef<H>, h: H, d: Dims): Uint8Array {
  const g = new Builder();
  const x = g.input('x', ['batch', d.dIn]);
  const p = paramInputs(g, def, h, d);
  const { f, active } = def.encode(g, x, p, h, d);
  const xHat = def.decode(g, f, p, h, d);
  const activeF = g.cast(active, 'float32');
  g.output(g.sum(g.square(g.sub(xHat, x)), [1]), 'row_sse', ['batch']);
  g.output(g.sum(activeF, [1]), 'row_l0', ['batch']);
  g.output(g.sum(g.op('Abs', [f]), [1]), 'row_l1', ['batch']);
  g.output(g.sum(activeF, [0]), 'fires', [d.dSae]);
  g.output(g.sum(g.square(xHat), [1]), 'x_hat_sq', ['batch']);
  return g.encode();
}

export interface Metrics {
  readonly inputs: number;
  readonly mse: number;
  readonly explained_variance: number;
  readonly fvu: number;
  readonly l0: number;
  readonly l1: number;
  readonly dead_fraction: number;
  /** ||x_hat|| / ||x||, averaged over inputs. */
  readonly l2_ratio: number;
}

/** Running sums over evaluated batches. */
export class MetricsAccumulator {
  inputs = 0;
  private sse = 0;
  private l0 = 0;
  private l1 = 0;
  private l2Ratio = 0;
  private readonly sumX: Float64Array;
  private readonly sumX2: Float64Array;
  readonly fires: Float64Array;

  constructor(
    readonly dIn: number,
    readonly dSae: number,
  ) {
    this.sumX = new Float64Array(dIn);
    this.sumX2 = new Float64Array(dIn);
    this.fires = new Float64Array(dSae);
  }

  /** x: [rows, dIn]; per-row outputs of the eval graph: row_sse, row_l0, row_l1, x_hat_sq [rows]; fires [dSae]. */
  add(x: Float32Array, rows: number, out: { row_sse: Float32Array; row_l0: Float32Array; row_l1: Float32Array; x_hat_sq: Float32Array; fires: Float32Array }): void {
    const { dIn } = this;
    for (let r = 0; r < rows; r++) {
      let xx = 0;
      for (let j = 0; j < dIn; j++) {
        const v = x[r * dIn + j]!;
        this.sumX[j]! += v;
        this.sumX2[j]! += v * v;
        xx += v * v;
      }
      this.sse += out.row_sse[r]!;
      this.l0 += out.row_l0[r]!;
      this.l1 += out.row_l1[r]!;
      this.l2Ratio += xx > 0 ? Math.sqrt(out.x_hat_sq[r]! / xx) : 0;
    }
    for (let i = 0; i < this.dSae; i++) this.fires[i]! += out.fires[i]!;
    this.inputs += rows;
  }

  metrics(): Metrics {
    const n = Math.max(1, this.inputs);
    let variance = 0;
    for (let j = 0; j < this.dIn; j++) variance += this.sumX2[j]! - this.sumX[j]! ** 2 / n;
    const fvu = variance > 0 ? this.sse / variance : NaN;
    let dead = 0;
    for (const f of this.fires) if (f === 0) dead++;
    return {
      inputs: this.inputs,
      mse: this.sse / n,
      explained_variance: 1 - fvu,
      fvu,
      l0: this.l0 / n,
      l1: this.l1 / n,
      dead_fraction: dead / this.dSae,
      l2_ratio: this.l2Ratio / n,
    };
  }

  /** [dSae] log10 firing rate per latent. */
  log10FiringRates(): Float32Array {
    const n = Math.max(1, this.inputs);
    return Float32Array.from(this.fires, (f) => Math.log10(f / n + 1e-10));
  }
}

/** Evaluates `sae` on batches of x [rows, dIn]. */
export async function evaluate(engine: Engine, sae: Sae, batches: AsyncIterable<{ x: Float32Array; rows: number }>): Promise<MetricsAccumulator> {
  const graph = await engine.graph(`${sae.key}:eval`, () =>
    buildEvalModel(sae.def, sae.hyper, sae.dims),
  );
  const acc = new MetricsAccumulator(sae.dims.dIn, sae.dims.dSae);
  const feeds: Feeds = {};
  for (const spec of sae.def.params(sae.dims, sae.hyper)) feeds[spec.name] = { data: sae.params[spec.name]!, dims: spec.shape };
  for await (const { x, rows } of batches) {
    if (rows === 0) continue;
    feeds['x'] = { data: x.subarray(0, rows * sae.dims.dIn), dims: [rows, sae.dims.dIn] };
    const out = await graph.run(feeds);
    const get = (name: string): Float32Array => out[name]!.data as Float32Array;
    acc.add(x, rows, { row_sse: get('row_sse'), row_l0: get('row_l0'), row_l1: get('row_l1'), x_hat_sq: get('x_hat_sq'), fires: get('fires') });
  }
  return acc;
}
