/**
 * One entry point from what users name to a language model we can harvest from, splice into and
 * steer. The resolver (resolveModel) decides by what is on disk:
 *   use-lite                                        a sentence encoder (USE-lite, tfjs)
 *   a .gguf file                                    a hooked transformer (llama GGUF), its own vocabulary
 *   a folder with config.json whose model_type is   a hooked transformer (src/lm/transformer/), the
 *     one of FAMILIES, and *.safetensors            folder's tokenizer.json
 *   a transformers.js folder or an .onnx file       a causal language model on its ONNX graph (OnnxLm)
 * Anything else is a one-line error naming the path and what it lacks.
 */
import { existsSync, readdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Engine } from '../engine/index.js';
import { fileError, UserError } from '../errors.js';
import { readJsonObject } from '../io/json.js';
import type { Sae } from '../sae.js';
import type { Context, HookedModel } from './harvest.js';
import { OnnxLm, type OnnxLmOptions } from './onnx-lm.js';
import { causalSplice, type CausalSpliceMetrics, encoderSplice, type EncoderSpliceMetrics, reconstructEdit } from './splice.js';
import { type ContextMode, contextsOf, type TextDocument } from './text.js';
import { displayVocab, loadTokenizer, type Tokenizer } from './tokenizers/index.js';
import { FAMILIES, harvestModel, HookedTransformer } from './transformer/index.js';
import { transformerSplice, type TransformerSpliceMetrics } from './transformer-splice.js';
import { USE_LITE_MAX_TOKENS, USE_LITE_NAME, UseLite } from './use-lite.js';

/** A hooked transformer with the tokenizer its files ship. */
export interface TransformerLm {
  readonly model: HookedTransformer;
  readonly tokenizer: Tokenizer;
  /** The folder or .gguf file it was read from. */
  readonly path: string;
  /** [BOS] when the model's tokenizer prepends it, else []. */
  readonly prefix: readonly number[];
  /** Every token's display string (index = id). */
  readonly vocab: readonly string[];
}

export type LanguageModel =
  | { readonly kind: 'encoder'; readonly use: UseLite }
  | { readonly kind: 'causal'; readonly lm: OnnxLm }
  | { readonly kind: 'transformer'; readonly tf: TransformerLm };

/** Names that mean USE-lite (the flag value and SAELens model_name we write). */
const USE_LITE_NAMES = ['use-lite', USE_LITE_NAME];

/** Whether a model spec or recorded model name means USE-lite. */
export function isUseLite(spec: string): boolean {
  return USE_LITE_NAMES.includes(spec);
}

/** What a --model value is, decided from the files (no weights read). */
export type ModelLayout = 'use-lite' | 'gguf' | 'hf-folder' | 'onnx';

/** The layout of a --model value; an unknown layout is a one-line error naming the path. */
export async function resolveModel(spec: string): Promise<ModelLayout> {
  if (isUseLite(spec)) return 'use-lite';
  const info = await stat(spec).catch(() => undefined);
  if (info === undefined)
    throw fileError(spec, 'no such model file or folder (give use-lite, a .gguf file, a Hugging Face folder, a transformers.js folder or an .onnx file)');
  const lower = spec.toLowerCase();
  if (!info.isDirectory()) {
    if (lower.endsWith('.gguf')) return 'gguf';
    if (lower.endsWith('.onnx')) return 'onnx';
    throw fileError(spec, 'is not a model: expected a .gguf or .onnx file, or a model folder');
  }
  const files = readdirSync(spec);
  if (files.includes('config.json') && files.some((f) => f.endsWith('.safetensors'))) {
    const type = (await readJsonObject(join(spec, 'config.json')))['model_type'];
    if (typeof type !== 'string' || !Object.hasOwn(FAMILIES, type))
      throw fileError(
        join(spec, 'config.json'),
        `model_type ${typeof type === 'string' ? `'${type}'` : '(none)'} is not one we implement (supported: ${Object.keys(FAMILIES).join(', ')})`,
      );
    return 'hf-folder';
  }
  // any .onnx variant (model.onnx, model_fp16.onnx, ...): OnnxLm.load picks one by dtype and says which exist
  const onnxDir = join(spec, 'onnx');
  const variants = [...files, ...(existsSync(onnxDir) ? readdirSync(onnxDir) : [])].filter((f) => f.toLowerCase().endsWith('.onnx'));
  if (variants.length) return 'onnx';
  throw fileError(spec, 'is not a model folder we know: expected config.json with *.safetensors (Hugging Face), or onnx/model*.onnx (transformers.js)');
}

export interface OpenOptions {
  /** Transformers: read only the weights that runs up to this hook need (harvesting). */
  readonly upTo?: string;
  /** ONNX folders: which weight variant to load (default fp32, as transformers.js). */
  readonly dtype?: OnnxLmOptions['dtype'];
}

