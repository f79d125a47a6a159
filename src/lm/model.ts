/**
 * One entry point from what users name (`use-lite`, a transformers.js folder, an .onnx file) to a
 * language model we can harvest from, splice into and steer: a sentence encoder (USE-lite) or a
 * causal language model (ONNX).
 */
import type { Engine } from '../engine/index.js';
import type { Sae } from '../sae.js';
import type { Context, HookedModel } from './harvest.js';
import { OnnxLm, type OnnxLmOptions } from './onnx-lm.js';
import { causalSplice, type CausalSpliceMetrics, encoderSplice, type EncoderSpliceMetrics, reconstructEdit } from './splice.js';
import { type ContextMode, contextsOf, type TextDocument } from './text.js';
import { USE_LITE_MAX_TOKENS, USE_LITE_NAME, UseLite } from './use-lite.js';

export type LanguageModel = { readonly kind: 'encoder'; readonly use: UseLite } | { readonly kind: 'causal'; readonly lm: OnnxLm };

/** Names that mean USE-lite (the flag value and SAELens model_name we write). */
const USE_LITE_NAMES = ['use-lite', USE_LITE_NAME];

/** Whether a model spec or recorded model name means USE-lite. */
export function isUseLite(spec: string): boolean {
  return USE_LITE_NAMES.includes(spec);
}

/** `options` (the ONNX weight variant) apply to ONNX models only. */
export async function openLanguageModel(spec: string, engine: Engine, options: OnnxLmOptions = {}): Promise<LanguageModel> {
  if (isUseLite(spec)) return { kind: 'encoder', use: await UseLite.load() };
  return { kind: 'causal', lm: await OnnxLm.load(spec, engine, options) };
}

export function modelName(m: LanguageModel): string {
  return m.kind === 'encoder' ? USE_LITE_NAME : m.lm.name;
}

/** Default and largest context size: USE-lite reads 128 tokens of a sentence. */
export function contextSizeOf(m: LanguageModel, asked: number | undefined): number {
  return m.kind === 'encoder' ? Math.min(asked ?? USE_LITE_MAX_TOKENS, USE_LITE_MAX_TOKENS) : (asked ?? 128);
}

/** The model's contexts of the documents: sentences for the encoder, [BOS] + chunks for a causal LM. */
export function modelContexts(m: LanguageModel, docs: Iterable<TextDocument>, contextSize: number): Generator<Context> {
  const mode: ContextMode = m.kind === 'encoder' ? 'sentences' : 'chunks';
  return m.kind === 'encoder'
    ? contextsOf(docs, (s) => m.use.tokenize(s), contextSize, mode)
    : contextsOf(docs, (s) => m.lm.tokenize(s), contextSize, mode, m.lm.prefix);
}

export function tokenize(m: LanguageModel, text: string): number[] {
  return m.kind === 'encoder' ? m.use.tokenize(text) : m.lm.tokenize(text);
}

export function hookedModel(m: LanguageModel, hook: string): Promise<HookedModel> {
  return m.kind === 'encoder' ? m.use.hooked(hook) : m.lm.hooked(hook);
}

/** The graph tensor or node a hook name stands for. */
export function hookTensor(m: LanguageModel, hook: string): string {
  return m.kind === 'encoder' ? m.use.node(hook) : m.lm.hookTensor(hook);
}

export type SpliceMetrics = ({ readonly kind: 'encoder' } & EncoderSpliceMetrics) | ({ readonly kind: 'causal' } & CausalSpliceMetrics);

/** What splicing the SAE's reconstruction at `hook` loses over the contexts. */
export async function spliceMetrics(engine: Engine, m: LanguageModel, sae: Sae, hook: string, contexts: readonly Int32Array[], keepError = false): Promise<SpliceMetrics> {
  const edit = reconstructEdit(engine, sae, keepError);
  const tensor = hookTensor(m, hook);
  if (m.kind === 'encoder') return { kind: 'encoder', ...(await encoderSplice(m.use, tensor, edit, contexts)) };
  return { kind: 'causal', ...(await causalSplice(engine, m.lm, tensor, edit, contexts)) };
}

export function closeLanguageModel(m: LanguageModel): void {
  if (m.kind === 'encoder') m.use.dispose();
  else void m.lm.dispose(); // releases its onnxruntime session
}
