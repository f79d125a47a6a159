/**
 * batchtopk: keep the k * batch largest activations of the whole batch (Bussmann et al. 2024), so
 * that inputs share a budget of active latents; at inference a JumpReLU with one threshold.
 *   pre = (x - b_dec) @ W_enc + b_enc;  post = relu(pre);  f = the k * B largest entries of post, 0 elsewhere
 *   x_hat = f @ W_dec + b_dec;  mse = mean_b sum_d (x_hat - x)^2;  total = mse + aux_coefficient * auxk
 *   threshold <- threshold_beta * threshold + (1 - threshold_beta) * min(f[f > 0])   (each step; the
 *   first step, from the initial 0, sets it to min(f[f > 0]))
 *   inference: f = post * (post > threshold); saved as SAELens "jumprelu" with that threshold per latent
 * AuxK on dead latents as in topk.ts. The selection: onnxruntime returns each row's kCand largest
 * pre-activations (kCand = 4k, doubled whenever a row had all its candidates kept, and the step
 * redone), the global selection runs over those candidates.
 * TopK warm-up (topkWarmup, a fraction of the run, default 0.5; 0 is the paper's recipe): before it ends, each
 * row keeps its own k largest (as topk), while the threshold still follows the batch selection's.
 * Why: the batch budget goes to the latents that already have the largest activations, so latents
 * that have not yet found a feature never get a slot, receive no gradient and die (AuxK does not
 * lift them over the batch threshold); rows with fewer than k features give TopK's spare slots to
 * weak latents while the dictionary forms. Measured on `sae bench-recovery` (d 64, n 256, 512
 * latents, L0 10.24, 1500 steps): MMCS 0.913 -> 0.995 with half the run as warm-up.
 */
import { z } from 'zod';
import type { Engine } from '../engine/index.js';
import type { GraphBuilder, Value } from '../engine/onnx.js';
import { decodeAffine, paramsOf, refNumber, saeParams } from './common.js';
import { jumpReluEncode } from './jumprelu.js';
import { BatchSelector } from './sparse-code.js';
import { topKFamilyStep } from './topk-family.js';
import type { ArchitectureDef, Dims, Encoded, ParamSpec, ParamValues, Params, TrainStep } from './types.js';

export const batchTopKHyper = z
  .object({
    /** Mean latents kept per input. */
    k: z.number().int().positive().default(32),
    /** Dead latents used by the AuxK loss (default d_in / 2). */
    auxK: z.number().int().positive().optional(),
    /**
     * EMA factor of the inference threshold: 0.99 as SAELens (topk_threshold_lr 0.01);
     * dictionary_learning uses 0.999, which lags behind the activations' scale in short runs
     * (measured: on the demo's image patches, k 20, 1500 steps, held-out L0 13.1 with 0.999).
     */
    thresholdBeta: z.number().min(0).lt(1).default(0.99),
    /**
     * Fraction of the run in which each row keeps its own k largest before the batch selection
     * (0: none, the paper's recipe). Default 0.5: measured better on the recovery benchmark and on
     * real data (image demo patches, 256 latents, k 20, 2000 steps: held-out FVU 0.106 -> 0.097,
     * oriented localised filters instead of many checkerboards; USE-lite MLP, 2048 latents, k 32,
     * 800 steps: FVU 0.305 -> 0.297; no dead latents either way; matryoshka on the patches: FVU
     * 0.156 -> 0.127).
     */
    topkWarmup: z.number().min(0).lt(1).default(0.5),
  })
  .strict();
export type BatchTopKHyper = z.infer<typeof batchTopKHyper>;

export function batchTopKParams(d: Dims): ParamSpec[] {
  return [...saeParams(d), { name: 'threshold', shape: [1], trainable: false }];
}

