/**
 * jumprelu: a ReLU that jumps to zero below a learned per-latent threshold, trained with an L0
 * penalty through straight-through estimators (Rajamanoharan et al. 2024; SAELens "jumprelu").
 *   pre = x @ W_enc + b_enc (x is not shifted by b_dec);  f = relu(pre) * H(pre - theta);  x_hat = f @ W_dec + b_dec
 *   mse = mean_b sum_d (x_hat - x)^2;  l0 = mean_b sum_i H(pre_i - theta_i);  total = mse + l0_coefficient * l0
 * The ReLU before the threshold is SAELens's JumpReLUSAE.encode, Gemma Scope's and dictionary_learning's:
 * for theta >= 0 it changes nothing (f = pre * H(pre - theta)); a negative theta (which the 'linear'
 * parametrisation can reach, and published files hold) then acts as 0, as it does at home.
 * Straight-through gradients, bandwidth eps, rectangle kernel K(u) = 1 for -1/2 < u < 1/2:
 *   df/dpre = H(pre - theta) H(pre);  df/dtheta = -(relu(theta) / eps) K((pre - theta) / eps)  (the jump is relu(theta))
 *   dH/dpre = 0;  dH/dtheta = -(1 / eps) K((pre - theta) / eps)
 * The L0 term is SAELens's Step, H(pre - theta): a negative threshold still pays for the latents
 * above it, so the penalty pushes it back to 0 and above. For theta >= 0 all of this is SAELens's
 * training step exactly (test/fixtures/reference/jumprelu.json).
 * The threshold is trained either directly ('linear', the default: SAELens moved to it because a
 * log-threshold barely moves under Adam, SAELens PR #718) or as log_threshold ('log', as the
 * reference vectors; its gradient is theta * dL/dtheta). It is saved as `threshold` either way.
 * Under Adam a threshold moves by about the learning rate per step, whatever the L0 coefficient:
 * from SAELens's 0.001 it needs many steps to reach the pre-activations' scale (measured on the
 * demo's image patches, 1500 steps at lr 4e-4: L0 120 of 576 with l0_coefficient 1 and with 5;
 * L0 28 with --init-threshold 0.5). Short runs want an initial threshold near that scale.
 */
import { z } from 'zod';
import type { GraphBuilder, Value } from '../engine/onnx.js';
import { decodeAffine, paramsOf, refNumber, saeParams } from './common.js';
import { denseStep } from './graphs.js';
import { BatchSelector } from './sparse-code.js';
import { topKFamilyStep } from './topk-family.js';
import type { Engine } from '../engine/index.js';
import type { ArchitectureDef, Dims, Encoded, ParamSpec, ParamValues, Params, StepInputs, StepResult, TrainContext, TrainGraph, TrainStep } from './types.js';

const hyper = z
  .object({
    /** Width eps of the straight-through kernel. */
    bandwidth: z.number().positive().default(0.001),
    /** The threshold at initialisation. */
    initThreshold: z.number().positive().default(0.001),
    /** Train theta directly ('linear') or log theta ('log'). */
    thresholdParam: z.enum(['linear', 'log']).default('linear'),
    /**
     * Coefficient of the pre-activation loss on dead latents (Anthropic's 2025 JumpReLU recipe, in
     * SAELens as pre_act_loss_coefficient): c / B sum_b sum_{i dead} relu(theta_i - pre_bi) |W_dec_i|.
     * A dead latent gets no gradient from the MSE nor from the L0 term; this one raises its
     * pre-activations until it fires again. 0: off (the papers' step, and the default).
     * Measured (bench-recovery, 5000 steps, c = 0.01): dead 58% -> 36%, MMCS 0.896 -> 0.915 at L0
     * 6.9 / 6.5; on the demo's image patches (1500 steps) nothing died, so nothing changed. Not the
     * default: it is computed outside the step's graph, O(dead * batch * d_in) per step in JS.
     */
    preActCoefficient: z.number().min(0).default(0),
    /** Encode x - b_dec instead of x (as a BatchTopK SAE saved in this form does). */
    applyBDec: z.boolean().default(false),
    /**
     * Fraction of the run trained as TopK with warmupK latents per input (AuxK on dead latents),
     * every threshold following the batch threshold of that L0, before the JumpReLU step with its
     * L0 penalty takes over (0: none, the papers' recipe). See batchtopk.ts for why.
     */
    topkWarmup: z.number().min(0).lt(1).default(0),
    /** Latents per input in the TopK warm-up (needed when topkWarmup > 0; the L0 you aim at). */
    warmupK: z.number().int().positive().optional(),
  })
  .strict()
  .refine((h) => h.topkWarmup === 0 || h.warmupK !== undefined, { error: 'topkWarmup needs warmupK (the latents per input of the TopK phase)' });
