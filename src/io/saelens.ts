/**
 * Saves and loads SAEs in SAELens's v6 layout: a folder with cfg.json, sae_weights.safetensors
 * (W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in], plus the architecture's
 * own tensors) and sparsity.safetensors (log10 firing rate per latent, tensor "sparsity").
 * Loading validates the architecture, every shape and dtype, and refuses tensors it would ignore.
 * Pre-6 configs (hook_point, activation_fn_str, boolean normalize_activations) are read too.
 */
import { join } from 'node:path';
import { architecture as architectureDef, isArchitecture } from '../arch/index.js';
import type { Params } from '../arch/types.js';
import { fileError } from '../errors.js';
import { Sae } from '../sae.js';
import { ensureWritableDir, writeFileAtomic } from './atomic.js';
import { isRecord, readJsonObject } from './json.js';
import { readSafetensors, type TensorToWrite, toFloat32, writeSafetensors } from './safetensors.js';

export const CFG_FILENAME = 'cfg.json';
export const WEIGHTS_FILENAME = 'sae_weights.safetensors';
export const SPARSITY_FILENAME = 'sparsity.safetensors';
/** The SAELens version whose layout we write (loaders older than 6.0 treat configs differently). */
const SAELENS_LAYOUT_VERSION = '6.0.0';
const PACKAGE = 'sparse-autoencoder@0.1.0';

export interface SaveOptions {
  /** [dSae] log10 firing rate of each latent. */
  readonly log10FiringRates?: Float32Array | undefined;
}

export function saeConfigJson(sae: Sae): Record<string, unknown> {
  return {
    architecture: sae.architecture,
    d_in: sae.dims.dIn,
    d_sae: sae.dims.dSae,
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: sae.def.applyBDecToInput(sae.hyper),
    normalize_activations: 'none',
    reshape_activations: 'none',
    ...sae.def.toCfg(sae.hyper),
    metadata: { sae_lens_version: SAELENS_LAYOUT_VERSION, trained_with: PACKAGE, ...sae.metadata },
  };
}

/** Writes the SAE's folder; each file is written to a temporary name and renamed. */
export async function saveSae(dir: string, sae: Sae, options: SaveOptions = {}): Promise<void> {
  await ensureWritableDir(dir);
  const tensors: Record<string, TensorToWrite> = {};
  for (const spec of sae.def.params(sae.dims, sae.hyper)) tensors[spec.name] = { dtype: 'F32', shape: spec.shape, data: sae.params[spec.name]! };
  await writeSafetensors(join(dir, WEIGHTS_FILENAME), tensors);
  if (options.log10FiringRates) {
    await writeSafetensors(join(dir, SPARSITY_FILENAME), { sparsity: { dtype: 'F32', shape: [sae.dims.dSae], data: options.log10FiringRates } });
  }
  await writeFileAtomic(join(dir, CFG_FILENAME), `${JSON.stringify(saeConfigJson(sae), null, 2)}\n`);
}

/** Fields SAELens kept at the top level before v6 and moved into metadata. */
const LEGACY_METADATA = ['model_name', 'hook_name', 'hook_point', 'hook_layer', 'hook_head_index', 'context_size', 'dataset_path', 'prepend_bos', 'sae_lens_training_version', 'neuronpedia_id'];

