/**
 * The shape of a decoder-only transformer, as the shared components read it: one record that every
 * family's config.json is mapped onto (src/lm/transformer/families/*), and the helpers that read
 * config.json fields with one-line errors naming the file.
 */
import { fileError } from '../../errors.js';

export type Activation = 'gelu' | 'gelu_tanh' | 'silu' | 'relu';

/** How rotary frequencies are changed for long contexts (HF rope_scaling). */
export type RopeScaling =
  | { readonly type: 'none' }
  | { readonly type: 'linear'; readonly factor: number }
  | { readonly type: 'llama3'; readonly factor: number; readonly lowFreqFactor: number; readonly highFreqFactor: number; readonly originalMax: number };

export interface Rotary {
  /** Rotated dimensions of each head (d_head, or fewer with NeoX's rotary_pct). */
  readonly dim: number;
  readonly base: number;
  readonly scaling: RopeScaling;
}

export interface Norm {
  readonly kind: 'layer' | 'rms';
  readonly eps: number;
  /** Gemma: y = x_hat * (1 + w). */
  readonly onePlus: boolean;
}

export interface TransformerConfig {
  /** The family (config model_type), for messages. */
  readonly family: string;
  readonly nLayers: number;
  readonly dModel: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly dHead: number;
  readonly dMlp: number;
  readonly vocab: number;
  readonly maxPositions: number;
  readonly norm: Norm;
  /** Learned absolute positions (GPT-2) or rotary per layer. */
  readonly positions: 'learned' | 'rotary';
  /** Rotary of each layer (Gemma 3 uses a local base on sliding layers); empty for learned positions. */
  readonly rotary: readonly Rotary[];
  readonly act: Activation;
  /** act(gate) * up instead of act(W_in x). */
  readonly gated: boolean;
  /** NeoX: x + attn(ln1 x) + mlp(ln2 x). */
  readonly parallel: boolean;
  /** Qwen3, Gemma 3: RMSNorm of each head of q and k before rotary. */
  readonly qkNorm: boolean;
  /** Gemma 2/3: norms after the attention and after the MLP, before each is added. */
  readonly postNorms: boolean;
  /** The embedding is multiplied by this (Gemma: sqrt(d_model)). */
  readonly embedScale: number;
  /** Attention scores are q.k times this (1/sqrt(d_head), Gemma: query_pre_attn_scalar^-1/2). */
  readonly attnScale: number;
  /** Gemma 2: scores = c tanh(scores / c). */
  readonly attnSoftcap: number | undefined;
  /** Gemma 2: logits = c tanh(logits / c). */
  readonly finalSoftcap: number | undefined;
  /** The unembedding is the embedding matrix (config tie_word_embeddings). */
  readonly tied: boolean;
  /** Sliding window of each layer (a key j is seen by query i when i - window < j <= i); undefined: full causal. */
  readonly window: readonly (number | undefined)[];
}

/**
 * What GPT-2, NeoX and Llama leave out (Gemma's and Qwen3's additions switched off): no q/k norms,
 * no post-norms, no embedding scale, scores scaled by 1/sqrt(d_head), no softcaps, no sliding window.
 */
export function plainBlocks(
  nLayers: number,
  dHead: number,
): Pick<TransformerConfig, 'qkNorm' | 'postNorms' | 'embedScale' | 'attnScale' | 'attnSoftcap' | 'finalSoftcap' | 'window'> {
  return {
    qkNorm: false,
    postNorms: false,
    embedScale: 1,
    attnScale: 1 / Math.sqrt(dHead),
    attnSoftcap: undefined,
    finalSoftcap: undefined,
    window: Array.from({ length: nLayers }, () => undefined),
  };
}

/** A parsed config.json and its path, for errors. */
export interface ConfigJson {
  readonly file: string;
  readonly json: Readonly<Record<string, unknown>>;
}