export type JumpReluHyper = z.infer<typeof hyper>;

function params(d: Dims, h: JumpReluHyper): ParamSpec[] {
  return [...saeParams(d), { name: h.thresholdParam === 'log' ? 'log_threshold' : 'threshold', shape: [d.dSae] }];
}

/** theta [dSae] from the threshold parameter of either parametrisation. */
function thetaOf(g: GraphBuilder, p: ParamValues): Value {
  return p['threshold'] ?? g.exp(p['log_threshold']!);
}

/** pre: [B, dSae], theta: [dSae] or [1] -> f = relu(pre) * H(pre - theta), active = f > 0. */
export function jumpReluEncode(g: GraphBuilder, pre: Value, theta: Value): Encoded {
  const active = g.and(g.greater(pre, theta), g.greater(pre, g.scalar(0))); // H(pre - theta) H(pre)
  return { f: g.mul(pre, g.cast(active, 'float32')), active };
}

function encode(g: GraphBuilder, x: Value, p: ParamValues, h: JumpReluHyper): Encoded & { pre: Value; theta: Value; xc: Value } {
  const { W_enc, b_enc, b_dec } = paramsOf(p, 'W_enc', 'b_enc', 'b_dec');
  const xc = h.applyBDec ? g.sub(x, b_dec) : x;
  const pre = g.gemm(xc, W_enc, { c: b_enc }); // [B, dSae]
  const theta = thetaOf(g, p);
  return { xc, pre, theta, ...jumpReluEncode(g, pre, theta) };
}

function train(ctx: TrainContext, h: JumpReluHyper): TrainGraph {
  const { g, x, p, coef, batch, dims } = ctx;
  const { W_enc, W_dec } = paramsOf(p, 'W_enc', 'W_dec');
  const { xc, pre, theta, f, active } = encode(g, x, p, h);
  ctx.expose('pre', pre, ['batch', dims.dSae]);
  ctx.expose('f', f, ['batch', dims.dSae]);
  const xHat = decodeAffine(g, f, p);
  ctx.expose('x_hat', xHat, ['batch', dims.dIn]);
  const e = g.sub(xHat, x);
  const mse = g.div(g.sum(g.square(e)), batch);
  const activeF = g.cast(active, 'float32');
  const step = g.cast(g.greater(pre, theta), 'float32'); // H(pre - theta), SAELens's Step
  const l0 = g.div(g.sum(step), batch);

  const g2 = g.mul(e, g.div(g.scalar(2), batch)); // d mse / d x_hat: [B, dIn]
  const df = g.gemm(g2, W_dec, { transB: true }); // [B, dSae]
  const dpre = g.mul(df, activeF);
  const u = g.sub(pre, theta);
  const half = h.bandwidth / 2;
  const kernel = g.cast(g.and(g.greater(u, g.scalar(-half)), g.less(u, g.scalar(half))), 'float32'); // K((pre - theta) / eps)
  // dL/dtheta = sum_b [ df * -(relu(theta) / eps) K ] + coef / B * sum_b -(1 / eps) K
  const kSum = g.sum(kernel, [0]); // [dSae]
  const dTheta = g.neg(
    g.add(g.div(g.mul(g.sum(g.mul(df, kernel), [0]), g.relu(theta)), g.scalar(h.bandwidth)), g.div(g.mul(g.div(coef, batch), kSum), g.scalar(h.bandwidth))),
  );
  const thresholdGrad: Record<string, Value> = p['threshold'] ? { threshold: dTheta } : { log_threshold: g.mul(theta, dTheta) };
  const dbEnc = g.sum(dpre, [0]);
  const dbDec = g.sum(g2, [0]);
  return {
    grads: {
      W_enc: g.gemm(xc, dpre, { transA: true }),
      b_enc: dbEnc,
      W_dec: g.gemm(f, g2, { transA: true }),
      b_dec: h.applyBDec ? g.sub(dbDec, g.matmul(W_enc, dbEnc)) : dbDec,
      ...thresholdGrad,
    },
    losses: { mse, l0, sparsity: g.mul(coef, l0), total: g.add(mse, g.mul(coef, l0)) },
    xHat,
    active,
  };
}

