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
import { decodeAffine, saeParams } from './common.js';
import { addRowVector, deadBias, densify, firesOf, reluOf, runEncoder, SparseGrads } from './sparse.js';
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
  const K = engine.kernels;
  const { dIn, dSae } = d;
  const auxK = h.auxK ?? Math.max(1, Math.floor(dIn / 2));
  const key = `topk:${dIn}x${dSae}`;
  return {
    async run(params, inp): Promise<StepResult> {
      const B = inp.rows;
      const x = inp.x.subarray(0, B * dIn);
      const { bias, dead } = deadBias(inp.deadMask);
      const kAux = Math.min(auxK, dead);
      const enc = await runEncoder(engine, key, d, { applyBDec: true, aux: kAux > 0, debug }, params, x, B, h.k, kAux > 0 ? { deadBias: bias, kAux } : undefined);
      const f = reluOf(enc.main.pre);
      const xHat = new Float32Array(B * dIn);
      K.sparseDecode(enc.main.code, f, params['W_dec']!, dIn, xHat);
      addRowVector(xHat, B, params['b_dec']!);
      const r = new Float32Array(B * dIn); // x_hat - x = -e
      const sse = K.subtract(xHat, x, r);
      const variance = K.centeredSumSquares(x, B, dIn);
      const fvu = sse / variance;

      const grads = new SparseGrads(K, d);
      const g = r.map((v) => (2 * v) / variance);
      grads.encoderBackward(enc.main, grads.decoderBackward(enc.main, f, g, params['W_dec']!, true), enc.xc);
      let auxk = 0;
      let fAux: Float32Array | undefined;
      if (enc.aux) {
        fAux = reluOf(enc.aux.pre);
        const eHat = new Float32Array(B * dIn);
        K.sparseDecode(enc.aux.code, fAux, params['W_dec']!, dIn, eHat);
        // e_hat - e = e_hat + (x_hat - x)
        const diff = new Float32Array(B * dIn);
        const scale = Math.min(dead / auxK, 1);
        auxk = (scale * K.subtract(eHat, r.map((v) => -v), diff)) / variance;
        const hGrad = diff.map((v) => (inp.coef * scale * 2 * v) / variance);
        grads.encoderBackward(enc.aux, grads.decoderBackward(enc.aux, fAux, hGrad, params['W_dec']!, false), enc.xc);
      }
      await grads.finishBDec(engine, params['W_enc']!);
      const forward: Record<string, Float32Array> = {};
      if (debug) {
        forward['pre'] = enc.pre!;
        forward['f'] = densify(enc.main, f, dSae);
        forward['x_hat'] = xHat;
        forward['f_aux'] = enc.aux && fAux ? densify(enc.aux, fAux, dSae) : new Float32Array(B * dSae);
      }
      return {
        grads: grads.record(),
        losses: { fvu, auxk, total: fvu + inp.coef * auxk },
        fires: firesOf(K, enc.main, dSae),
        sse,
        variance,
        forward,
      };
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
