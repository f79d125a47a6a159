/**
 * HookedTransformer: a decoder-only language model re-implemented from its config (families/),
 * run on onnxruntime, with every TransformerLens hook point returned, replaced or edited in the
 * same graph (graph.ts).
 *
 *   const m = await HookedTransformer.load('models/TinyLlama', engine);
 *   const r = await m.run([ids], { returnHooks: ['blocks.4.hook_resid_post'], stopAfter: 'blocks.4.hook_resid_post' });
 *   r.hooks['blocks.4.hook_resid_post']   // [batch, pos, d_model]
 *   await m.run([ids], { edits: { 'blocks.4.hook_resid_post': { add: direction } } })  // .logits [batch, pos, vocab]
 *
 * Weights: one copy, float32, held in JS typed arrays and fed to every graph as inputs; onnxruntime-node
 * wraps an input's buffer without copying it, so the graphs of different plans (harvest at layer 4,
 * splice, steer, full logits) share that one copy, and no graph is ever near protobuf's 2 GB limit
 * (a graph holds no weights: a few hundred kB of nodes). A graph is compiled per plan (hooks returned,
 * edit kinds, logits or not) and cached by the engine. Load with `upTo` to read only the blocks a
 * harvest needs. Measured (bench/hooked-transformer.ts; 2 threads on a 2-core machine shared with
 * other jobs at load average ~15, so tokens/s are low and noisy; the ratios hold):
 *   random Llama, 125M parameters = 476 MB f32, batch 8 x 128: RSS 90 MB before the weights,
 *   638-688 MB after harvest runs stopping at blocks.2 (no copy of the weights: inputs are
 *   zero-copy), about 1020 MB after full runs with [8, 128, 32000] logits; 524-543 tokens/s to
 *   blocks.2.hook_resid_post, 88-99 tokens/s for the full forward. On a 7M model, weights as
 *   inputs ran as fast as weights as initializers (985 vs 941, 1308 vs 1032 tokens/s in two runs).
 *   TinyLlama-1.1B GGUF loaded upTo blocks.4.hook_resid_post: 1090 MB of f32 weights (embedding
 *   and 5 blocks), peak RSS 1336-1344 MB (1.23x), 48-53 tokens/s for 8 x 128 under that load.
 *
 * Contexts of different lengths are right-padded with id 0; with causal attention the real
 * positions never see the padding. Values at padding positions are returned but meaningless.
 */
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Engine } from '../../engine/index.js';
import type { Feeds, HostTensor } from '../../engine/ort.js';
import { fileError, UserError } from '../../errors.js';
import type { TransformerConfig } from './config.js';
import { familyOf } from './families/index.js';
import { buildGraph, distinctRotaries, type EditKind, type GraphPlan, INPUT } from './graph.js';
import { loadLlamaLike } from './families/llama.js';
import { GgufLlamaSource } from './gguf-llama.js';
import { readConfig, SafetensorsSource } from './hf-folder.js';
import { HookIndex, hookNames, hookTail } from './hooks.js';
import { causalMask, rotaryTables } from './tables.js';
import type { LoadScope, Weights } from './weights.js';
import type { Unembedding } from '../unembedding.js';

/** Feature clamp at a hook: f = relu(x . encoder + bias); x' = x + (value - f) direction. */
export interface ClampEdit {
  /** [width] (width = the hook's size per position) */
  readonly direction: Float32Array;
  /** [width] */
  readonly encoder: Float32Array;
  readonly bias: number;
  readonly value: number;
}

/**
 * An edit of a hook's value inside the graph:
 *   replace: the new value, in the hook's full shape ([batch, pos, ...], [batch, heads, pos, pos] for the pattern)
 *   add:     a vector [width] added at every position
 *   clamp:   a feature held at a value (ClampEdit)
 */
export type HookEdit = { readonly replace: Float32Array } | { readonly add: Float32Array } | { readonly clamp: ClampEdit };

export interface RunOptions {
  /** Hooks to return (their values before any edit at the same hook). */
  readonly returnHooks?: readonly string[];
  /** Compute nothing after this hook: no later layers, no logits; returnHooks defaults to it. */
  readonly stopAfter?: string;
  /** Return the logits (default: true unless stopAfter is given). */
  readonly logits?: boolean;
  readonly edits?: Readonly<Record<string, HookEdit>>;
}

