/**
 * EleutherAI sparsify: one folder per hookpoint with cfg.json (SparseCoderConfig + d_in) and
 * sae.safetensors (encoder.weight [n, d_in], encoder.bias [n], W_dec [n, d_in], b_dec [d_in],
 * W_skip [d_in, d_in] with skip_connection); a model's folder holds one such folder per hookpoint.
 * As sparsify computes it (sparse_coder.py, fused_encoder.py):
 *   pre = relu((x - b_dec) @ encoder.weight^T + encoder.bias);  f = the k largest of pre, 0 elsewhere
 *   x_hat = f @ W_dec + b_dec (+ x @ W_skip^T with a skip connection)
 * which is our topk (relu of the k largest equals the k largest of the relu'd row). multi_topk is a
 * training loss only (encode keeps k). Refused: activation 'groupmax', transcoders (transcode: true).
 * saveSparsify writes our topk SAEs in this layout (the same formulas, so sparsify loads them as they are).
 */
import { join } from 'node:path';
import { paramsOf } from '../arch/common.js';
import type { Params } from '../arch/types.js';
import { fileError, UserError } from '../errors.js';
import { ensureWritableDir, writeFileAtomic } from '../io/atomic.js';
import { isRecord, readJsonObject } from '../io/json.js';
import { readSafetensors, toFloat32, writeSafetensors } from '../io/safetensors.js';
import type { Sae } from '../sae.js';
import { expectShape, type LoadedSae, toSae, transpose } from './external.js';

export const SPARSIFY_CFG = 'cfg.json';
export const SPARSIFY_WEIGHTS = 'sae.safetensors';

function int(cfg: Record<string, unknown>, key: string, file: string, byDefault: number): number {
  const v = cfg[key] ?? byDefault;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw fileError(file, `${key} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

export async function loadSparsify(dir: string): Promise<LoadedSae> {
  const cfgPath = join(dir, SPARSIFY_CFG);
  const weightsPath = join(dir, SPARSIFY_WEIGHTS);
  const cfg = await readJsonObject(cfgPath);
  const activation = cfg['activation'] ?? 'topk';
  if (activation === 'groupmax') throw fileError(cfgPath, "activation 'groupmax' (the max of each of k groups of latents) is not an architecture we compute");
  if (activation !== 'topk') throw fileError(cfgPath, `activation ${JSON.stringify(activation)} is not one sparsify has (topk, groupmax)`);
  if (cfg['transcode'] === true) throw fileError(cfgPath, "transcode is true: a transcoder (it predicts another module's output), not an autoencoder");
  if (cfg['signed'] === true) throw fileError(cfgPath, 'signed is true: signed latents are not an architecture we compute');
  const dIn = cfg['d_in'];
  if (typeof dIn !== 'number' || !Number.isInteger(dIn) || dIn < 1) throw fileError(cfgPath, `d_in must be a positive integer, got ${JSON.stringify(dIn)}`);
  const dSae = int(cfg, 'num_latents', cfgPath, 0) || dIn * int(cfg, 'expansion_factor', cfgPath, 32);
  if (cfg['k'] === undefined) throw fileError(cfgPath, 'k is missing (sparsify writes it; we do not guess it)');
  const k = int(cfg, 'k', cfgPath, 0);
  if (k < 1 || k > dSae) throw fileError(cfgPath, `k must be in [1, ${dSae}], got ${k}`);
  const skip = cfg['skip_connection'] === true;
  const { tensors } = await readSafetensors(weightsPath);
  const get = (name: string, shape: number[]): Float32Array => {
    const t = tensors.get(name);
    if (!t) throw fileError(weightsPath, `tensor '${name}' is missing (sparsify saves encoder.weight, encoder.bias, W_dec, b_dec${skip ? ', W_skip' : ''})`);
    expectShape(weightsPath, `tensor '${name}'`, t.shape, shape, `cfg.json says d_in ${dIn}, ${dSae} latents`);
    return toFloat32(t, weightsPath).slice();
  };
  const params: Params = {
    W_enc: transpose(get('encoder.weight', [dSae, dIn]), dSae, dIn),
    b_enc: get('encoder.bias', [dSae]),
    W_dec: get('W_dec', [dSae, dIn]),
    b_dec: get('b_dec', [dIn]),
  };
  const wSkip = skip ? get('W_skip', [dIn, dIn]) : undefined;
  const known = ['encoder.weight', 'encoder.bias', 'W_dec', 'b_dec', ...(skip ? ['W_skip'] : [])];
  const extra = [...tensors.keys()].filter((n) => !known.includes(n));
  if (extra.length)
    throw fileError(
      weightsPath,
      `unexpected tensor${extra.length > 1 ? 's' : ''} ${extra.map((n) => `'${n}'`).join(', ')}${extra.includes('W_skip') ? ' (cfg.json has skip_connection false)' : ''}`,
    );
  const folded: string[] = [];
  const dtype = tensors.get('encoder.weight')!.dtype;
  if (dtype !== 'F32') folded.push(`weights are ${dtype}: computed in float32`);
  if (cfg['multi_topk'] === true) folded.push("multi_topk is a training loss: encode keeps k latents, as sparsify's encode does");
  const metadata: Record<string, unknown> = {
    source_format: 'sparsify',
    hookpoint: dir.split(/[\\/]/).filter(Boolean).pop(),
    sparsify_cfg: isRecord(cfg) ? cfg : {},
  };
  const sae = toSae({ kind: 'topk', dIn, dSae, k, applyBDec: true, params, metadata }, folded);
  return { sae, format: 'sparsify', folded, ...(wSkip ? { skip: wSkip } : {}) };
}

/** Writes a topk SAE as a sparsify hookpoint folder (cfg.json + sae.safetensors); other architectures have no sparsify form. */
export async function saveSparsify(dir: string, sae: Sae): Promise<void> {
  if (sae.architecture !== 'topk') throw new UserError(`architecture '${sae.architecture}' has no sparsify form (sparsify computes topk only)`);
  const { dIn, dSae } = sae.dims;
  const { k } = sae.hyper; // narrowed to TopKHyper by the architecture check
  await ensureWritableDir(dir);
  const { W_enc, b_enc, W_dec, b_dec } = paramsOf(sae.params, 'W_enc', 'b_enc', 'W_dec', 'b_dec');
  await writeSafetensors(join(dir, SPARSIFY_WEIGHTS), {
    'encoder.weight': { dtype: 'F32', shape: [dSae, dIn], data: transpose(W_enc, dIn, dSae) },
    'encoder.bias': { dtype: 'F32', shape: [dSae], data: b_enc },
    W_dec: { dtype: 'F32', shape: [dSae, dIn], data: W_dec },
    b_dec: { dtype: 'F32', shape: [dIn], data: b_dec },
  });
  const cfg = {
    activation: 'topk',
    expansion_factor: Math.max(1, Math.round(dSae / dIn)),
    normalize_decoder: true,
    num_latents: dSae,
    k,
    multi_topk: false,
    skip_connection: false,
    transcode: false,
    d_in: dIn,
  };
  await writeFileAtomic(join(dir, SPARSIFY_CFG), `${JSON.stringify(cfg)}\n`);
}
