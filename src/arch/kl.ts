/**
 * kl: the classic sigmoid sparse autoencoder (UFLDL) with a KL penalty towards a target firing rate.
 *   a = sigmoid(x @ W_enc + b_enc);  x_hat = act(a @ W_dec + b_dec), act = identity | sigmoid
 *   mse = 0.5 mean_b sum_d (x_hat - x)^2;  rho_hat = mean_b a
 *   sparsity = beta * sum_i [rho log(rho / rho_hat_i) + (1 - rho) log((1 - rho) / (1 - rho_hat_i))]
 *   weight_decay = 0.5 lambda (||W_enc||^2 + ||W_dec||^2);  total = mse + sparsity + weight_decay
 * Gradients: dx_hat = (x_hat - x) / B;  dz = dx_hat (* x_hat (1 - x_hat) for a sigmoid decoder)
 *   da = dz @ W_dec^T + (beta / B) (-rho / rho_hat + (1 - rho) / (1 - rho_hat));  dpre = da a (1 - a)
 *   dW_dec = a^T @ dz + lambda W_dec;  dW_enc = x^T @ dpre + lambda W_enc;  db = sums over the batch
 * A latent counts as firing (L0, dead latents) where a > 0.5.
 */
import { z } from 'zod';
import type { GraphBuilder, Value } from '../engine/onnx.js';
import { denseStep } from './graphs.js';
import { paramsOf, refNumber, saeParams } from './common.js';
import type { ArchitectureDef, Encoded, ParamValues, TrainContext, TrainGraph } from './types.js';

const hyper = z
  .object({
    /** Target mean activation of each latent. */
    rho: z.number().gt(0).lt(1).default(0.05),
    /** Weight decay lambda on W_enc and W_dec. */
    weightDecay: z.number().min(0).default(3e-3),
    /** The decoder's output nonlinearity: sigmoid for data in [0, 1] (pixels), identity otherwise. */
    decoderActivation: z.enum(['identity', 'sigmoid']).default('identity'),
  })
  .strict();
export type KlHyper = z.infer<typeof hyper>;

/** log(p / (1 - p)), p clamped to [1e-3, 1 - 1e-3]. */
function logit(p: number): number {
  const q = Math.min(Math.max(p, 1e-3), 1 - 1e-3);
  return Math.log(q / (1 - q));
}

function encode(g: GraphBuilder, x: Value, p: ParamValues): Encoded {
  const { W_enc, b_enc } = paramsOf(p, 'W_enc', 'b_enc');
  const f = g.sigmoid(g.gemm(x, W_enc, { c: b_enc })); // [B, dSae]
  return { f, active: g.greater(f, g.scalar(0.5)) };
}

function decode(g: GraphBuilder, f: Value, p: ParamValues, h: KlHyper): Value {
  const { W_dec, b_dec } = paramsOf(p, 'W_dec', 'b_dec');
  const z = g.gemm(f, W_dec, { c: b_dec });
  return h.decoderActivation === 'sigmoid' ? g.sigmoid(z) : z;
}

