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
 * into the auxiliary one; both flow through the selected entries only (see sparse.ts).
 */
import { z } from 'zod';
import type { GraphBuilder, Value } from '../engine/onnx.js';
import { decodeAffine, refNumber, saeParams } from './common.js';
import { deadBias, densify, firesOf, runEncoder, sparsePass, Workspace } from './sparse.js';
import type { ArchitectureDef, Dims, Encoded, ParamValues, StepResult, TrainStep } from './types.js';
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
  const xc = applyBDec ? g.sub(x, p['b_dec']!) : x;
  const pre = g.gemm(xc, p['W_enc']!, { c: p['b_enc']! });
  const [val, idx] = g.topk(pre, g.constant(BigInt64Array.of(BigInt(k)), [1]));
  const zeros = g.op('Expand', [g.scalar(0), g.op('Shape', [pre])]);
  const f = g.op('ScatterElements', [zeros, idx, g.relu(val)], { axis: 1 });
  return { f, active: g.greater(f, g.scalar(0)) };
}

async function step(engine: Engine, d: Dims, h: TopKHyper, debug: boolean): Promise<TrainStep> {
  const { dIn, dSae } = d;
  const auxK = h.auxK ?? Math.max(1, Math.floor(dIn / 2));
  const workspace = debug ? undefined : new Workspace(); // debug results must outlive the step
  return {
    async run(params, inp): Promise<StepResult> {
      const B = inp.rows;
      const x = inp.x.subarray(0, B * dIn);
      const { bias, dead } = deadBias(inp.deadMask);
      const kAux = Math.min(auxK, dead);
      const aux = kAux > 0 ? { deadBias: bias, kAux } : undefined;
      const enc = await runEncoder(engine, `topk:${dIn}x${dSae}`, d, { applyBDec: true, aux: aux !== undefined, debug }, params, x, B, h.k, aux);
      const pass = await sparsePass(engine, d, params, x, B, { ...enc, auxScale: Math.min(dead / auxK, 1) }, { loss: 'fvu', auxCoefficient: inp.coef, ...(workspace ? { workspace } : {}) });
      await pass.grads.finishBDec(engine, params['W_enc']!);
      const forward: Record<string, Float32Array> = {};
      if (debug) {
        forward['pre'] = enc.pre!;
        forward['f'] = densify(enc.main, pass.f, dSae);
        forward['x_hat'] = pass.xHat;
        forward['f_aux'] = enc.aux && pass.fAux ? densify(enc.aux, pass.fAux, dSae) : new Float32Array(B * dSae);
      }
      const fires = firesOf(engine.kernels, enc.main, dSae);
      return { grads: pass.grads.record(), losses: pass.losses, fires, sse: pass.sse, variance: pass.variance, forward };
    },
  };
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