export interface RunResult {
  readonly batch: number;
  /** Padded length of the batch. */
  readonly pos: number;
  /** Real length of each context. */
  readonly lengths: readonly number[];
  readonly hooks: Readonly<Record<string, HostTensor<Float32Array>>>;
  /** [batch, pos, vocab], when asked. */
  readonly logits: HostTensor<Float32Array> | undefined;
}

export interface LoadOptions {
  /** Read only the weights that runs up to this hook need (e.g. harvesting blocks.4.hook_resid_post); 'unembed': only W_U. */
  readonly upTo?: string;
}

/** The weights a load reads. */
function scopeOf(cfg: TransformerConfig, o: LoadOptions): LoadScope {
  if (o.upTo === undefined || o.upTo === 'logits') return { layers: cfg.nLayers, head: true };
  if (o.upTo === 'unembed') return { layers: 0, head: true }; // the final norm and W_U only (logit effects)
  const layers = new HookIndex(cfg).blocksFor(o.upTo);
  return { layers, head: o.upTo.startsWith('ln_final') };
}

let instances = 0;

export class HookedTransformer {
  private readonly id = instances++;
  readonly hooks: HookIndex;
  private tables: { pos: number; feeds: Feeds } | undefined;

  constructor(
    private readonly engine: Engine,
    /** The model's name (its folder or file name). */
    readonly name: string,
    readonly config: TransformerConfig,
    readonly weights: Weights,
    /** Where it was read from, for messages. */
    readonly source: string,
  ) {
    this.hooks = new HookIndex(config);
  }

  /**
   * A Hugging Face folder (config.json + model.safetensors or its shards) or a llama GGUF file.
   * With `upTo` (a hook name), only the weights up to that hook's block are read: runs past it are refused.
   */
  static async load(path: string, engine: Engine, options: LoadOptions = {}): Promise<HookedTransformer> {
    const info = await stat(path).catch(() => undefined);
    if (info === undefined) throw fileError(path, 'no such model folder or file');
    if (!info.isDirectory()) {
      if (!path.toLowerCase().endsWith('.gguf'))
        throw fileError(path, 'is neither a Hugging Face model folder (config.json and model.safetensors) nor a .gguf file');
      const { source, config } = await GgufLlamaSource.open(path, engine.kernels);
      try {
        const cfg = familyOf(config).config(config);
        return new HookedTransformer(engine, basename(path).replace(/\.gguf$/i, ''), cfg, await loadLlamaLike(cfg, source, scopeOf(cfg, options)), path);
      } finally {
        await source.close();
      }
    }
    const c = await readConfig(path);
    const family = familyOf(c);
    const cfg = family.config(c);
    const src = await SafetensorsSource.open(path);
    return new HookedTransformer(engine, basename(path), cfg, await family.load(cfg, src, scopeOf(cfg, options)), c.file);
  }

  /** Every hook name, in the order they are computed. */
  hookNames(): string[] {
    return hookNames(this.config);
  }

  /** Size of a hook's value per position (per batch row for the pattern: heads). */
  hookWidth(hook: string): number {
    this.hooks.indexOf(hook);
    return hookTail(this.config, hook).reduce((a, b) => a * b, 1);
  }

  /** contexts: token ids, of lengths up to the model's positions. */
  async run(contexts: readonly Int32Array[], o: RunOptions = {}): Promise<RunResult> {
    const plan = this.plan(o);
    const { feeds, batch, pos, lengths } = this.inputs(contexts);
    for (const [hook, e] of Object.entries(o.edits ?? {})) Object.assign(feeds, this.editFeeds(hook, e, batch, pos));
    const key = JSON.stringify([plan.outputs, plan.logits, Object.entries(plan.edits).sort(), plan.layers, plan.head]);
    // onnxruntime's arena keeps a session's peak intermediates: right for harvest plans (small ones,
    // and measured 1344 MB peak for TinyLlama to blocks.4 with it, 1613 MB without), wrong for logits
    // plans ([batch, pos, vocab] intermediates per cached plan: 1735 MB with it vs 1003 MB without for
    // three plans of a 125M model).
    const graph = await this.engine.graph(`hooked:${this.id}:${key}`, () => buildGraph(this.config, (n) => this.weights.dims(n), plan), {
      arena: !plan.logits,
    });
    const out = await graph.run({ ...this.weights.feeds(), ...feeds });
    const hooks: Record<string, HostTensor<Float32Array>> = {};
    for (const h of plan.outputs) hooks[h] = float32(out[h], h);
    return { batch, pos, lengths, hooks, logits: plan.logits ? float32(out['logits'], 'logits') : undefined };
  }

