/**
 * topk: keep the k largest pre-activations of each row (Gao et al. 2024; SAELens/sparsify "topk"),
 * with the AuxK loss that revives dead latents.
 *   pre = (x - b_dec) @ W_enc + b_enc;  f = relu(the k largest entries of each row of pre), 0 elsewhere
 *   x_hat = f @ W_dec + b_dec;  e = x - x_hat;  T = sum_b sum_d (x - mean_b x)^2;  fvu = sum e^2 / T
 *   AuxK: n_dead latents that fired on none of the last inputs; k_aux = min(aux_k, n_dead),
 *   scale = min(n_dead / aux_k, 1); f_aux = relu(the k_aux largest pre among dead latents);
 *   e_hat = f_aux @ W_dec (no bias);  auxk = scale * sum (e_hat - stopgrad(e))^2 / T
 *   total = fvu + aux_coefficient * auxk
 * Gradients: g = 2 (x_hat - x) / T into the decode path, h = aux_coefficient * scale * 2 (e_hat - e) / T
 * into the auxiliary one; both flow through the selected entries only (see sparse-backward.ts).
 */
import { z } from 'zod';
import type { GraphBuilder, Value } from '../engine/onnx.js';
import { decodeAffine, paramsOf, refNumber, saeParams } from './common.js';
import { type TopKFamily, topKFamilyStep } from './topk-family.js';
import type { ArchitectureDef, Dims, Encoded, ParamValues, TrainStep } from './types.js';
import type { Engine } from '../engine/index.js';

const hyper = z
  .object({
    /** Latents kept per input. */
    k: z.number().int().positive().default(32),
    /** Dead latents used by the AuxK loss (default d_in / 2). */
    auxK: z.number().int().positive().optional(),
  })
  .strict();
export type TopKHyper = z.infer<typeof hyper>;

/** x [B, dIn] -> the dense code f [B, dSae] (inference): the k largest of each row, relu'd, scattered back. */
export function topkEncode(g: GraphBuilder, x: Value, p: ParamValues, k: number, applyBDec: boolean): Encoded {
  const { W_enc, b_enc, b_dec } = paramsOf(p, 'W_enc', 'b_enc', 'b_dec');
  const xc = applyBDec ? g.sub(x, b_dec) : x;
  const pre = g.gemm(xc, W_enc, { c: b_enc });
  const [val, idx] = g.topk(pre, g.constant(BigInt64Array.of(BigInt(k)), [1]));
  const zeros = g.op('Expand', [g.scalar(0), g.op('Shape', [pre])]);
  const f = g.op('ScatterElements', [zeros, idx, g.relu(val)], { axis: 1 });
  return { f, active: g.greater(f, g.scalar(0)) };
}

/** The training step: each row's k largest, as the encoder selects them (see topk-family.ts). */
function step(engine: Engine, d: Dims, h: TopKHyper, debug: boolean): Promise<TrainStep> {
  const family: TopKFamily = { name: 'topk', auxK: h.auxK, loss: 'fvu', perRow: () => h.k, select: (enc) => enc.main };
  return Promise.resolve(topKFamilyStep(engine, d, family, debug));
}

export const topk: ArchitectureDef<TopKHyper> = {
  name: 'topk',
  formulas: 'f = relu(topk((x - b_dec) W_enc + b_enc)); x_hat = f W_dec + b_dec; loss = fvu + aux_coefficient * AuxK(dead latents)',
  coefficient: { name: 'aux_coefficient', default: 1 / 32 },
  hyper,
  options: [
    { key: 'k', kind: 'integer', help: 'latents kept per input (default 32)' },
    { key: 'auxK', kind: 'integer', help: 'dead latents in the AuxK loss (default d_in / 2)' },
  ],
  decoder: () => 'affine',
  recovery: { knob: { kind: 'l0', key: 'k' }, unitNormDecoder: true },
  reference: { files: ['topk'], map: (h) => ({ hyper: { k: refNumber(h['k']), auxK: refNumber(h['aux_k']) }, coef: refNumber(h['aux_coefficient']) }) },
  unitNormDecoder: true,
  applyBDecToInput: () => true,
  params: saeParams,
  encode: (g, x, p, h) => topkEncode(g, x, p, h.k, true),
  decode: (g, f, p) => decodeAffine(g, f, p),
  step,
  toCfg: (h) => ({ k: h.k }),
  fromCfg: (cfg) => {
    const kwargs = cfg['activation_fn_kwargs'];
    const k = cfg['k'] ?? (typeof kwargs === 'object' && kwargs !== null && 'k' in kwargs ? kwargs.k : undefined);
    return hyper.parse({ k });
  },
};
