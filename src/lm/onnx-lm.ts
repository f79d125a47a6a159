/**
 * ONNX language models on onnxruntime: a transformers.js folder (config.json, tokenizer.json,
 * onnx/model.onnx) or any .onnx file with a tokenizer.json beside it. A hook is exposed by adding
 * its tensor as a graph output; splicing cuts the graph at the tensor and feeds it back:
 *   model A = the model + hook output:  ids -> (logits [B, S, V], h [B, S, d])
 *   model B = the model cut at the hook: (ids, h') -> logits'   with h' = edit(h)
 * Contexts of different lengths are right-padded (attention_mask 0); with causal attention the
 * real tokens never see the padding, and padding rows are never returned.
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Engine } from '../engine/index.js';
import { GraphBuilder } from '../engine/onnx.js';
import type { Feeds, Graph, HostTensor } from '../engine/ort.js';
import { fileError, UserError } from '../errors.js';
import { readWholeFile } from '../io/atomic.js';
import { readJsonObject } from '../io/json.js';
import type { HookedModel } from './harvest.js';
import { repad, unpad } from './rows.js';
import { onnxHookTensor } from './hooks.js';
import { cutAt, exposeOutputs, type OnnxGraphInfo, type OnnxValueInfo, readGraph } from './onnx-proto.js';
import { displayVocab, loadTokenizer, type Tokenizer } from './tokenizers/index.js';
import { findUnembedding, type UnembeddingLookup } from './unembedding.js';
import type { RowEdit } from './use-lite.js';

/** One forward pass: logits of the real tokens and the hooked rows. */
export interface Forward {
  /** [tokens, V]: every context's positions, in order */
  readonly logits: Float32Array;
  /** [tokens, d] (empty without a hook) */
  readonly hook: Float32Array;
  readonly vocabSize: number;
}

export class OnnxLm {
  private constructor(
    private readonly engine: Engine,
    /** The model's name (folder or file name). */
    readonly name: string,
    readonly path: string,
    private readonly bytes: Uint8Array,
    readonly graph: OnnxGraphInfo,
    readonly tokenizer: Tokenizer,
    /** Prepended to every context when the config names one. */
    readonly bosId: number | undefined,
  ) {}

  /** A transformers.js folder or an .onnx file (with tokenizer.json and config.json beside it, or one folder up). */
  static async load(path: string, engine: Engine): Promise<OnnxLm> {
    const info = await stat(path).catch(() => undefined);
    if (info === undefined) throw fileError(path, 'no such model file or folder');
    const file = info.isDirectory() ? firstExisting([join(path, 'onnx', 'model.onnx'), join(path, 'model.onnx')]) : path;
    if (file === undefined) throw fileError(path, 'holds no onnx/model.onnx (the transformers.js layout) nor model.onnx');
    const root = info.isDirectory() ? path : basename(dirname(file)) === 'onnx' ? dirname(dirname(file)) : dirname(file);
    const tokenizerPath = join(root, 'tokenizer.json');
    if (!existsSync(tokenizerPath)) throw fileError(root, 'has no tokenizer.json beside the model');
    const bytes = await readWholeFile(file);
    const graph = readGraph(bytes, file);
    if (graph.externalData) throw fileError(file, 'keeps its weights in external data files, which are not supported yet; export the model with its weights inside');
    const configPath = join(root, 'config.json');
    const config = existsSync(configPath) ? await readJsonObject(configPath) : {};
    const bos = config['bos_token_id'];
    return new OnnxLm(engine, basename(root), file, bytes, graph, await loadTokenizer(tokenizerPath), typeof bos === 'number' ? bos : undefined);
  }

  private displayed: readonly string[] | undefined;
  /** Every token's display string (index = id). */
  get vocab(): readonly string[] {
    return (this.displayed ??= displayVocab(this.tokenizer));
  }

  /** The context prefix: [BOS] when the model has one. */
  get prefix(): number[] {
    return this.bosId === undefined ? [] : [this.bosId];
  }

  tokenize(text: string): number[] {
    return this.tokenizer.encode(text);
  }

  hookTensor(hook: string): string {
    return onnxHookTensor(hook, this.graph.nodes, this.graph.tensors);
  }

  /** The unembedding W_U (the weight of the product that makes the logits), or why there is none. */
  unembedding(): UnembeddingLookup {
    return findUnembedding(this.graph, this.bytes, this.path);
  }

  /** A HookedModel for harvesting `hook`; its width is found by running one context. */
  async hooked(hook: string): Promise<HookedModel> {
    const tensor = this.hookTensor(hook);
    const probe = await this.forward([Int32Array.from([...this.prefix, ...this.tokenize('Call me Ishmael.')])], tensor);
    const dIn = probe.hook.length / (this.prefix.length + this.tokenize('Call me Ishmael.').length);
    return {
      model: this.name,
      hookName: hook,
      hookTensor: tensor,
      dIn,
      vocab: this.vocab,
      activations: async (contexts) => (await this.forward(contexts, tensor)).hook,
    };
  }