function train(ctx: TrainContext, h: KlHyper): TrainGraph {
  const { g, x, p, coef, batch, dims } = ctx;
  const { W_enc, W_dec } = paramsOf(p, 'W_enc', 'W_dec');
  const { f: a, active } = encode(g, x, p);
  ctx.expose('f', a, ['batch', dims.dSae]);
  const xHat = decode(g, a, p, h);
  ctx.expose('x_hat', xHat, ['batch', dims.dIn]);
  const rhoHat = g.div(g.sum(a, [0]), batch); // [dSae]
  ctx.expose('rho_hat', rhoHat, [dims.dSae]);

  const one = g.scalar(1);
  const rho = g.scalar(h.rho);
  const rho1 = g.scalar(1 - h.rho);
  const lambda = g.scalar(h.weightDecay);
  const e = g.sub(xHat, x);
  const mse = g.div(g.mul(g.scalar(0.5), g.sum(g.square(e))), batch);
  const kl = g.add(g.mul(rho, g.log(g.div(rho, rhoHat))), g.mul(rho1, g.log(g.div(rho1, g.sub(one, rhoHat)))));
  const sparsity = g.mul(coef, g.sum(kl));
  const weightDecay = g.mul(g.scalar(0.5 * h.weightDecay), g.add(g.sum(g.square(W_enc)), g.sum(g.square(W_dec))));

  const dxHat = g.div(e, batch); // [B, dIn]
  const dz = h.decoderActivation === 'sigmoid' ? g.mul(dxHat, g.mul(xHat, g.sub(one, xHat))) : dxHat;
  const dKl = g.add(g.neg(g.div(rho, rhoHat)), g.div(rho1, g.sub(one, rhoHat))); // [dSae]
  const da = g.gemm(dz, W_dec, { transB: true, c: g.mul(g.div(coef, batch), dKl) }); // [B, dSae]
  const dpre = g.mul(da, g.mul(a, g.sub(one, a)));
  return {
    grads: {
      W_enc: g.add(g.gemm(x, dpre, { transA: true }), g.mul(lambda, W_enc)),
      b_enc: g.sum(dpre, [0]),
      W_dec: g.add(g.gemm(a, dz, { transA: true }), g.mul(lambda, W_dec)),
      b_dec: g.sum(dz, [0]),
    },
    losses: { mse, sparsity, weight_decay: weightDecay, total: g.add(g.add(mse, sparsity), weightDecay) },
    xHat,
    active,
  };
}

export const kl: ArchitectureDef<KlHyper> = {
  name: 'kl',
  formulas: 'a = sigmoid(x W_enc + b_enc); x_hat = act(a W_dec + b_dec); loss = 0.5 mse + beta * KL(rho || mean a) + weight decay',
  coefficient: { name: 'beta', default: 3 },
  hyper,
  options: [
    { key: 'rho', kind: 'number', help: 'target mean activation of each latent (default 0.05)' },
    { key: 'weightDecay', kind: 'number', help: 'weight decay lambda on W_enc and W_dec (default 3e-3)' },
    { key: 'decoderActivation', kind: 'string', help: 'identity | sigmoid (for data in [0, 1]); default identity' },
  ],
  unitNormDecoder: false,
  decoder: (h) => (h.decoderActivation === 'sigmoid' ? 'sigmoid' : 'affine'),
  // A latent counts as firing where a > 0.5; the target rate rho sets L0.
  recovery: { knob: { kind: 'rate', key: 'rho', start: 0.02, max: 0.5 }, unitNormDecoder: false },
  reference: {
    files: ['kl_identity', 'kl_sigmoid'],
    map: (h) => ({ hyper: hyper.parse({ rho: h['rho'], weightDecay: h['lambda'], decoderActivation: h['decoder_activation'] }), coef: refNumber(h['beta']) }),
  },
  applyBDecToInput: () => false,
  // a sigmoid decoder's bias lives before the sigmoid: start it at the logit of the data's centre
  initBDec: (center, h) => (h.decoderActivation === 'sigmoid' ? center.map(logit) : center),
  params: saeParams,
  encode: (g, x, p) => encode(g, x, p),
  decode,
  step: (engine, d, h, debug) => denseStep(kl, train, engine, d, h, debug),
  toCfg: (h) => ({ encoder_activation: 'sigmoid', decoder_activation: h.decoderActivation, kl_rho: h.rho, kl_weight_decay: h.weightDecay }),
  fromCfg: (cfg) =>
    hyper.parse({
      ...(cfg['kl_rho'] !== undefined ? { rho: cfg['kl_rho'] } : {}),
      ...(cfg['kl_weight_decay'] !== undefined ? { weightDecay: cfg['kl_weight_decay'] } : {}),
      ...(cfg['decoder_activation'] !== undefined ? { decoderActivation: cfg['decoder_activation'] } : {}),
    }),
};
