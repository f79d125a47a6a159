/**
 * Saves and loads SAEs in SAELens's v6 layout: a folder with cfg.json, sae_weights.safetensors
 * (W_enc [d_in, d_sae], W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in], plus the architecture's
 * own tensors) and sparsity.safetensors (log10 firing rate per latent, tensor "sparsity").
 * Architectures SAELens lacks (kl) are saved with `format: "sparse-autoencoder"` in cfg.json.
 * Loading reads cfg.json of SAELens v3 to v6 as SAELens does, each field that changes what is
 * computed honoured, folded into the weights (see formats/external.ts) or refused:
 *   architecture / activation_fn(_str) relu | topk (+ k or activation_fn_kwargs.k, required);
 *   apply_b_dec_to_input (default true); finetuning_scaling_factor and its tensor (folded);
 *   rescale_acts_by_decoder_norm (topk: folded); normalize_activations none | false, and
 *   expected_average_only_in | true (SAELens applies nothing when loading a folder; nor do we),
 *   constant_norm_rescale | layer_norm refused (per-input statistics); dtype (SAELens's names,
 *   others refused); reshape_activations none | hook_z; d_out (a transcoder) refused.
 * Hook names, neuronpedia_id, model_from_pretrained_kwargs and the rest go to metadata. Every
 * tensor's shape is checked and tensors we would ignore are refused, as SAELens's strict load does.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { architecture as architectureDef, isArchitecture } from '../arch/index.js';
import type { Architecture, Params } from '../arch/types.js';
import { type ExternalKind, expectShape, foldDecoderNorm, foldLatentScale, type LoadedSae, toSae } from '../formats/external.js';
import { fileError } from '../errors.js';
import { type Sae, saeOf } from '../sae.js';
import { ensureWritableDir, writeFileAtomic } from './atomic.js';
import { isRecord, readJsonObject } from './json.js';
import { type LoadedTensor, readSafetensors, readSafetensorsHeader, type TensorToWrite, toFloat32, writeSafetensors } from './safetensors.js';

export const CFG_FILENAME = 'cfg.json';
export const WEIGHTS_FILENAME = 'sae_weights.safetensors';
export const SPARSITY_FILENAME = 'sparsity.safetensors';
/** The SAELens version whose layout we write (loaders older than 6.0 treat configs differently). */
const SAELENS_LAYOUT_VERSION = '6.0.0';
const PACKAGE = 'sparse-autoencoder@0.1.0';
/** cfg.json's `format` for SAEs SAELens cannot load (kl): our own layout, saying so. */
export const OWN_FORMAT = 'sparse-autoencoder';

/** Options of saveSae. */
export interface SaveOptions {
  /** [dSae] log10 firing rate of each latent. */
  readonly log10FiringRates?: Float32Array | undefined;
}