  /** Runs contexts (token ids) -> logits and, with `hook`, its rows; with `edit`, the hook's tensor is replaced by edit(rows). */
  async forward(contexts: readonly Int32Array[], hook?: string, edit?: RowEdit): Promise<Forward> {
    const { feeds, lengths, longest } = this.feeds(contexts);
    const a = await this.engine.graph(`lm:${this.path}:expose:${hook ?? ''}`, () => (hook ? exposeOutputs(this.bytes, [hook], this.path) : this.bytes));
    const outA = await a.run(feeds);
    const logitsA = this.logitsOf(outA);
    const vocabSize = logitsA.dims[2] ?? 0;
    if (hook === undefined) return { logits: unpad(logitsA.data, lengths, longest, vocabSize), hook: new Float32Array(0), vocabSize };
    const h = float32(outA[hook], hook);
    const d = h.data.length / (contexts.length * longest);
    const rows = unpad(h.data, lengths, longest, d);
    if (edit === undefined) return { logits: unpad(logitsA.data, lengths, longest, vocabSize), hook: rows, vocabSize };
    const b = await this.engine.graph(`lm:${this.path}:cut:${hook}`, () => cutAt(this.bytes, hook, this.path));
    const edited = repad(h.data, await edit(rows), lengths, longest, d);
    const outB = await b.run({ ...feeds, [hook]: { data: edited, dims: h.dims } });
    return { logits: unpad(this.logitsOf(outB).data, lengths, longest, vocabSize), hook: rows, vocabSize };
  }

  /** Greedy continuation of `prompt` by `steps` tokens, the hook edited at every position when `edit` is given. */
  async generate(prompt: readonly number[], steps: number, hook?: string, edit?: RowEdit): Promise<number[]> {
    const ids = [...prompt];
    for (let s = 0; s < steps; s++) {
      const f = await this.forward([Int32Array.from(ids)], hook, edit);
      const last = f.logits.subarray((ids.length - 1) * f.vocabSize, ids.length * f.vocabSize);
      let best = 0;
      for (let v = 1; v < last.length; v++) if (last[v]! > last[best]!) best = v;
      ids.push(best);
    }
    return ids.slice(prompt.length);
  }

  private logitsOf(out: Record<string, HostTensor>): HostTensor<Float32Array> {
    const name = this.graph.outputs.find((o) => o.name === 'logits')?.name ?? this.graph.outputs[0]?.name;
    if (name === undefined) throw fileError(this.path, 'the graph has no outputs');
    const t = float32(out[name], name);
    if (t.dims.length !== 3) throw fileError(this.path, `output '${name}' has shape [${t.dims.join(', ')}], expected logits [batch, sequence, vocabulary]`);
    return t;
  }

  /** The graph's inputs for right-padded contexts. */
  private feeds(contexts: readonly Int32Array[]): { feeds: Feeds; lengths: number[]; longest: number } {
    const lengths = contexts.map((c) => c.length);
    const longest = Math.max(...lengths);
    const B = contexts.length;
    const ids = new BigInt64Array(B * longest); // [B, S]
    const mask = new BigInt64Array(B * longest);
    const positions = new BigInt64Array(B * longest);
    contexts.forEach((c, b) => {
      for (let p = 0; p < longest; p++) {
        positions[b * longest + p] = BigInt(p);
        if (p < c.length) {
          ids[b * longest + p] = BigInt(c[p]!);
          mask[b * longest + p] = 1n;
        }
      }
    });
    const feeds: Feeds = {};
    for (const input of this.graph.inputs) feeds[input.name] = this.feedFor(input, { ids, mask, positions }, B, longest);
    return { feeds, lengths, longest };
  }

  private feedFor(input: OnnxValueInfo, t: { ids: BigInt64Array; mask: BigInt64Array; positions: BigInt64Array }, B: number, S: number): HostTensor {
    switch (input.name) {
      case 'input_ids':
        return { data: t.ids, dims: [B, S] };
      case 'attention_mask':
        return { data: t.mask, dims: [B, S] };
      case 'position_ids':
        return { data: t.positions, dims: [B, S] };
      case 'token_type_ids':
        return { data: new BigInt64Array(B * S), dims: [B, S] };
      case 'use_cache_branch':
        return { data: new Uint8Array(1), dims: [1] };
    }
    if (input.name.startsWith('past_key_values') || input.name.startsWith('past_')) {
      // an empty cache: batch B, past length 0
      const dims = input.dims.map((d) => (typeof d === 'number' ? d : /batch/i.test(d) ? B : 0));
      return input.elemType === 10 ? { data: new Uint8Array(0), dims } : { data: new Float32Array(0), dims };
    }
    throw fileError(this.path, `graph input '${input.name}' is not one a language model takes (input_ids, attention_mask, position_ids, past_key_values.*)`);
  }
}

function firstExisting(paths: readonly string[]): string | undefined {
  return paths.find((p) => existsSync(p));
}

function float32(t: HostTensor | undefined, name: string): HostTensor<Float32Array> {
  if (t === undefined || !(t.data instanceof Float32Array)) throw new UserError(`tensor '${name}' is not float32; only float32 models are supported`);
  return { data: t.data, dims: t.dims };
}


/** Cross-entropy per row on the engine: logits [N, V], targets [N] -> [N]. */
export async function crossEntropy(engine: Engine, logits: Float32Array, targets: Int32Array, vocabSize: number): Promise<Float32Array> {
  const g: Graph = await engine.graph('lm:cross-entropy', () => {
    const b = new GraphBuilder();
    const x = b.input('logits', ['n', 'v']);
    const t = b.input('targets', ['n'], 'int64');
    const lse = b.op('ReduceLogSumExp', [x], { axes: [1], keepdims: 0 });
    const picked = b.op('Squeeze', [b.op('GatherElements', [x, b.unsqueeze(t, 1)], { axis: 1 }), b.axes(1)]);
    b.output(b.sub(lse, picked), 'ce', ['n']);
    return b.encode();
  });
  const out = await g.run({ logits: { data: logits, dims: [targets.length, vocabSize] }, targets: { data: BigInt64Array.from(targets, (v) => BigInt(v)), dims: [targets.length] } });
  return out['ce']!.data as Float32Array;
}
