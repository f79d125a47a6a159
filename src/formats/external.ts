/**
 * An SAE as another library computes it, rewritten exactly into one of our architectures. Every
 * loader of a published layout (SAELens, Gemma Scope, sparsify, Llama Scope) reads its files into
 * an ExternalSae (weights in SAELens's orientation) and calls toSae, which folds what differs:
 *   encoder input x - b_dec*[applyBDec]:  ours subtracts b_dec where the architecture does, so a
 *     library that does not gets b_enc' = b_enc + b_dec @ W_enc (gated: b_gate' and b_mag' likewise)
 *   JumpReLU as SAELens and Gemma Scope compute it: f = relu(pre) * H(pre - theta); ours is
 *     pre * H(pre - theta'), equal for theta' = max(theta, 0)
 *   a per-latent scale s on the latents before the decoder (SAELens's finetuning_scaling_factor):
 *     W_dec'[i] = s_i W_dec[i]
 *   TopK on pre * ||W_dec[i]|| with latents divided by the norm before decoding (SAELens's
 *     rescale_acts_by_decoder_norm): W_enc'[:, i] = n_i W_enc[:, i], b_enc'_i = n_i b_enc_i,
 *     W_dec'[i] = W_dec[i] / n_i; the latents are SAELens's
 *   inputs scaled by c before the SAE and outputs by 1 / c (a dataset-norm factor): W_enc' = c W_enc,
 *     W_dec' = W_dec / c, b_dec' = b_dec / c (pre-activations unchanged)
 * Each fold is reported as one line in `folded`.
 */
import { paramsOf } from '../arch/common.js';
import { parseHyper } from '../arch/index.js';
import type { Params } from '../arch/types.js';
import { fileError } from '../errors.js';
import { Sae } from '../sae.js';

/** The forms of encoder we can compute exactly. */
export type ExternalKind = 'relu' | 'topk' | 'jumprelu' | 'gated';

export interface ExternalSae {
  readonly kind: ExternalKind;
  readonly dIn: number;
  readonly dSae: number;
  /** Whether the encoder sees x - b_dec. */
  readonly applyBDec: boolean;
  /** topk: latents kept per input. */
  readonly k?: number;
  /** [dIn, dSae] W_enc, [dSae] b_enc (absent for gated), [dSae, dIn] W_dec, [dIn] b_dec, [dSae] threshold / b_gate / b_mag / r_mag. */
  readonly params: Params;
  readonly metadata: Record<string, unknown>;
}

/** What a loader made of a published SAE. */
export interface LoadedSae {
  readonly sae: Sae;
  /** The layout it was read from. */
  readonly format: SaeFormat;
  /** One line for each thing folded into the weights or read differently from a plain SAELens file. */
  readonly folded: readonly string[];
  /** sparsify's skip connection W_skip [dIn, dIn]: the reconstruction adds x @ W_skip^T. */
  readonly skip?: Float32Array;
}

export type SaeFormat = 'saelens' | 'gemma-scope' | 'sparsify' | 'llama-scope' | 'openai';

/** w: [rows, cols] -> w^T: [cols, rows] */
export function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c]!;
  return out;
}

/** b: [dIn], w: [dIn, dSae] -> b @ w: [dSae] (in float64) */
function vecMat(b: Float32Array, w: Float32Array, dIn: number, dSae: number): Float64Array {
  const out = new Float64Array(dSae);
  for (let i = 0; i < dIn; i++) {
    const bi = b[i]!;
    if (bi !== 0) for (let j = 0; j < dSae; j++) out[j]! += bi * w[i * dSae + j]!;
  }
  return out;
}

/** W_dec: [dSae, dIn] -> its row norms [dSae] */
export function rowNorms(wDec: Float32Array, dSae: number, dIn: number): Float64Array {
  const n = new Float64Array(dSae);
  for (let i = 0; i < dSae; i++) {
    let s = 0;
    for (let j = 0; j < dIn; j++) s += wDec[i * dIn + j]! ** 2;
    n[i] = Math.sqrt(s);
  }
  return n;
}

/** Scales latent i by s_i on the decoder side: W_dec[i] *= s_i (SAELens's finetuning_scaling_factor). */
export function foldLatentScale(p: Params, s: Float32Array | Float64Array, dSae: number, dIn: number): void {
  const { W_dec } = paramsOf(p, 'W_dec');
  for (let i = 0; i < dSae; i++) for (let j = 0; j < dIn; j++) W_dec[i * dIn + j]! *= s[i]!;
}