/** Inference: JumpReLU on relu(pre) with the one threshold. */
export function batchTopKEncode(g: GraphBuilder, x: Value, p: ParamValues): Encoded {
  const { W_enc, b_enc, b_dec, threshold } = paramsOf(p, 'W_enc', 'b_enc', 'b_dec', 'threshold');
  const post = g.relu(g.gemm(g.sub(x, b_dec), W_enc, { c: b_enc }));
  return jumpReluEncode(g, post, threshold);
}

/** The saved form: SAELens's jumprelu with the threshold on every latent. */
export function asJumpRelu(d: Dims, p: Params): { architecture: 'jumprelu'; hyper: unknown; params: Params } {
  const { threshold, ...rest } = p;
  return {
    architecture: 'jumprelu',
    hyper: { bandwidth: 0.001, initThreshold: 0.001, thresholdParam: 'linear', applyBDec: true },
    params: { ...rest, threshold: new Float32Array(d.dSae).fill(threshold![0]!) },
  };
}

/** The training step of batchtopk (prefixes: one) and matryoshka (nested prefixes); see topk-family.ts. */
export function batchTopKStep(engine: Engine, d: Dims, h: BatchTopKHyper, debug: boolean, prefixes?: readonly number[]): Promise<TrainStep> {
  const selector = new BatchSelector(h.k, d.dSae);
  return Promise.resolve(
    topKFamilyStep(
      engine,
      d,
      {
        name: 'batchtopk',
        auxK: h.auxK,
        loss: 'mse',
        prefixes,
        perRow: () => selector.kCand,
        select: (enc, rows, progress) => selector.select(enc.main, rows, progress < h.topkWarmup),
        finish: (params, forward) => {
          const { threshold } = paramsOf(params, 'threshold');
          threshold[0] = selector.nextThreshold(threshold[0]!, h.thresholdBeta, threshold[0] === 0); // 0: no step yet
          if (forward) forward['threshold_after'] = threshold.slice();
        },
      },
      debug,
    ),
  );
}

export const batchtopk: ArchitectureDef<BatchTopKHyper> = {
  name: 'batchtopk',
  formulas: 'f = the k * batch largest of relu((x - b_dec) W_enc + b_enc) over the batch; x_hat = f W_dec + b_dec; inference: JumpReLU at an EMA threshold',
  coefficient: { name: 'aux_coefficient', default: 1 / 32 },
  hyper: batchTopKHyper,
  options: [
    { key: 'k', kind: 'integer', help: 'latents kept per input (default 32)' },
    { key: 'auxK', kind: 'integer', help: 'dead latents in the AuxK loss (default d_in / 2)' },
    { key: 'thresholdBeta', kind: 'number', help: 'EMA factor of the inference threshold (default 0.99, as SAELens)' },
    {
      key: 'topkWarmup',
      kind: 'number',
      help: "fraction of the run trained as TopK first (batchtopk, matryoshka: default 0.5, 0 is the paper's recipe; jumprelu: default 0, needs --warmup-k)",
    },
  ],
  decoder: () => 'affine',
  recovery: { knob: { kind: 'l0', key: 'k' }, unitNormDecoder: true },
  reference: {
    files: ['batchtopk'],
    map: (h) => ({
      hyper: batchTopKHyper.parse({ k: h['k'], thresholdBeta: h['threshold_beta'], topkWarmup: 0 }),
      coef: 0,
      extra: { threshold: Float32Array.of(refNumber(h['threshold'])) },
    }),
  },
  unitNormDecoder: true,
  applyBDecToInput: () => true,
  params: batchTopKParams,
  encode: (g, x, p) => batchTopKEncode(g, x, p),
  decode: (g, f, p) => decodeAffine(g, f, p),
  step: (engine, d, h, debug) => batchTopKStep(engine, d, h, debug),
  exportForm: (_h, d, p) => asJumpRelu(d, p),
  toCfg: (h) => ({ k: h.k }),
  fromCfg: (cfg) => batchTopKHyper.parse({ ...(typeof cfg['k'] === 'number' ? { k: cfg['k'] } : {}) }),
};
