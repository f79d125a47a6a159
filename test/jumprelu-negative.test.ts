/**
 * JumpReLU with negative thresholds computes as SAELens, Gemma Scope and dictionary_learning do:
 * f = relu(pre) * H(pre - theta). Encode and the training step are checked against that formula
 * and its straight-through gradients written out here in float64 (for theta >= 0 the reference
 * vectors of test/conformance.test.ts cover the same step).
 */
import { describe, expect, it } from 'vitest';
import { architecture, parseHyper } from '../src/arch/index.js';
import type { Params } from '../src/arch/types.js';
import { Engine } from '../src/engine/index.js';
import { Rng } from '../src/rng.js';
import { Sae } from '../src/sae.js';

const engine = new Engine({ threads: 1 });
const d = { dIn: 5, dSae: 8 };
const rows = 16;
const eps = 0.5;
const coef = 0.3;

function setup(): { params: Params; x: Float32Array } {
  const rng = new Rng(7);
  const r = (n: number, s = 1): Float32Array => Float32Array.from({ length: n }, () => s * rng.normal());
  // thresholds of both signs, some within eps / 2 of many pre-activations
  const threshold = Float32Array.from([-0.4, -0.1, 0, 0.1, 0.3, -0.8, 0.6, -0.2]);
  return {
    params: { W_enc: r(d.dIn * d.dSae, 0.6), b_enc: r(d.dSae, 0.2), W_dec: r(d.dSae * d.dIn, 0.5), b_dec: r(d.dIn, 0.1), threshold },
    x: r(rows * d.dIn),
  };
}

/** float64: pre [rows, dSae], f, and the losses and gradients of SAELens's step with f = relu(pre) H(pre - theta). */
function reference(p: Params, x: Float32Array) {
  const pre = new Float64Array(rows * d.dSae);
  for (let b = 0; b < rows; b++)
    for (let i = 0; i < d.dSae; i++) {
      let s = p['b_enc']![i]!;
      for (let j = 0; j < d.dIn; j++) s += x[b * d.dIn + j]! * p['W_enc']![j * d.dSae + i]!;
      pre[b * d.dSae + i] = s;
    }
  const theta = p['threshold']!;
  const f = pre.map((v, idx) => (v > theta[idx % d.dSae]! ? Math.max(v, 0) : 0));
  let mse = 0;
  let l0 = 0;
  const dTheta = new Float64Array(d.dSae);
  for (let b = 0; b < rows; b++) {
    const df = new Float64Array(d.dSae);
    for (let j = 0; j < d.dIn; j++) {
      let xh = p['b_dec']![j]!;
      for (let i = 0; i < d.dSae; i++) xh += f[b * d.dSae + i]! * p['W_dec']![i * d.dIn + j]!;
      const e = xh - x[b * d.dIn + j]!;
      mse += (e * e) / rows;
      for (let i = 0; i < d.dSae; i++) df[i]! += ((2 * e) / rows) * p['W_dec']![i * d.dIn + j]!;
    }
    for (let i = 0; i < d.dSae; i++) {
      const u = pre[b * d.dSae + i]! - theta[i]!;
      if (u > 0) l0 += 1 / rows;
      const k = Math.abs(u / eps) < 0.5 ? 1 : 0;
      dTheta[i]! += -(Math.max(theta[i]!, 0) / eps) * k * df[i]! - (coef / rows / eps) * k;
    }
  }
  return { f, mse, l0, dTheta };
}

describe('jumprelu with negative thresholds', () => {
  it('encodes f = relu(pre) * H(pre - theta), as SAELens does', async () => {
    const { params, x } = setup();
    const sae = new Sae('jumprelu', d, parseHyper('jumprelu', {}), params);
    const f = await sae.encode(engine, x);
    const ref = reference(params, x);
    expect(f.some((v) => v < 0)).toBe(false);
    ref.f.forEach((v, i) => expect(f[i]).toBeCloseTo(v, 5));
  });

  it('the training step: losses and the threshold gradient of that function (jump relu(theta), Step L0)', async () => {
    const { params, x } = setup();
    const def = architecture('jumprelu');
    const step = await def.step(engine, d, def.hyper.parse({ bandwidth: eps }), false);
    const out = await step.run(params, { x, rows, coef, deadMask: new Uint8Array(d.dSae), progress: 0 });
    const ref = reference(params, x);
    expect(out.losses['mse']).toBeCloseTo(ref.mse, 4);
    expect(out.losses['l0']).toBeCloseTo(ref.l0, 5);
    const g = out.grads['threshold']!;
    ref.dTheta.forEach((v, i) => expect(g[i]).toBeCloseTo(v, 4));
    // a kernel hit at a negative threshold sees only the L0 term, which raises it
    expect(ref.dTheta.some((v, i) => params['threshold']![i]! < 0 && v < 0)).toBe(true);
  });
});

describe('jumprelu pre-activation loss on dead latents', () => {
  it('its gradients are the finite differences of its value; live latents and c = 0 are untouched', async () => {
    const { params, x } = setup();
    const def = architecture('jumprelu');
    const deadMask = Uint8Array.from([1, 0, 1, 0, 0, 1, 1, 0]);
    const c = 0.7;
    const run = async (pa: number, p: Params) =>
      (await def.step(engine, d, def.hyper.parse({ bandwidth: eps, preActCoefficient: pa }), false)).run(p, { x, rows, coef, deadMask, progress: 0 });
    const withLoss = await run(c, params);
    const without = await run(0, params);
    expect(without.losses['pre_act']).toBeUndefined();
    expect(withLoss.losses['pre_act']).toBeGreaterThan(0);
    const h = 1e-3;
    const loss = async (name: string, idx: number, delta: number): Promise<number> => {
      const p: Params = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v.slice()]));
      p[name]![idx]! += delta;
      return (await run(c, p)).losses['pre_act']!;
    };
    for (const [name, idx] of [
      ['b_enc', 0],
      ['b_enc', 5],
      ['threshold', 0],
      ['W_enc', 3 * d.dSae + 6],
      ['b_enc', 1],
      ['threshold', 3],
    ] as const) {
      const numeric = ((await loss(name, idx, h)) - (await loss(name, idx, -h))) / (2 * h);
      const analytic = withLoss.grads[name]![idx]! - without.grads[name]![idx]!;
      expect(analytic, `${name}[${idx}]`).toBeCloseTo(numeric, 2);
    }
  });
});