/**
 * SAELens's rescale_acts_by_decoder_norm: W_enc[:, i] *= n_i, b_enc_i *= n_i, W_dec[i] /= n_i, n_i = ||W_dec[i]||.
 * `file` names the weights in the error for a zero decoder row (SAELens divides by it).
 */
export function foldDecoderNorm(p: Params, dIn: number, dSae: number, file: string): void {
  const { W_enc, b_enc, W_dec } = paramsOf(p, 'W_enc', 'b_enc', 'W_dec');
  const n = rowNorms(W_dec, dSae, dIn);
  const zero = n.findIndex((v) => !(v > 0));
  if (zero >= 0) throw fileError(file, `rescale_acts_by_decoder_norm is set but decoder row ${zero} has norm 0 (SAELens divides the latents by it)`);
  for (let r = 0; r < dIn; r++) for (let i = 0; i < dSae; i++) W_enc[r * dSae + i]! *= n[i]!;
  for (let i = 0; i < dSae; i++) b_enc[i]! *= n[i]!;
  foldLatentScale(
    p,
    n.map((v) => 1 / v),
    dSae,
    dIn,
  );
}

/** Inputs scaled by c before the SAE and the output by 1 / c: W_enc *= c, W_dec /= c, b_dec /= c. */
export function foldInputScale(p: Params, c: number): void {
  for (const [name, k] of [
    ['W_enc', c],
    ['W_dec', 1 / c],
    ['b_dec', 1 / c],
  ] as const) {
    const w = p[name]!;
    for (let i = 0; i < w.length; i++) w[i]! *= k;
  }
}

/** Checks a tensor's shape; `file` and `what` name it in the error. */
export function expectShape(file: string, what: string, shape: readonly number[], expected: readonly number[], why: string): void {
  if (shape.length !== expected.length || shape.some((n, i) => n !== expected[i])) {
    throw fileError(file, `${what} has shape [${shape.join(', ')}], expected [${expected.join(', ')}] (${why})`);
  }
}

/**
 * The ExternalSae as one of our architectures, computing the same latents and reconstructions; it
 * takes ext.params over (folds rewrite them in place: loaders pass arrays they own).
 */
export function toSae(ext: ExternalSae, folded: string[]): Sae {
  const { dIn, dSae } = ext;
  const p: Params = { ...ext.params };
  const dims = { dIn, dSae };
  const shiftBias = (bias: 'b_enc' | 'b_gate' | 'b_mag', wEnc: Float32Array): void => {
    const add = vecMat(paramsOf(p, 'b_dec').b_dec, wEnc, dIn, dSae);
    const b = paramsOf(p, bias)[bias];
    for (let j = 0; j < dSae; j++) b[j] = b[j]! + add[j]!;
  };
  switch (ext.kind) {
    case 'relu':
    case 'topk': {
      const params = paramsOf(p, 'W_enc', 'b_enc', 'W_dec', 'b_dec');
      if (!ext.applyBDec) {
        shiftBias('b_enc', params.W_enc);
        folded.push('encoder input is x, not x - b_dec: b_dec @ W_enc added to b_enc');
      }
      if (ext.kind === 'relu') return new Sae('standard', dims, {}, params, ext.metadata);
      return new Sae('topk', dims, parseHyper('topk', { k: ext.k }), params, ext.metadata);
    }
    case 'gated': {
      if (!ext.applyBDec) {
        const { W_enc, r_mag } = paramsOf(p, 'W_enc', 'r_mag');
        shiftBias('b_gate', W_enc);
        shiftBias(
          'b_mag',
          W_enc.map((v, idx) => v * Math.exp(r_mag[idx % dSae]!)),
        );
        folded.push('encoder input is x, not x - b_dec: b_dec @ W_enc added to b_gate, b_dec @ (W_enc exp(r_mag)) to b_mag');
      }
      return new Sae('gated', dims, {}, p, ext.metadata);
    }
    case 'jumprelu': {
      const { threshold: theta } = paramsOf(p, 'threshold');
      const negative = theta.reduce((n, v) => n + (v < 0 ? 1 : 0), 0);
      if (negative > 0) {
        for (let i = 0; i < dSae; i++) theta[i] = Math.max(theta[i]!, 0);
        folded.push(`${negative} negative threshold${negative > 1 ? 's' : ''} set to 0 (the ReLU before the threshold makes them act as 0)`);
      }
      return new Sae('jumprelu', dims, parseHyper('jumprelu', { applyBDec: ext.applyBDec }), p, ext.metadata);
    }
  }
}
