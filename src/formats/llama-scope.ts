/**
 * Llama Scope (He et al. 2024) as released: a folder with hyperparams.json (d_model, d_sae,
 * hook_point_in, jump_relu_threshold, dataset_average_activation_norm.in) and
 * checkpoints/final.safetensors (encoder.weight [d_sae, d_model], encoder.bias, decoder.weight
 * [d_model, d_sae], decoder.bias). As SAELens loads it (llama_scope loader, then folding the
 * dataset-norm factor c = sqrt(d_model) / dataset_average_activation_norm.in):
 *   W_enc = c encoder.weight^T;  b_enc = encoder.bias;  W_dec = decoder.weight^T / c;  b_dec = decoder.bias / c
 *   threshold = jump_relu_threshold * c (one value for every latent)
 *   pre = x @ W_enc + b_enc;  f = relu(pre) * H(pre - threshold);  x_hat = f @ W_dec + b_dec
 */
import { join } from 'node:path';
import type { Params } from '../arch/types.js';
import { fileError } from '../errors.js';
import { isRecord, readJsonObject } from '../io/json.js';
import { readSafetensors, toFloat32 } from '../io/safetensors.js';
import { expectShape, foldInputScale, type LoadedSae, toSae, transpose } from './external.js';

export const LLAMA_SCOPE_CFG = 'hyperparams.json';
export const LLAMA_SCOPE_WEIGHTS = join('checkpoints', 'final.safetensors');

function positive(cfg: Record<string, unknown>, key: string, file: string, integer: boolean): number {
  const v = cfg[key];
  if (typeof v !== 'number' || !(v > 0) || (integer && !Number.isInteger(v)))
    throw fileError(file, `${key} must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(v)}`);
  return v;
}

export async function loadLlamaScope(dir: string): Promise<LoadedSae> {
  const cfgPath = join(dir, LLAMA_SCOPE_CFG);
  const weightsPath = join(dir, LLAMA_SCOPE_WEIGHTS);
  const cfg = await readJsonObject(cfgPath);
  const dIn = positive(cfg, 'd_model', cfgPath, true);
  const dSae = positive(cfg, 'd_sae', cfgPath, true);
  if (cfg['act_fn'] !== undefined && cfg['act_fn'] !== 'jumprelu')
    throw fileError(cfgPath, `act_fn ${JSON.stringify(cfg['act_fn'])}: only Llama Scope's jumprelu SAEs are read`);
  if (cfg['hook_point_out'] !== undefined && cfg['hook_point_out'] !== cfg['hook_point_in'])
    throw fileError(cfgPath, 'hook_point_out differs from hook_point_in: a transcoder, not an autoencoder');
  const theta = cfg['jump_relu_threshold'];
  if (typeof theta !== 'number' || !Number.isFinite(theta)) throw fileError(cfgPath, `jump_relu_threshold must be a number, got ${JSON.stringify(theta)}`);
  const norms = cfg['dataset_average_activation_norm'];
  if (!isRecord(norms)) throw fileError(cfgPath, 'dataset_average_activation_norm is missing (its "in" value sets the input scale)');
  const normIn = positive(norms, 'in', cfgPath, false);
  const c = Math.sqrt(dIn) / normIn;
  const { tensors } = await readSafetensors(weightsPath);
  const get = (name: string, shape: number[]): Float32Array => {
    const t = tensors.get(name);
    if (!t) throw fileError(weightsPath, `tensor '${name}' is missing (Llama Scope saves encoder.weight, encoder.bias, decoder.weight, decoder.bias)`);
    expectShape(weightsPath, `tensor '${name}'`, t.shape, shape, `hyperparams.json says d_model ${dIn}, d_sae ${dSae}`);
    return toFloat32(t, weightsPath).slice();
  };
  const params: Params = {
    W_enc: transpose(get('encoder.weight', [dSae, dIn]), dSae, dIn),
    b_enc: get('encoder.bias', [dSae]),
    W_dec: transpose(get('decoder.weight', [dIn, dSae]), dIn, dSae),
    b_dec: get('decoder.bias', [dIn]),
    threshold: new Float32Array(dSae).fill(theta * c),
  };
  foldInputScale(params, c);
  const folded = [
    `dataset norm factor c = sqrt(d_model) / ${normIn} = ${c} folded (W_enc * c, W_dec / c, b_dec / c, threshold = jump_relu_threshold * c), as SAELens does`,
  ];
  const metadata = { source_format: 'llama-scope', hook_name: cfg['hook_point_in'] };
  const sae = toSae({ kind: 'jumprelu', dIn, dSae, applyBDec: false, params, metadata }, folded);
  return { sae, format: 'llama-scope', folded };
}
