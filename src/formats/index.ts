/**
 * One entry for every published SAE layout: loadAnySae(path) finds the layout (or takes `format`),
 * loads the SAE so that it computes what its home library computes, and says what it folded.
 *   saelens      folder with cfg.json + sae_weights.safetensors (v3 to v6; our own layout too)
 *   gemma-scope  params.npz (or a folder holding one)
 *   sparsify     folder with cfg.json + sae.safetensors (one hookpoint; loadAllSaes reads a model's folder)
 *   llama-scope  folder with hyperparams.json + checkpoints/final.safetensors
 *   openai       torch pickles (.pt): refused, see OPENAI_REFUSAL
 * convertToSaeLens writes any SAE we can load in SAELens's layout; convertToSparsify a topk one in sparsify's.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Engine } from '../engine/index.js';
import type { Sae } from '../sae.js';
import { fileError, UserError } from '../errors.js';
import { CFG_FILENAME, loadSaeLens, loadsInSaeLens, loadSparsity, saveSae, WEIGHTS_FILENAME } from '../io/saelens.js';
import { type LoadedSae, type SaeFormat } from './external.js';
import { loadGemmaScope } from './gemma-scope.js';
import { LLAMA_SCOPE_CFG, LLAMA_SCOPE_WEIGHTS, loadLlamaScope } from './llama-scope.js';
import { loadSparsify, saveSparsify, SPARSIFY_CFG, SPARSIFY_WEIGHTS } from './sparsify.js';

export type { LoadedSae, SaeFormat } from './external.js';
export const SAE_FORMATS: readonly SaeFormat[] = ['saelens', 'gemma-scope', 'sparsify', 'llama-scope', 'openai'];

/**
 * openai/sparse_autoencoder saves torch.save pickles (reading one runs Python's unpickler, which can
 * execute code), and its TopK SAEs normalise each input (x - mean, / std) and undo it on the output
 * (Autoencoder.from_state_dict sets normalize for TopK): per-input statistics no fixed SAE holds.
 */
export const OPENAI_REFUSAL =
  "a PyTorch pickle (torch.save, as openai/sparse_autoencoder saves): reading it means running Python's unpickler, which can execute code; and OpenAI's TopK SAEs layer-normalise each input and undo it on the output, which our SAE cannot hold";

async function kindOf(path: string): Promise<'file' | 'dir' | undefined> {
  try {
    const s = await stat(path);
    return s.isDirectory() ? 'dir' : 'file';
  } catch {
    return undefined;
  }
}

/** Which layout `path` holds, and the folder or file to load. */
export async function detectFormat(path: string): Promise<{ format: SaeFormat; path: string }> {
  const kind = await kindOf(path);
  if (!kind) throw fileError(path, 'no such file or folder');
  if (kind === 'file') {
    const name = basename(path);
    if (name.endsWith('.npz')) return { format: 'gemma-scope', path };
    if (/\.(pt|pth|ckpt|bin|pkl)$/.test(name)) return { format: 'openai', path };
    if (name === WEIGHTS_FILENAME || name === CFG_FILENAME || name === SPARSIFY_WEIGHTS || name === LLAMA_SCOPE_CFG) return detectFormat(dirname(path));
    if (name === basename(LLAMA_SCOPE_WEIGHTS)) return detectFormat(dirname(dirname(path)));
    throw fileError(path, 'not an SAE file we know (params.npz, cfg.json, sae_weights.safetensors, sae.safetensors, hyperparams.json)');
  }
  const has = async (f: string): Promise<boolean> => (await kindOf(join(path, f))) === 'file';
  if (await has('params.npz')) return { format: 'gemma-scope', path: join(path, 'params.npz') };
  if (await has(WEIGHTS_FILENAME)) return { format: 'saelens', path };
  if (await has(SPARSIFY_WEIGHTS)) {
    if (!(await has(SPARSIFY_CFG)))
      throw fileError(join(path, SPARSIFY_CFG), `no such file (a sparsify folder has ${SPARSIFY_CFG} beside ${SPARSIFY_WEIGHTS})`);
    return { format: 'sparsify', path };
  }
  if (await has(LLAMA_SCOPE_CFG)) return { format: 'llama-scope', path };
  const inner = await saeFolders(path);
  if (inner.length)
    throw fileError(
      path,
      `holds ${inner.length} SAEs (${inner.slice(0, 3).join(', ')}${inner.length > 3 ? ', ...' : ''}): name one of them, or load them all with loadAllSaes`,
    );
  throw fileError(
    path,
    `no SAE layout we know here (${CFG_FILENAME} + ${WEIGHTS_FILENAME}, params.npz, ${SPARSIFY_CFG} + ${SPARSIFY_WEIGHTS}, ${LLAMA_SCOPE_CFG} + ${LLAMA_SCOPE_WEIGHTS})`,
  );
}