  /** W_U as the dashboard's logit effects read it: stored [vocab, d_model] (transposed). */
  unembedding(): Unembedding {
    const w = this.weights.get('unembed.W_U');
    if (w === undefined) throw new UserError(`${this.name} was loaded without its unembedding (load option upTo)`);
    return { tensor: 'unembed.W_U', dModel: this.config.dModel, vocab: this.config.vocab, transposed: true, data: w.data };
  }

  /**
   * Greedy continuation of `prompt` by `steps` tokens (no key/value cache: each step runs the whole
   * prefix), with add or clamp edits applied at every position.
   */
  async generate(prompt: readonly number[], steps: number, edits: Readonly<Record<string, HookEdit>> = {}): Promise<number[]> {
    for (const [h, e] of Object.entries(edits))
      if ('replace' in e) throw new UserError(`generate: hook '${h}' can be edited with add or clamp, not replaced (the length grows)`);
    const ids = [...prompt];
    const V = this.config.vocab;
    for (let s = 0; s < steps; s++) {
      const r = await this.run([Int32Array.from(ids)], { edits });
      const last = r.logits!.data.subarray((ids.length - 1) * V, ids.length * V);
      let best = 0;
      for (let v = 1; v < V; v++) if (last[v]! > last[best]!) best = v;
      ids.push(best);
    }
    return ids.slice(prompt.length);
  }

  /** The graph inputs other than weights and edits for `contexts` (ids, masks, rotary tables). */
  positionInputs(contexts: readonly Int32Array[]): Feeds {
    return this.inputs(contexts).feeds;
  }

  private plan(o: RunOptions): GraphPlan {
    const outputs = [...new Set(o.returnHooks ?? (o.stopAfter === undefined ? [] : [o.stopAfter]))];
    for (const h of outputs) this.hooks.indexOf(h);
    const edits: Record<string, EditKind> = {};
    for (const [h, e] of Object.entries(o.edits ?? {})) {
      this.hooks.indexOf(h);
      edits[h] = 'replace' in e ? 'replace' : 'add' in e ? 'add' : 'clamp';
      if (edits[h] !== 'replace' && h.endsWith('attn.hook_pattern'))
        throw new UserError(`hook '${h}': an attention pattern can be replaced, not edited with a vector`);
    }
    const logits = o.logits ?? o.stopAfter === undefined;
    if (o.stopAfter !== undefined) {
      const stop = this.hooks.indexOf(o.stopAfter);
      if (logits) throw new UserError(`stopAfter '${o.stopAfter}' and logits exclude each other`);
      for (const h of [...outputs, ...Object.keys(edits)])
        if (this.hooks.indexOf(h) > stop) throw new UserError(`hook '${h}' comes after stopAfter '${o.stopAfter}'`);
    }
    if (!logits && outputs.length === 0) throw new UserError('a run must return hooks or logits');
    const hooks = [...outputs, ...Object.keys(edits)];
    const head = logits || hooks.some((h) => h.startsWith('ln_final.'));
    const layers = head ? this.config.nLayers : Math.max(0, ...hooks.map((h) => this.hooks.blocksFor(h)));
    const { scope } = this.weights;
    if (layers > scope.layers || (head && !scope.head)) {
      const loaded = `${scope.layers} of its ${this.config.nLayers} blocks${scope.head ? '' : ', without the final norm and unembedding'}`;
      throw new UserError(
        `${this.name} was loaded with ${loaded} (load option upTo); this run needs ${head ? 'the final norm and logits' : `block ${layers - 1}`}`,
      );
    }
    return { outputs: outputs.sort(), logits, edits, layers, head };
  }

