/**
 * gated: separate gate and magnitude paths sharing W_enc (Rajamanoharan et al. 2024; SAELens "gated").
 *   xc = x - b_dec;  pi_gate = xc @ W_enc + b_enc;  pi_mag = xc @ (W_enc * exp(r_mag)) + b_mag (r_mag scales columns)
 *   f = 1[pi_gate > 0] * relu(pi_mag);  x_hat = f @ W_dec + b_dec
 *   mse = mean_b sum_d (x_hat - x)^2;  sparsity = l1 * mean_b sum_i relu(pi_gate)_i ||W_dec[i]||
 *   aux = mean_b sum_d (relu(pi_gate) @ stopgrad(W_dec) + stopgrad(b_dec) - x)^2
 *   total = mse + sparsity + aux  (the gate 1[.] passes no gradient)
 * Gradients (n_i = ||W_dec[i]||, g = 2 (x_hat - x) / B, g_aux = 2 (x_aux - x) / B, a = relu(pi_gate)):
 *   df = g @ W_dec^T;  dpi_mag = df 1[gate] 1[pi_mag > 0];  dW_mag = xc^T @ dpi_mag
 *   dpi_gate = (g_aux @ W_dec^T + l1 n / B) 1[pi_gate > 0]
 *   dW_enc = xc^T @ dpi_gate + dW_mag * exp(r_mag);  dr_mag_i = sum_j dW_mag[j, i] W_mag[j, i]
 *   dW_dec = f^T @ g + (l1 / B) (sum_b a_i) W_dec[i] / n_i;  db_dec = sum_b g - W_enc db_enc - W_mag db_mag
 */
import { z } from 'zod';
import type { GraphBuilder, Value } from '../engine/onnx.js';
import { decodeAffine, paramsOf, refNumber, rowNormsOf, saeParams } from './common.js';
import { denseStep } from './graphs.js';
import type { ArchitectureDef, Dims, Encoded, ParamSpec, ParamValues, TrainContext, TrainGraph } from './types.js';

const hyper = z.object({}).strict();
export type GatedHyper = z.infer<typeof hyper>;

function params(d: Dims): ParamSpec[] {
  return [...saeParams(d), { name: 'b_gate', shape: [d.dSae] }, { name: 'b_mag', shape: [d.dSae] }, { name: 'r_mag', shape: [d.dSae] }].filter(
    (p) => p.name !== 'b_enc',
  );
}

function encode(g: GraphBuilder, x: Value, p: ParamValues): Encoded & { xc: Value; piGate: Value; piMag: Value; wMag: Value; gate: Value } {
  const { W_enc, b_gate, r_mag, b_mag, b_dec } = paramsOf(p, 'W_enc', 'b_gate', 'r_mag', 'b_mag', 'b_dec');
  const xc = g.sub(x, b_dec);
  const piGate = g.gemm(xc, W_enc, { c: b_gate }); // [B, dSae]
  const wMag = g.mul(W_enc, g.exp(r_mag)); // [dIn, dSae]
  const piMag = g.gemm(xc, wMag, { c: b_mag });
  const gate = g.greater(piGate, g.scalar(0));
  const f = g.mul(g.cast(gate, 'float32'), g.relu(piMag));
  return { xc, piGate, piMag, wMag, gate, f, active: g.greater(f, g.scalar(0)) };
}

function train(ctx: TrainContext): TrainGraph {
  const { g, x, p, coef, batch, dims } = ctx;
  const { xc, piGate, piMag, wMag, gate, f, active } = encode(g, x, p);
  ctx.expose('pi_gate', piGate, ['batch', dims.dSae]);
  ctx.expose('pi_mag', piMag, ['batch', dims.dSae]);
  ctx.expose('f', f, ['batch', dims.dSae]);
  const { W_enc, r_mag, W_dec: wDec } = paramsOf(p, 'W_enc', 'r_mag', 'W_dec');
  const xHat = decodeAffine(g, f, p);
  ctx.expose('x_hat', xHat, ['batch', dims.dIn]);
  const two = g.div(g.scalar(2), batch);

  const e = g.sub(xHat, x);
  const mse = g.div(g.sum(g.square(e)), batch);
  const a = g.relu(piGate);
  const norms = rowNormsOf(g, wDec); // [dSae]
  const coefOverB = g.div(coef, batch);
  const aSum = g.sum(a, [0]); // [dSae]
  const sparsity = g.mul(g.sum(g.mul(aSum, norms)), coefOverB);
  const eAux = g.sub(decodeAffine(g, a, p), x);
  const aux = g.div(g.sum(g.square(eAux)), batch);

  const gMain = g.mul(e, two);
  const gAux = g.mul(eAux, two);
  const gateF = g.cast(gate, 'float32');
  const df = g.gemm(gMain, wDec, { transB: true }); // [B, dSae]
  const dMag = g.mul(df, g.mul(gateF, g.cast(g.greater(piMag, g.scalar(0)), 'float32')));
  const dGate = g.mul(g.gemm(gAux, wDec, { transB: true, c: g.mul(norms, coefOverB) }), gateF);
  const dWmag = g.gemm(xc, dMag, { transA: true }); // [dIn, dSae]
  const dbMag = g.sum(dMag, [0]);
  const dbGate = g.sum(dGate, [0]);
  const normGrad = g.div(g.mul(aSum, coefOverB), g.op('Max', [norms, g.scalar(1e-12)]));
  const dbDec = g.sub(g.sum(gMain, [0]), g.add(g.matmul(W_enc, dbGate), g.matmul(wMag, dbMag)));
  return {
    grads: {
      W_enc: g.add(g.gemm(xc, dGate, { transA: true }), g.mul(dWmag, g.exp(r_mag))),
      b_gate: dbGate,
      W_dec: g.add(g.gemm(f, gMain, { transA: true }), g.mul(wDec, g.unsqueeze(normGrad, 1))),
      b_dec: dbDec,
      r_mag: g.sum(g.mul(dWmag, wMag), [0]),
      b_mag: dbMag,
    },
    losses: { mse, sparsity, aux, total: g.add(g.add(mse, sparsity), aux) },
    xHat,
    active,
  };
}

export const gated: ArchitectureDef<GatedHyper> = {
  name: 'gated',
  formulas: 'f = 1[(x - b_dec) W_enc + b_gate > 0] * relu((x - b_dec) (W_enc * exp(r_mag)) + b_mag); loss = mse + l1 * gate L1 + aux',
  coefficient: { name: 'l1_coefficient', default: 1 },
  hyper,
  options: [],
  unitNormDecoder: false,
  decoder: () => 'affine',
  recovery: { knob: { kind: 'coefficient' }, unitNormDecoder: true },
  reference: { files: ['gated'], map: (h) => ({ hyper: {}, coef: refNumber(h['l1_coefficient']), rename: { b_enc: 'b_gate' } }) },
  applyBDecToInput: () => true,
  params,
  encode: (g, x, p) => encode(g, x, p),
  decode: (g, f, p) => decodeAffine(g, f, p),
  step: (engine, d, h, debug) => denseStep(gated, train, engine, d, h, debug),
  toCfg: () => ({}),
  fromCfg: () => ({}),
};