/**
 * Adds the pre-activation loss of dead latents to a step's result (computed here for the dead
 * latents only: [B, dead] pre-activations). |W_dec_i| is taken as a constant (no gradient to W_dec).
 *   L = c / B sum_b sum_{i dead} relu(theta_i - pre_bi) n_i,  n_i = |W_dec_i|
 *   dL/dpre_bi = -(c n_i / B) [pre_bi < theta_i];  dL/dtheta_i = (c n_i / B) sum_b [pre_bi < theta_i]
 */
function addPreActLoss(out: StepResult, params: Params, inp: StepInputs, d: Dims, h: JumpReluHyper): StepResult {
  const { dIn, dSae } = d;
  const B = inp.rows;
  const { W_enc: wEnc, b_enc: bEnc, b_dec: bDec, W_dec: wDec } = paramsOf(params, 'W_enc', 'b_enc', 'b_dec', 'W_dec');
  const linear = params['threshold'];
  const theta = linear ?? params['log_threshold']!.map(Math.exp);
  const { W_enc: gWEnc, b_enc: gBEnc, b_dec: gBDec } = paramsOf(out.grads, 'W_enc', 'b_enc', 'b_dec');
  const gTheta = (linear ? out.grads['threshold'] : out.grads['log_threshold'])!;
  const xc = new Float64Array(dIn);
  let loss = 0;
  for (let i = 0; i < dSae; i++) {
    if (!inp.deadMask[i]) continue;
    let n = 0;
    for (let j = 0; j < dIn; j++) n += wDec[i * dIn + j]! ** 2;
    const w = (h.preActCoefficient * Math.sqrt(n)) / B;
    let below = 0;
    const gx = new Float64Array(dIn); // sum over rows below the threshold of xc
    for (let b = 0; b < B; b++) {
      let pre = bEnc[i]!;
      for (let j = 0; j < dIn; j++) {
        xc[j] = inp.x[b * dIn + j]! - (h.applyBDec ? bDec[j]! : 0);
        pre += xc[j]! * wEnc[j * dSae + i]!;
      }
      if (pre >= theta[i]!) continue;
      loss += w * (theta[i]! - pre);
      below++;
      for (let j = 0; j < dIn; j++) gx[j]! += xc[j]!;
    }
    if (below === 0) continue;
    for (let j = 0; j < dIn; j++) {
      gWEnc[j * dSae + i]! -= w * gx[j]!;
      if (h.applyBDec) gBDec[j]! += w * below * wEnc[j * dSae + i]!; // pre depends on -b_dec @ W_enc
    }
    gBEnc[i]! -= w * below;
    gTheta[i]! += w * below * (linear ? 1 : theta[i]!);
  }
  return { ...out, losses: { ...out.losses, pre_act: loss, total: out.losses['total']! + loss } };
}

/** AuxK's weight in the TopK warm-up (topk's default aux_coefficient). */
const WARMUP_AUX_COEFFICIENT = 1 / 32;
/** EMA factor of the threshold in the TopK warm-up (batchtopk's default thresholdBeta, as SAELens). */
const WARMUP_THRESHOLD_BETA = 0.99;

/**
 * The TopK warm-up step: each row keeps its warmupK largest pre-activations (topk-family.ts, x not
 * shifted unless applyBDec); the threshold gets no gradient and is set, on every latent, to the EMA
 * of the batch threshold of that L0 (BatchSelector.nextThreshold).
 */
function topkWarmupStep(engine: Engine, d: Dims, h: JumpReluHyper, k: number, debug: boolean): TrainStep {
  const selector = new BatchSelector(k, d.dSae);
  const perRow = topKFamilyStep(
    engine,
    d,
    {
      name: 'jumprelu-warmup',
      auxK: undefined,
      loss: 'mse',
      applyBDec: h.applyBDec,
      perRow: () => selector.kCand,
      select: (enc, rows) => selector.select(enc.main, rows, true),
    },
    debug,
  );
  const name = h.thresholdParam === 'log' ? 'log_threshold' : 'threshold';
  return {
    async run(params, inp) {
      const out = await perRow.run(params, { ...inp, coef: WARMUP_AUX_COEFFICIENT });
      const param = params[name]!;
      const theta = h.thresholdParam === 'log' ? Math.exp(param[0]!) : param[0]!;
      const next = selector.nextThreshold(theta, WARMUP_THRESHOLD_BETA, inp.progress === 0);
      if (next !== theta) param.fill(h.thresholdParam === 'log' ? Math.log(next) : next);
      return { ...out, grads: { ...out.grads, [name]: new Float32Array(d.dSae) } };
    },
  };
}

