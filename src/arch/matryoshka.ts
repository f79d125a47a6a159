/**
 * matryoshka: BatchTopK whose latents are ordered by nested prefixes m_1 < ... < m_L = d_sae, each
 * prefix reconstructing the input on its own (Bussmann et al. 2025; Nabeshima 2024), so that early
 * latents learn general features and later ones refine them.
 *   f as in batchtopk;  x_hat_l = f[:, :m_l] @ W_dec[:m_l] + b_dec
 *   mse_l = mean_b sum_d (x_hat_l - x)^2;  total = sum_l mse_l + aux_coefficient * auxk
 * Inference and saved form as batchtopk (JumpReLU at the EMA threshold).
 */
import { z } from 'zod';
import { decodeAffine, refNumber } from './common.js';
import { asJumpRelu, batchtopk, batchTopKEncode, batchTopKHyper, batchTopKParams, batchTopKStep } from './batchtopk.js';
import type { ArchitectureDef, Dims } from './types.js';

const hyper = batchTopKHyper
  .extend({
    /** Prefix widths, increasing; d_sae is added as the last if missing (default d_sae/8, /4, /2, 1). */
    prefixes: z.array(z.number().int().positive()).min(1).optional(),
  })
  .strict();
export type MatryoshkaHyper = z.infer<typeof hyper>;

/** The prefix widths for d_sae latents: checked, increasing, ending at d_sae. */
export function prefixWidths(d: Dims, h: MatryoshkaHyper): number[] {
  const widths = h.prefixes ?? [d.dSae / 8, d.dSae / 4, d.dSae / 2].map((w) => Math.max(1, Math.round(w)));
  const out = [...widths];
  if (out[out.length - 1] !== d.dSae) out.push(d.dSae);
  for (let i = 0; i < out.length; i++) {
    if (out[i]! > d.dSae || (i > 0 && out[i]! <= out[i - 1]!)) {
      throw new RangeError(`matryoshka prefixes must increase and not exceed d_sae = ${d.dSae}, got [${widths.join(', ')}]`);
    }
  }
  return out;
}

export const matryoshka: ArchitectureDef<MatryoshkaHyper> = {
  name: 'matryoshka',
  formulas: 'batchtopk codes; every prefix f[:, :m_l] reconstructs x; loss = sum_l mse_l (+ AuxK)',
  coefficient: { name: 'aux_coefficient', default: 1 / 32 },
  hyper,
  options: [...batchtopk.options, { key: 'prefixes', kind: 'list', help: 'nested prefix widths (default d_sae/8,d_sae/4,d_sae/2,d_sae)' }],
  decoder: () => 'affine',
  recovery: { knob: { kind: 'l0', key: 'k' }, unitNormDecoder: true },
  reference: {
    files: ['matryoshka'],
    map: (h) => ({
      hyper: hyper.parse({ k: h['k'], thresholdBeta: h['threshold_beta'], prefixes: h['prefixes'], topkWarmup: 0 }),
      coef: 0,
      extra: { threshold: Float32Array.of(refNumber(h['threshold'])) },
    }),
  },
  unitNormDecoder: true,
  applyBDecToInput: () => true,
  params: batchTopKParams,
  encode: (g, x, p) => batchTopKEncode(g, x, p),
  decode: (g, f, p) => decodeAffine(g, f, p),
  step: (engine, d, h, debug) => batchTopKStep(engine, d, h, debug, prefixWidths(d, h)),
  exportForm: (_h, d, p) => asJumpRelu(d, p),
  toCfg: (h) => ({ k: h.k, ...(h.prefixes ? { matryoshka_widths: h.prefixes } : {}) }),
  fromCfg: (cfg) => hyper.parse({ ...(typeof cfg['k'] === 'number' ? { k: cfg['k'] } : {}) }),
};
