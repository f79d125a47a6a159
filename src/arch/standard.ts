/**
 * standard: the ReLU SAE with an L1 penalty weighted by decoder norms (SAELens "standard").
 *   pre = (x - b_dec) @ W_enc + b_enc;  f = relu(pre);  x_hat = f @ W_dec + b_dec
 *   mse = mean_b sum_d (x_hat - x)^2;  sparsity = l1 * mean_b sum_i f_i ||W_dec[i]||;  total = mse + sparsity
 * Gradients (n_i = ||W_dec[i]||, e = x_hat - x):
 *   dx_hat = 2 e / B;  df = dx_hat @ W_dec^T + l1 n / B;  dpre = df * [pre > 0]
 *   dW_dec = f^T @ dx_hat + (l1 / B) (sum_b f_i) W_dec[i] / n_i;  dW_enc = (x - b_dec)^T @ dpre
 *   db_enc = sum_b dpre;  db_dec = sum_b dx_hat - W_enc @ db_enc
 */
import { z } from 'zod';
import type { GraphBuilder, Value } from '../engine/onnx.js';
import { denseStep } from './graphs.js';
import type { ArchitectureDef, Encoded, ParamValues, TrainContext, TrainGraph } from './types.js';
import { decodeAffine, paramsOf, refNumber, rowNormsOf, saeParams } from './common.js';

const hyper = z.object({}).strict();
export type StandardHyper = z.infer<typeof hyper>;

function encode(g: GraphBuilder, x: Value, p: ParamValues): Encoded & { xc: Value; pre: Value } {
  const { W_enc, b_enc, b_dec } = paramsOf(p, 'W_enc', 'b_enc', 'b_dec');
  const xc = g.sub(x, b_dec); // [B, dIn]
  const pre = g.gemm(xc, W_enc, { c: b_enc }); // [B, dSae]
  const f = g.relu(pre); // onnxruntime fuses Gemm + Relu when pre has no other use
  return { xc, pre, f, active: g.greater(f, g.scalar(0)) };
}

function train(ctx: TrainContext): TrainGraph {
  const { g, x, p, coef, batch, dims } = ctx;
  const { W_enc, W_dec } = paramsOf(p, 'W_enc', 'W_dec');
  const { xc, pre, f, active } = encode(g, x, p);
  ctx.expose('pre', pre, ['batch', dims.dSae]);
  ctx.expose('f', f, ['batch', dims.dSae]);
  const xHat = decodeAffine(g, f, p); // [B, dIn]
  ctx.expose('x_hat', xHat, ['batch', dims.dIn]);

  const e = g.sub(xHat, x);
  const mse = g.div(g.sum(g.square(e)), batch);
  const norms = rowNormsOf(g, W_dec); // [dSae]
  const coefOverB = g.div(coef, batch);
  const fSum = g.sum(f, [0]); // [dSae]
  const sparsity = g.mul(g.sum(g.mul(fSum, norms)), coefOverB);

  const dxHat = g.mul(e, g.div(g.scalar(2), batch)); // [B, dIn]
  const normGrad = g.div(g.mul(fSum, coefOverB), g.op('Max', [norms, g.scalar(1e-12)])); // [dSae]
  const dWdec = g.add(g.gemm(f, dxHat, { transA: true }), g.mul(W_dec, g.unsqueeze(normGrad, 1)));
  const df = g.gemm(dxHat, W_dec, { transB: true, c: g.mul(norms, coefOverB) }); // [B, dSae]
  const dpre = g.mul(df, g.cast(active, 'float32'));
  const dbEnc = g.sum(dpre, [0]);
  const dbDec = g.sub(g.sum(dxHat, [0]), g.matmul(W_enc, dbEnc));
  return {
    grads: { W_enc: g.gemm(xc, dpre, { transA: true }), b_enc: dbEnc, W_dec: dWdec, b_dec: dbDec },
    losses: { mse, sparsity, total: g.add(mse, sparsity) },
    xHat,
    active,
  };
}

export const standard: ArchitectureDef<StandardHyper> = {
  name: 'standard',
  formulas: 'f = relu((x - b_dec) W_enc + b_enc); x_hat = f W_dec + b_dec; loss = mse + l1 * sum_i f_i ||W_dec[i]||',
  coefficient: { name: 'l1_coefficient', default: 5 },
  hyper,
  options: [],
  unitNormDecoder: false,
  decoder: () => 'affine',
  recovery: { knob: { kind: 'coefficient' }, unitNormDecoder: true },
  reference: { files: ['standard'], map: (h) => ({ hyper: {}, coef: refNumber(h['l1_coefficient']) }) },
  applyBDecToInput: () => true,
  params: saeParams,
  encode: (g, x, p) => encode(g, x, p),
  decode: (g, f, p) => decodeAffine(g, f, p),
  step: (engine, d, h, debug) => denseStep(standard, train, engine, d, h, debug),
  toCfg: () => ({}),
  fromCfg: () => ({}),
};