/** The step: the graph's, with the pre-activation loss of dead latents when its coefficient is set, after the TopK warm-up if any. */
async function step(engine: Engine, d: Dims, h: JumpReluHyper, debug: boolean): Promise<TrainStep> {
  const dense = await denseStep(jumprelu, train, engine, d, h, debug);
  const main: TrainStep = h.preActCoefficient === 0 ? dense : { run: async (params, inp) => addPreActLoss(await dense.run(params, inp), params, inp, d, h) };
  if (h.warmupK === undefined || h.topkWarmup === 0) return main;
  const warm = topkWarmupStep(engine, d, h, h.warmupK, debug);
  return { run: (params, inp) => (inp.progress < h.topkWarmup ? warm.run(params, inp) : main.run(params, inp)) };
}

/** Initial threshold parameters (the rest is the common initialisation). */
function initExtra(d: Dims, h: JumpReluHyper): Params {
  const v = h.thresholdParam === 'log' ? Math.log(h.initThreshold) : h.initThreshold;
  return { [h.thresholdParam === 'log' ? 'log_threshold' : 'threshold']: new Float32Array(d.dSae).fill(v) };
}

export const jumprelu: ArchitectureDef<JumpReluHyper> = {
  name: 'jumprelu',
  formulas: 'f = relu(pre) * H(pre - theta), pre = x W_enc + b_enc; x_hat = f W_dec + b_dec; loss = mse + l0_coefficient * L0 (straight-through)',
  coefficient: { name: 'l0_coefficient', default: 1 },
  hyper,
  options: [
    { key: 'bandwidth', kind: 'number', help: 'straight-through kernel width (default 0.001)' },
    {
      key: 'initThreshold',
      kind: 'number',
      help: "threshold at initialisation (default 0.001, as SAELens; it moves about lr per step, so short runs want one near the pre-activations' scale)",
    },
    { key: 'thresholdParam', kind: 'string', help: "train the threshold as 'linear' (default) or 'log'" },
    { key: 'preActCoefficient', kind: 'number', help: 'pre-activation loss on dead latents (Anthropic 2025; 0: off)' },
    {
      key: 'topkWarmup',
      kind: 'number',
      help: "fraction of the run trained as TopK first (batchtopk, matryoshka: default 0.5, 0 is the paper's recipe; jumprelu: default 0, needs --warmup-k)",
    },
    { key: 'warmupK', kind: 'integer', help: 'latents per input in the TopK warm-up' },
  ],
  unitNormDecoder: false,
  decoder: () => 'affine',
  recovery: {
    knob: { kind: 'coefficient' },
    unitNormDecoder: true,
    // our recipe in the benchmark: half the run as TopK at the target L0 (MMCS 0.757 -> 0.993 at 1500 steps)
    hyper: (l0) => ({ topkWarmup: 0.5, warmupK: Math.max(1, Math.round(l0)) }),
  },
  reference: {
    files: ['jumprelu'],
    map: (h) => ({ hyper: hyper.parse({ bandwidth: h['bandwidth'], thresholdParam: 'log' }), coef: refNumber(h['l0_coefficient']) }),
  },
  applyBDecToInput: (h) => h.applyBDec,
  params,
  initExtra,
  encode: (g, x, p, h) => encode(g, x, p, h),
  decode: (g, f, p) => decodeAffine(g, f, p),
  step,
  exportForm: (h, _d, p) => {
    if (h.thresholdParam === 'linear') return { architecture: 'jumprelu', hyper: h, params: p };
    const { log_threshold: logTheta, ...rest } = p;
    return { architecture: 'jumprelu', hyper: { ...h, thresholdParam: 'linear' }, params: { ...rest, threshold: logTheta!.map(Math.exp) } };
  },
  toCfg: () => ({}),
  fromCfg: (cfg) => hyper.parse({ applyBDec: cfg['apply_b_dec_to_input'] === true }),
};