const MARKERS = ['params.npz', WEIGHTS_FILENAME, SPARSIFY_WEIGHTS, LLAMA_SCOPE_CFG];

/** Sub-folders of `dir` that hold an SAE, in natural order (layers.2 before layers.10). */
async function saeFolders(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const found: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const files = await readdir(join(dir, e.name)).catch(() => [] as string[]);
    if (MARKERS.some((m) => files.includes(m))) found.push(e.name);
  }
  return found.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

/** Loads the SAE at `path` (a folder or a file) as its home library computes it. */
export async function loadAnySae(path: string, options: { format?: SaeFormat } = {}): Promise<LoadedSae> {
  const found = options.format ? { format: options.format, path } : await detectFormat(path);
  switch (found.format) {
    case 'saelens':
      return loadSaeLens(found.path);
    case 'gemma-scope':
      return loadGemmaScope((await kindOf(found.path)) === 'dir' ? join(found.path, 'params.npz') : found.path);
    case 'sparsify':
      return loadSparsify(found.path);
    case 'llama-scope':
      return loadLlamaScope(found.path);
    case 'openai':
      throw fileError(found.path, OPENAI_REFUSAL);
  }
}

/**
 * The SAE at `path` in any layout, for code that encodes and decodes with Sae alone: an SAE with a
 * skip connection is refused (its reconstruction needs x; use loadAnySae and reconstruct).
 */
export async function loadAnySaeAsSae(path: string, options: { format?: SaeFormat } = {}): Promise<Sae> {
  const loaded = await loadAnySae(path, options);
  if (loaded.skip)
    throw new UserError(`${path}: has a skip connection (W_skip): its reconstruction adds x @ W_skip^T, which decoding the latents alone cannot`);
  return loaded.sae;
}

/** Every SAE under `dir` by sub-folder name (a sparsify model folder: one per hookpoint), or `dir` itself as ''. */
export async function loadAllSaes(dir: string): Promise<Map<string, LoadedSae>> {
  const inner = (await kindOf(dir)) === 'dir' ? await saeFolders(dir) : [];
  if (!inner.length) return new Map([['', await loadAnySae(dir)]]);
  const out = new Map<string, LoadedSae>();
  for (const name of inner) out.set(name, await loadAnySae(join(dir, name)));
  return out;
}

/** x: [rows, dIn] -> the reconstruction [rows, dIn] as the home library's forward pass computes it (skip connection included). */
export async function reconstruct(engine: Engine, loaded: LoadedSae, x: Float32Array): Promise<Float32Array> {
  const { sae, skip } = loaded;
  const xHat = await sae.decode(engine, await sae.encode(engine, x));
  if (skip) {
    const d = sae.dims.dIn;
    for (let r = 0; r < x.length / d; r++) {
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let i = 0; i < d; i++) s += x[r * d + i]! * skip[j * d + i]!;
        xHat[r * d + j]! += s;
      }
    }
  }
  return xHat;
}

/** Writes the SAE at `input` in SAELens's layout in `outDir`; `folded` says what was folded on the way. */
export async function convertToSaeLens(input: string, outDir: string, options: { format?: SaeFormat } = {}): Promise<{ folded: string[] }> {
  const found = options.format ? { format: options.format, path: input } : await detectFormat(input);
  const loaded = await loadAnySae(found.path, { format: found.format });
  const { sae } = loaded;
  if (loaded.skip) throw new UserError(`${input}: has a skip connection (W_skip), which SAELens's SAEs do not have`);
  if (!loadsInSaeLens(sae.architecture)) throw new UserError(`${input}: architecture '${sae.architecture}' is ours; SAELens has no such SAE`);
  const rates = found.format === 'saelens' ? await loadSparsity(found.path) : undefined;
  await saveSae(outDir, sae, { log10FiringRates: rates });
  return { folded: [...loaded.folded] };
}

/** Writes the topk SAE at `input` as a sparsify hookpoint folder in `outDir` (other architectures are refused). */
export async function convertToSparsify(input: string, outDir: string, options: { format?: SaeFormat } = {}): Promise<{ folded: string[] }> {
  const loaded = await loadAnySae(input, options);
  if (loaded.skip) throw new UserError(`${input}: has a skip connection (W_skip); only sparsify's own folders keep it`);
  if (loaded.sae.architecture !== 'topk')
    throw new UserError(`${input}: architecture '${loaded.sae.architecture}' has no sparsify form (sparsify computes topk only)`);
  await saveSparsify(outDir, loaded.sae);
  return { folded: [...loaded.folded] };
}
