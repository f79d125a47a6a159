/**
 * ONNX language models on onnxruntime: a transformers.js folder (config.json, tokenizer.json,
 * onnx/model.onnx and its variants model_fp16.onnx, model_quantized.onnx, model_q4.onnx, ...) or
 * any .onnx file with a tokenizer.json beside it (or one folder up). Weights may sit in the model
 * file or in external data files beside it; they are never read into JavaScript memory except the
 * one a command asks for (the unembedding). One onnxruntime session per model at a time
 * (src/lm/onnx-session.ts): a cut graph for harvesting, a splice graph for edits, which serves
 * clean runs too:
 *   clean:   ids -> (logits [B, S, V], h [B, S, d])
 *   edited:  (ids, h' = edit(h)) -> logits'      (h from the clean run of the same session)
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
import { readJsonObject } from '../io/json.js';
import type { HookedModel } from './harvest.js';
import { repad, unpad } from './rows.js';
import { onnxHookTensor } from './hooks.js';
import { isMergedDecoder, ONNX_TYPE, OnnxModel, type OnnxGraphInfo, type OnnxValueInfo } from './onnx-proto.js';
import { SESSION, type SessionKind, sessionPlan, type SessionPlan } from './onnx-session.js';
import { displayVocab, loadTokenizer, type Tokenizer } from './tokenizers/index.js';
import { findUnembedding, logitsOutput, type UnembeddingLookup } from './unembedding.js';
import type { RowEdit } from './use-lite.js';

/** One forward pass: logits of the real tokens and the hooked rows. */
export interface Forward {
  /** [tokens, V]: every context's positions, in order */
  readonly logits: Float32Array;
  /** [tokens, d] (empty without a hook) */
  readonly hook: Float32Array;
  readonly vocabSize: number;
}

/** The weight variants of a transformers.js folder, by file suffix (onnx/model{suffix}.onnx), as transformers.js names them. */
export const ONNX_DTYPES = { fp32: '', fp16: '_fp16', q8: '_quantized', int8: '_int8', uint8: '_uint8', q4: '_q4', q4f16: '_q4f16', bnb4: '_bnb4' } as const;
export type OnnxDtype = keyof typeof ONNX_DTYPES;

export interface OnnxLmOptions {
  /** Which variant of a folder to load (default fp32, as transformers.js); not for a file path. */
  readonly dtype?: OnnxDtype;
}

/** Checks a user-given dtype (a flag value). */
export function onnxDtype(value: unknown): OnnxDtype {
  if (typeof value === 'string' && Object.hasOwn(ONNX_DTYPES, value)) return value as OnnxDtype;
  throw new UserError(`unknown dtype '${String(value)}': choose one of ${Object.keys(ONNX_DTYPES).join(', ')}`);
}

/** The model file of a folder for a dtype, or a one-line reason naming what the folder holds. */
function variantFile(folder: string, dtype: OnnxDtype | undefined): string {
  const dirs = [join(folder, 'onnx'), folder];
  const fileOf = (d: OnnxDtype, base: string): string | undefined => firstExisting(dirs.map((dir) => join(dir, `${base}${ONNX_DTYPES[d]}.onnx`)));
  const want = dtype ?? 'fp32';
  const file = fileOf(want, 'model') ?? fileOf(want, 'decoder_model');
  if (file !== undefined) return file;
  const merged = fileOf(want, 'decoder_model_merged');
  if (merged !== undefined) throw fileError(merged, MERGED);
  const present = (Object.keys(ONNX_DTYPES) as OnnxDtype[]).filter((d) => fileOf(d, 'model') ?? fileOf(d, 'decoder_model'));
  const what = `holds no onnx/model${ONNX_DTYPES[want]}.onnx (dtype ${want}, the transformers.js layout) nor model${ONNX_DTYPES[want]}.onnx`;
  throw fileError(folder, present.length ? `${what}; it has dtype ${present.join(', ')}: choose one with --model-dtype` : what);
}

const MERGED =
  'is a merged decoder (its layers sit inside an If on use_cache_branch), which is not supported: use onnx/decoder_model.onnx or onnx/model.onnx of the same export';