/** A hooked transformer from a .gguf file or a Hugging Face folder, with its tokenizer. */
export async function openTransformer(path: string, engine: Engine, o: OpenOptions = {}): Promise<TransformerLm> {
  const isGguf = path.toLowerCase().endsWith('.gguf');
  if (!isGguf && !existsSync(join(path, 'tokenizer.json'))) throw fileError(path, 'has no tokenizer.json beside config.json');
  const tokenizer = await loadTokenizer(isGguf ? path : join(path, 'tokenizer.json'));
  const model = await HookedTransformer.load(path, engine, o.upTo !== undefined ? { upTo: o.upTo } : {});
  const prefix = tokenizer.addBos && tokenizer.bosId !== undefined ? [tokenizer.bosId] : [];
  return { model, tokenizer, path, prefix, vocab: displayVocab(tokenizer) };
}

export async function openLanguageModel(spec: string, engine: Engine, o: OpenOptions = {}): Promise<LanguageModel> {
  const layout = await resolveModel(spec);
  if (layout === 'use-lite') return { kind: 'encoder', use: await UseLite.load() };
  if (layout === 'onnx') return { kind: 'causal', lm: await OnnxLm.load(spec, engine, o.dtype !== undefined ? { dtype: o.dtype } : {}) };
  return { kind: 'transformer', tf: await openTransformer(spec, engine, o) };
}

export function modelName(m: LanguageModel): string {
  return m.kind === 'encoder' ? USE_LITE_NAME : m.kind === 'causal' ? m.lm.name : m.tf.model.name;
}

/** Default and largest context size: USE-lite reads 128 tokens of a sentence; a transformer its positions. */
export function contextSizeOf(m: LanguageModel, asked: number | undefined): number {
  if (m.kind === 'encoder') return Math.min(asked ?? USE_LITE_MAX_TOKENS, USE_LITE_MAX_TOKENS);
  if (m.kind === 'transformer') {
    const max = m.tf.model.config.maxPositions;
    if (asked !== undefined && asked > max)
      throw fileError(m.tf.path, `a context of ${asked} tokens is longer than the model's ${max} positions (max_position_embeddings)`);
    return asked ?? Math.min(128, max);
  }
  return asked ?? 128;
}

/** Ids prepended to every context of a causal model ([BOS] when it has one). */
export function prefixOf(m: LanguageModel): readonly number[] {
  return m.kind === 'encoder' ? [] : m.kind === 'causal' ? m.lm.prefix : m.tf.prefix;
}

/** The model's contexts of the documents: sentences for the encoder, [BOS] + chunks for a causal LM. */
export function modelContexts(m: LanguageModel, docs: Iterable<TextDocument>, contextSize: number): Generator<Context> {
  const mode: ContextMode = m.kind === 'encoder' ? 'sentences' : 'chunks';
  return m.kind === 'encoder'
    ? contextsOf(docs, (s) => m.use.tokenize(s), contextSize, mode)
    : contextsOf(docs, (s) => tokenize(m, s), contextSize, mode, [...prefixOf(m)]);
}

export function tokenize(m: LanguageModel, text: string): number[] {
  return m.kind === 'encoder' ? m.use.tokenize(text) : m.kind === 'causal' ? m.lm.tokenize(text) : m.tf.tokenizer.encode(text);
}

export function hookedModel(m: LanguageModel, hook: string): Promise<HookedModel> {
  if (m.kind === 'transformer') return Promise.resolve(harvestModel(m.tf.model, hook, m.tf.vocab));
  return m.kind === 'encoder' ? m.use.hooked(hook) : m.lm.hooked(hook);
}

/** The graph tensor or node a hook name stands for (a transformer's hooks are their own names). */
export function hookTensor(m: LanguageModel, hook: string): string {
  if (m.kind === 'transformer') {
    m.tf.model.hooks.indexOf(hook);
    return hook;
  }
  return m.kind === 'encoder' ? m.use.node(hook) : m.lm.hookTensor(hook);
}

export type SpliceMetrics =
  | ({ readonly kind: 'encoder' } & EncoderSpliceMetrics)
  | ({ readonly kind: 'causal' } & CausalSpliceMetrics)
  | ({ readonly kind: 'transformer' } & TransformerSpliceMetrics);

/** What splicing the SAE's reconstruction at `hook` loses over the contexts. */
/** With keepPositions k (transformers only), the first k positions of every context stay clean (k = 1: BOS). */
export async function spliceMetrics(
  engine: Engine,
  m: LanguageModel,
  sae: Sae,
  hook: string,
  contexts: readonly Int32Array[],
  keepError = false,
  keepPositions = 0,
): Promise<SpliceMetrics> {
  if (m.kind === 'transformer')
    return { kind: 'transformer', ...(await transformerSplice(engine, m.tf.model, sae, hook, contexts, { keepError, keepPositions })) };
  if (keepPositions > 0) throw new UserError('--exclude-bos: splicing with BOS left clean runs on Hugging Face folders and .gguf models only');
  const edit = reconstructEdit(engine, sae, keepError);
  const tensor = hookTensor(m, hook);
  if (m.kind === 'encoder') return { kind: 'encoder', ...(await encoderSplice(m.use, tensor, edit, contexts)) };
  return { kind: 'causal', ...(await causalSplice(engine, m.lm, tensor, edit, contexts)) };
}

export function closeLanguageModel(m: LanguageModel): void {
  if (m.kind === 'encoder') m.use.dispose();
  else if (m.kind === 'causal') void m.lm.dispose(); // releases its onnxruntime session
}