export function saeConfigJson(sae: Sae): Record<string, unknown> {
  if (!loadsInSaeLens(sae.architecture)) {
    return {
      format: OWN_FORMAT,
      note: `architecture '${sae.architecture}' is ours: SAELens cannot load this folder (load it with sparse-autoencoder)`,
      architecture: sae.architecture,
      d_in: sae.dims.dIn,
      d_sae: sae.dims.dSae,
      dtype: 'float32',
      apply_b_dec_to_input: sae.def.applyBDecToInput(sae.hyper),
      ...sae.def.toCfg(sae.hyper),
      metadata: { trained_with: PACKAGE, ...sae.metadata },
    };
  }
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

/** Fields SAELens kept at the top level before v6 and moved into metadata (old names first). */
const LEGACY_METADATA: readonly (readonly [string, string])[] = [
  ['hook_point', 'hook_name'],
  ['hook_point_layer', 'hook_layer'],
  ['hook_point_head_index', 'hook_head_index'],
  ...[
    'model_name',
    'hook_name',
    'hook_layer',
    'hook_head_index',
    'context_size',
    'dataset_path',
    'dataset_trust_remote_code',
    'prepend_bos',
    'sae_lens_training_version',
    'neuronpedia_id',
    'model_from_pretrained_kwargs',
    'seqpos_slice',
    'model_class_name',
    'exclude_special_tokens',
  ].map((k) => [k, k] as const),
];

/** SAELens's dtype names (its DTYPE_MAP); we compute in float32 whatever the file holds. */
const DTYPES = new Set(['float32', 'float64', 'float16', 'bfloat16', 'torch.float32', 'torch.float64', 'torch.float16', 'torch.bfloat16']);

/** Architectures SAELens loads as SAEs, and the encoder each is. */
const SAELENS_KINDS: Readonly<Record<string, ExternalKind>> = { standard: 'relu', topk: 'topk', jumprelu: 'jumprelu', gated: 'gated' };

/** Our architectures SAELens loads (the others are saved in our own layout, which says so). */
export function loadsInSaeLens(arch: Architecture): boolean {
  return Object.hasOwn(SAELENS_KINDS, arch);
}

function positiveInt(cfg: Record<string, unknown>, key: string, file: string): number {
  const v = cfg[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw fileError(file, `${key} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function metadataOf(cfg: Record<string, unknown>): Record<string, unknown> {
  const metadata: Record<string, unknown> = isRecord(cfg['metadata']) ? { ...cfg['metadata'] } : {};
  for (const [from, to] of LEGACY_METADATA) if (cfg[from] !== undefined && metadata[to] === undefined) metadata[to] = cfg[from];
  return metadata;
}

/** A SAELens cfg.json as an encoder kind and the settings that change what it computes (every one checked). */
interface SaeLensCfg {
  readonly arch: string;
  readonly kind: ExternalKind;
  readonly dIn: number;
  readonly dSae: number;
  readonly k?: number;
  readonly applyBDec: boolean;
  readonly finetuningScale: boolean;
  readonly rescaleByDecoderNorm: boolean;
  readonly metadata: Record<string, unknown>;
}

/** Reads a SAELens v3-v6 cfg.json as SAELens would (handle_pre_6_0_config, then the v6 config classes). */
export function readSaeLensConfig(cfg: Record<string, unknown>, file: string, folded: string[]): SaeLensCfg {
  const metadata = metadataOf(cfg);
  const activation = cfg['activation_fn'] ?? cfg['activation_fn_str'] ?? 'relu';
  const kwargs = isRecord(cfg['activation_fn_kwargs']) ? cfg['activation_fn_kwargs'] : {};
  let arch = cfg['architecture'] ?? 'standard';
  if (activation === 'topk') arch = 'topk';
  else if (activation !== 'relu') throw fileError(file, `activation_fn ${JSON.stringify(activation)} is not supported (SAELens SAEs use relu or topk)`);
  if (typeof arch !== 'string') throw fileError(file, 'architecture is not a string');
  const kind = SAELENS_KINDS[arch];
  if (!kind) throw fileError(file, `architecture '${arch}' is not an SAE SAELens loads (one of ${Object.keys(SAELENS_KINDS).join(', ')})`);
  if (cfg['d_out'] !== undefined && cfg['d_out'] !== cfg['d_in'])
    throw fileError(file, 'has d_out: a transcoder (it predicts another activation), not an autoencoder');
  const dIn = positiveInt(cfg, 'd_in', file);
  const dSae = positiveInt(cfg, 'd_sae', file);
  let k: number | undefined;
  if (kind === 'topk') {
    const kv = cfg['k'] ?? kwargs['k'];
    if (kv === undefined) throw fileError(file, 'a topk SAE needs k (cfg.json has neither k nor activation_fn_kwargs.k)');
    if (typeof kv !== 'number' || !Number.isInteger(kv) || kv < 1 || kv > dSae)
      throw fileError(file, `k must be an integer in [1, d_sae ${dSae}], got ${JSON.stringify(kv)}`);
    k = kv;
  }
  const dtype = cfg['dtype'] ?? 'float32';
  if (typeof dtype !== 'string' || !DTYPES.has(dtype))
    throw fileError(file, `dtype ${JSON.stringify(dtype)} is not one SAELens knows (${[...DTYPES].filter((d) => !d.startsWith('torch')).join(', ')})`);
  if (dtype !== 'float32' && dtype !== 'torch.float32') folded.push(`dtype ${dtype}: computed in float32`);
  const flag = (key: string, byDefault: boolean): boolean => {
    const v = cfg[key] ?? byDefault;
    if (typeof v !== 'boolean') throw fileError(file, `${key} must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const applyBDec = flag('apply_b_dec_to_input', true);
  const finetuningScale = flag('finetuning_scaling_factor', false);
  const rescale = flag('rescale_acts_by_decoder_norm', false);
  if (rescale && kind !== 'topk') folded.push(`rescale_acts_by_decoder_norm ignored: SAELens reads it for topk only, not ${arch}`);
  const norm = cfg['normalize_activations'];
  if (norm === true || norm === 'expected_average_only_in') {
    folded.push(
      `normalize_activations ${JSON.stringify(norm)}: inputs not rescaled, as SAELens does when loading a folder (its scaling factor is not in cfg.json)`,
    );
  } else if (norm === 'constant_norm_rescale' || norm === 'layer_norm') {
    throw fileError(
      file,
      `normalize_activations '${norm}' normalises each input by its own statistics (norm, or mean and std) and maps the output back: not a fixed map our SAE holds (SAELens's decode alone cannot do it either)`,
    );
  } else if (norm !== undefined && norm !== null && norm !== false && norm !== 'none') {
    throw fileError(
      file,
      `normalize_activations ${JSON.stringify(norm)} is not one SAELens knows (none, expected_average_only_in, constant_norm_rescale, layer_norm)`,
    );
  }
  const reshape = cfg['reshape_activations'];
  if (reshape !== undefined && reshape !== 'none' && reshape !== 'hook_z')
    throw fileError(file, `reshape_activations ${JSON.stringify(reshape)} is not one SAELens knows (none, hook_z)`);
  const hookName = metadata['hook_name'];
  if (reshape === 'hook_z' && typeof hookName === 'string' && !hookName.endsWith('_z'))
    throw fileError(file, `reshape_activations 'hook_z' but hook_name '${hookName}' is not a hook_z (SAELens refuses this too)`);
  if (reshape === 'hook_z' || (reshape === undefined && typeof hookName === 'string' && hookName.endsWith('_z'))) metadata['reshape_activations'] = 'hook_z';
  return { arch, kind, dIn, dSae, ...(k !== undefined ? { k } : {}), applyBDec, finetuningScale, rescaleByDecoderNorm: rescale && kind === 'topk', metadata };
}

/** The tensors each encoder kind has, in SAELens's names. */
function tensorNames(kind: ExternalKind): string[] {
  const enc = kind === 'gated' ? ['W_enc', 'b_gate', 'b_mag', 'r_mag'] : ['W_enc', 'b_enc'];
  return [...enc, 'W_dec', 'b_dec', ...(kind === 'jumprelu' ? ['threshold'] : [])];
}

function shapeOf(name: string, dIn: number, dSae: number): number[] {
  return name === 'W_enc' ? [dIn, dSae] : name === 'W_dec' ? [dSae, dIn] : name === 'b_dec' ? [dIn] : [dSae];
}

/** SAELens's tensors, checked against the config (shapes, missing and unexpected names) and folded. */
function saeLensParams(c: SaeLensCfg, tensors: Map<string, LoadedTensor>, file: string, folded: string[]): Params {
  const { dIn, dSae } = c;
  const params: Params = {};
  const names = tensorNames(c.kind);
  for (const name of names) {
    const t = tensors.get(name);
    if (!t) throw fileError(file, `tensor '${name}' is missing (SAELens architecture '${c.arch}' has ${names.join(', ')})`);
    expectShape(file, `tensor '${name}'`, t.shape, shapeOf(name, dIn, dSae), `cfg.json says d_in ${dIn}, d_sae ${dSae}`);
    params[name] = toFloat32(t, file).slice();
  }
  // SAELens (read_sae_components_from_disk, v3 to v6) reads the scale as tensor 'scaling_factor': allclose
  // to ones, it is dropped; otherwise cfg.json must say finetuning_scaling_factor and it scales the latents
  // before the decoder (v3-v5; v6 has no such parameter). Without the tensor the flag is set false. We
  // also read the module's own name 'finetuning_scaling_factor', which SAELens's loaders reject.
  const scaleName = tensors.has('scaling_factor') ? 'scaling_factor' : tensors.has('finetuning_scaling_factor') ? 'finetuning_scaling_factor' : undefined;
  if (scaleName) {
    const t = tensors.get(scaleName)!;
    expectShape(file, `tensor '${scaleName}'`, t.shape, [dSae], `cfg.json says d_sae ${dSae}`);
    const s = toFloat32(t, file);
    if (!s.every((v) => Math.abs(v - 1) <= 1e-8 + 1e-5)) {
      if (!c.finetuningScale)
        throw fileError(file, `tensor '${scaleName}' is not all ones but cfg.json has finetuning_scaling_factor false (SAELens refuses this too)`);
      foldLatentScale(params, s, dSae, dIn);
      folded.push(`${scaleName} folded into W_dec (W_dec[i] *= s_i)`);
    }
  } else if (c.finetuningScale) {
    folded.push('finetuning_scaling_factor true but no scaling_factor tensor: no scale, as SAELens does');
  }
  const extra = [...tensors.keys()].filter((n) => !names.includes(n) && n !== scaleName);
  if (extra.length)
    throw fileError(file, `unexpected tensor${extra.length > 1 ? 's' : ''} ${extra.map((n) => `'${n}'`).join(', ')} for SAELens architecture '${c.arch}'`);
  if (c.rescaleByDecoderNorm) {
    foldDecoderNorm(params, dIn, dSae, file);
    folded.push('rescale_acts_by_decoder_norm folded: W_enc and b_enc scaled by decoder norms, W_dec rows set to unit norm');
  }
  return params;
}

/** Our own layout: cfg.json says `format: "sparse-autoencoder"`, or names one of our architectures SAELens lacks. */
function isOwnLayout(cfg: Record<string, unknown>): boolean {
  const arch = cfg['architecture'];
  return cfg['format'] === OWN_FORMAT || (typeof arch === 'string' && isArchitecture(arch) && !loadsInSaeLens(arch));
}

async function loadOwnLayout(cfg: Record<string, unknown>, cfgPath: string, weightsPath: string): Promise<Sae> {
  const architecture = cfg['architecture'];
  if (typeof architecture !== 'string' || !isArchitecture(architecture))
    throw fileError(cfgPath, `architecture ${JSON.stringify(architecture)} is not supported`);
  const def = architectureDef(architecture);
  let hyper: unknown;
  try {
    hyper = def.fromCfg(cfg);
  } catch (e) {
    throw fileError(cfgPath, `invalid ${architecture} settings (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
  }
  const dims = { dIn: positiveInt(cfg, 'd_in', cfgPath), dSae: positiveInt(cfg, 'd_sae', cfgPath) };
  const { tensors } = await readSafetensors(weightsPath);
  const params: Params = {};
  const specs = def.params(dims, hyper);
  for (const spec of specs) {
    const t = tensors.get(spec.name);
    if (!t) throw fileError(weightsPath, `tensor '${spec.name}' is missing (architecture '${architecture}' needs ${specs.map((s) => s.name).join(', ')})`);
    expectShape(weightsPath, `tensor '${spec.name}'`, t.shape, spec.shape, `cfg.json says d_in ${dims.dIn}, d_sae ${dims.dSae}`);
    params[spec.name] = toFloat32(t, weightsPath).slice();
  }
  const extra = [...tensors.keys()].filter((k) => !specs.some((s) => s.name === k));
  if (extra.length)
    throw fileError(weightsPath, `unexpected tensor${extra.length > 1 ? 's' : ''} ${extra.map((k) => `'${k}'`).join(', ')} for architecture '${architecture}'`);
  return saeOf(architecture, dims, hyper, params, metadataOf(cfg));
}

/** Loads a SAELens folder (v3 to v6, or our own layout) as SAELens computes it, saying what was folded. */
export async function loadSaeLens(dir: string): Promise<LoadedSae> {
  const cfgPath = join(dir, CFG_FILENAME);
  const weightsPath = join(dir, WEIGHTS_FILENAME);
  const cfg = await readJsonObject(cfgPath);
  if (isOwnLayout(cfg)) {
    const sae = await loadOwnLayout(cfg, cfgPath, weightsPath);
    await checkSparsityHeader(dir, sae.dims.dSae);
    return { sae, format: 'saelens', folded: [] };
  }
  const folded: string[] = [];
  const c = readSaeLensConfig(cfg, cfgPath, folded);
  const { tensors } = await readSafetensors(weightsPath);
  const params = saeLensParams(c, tensors, weightsPath, folded);
  const sae = toSae(
    { kind: c.kind, dIn: c.dIn, dSae: c.dSae, applyBDec: c.applyBDec, ...(c.k !== undefined ? { k: c.k } : {}), params, metadata: c.metadata },
    folded,
  );
  await checkSparsityHeader(dir, sae.dims.dSae);
  return { sae, format: 'saelens', folded };
}

/**
 * A folder's sparsity.safetensors, when present, must be whole and hold [dSae] values: its header
 * is read (the reader refuses a file shorter than its offsets) so that a truncated file is noticed
 * at load, not later by the one command that reads its values.
 */
async function checkSparsityHeader(dir: string, dSae: number): Promise<void> {
  const path = join(dir, SPARSITY_FILENAME);
  if (!existsSync(path)) return;
  const t = (await readSafetensorsHeader(path)).tensors.find((x) => x.name === 'sparsity');
  if (!t) throw fileError(path, "tensor 'sparsity' is missing");
  if (t.shape.length !== 1 || t.shape[0] !== dSae) throw fileError(path, `tensor 'sparsity' has shape [${t.shape.join(', ')}], expected [${dSae}] (d_sae)`);
}

/**
 * Loads a SAELens folder (cfg.json and sae_weights.safetensors, as SAELens saves them or as saveSae
 * does) as the SAE SAELens would compute: architecture, sizes and parameters checked against each
 * other, the file named in one line when something does not fit.
 *
 * @example
 * ```ts
 * import { Engine, loadSae, saveSae } from 'sparse-autoencoder';
 *
 * const engine = new Engine();
 * const sae = await loadSae('gemma-2b-res-jb/blocks.6.hook_resid_post');
 * console.log(sae.architecture, sae.dims); // e.g. 'standard' { dIn: 2048, dSae: 16384 }
 * await saveSae('copy', sae); // a folder SAELens loads
 * ```
 */
export async function loadSae(dir: string): Promise<Sae> {
  return (await loadSaeLens(dir)).sae;
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