export function num(c: ConfigJson, key: string, fallback?: number): number {
  const v = c.json[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw fileError(c.file, `has no '${key}'`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw fileError(c.file, `'${key}' is ${JSON.stringify(v)}, not a number`);
  return v;
}

export function int(c: ConfigJson, key: string, fallback?: number): number {
  const v = num(c, key, fallback);
  if (!Number.isInteger(v) || v < 0) throw fileError(c.file, `'${key}' is ${v}, not a non-negative integer`);
  return v;
}

/** More layers than any published transformer has (the largest have a few hundred). */
const MAX_LAYERS = 4096;

/**
 * The layer count at `key`: per-layer tables and the hook names are built from it before any weight
 * is read, so a corrupt count (2^31) must be refused here, not exhaust memory.
 */
export function layerCount(c: ConfigJson, key: string): number {
  const n = int(c, key);
  if (n > MAX_LAYERS) throw fileError(c.file, `'${key}' is ${n}, more layers than any model we know (at most ${MAX_LAYERS})`);
  return n;
}

/** A number or null/absent (undefined). */
export function optionalNum(c: ConfigJson, key: string): number | undefined {
  const v = c.json[key];
  return v === undefined || v === null ? undefined : num(c, key);
}

export function bool(c: ConfigJson, key: string, fallback: boolean): boolean {
  const v = c.json[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw fileError(c.file, `'${key}' is ${JSON.stringify(v)}, not true or false`);
  return v;
}

export function str(c: ConfigJson, key: string, fallback?: string): string {
  const v = c.json[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw fileError(c.file, `has no '${key}'`);
  }
  if (typeof v !== 'string') throw fileError(c.file, `'${key}' is ${JSON.stringify(v)}, not a string`);
  return v;
}

/** HF activation names -> ours; an unknown one is an error. */
export function activation(c: ConfigJson, key: string, fallback?: string): Activation {
  const name = str(c, key, fallback);
  const table: Record<string, Activation> = {
    gelu: 'gelu',
    gelu_new: 'gelu_tanh',
    gelu_fast: 'gelu_tanh',
    gelu_pytorch_tanh: 'gelu_tanh',
    silu: 'silu',
    swish: 'silu',
    relu: 'relu',
  };
  const a = table[name];
  if (a === undefined) throw fileError(c.file, `'${key}' is '${name}', an activation we do not implement (${Object.keys(table).join(', ')})`);
  return a;
}

/** HF rope_scaling: null, linear or llama3; others (yarn, dynamic, longrope) are refused. */
export function ropeScaling(c: ConfigJson): RopeScaling {
  const r = c.json['rope_scaling'];
  if (r === undefined || r === null) return { type: 'none' };
  if (typeof r !== 'object' || Array.isArray(r)) throw fileError(c.file, `'rope_scaling' is not an object`);
  const sub: ConfigJson = { file: c.file, json: r as Record<string, unknown> };
  const legacyType = sub.json['type'];
  const type = str(sub, 'rope_type', typeof legacyType === 'string' ? legacyType : 'default');
  if (type === 'default') return { type: 'none' };
  if (type === 'linear') return { type: 'linear', factor: num(sub, 'factor') };
  if (type === 'llama3') {
    return {
      type: 'llama3',
      factor: num(sub, 'factor'),
      lowFreqFactor: num(sub, 'low_freq_factor'),
      highFreqFactor: num(sub, 'high_freq_factor'),
      originalMax: num(sub, 'original_max_position_embeddings'),
    };
  }
  throw fileError(c.file, `rope_scaling type '${type}' is not supported (supported: default, linear, llama3)`);
}

/** Checks what the components rely on. */
export function checkConfig(cfg: TransformerConfig, file: string): TransformerConfig {
  const positive = ['nLayers', 'dModel', 'nHeads', 'nKvHeads', 'dHead', 'dMlp', 'vocab', 'maxPositions'] as const;
  for (const k of positive) if (!(cfg[k] > 0)) throw fileError(file, `${k} must be positive, got ${cfg[k]}`);
  if (cfg.nHeads % cfg.nKvHeads !== 0) throw fileError(file, `${cfg.nHeads} attention heads are not a multiple of ${cfg.nKvHeads} key/value heads`);
  for (const r of cfg.rotary)
    if (r.dim % 2 !== 0 || r.dim > cfg.dHead) throw fileError(file, `rotary dimension ${r.dim} must be even and at most the head size ${cfg.dHead}`);
  return cfg;
}