export class OnnxLm {
  private current: { kind: SessionKind; hook: string | undefined; graph: Graph; plan: SessionPlan } | undefined;
  private opening: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly engine: Engine,
    /** The model's name (folder or file name). */
    readonly name: string,
    readonly path: string,
    readonly model: OnnxModel,
    readonly tokenizer: Tokenizer,
    /** Prepended to every context when the config names one. */
    readonly bosId: number | undefined,
  ) {}

  /** A transformers.js folder or an .onnx file (with tokenizer.json and config.json beside it, or one folder up). */
  static async load(path: string, engine: Engine, options: OnnxLmOptions = {}): Promise<OnnxLm> {
    const info = await stat(path).catch(() => undefined);
    if (info === undefined) throw fileError(path, 'no such model file or folder');
    if (!info.isDirectory() && options.dtype !== undefined) throw fileError(path, 'is a model file: a dtype chooses among the files of a model folder');
    const file = info.isDirectory() ? variantFile(path, options.dtype) : path;
    const root = info.isDirectory() ? path : basename(dirname(file)) === 'onnx' ? dirname(dirname(file)) : dirname(file);
    const tokenizerPath = join(root, 'tokenizer.json');
    if (!existsSync(tokenizerPath)) throw fileError(root, 'has no tokenizer.json beside the model');
    const model = OnnxModel.open(file);
    if (isMergedDecoder(model.info)) throw fileError(file, MERGED);
    const configPath = join(root, 'config.json');
    const config = existsSync(configPath) ? await readJsonObject(configPath) : {};
    const bos = config['bos_token_id'];
    return new OnnxLm(engine, basename(root), file, model, await loadTokenizer(tokenizerPath), typeof bos === 'number' ? bos : undefined);
  }

  get graph(): OnnxGraphInfo {
    return this.model.info;
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

  /** The unembedding W_U (the weight of the product that makes the logits, dequantised), or why there is none. */
  unembedding(): UnembeddingLookup {
    return findUnembedding(this.model);
  }

  /** A HookedModel for harvesting `hook` (a cut graph: no layers after it, no logits); its width is found by running one context. */
  async hooked(hook: string): Promise<HookedModel> {
    const tensor = this.hookTensor(hook);
    const probe = Int32Array.from([...this.prefix, ...this.tokenize('Call me Ishmael.')]);
    const dIn = (await this.activations([probe], tensor)).length / probe.length;
    return {
      model: this.name,
      hookName: hook,
      hookTensor: tensor,
      dIn,
      vocab: this.vocab,
      activations: (contexts) => this.activations(contexts, tensor),
    };
  }

  /** contexts -> rows of tensor `hook` [tokens, d], from the cut graph (or the splice graph when that is open). */
  async activations(contexts: readonly Int32Array[], hook: string): Promise<Float32Array> {
    const s = await this.session(this.current?.kind === 'splice' && this.current.hook === hook ? 'splice' : 'cut', hook);
    const { feeds, lengths, longest } = this.feeds(contexts, s.plan);
    const h = float32((await s.graph.run(feeds))[s.plan.hook!], hook);
    return unpad(h.data, lengths, longest, h.data.length / (contexts.length * longest));
  }

  /** Runs contexts (token ids) -> logits and, with `hook`, its rows; with `edit`, the hook's tensor is replaced by edit(rows). */
  async forward(contexts: readonly Int32Array[], hook?: string, edit?: RowEdit): Promise<Forward> {
    const reuse = hook === undefined && this.current?.kind === 'splice';
    const s = await this.session(hook === undefined && !reuse ? 'logits' : 'splice', hook ?? this.current?.hook);
    const { feeds, lengths, longest } = this.feeds(contexts, s.plan);
    const out = await s.graph.run(feeds);
    const logits = this.logitsOf(out, s.plan);
    const vocabSize = logits.dims[2] ?? 0;
    if (hook === undefined) return { logits: unpad(logits.data, lengths, longest, vocabSize), hook: new Float32Array(0), vocabSize };
    const h = float32(out[s.plan.hook!], hook);
    const d = h.data.length / (contexts.length * longest);
    const rows = unpad(h.data, lengths, longest, d);
    if (edit === undefined) return { logits: unpad(logits.data, lengths, longest, vocabSize), hook: rows, vocabSize };
    const edited = repad(h.data, await edit(rows), lengths, longest, d);
    const outB = await s.graph.run({ ...feeds, [SESSION.replacement]: { data: edited, dims: h.dims }, [SESSION.splice]: { data: Uint8Array.of(1), dims: [] } });
    return { logits: unpad(this.logitsOf(outB, s.plan).data, lengths, longest, vocabSize), hook: rows, vocabSize };
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

  /** Releases the session (its weights); the next run opens one again. */
  async dispose(): Promise<void> {
    await this.opening.catch(() => undefined);
    const c = this.current;
    this.current = undefined;
    await c?.graph.release();
  }

  /**
   * The one session of this model, of `kind` for `hook`: kept when it already is that one, else the
   * old one is released first (only one copy of the weights is ever loaded).
   */
  private session(kind: SessionKind, hook: string | undefined): Promise<{ graph: Graph; plan: SessionPlan }> {
    const next = this.opening
      .catch(() => undefined)
      .then(async () => {
        const c = this.current;
        if (c !== undefined && c.kind === kind && c.hook === (kind === 'logits' ? undefined : hook)) return c;
        this.current = undefined;
        await c?.graph.release();
        const logits = logitsOutput(this.graph);
        if (logits === undefined) throw fileError(this.path, 'the graph has no outputs');
        const plan = sessionPlan(this.model, kind, logits, kind === 'logits' ? undefined : hook);
        const { bytes, folder } = this.model.sessionModel(plan.graph);
        // without the CPU arena: intermediates (the logits) are freed after each run, not kept at their peak
        const graph = await this.engine.session(bytes, { externalDataFolder: folder, arena: false }).catch((e: unknown) => {
          // a graph our reader accepts but onnxruntime refuses (no IR version, a malformed node): the file's fault
          const why = (e instanceof Error ? e.message : String(e))
            .split('\n')[0]!
            .replace(/^\S*onnxruntime_src\S* /, '')
            .replace(/^onnxruntime::\S*\(.*?\) (?=[A-Z])/, '');
          throw fileError(this.path, `onnxruntime cannot load the graph (${why})`);
        });
        this.current = { kind, hook: kind === 'logits' ? undefined : hook, graph, plan };
        return this.current;
      });
    this.opening = next;
    return next;
  }

  private logitsOf(out: Record<string, HostTensor>, plan: SessionPlan): HostTensor<Float32Array> {
    const name = plan.logits!;
    const t = float32(out[name], name);
    if (t.dims.length !== 3) throw fileError(this.path, `output '${name}' has shape [${t.dims.join(', ')}], expected logits [batch, sequence, vocabulary]`);
    return t;
  }

  /** The graph's inputs for right-padded contexts (and, for a splice graph, no replacement). */
  private feeds(contexts: readonly Int32Array[], plan: SessionPlan): { feeds: Feeds; lengths: number[]; longest: number } {
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
    const feeds: Feeds = { [SESSION.replacement]: { data: new Float32Array(1), dims: [1] }, [SESSION.splice]: { data: new Uint8Array(1), dims: [] } };
    for (const input of this.graph.inputs) {
      // an input that is also an initializer (IR < 4 exports list weights as inputs) keeps its stored value
      if (plan.inputs.has(input.name) && !this.graph.initializers.has(input.name))
        feeds[input.name] = this.feedFor(input, { ids, mask, positions }, B, longest);
    }
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
    }
    if (input.name.startsWith('past_key_values') || input.name.startsWith('past_')) {
      // an empty cache of the graph's own element type: batch B, past length 0
      const dims = input.dims.map((d) => (typeof d === 'number' ? d : /batch/i.test(d) ? B : 0));
      if (input.elemType === ONNX_TYPE.float) return { data: new Float32Array(0), dims };
      if (input.elemType === ONNX_TYPE.float16) return { data: new Uint16Array(0), dims };
      throw fileError(this.path, `graph input '${input.name}' has element type ${input.elemType}; a cache of float32 or float16 was expected`);
    }
    throw fileError(this.path, `graph input '${input.name}' is not one a language model takes (input_ids, attention_mask, position_ids, past_key_values.*)`);
  }
}

function firstExisting(paths: readonly string[]): string | undefined {
  return paths.find((p) => existsSync(p));
}

function float32(t: HostTensor | undefined, name: string): HostTensor<Float32Array> {
  if (t === undefined || !(t.data instanceof Float32Array)) throw new Error(`session output '${name}' is not float32`);
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
  const out = await g.run({
    logits: { data: logits, dims: [targets.length, vocabSize] },
    targets: { data: BigInt64Array.from(targets, (v) => BigInt(v)), dims: [targets.length] },
  });
  return out['ce']!.data as Float32Array;
}