  /** The padded ids and the position tables for contexts. */
  private inputs(contexts: readonly Int32Array[]): { feeds: Feeds; batch: number; pos: number; lengths: number[] } {
    const cfg = this.config;
    const lengths = contexts.map((c) => c.length);
    const batch = contexts.length;
    const pos = Math.max(0, ...lengths);
    if (batch === 0 || pos === 0) throw new UserError('run: no tokens to run');
    if (pos > cfg.maxPositions)
      throw fileError(this.source, `a context of ${pos} tokens is longer than the model's ${cfg.maxPositions} positions (max_position_embeddings)`);
    const ids = new BigInt64Array(batch * pos);
    contexts.forEach((c, b) => {
      for (let p = 0; p < c.length; p++) {
        const t = c[p]!;
        if (!(t >= 0 && t < cfg.vocab)) throw new UserError(`token id ${t} is outside the vocabulary of ${this.name} (0..${cfg.vocab - 1})`);
        ids[b * pos + p] = BigInt(t);
      }
    });
    return { feeds: { ...this.positionFeeds(pos), [INPUT.ids]: { data: ids, dims: [batch, pos] } }, batch, pos, lengths };
  }

  /** Masks, rotary tables and position ids for `pos` positions (the last length's are kept). */
  private positionFeeds(pos: number): Feeds {
    if (this.tables?.pos === pos) return this.tables.feeds;
    const cfg = this.config;
    const feeds: Feeds = { [INPUT.causal]: { data: causalMask(pos), dims: [pos, pos] } };
    for (const w of new Set(cfg.window)) if (w !== undefined) feeds[INPUT.window(w)] = { data: causalMask(pos, w), dims: [pos, pos] };
    distinctRotaries(cfg).rotaries.forEach((r, i) => {
      const t = rotaryTables(r, pos);
      feeds[INPUT.cos(i)] = { data: t.cos, dims: [pos, 1, r.dim / 2] };
      feeds[INPUT.sin(i)] = { data: t.sin, dims: [pos, 1, r.dim / 2] };
    });
    feeds[INPUT.positions] = { data: BigInt64Array.from({ length: pos }, (_, i) => BigInt(i)), dims: [pos] };
    this.tables = { pos, feeds };
    return feeds;
  }

  private editFeeds(hook: string, e: HookEdit, batch: number, pos: number): Feeds {
    const tail = hookTail(this.config, hook);
    const width = tail.reduce((a, b) => a * b, 1);
    const check = (what: string, data: Float32Array, n: number): void => {
      if (data.length !== n) throw new UserError(`edit of '${hook}': ${what} has ${data.length} values, expected ${n}`);
    };
    if ('replace' in e) {
      const dims = hook.endsWith('attn.hook_pattern') ? [batch, ...tail, pos, pos] : [batch, pos, ...tail];
      check(
        'the replacement',
        e.replace,
        dims.reduce((a, b) => a * b, 1),
      );
      return { [INPUT.replace(hook)]: { data: e.replace, dims } };
    }
    if ('add' in e) {
      check('the vector', e.add, width);
      return { [INPUT.add(hook)]: { data: e.add, dims: [width] } };
    }
    check('the direction', e.clamp.direction, width);
    check('the encoder', e.clamp.encoder, width);
    return {
      [INPUT.clamp(hook, 'direction')]: { data: e.clamp.direction, dims: [width] },
      [INPUT.clamp(hook, 'encoder')]: { data: e.clamp.encoder, dims: [width] },
      [INPUT.clamp(hook, 'bias')]: { data: new Float32Array([e.clamp.bias]), dims: [1] },
      [INPUT.clamp(hook, 'value')]: { data: new Float32Array([e.clamp.value]), dims: [1] },
    };
  }
}

function float32(t: HostTensor | undefined, name: string): HostTensor<Float32Array> {
  if (t === undefined || !(t.data instanceof Float32Array)) throw new Error(`graph output '${name}' is missing or not float32`);
  return { data: t.data, dims: t.dims };
}