/** Reads cfg.json into the architecture, sizes, hyper-parameters and metadata, converting pre-6 configs. */
function readConfig(cfg: Record<string, unknown>, file: string): { architecture: string; dIn: number; dSae: number; metadata: Record<string, unknown> } {
  const metadata: Record<string, unknown> = isRecord(cfg['metadata']) ? { ...cfg['metadata'] } : {};
  for (const k of LEGACY_METADATA) if (cfg[k] !== undefined && metadata[k === 'hook_point' ? 'hook_name' : k] === undefined) metadata[k === 'hook_point' ? 'hook_name' : k] = cfg[k];
  let arch = cfg['architecture'] ?? 'standard';
  const activation = cfg['activation_fn'] ?? cfg['activation_fn_str'];
  if (activation === 'topk') arch = 'topk';
  if (typeof arch !== 'string') throw fileError(file, 'architecture is not a string');
  const dIn = cfg['d_in'];
  const dSae = cfg['d_sae'];
  if (typeof dIn !== 'number' || !Number.isInteger(dIn) || dIn < 1) throw fileError(file, `d_in must be a positive integer, got ${JSON.stringify(dIn)}`);
  if (typeof dSae !== 'number' || !Number.isInteger(dSae) || dSae < 1) throw fileError(file, `d_sae must be a positive integer, got ${JSON.stringify(dSae)}`);
  const norm = cfg['normalize_activations'];
  if (norm !== undefined && norm !== null && norm !== 'none' && norm !== false) {
    throw fileError(file, `normalize_activations '${String(norm)}' is not supported (only 'none': fold the scaling factor into the weights before saving)`);
  }
  const reshape = cfg['reshape_activations'];
  if (reshape !== undefined && reshape !== 'none') throw fileError(file, `reshape_activations '${String(reshape)}' is not supported`);
  return { architecture: arch, dIn, dSae, metadata };
}

export async function loadSae(dir: string): Promise<Sae> {
  const cfgPath = join(dir, CFG_FILENAME);
  const weightsPath = join(dir, WEIGHTS_FILENAME);
  const cfg = await readJsonObject(cfgPath);
  const { architecture, dIn, dSae, metadata } = readConfig(cfg, cfgPath);
  if (!isArchitecture(architecture)) throw fileError(cfgPath, `architecture '${architecture}' is not supported`);
  const def = architectureDef(architecture);
  let hyper: unknown;
  try {
    hyper = def.fromCfg(cfg);
  } catch (e) {
    throw fileError(cfgPath, `invalid ${architecture} settings (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
  }
  const applyBDec = cfg['apply_b_dec_to_input'];
  if (applyBDec !== undefined && applyBDec !== def.applyBDecToInput(hyper)) {
    throw fileError(cfgPath, `apply_b_dec_to_input ${String(applyBDec)} is not supported for architecture '${architecture}' (it is ${def.applyBDecToInput(hyper)})`);
  }
  const { tensors } = await readSafetensors(weightsPath);
  const dims = { dIn, dSae };
  const params: Params = {};
  const specs = def.params(dims, hyper);
  for (const spec of specs) {
    const t = tensors.get(spec.name);
    if (!t) throw fileError(weightsPath, `tensor '${spec.name}' is missing (architecture '${architecture}' needs ${specs.map((s) => s.name).join(', ')})`);
    if (t.shape.length !== spec.shape.length || t.shape.some((n, i) => n !== spec.shape[i])) {
      throw fileError(weightsPath, `tensor '${spec.name}' has shape [${t.shape.join(', ')}], expected [${spec.shape.join(', ')}] for d_in ${dIn}, d_sae ${dSae}`);
    }
    params[spec.name] = toFloat32(t, weightsPath).slice();
  }
  const extra = [...tensors.keys()].filter((k) => !specs.some((s) => s.name === k));
  if (extra.length) throw fileError(weightsPath, `unexpected tensor${extra.length > 1 ? 's' : ''} ${extra.map((k) => `'${k}'`).join(', ')} for architecture '${architecture}'`);
  return new Sae(architecture, dims, hyper, params, metadata);
}

/** [dSae] log10 firing rates from sparsity.safetensors, or undefined if the folder has none. */
export async function loadSparsity(dir: string): Promise<Float32Array | undefined> {
  const path = join(dir, SPARSITY_FILENAME);
  let contents;
  try {
    contents = await readSafetensors(path);
  } catch (e) {
    if (e instanceof Error && /no such file/.test(e.message)) return undefined;
    throw e;
  }
  const t = contents.tensors.get('sparsity');
  if (!t) throw fileError(path, "tensor 'sparsity' is missing");
  return toFloat32(t, path);
}
