/**
 * Logit effects of features: the direct effect of a decoder direction on the next-token logits,
 *   effects[i] = W_dec[i] @ W_U                         [vocab]
 *   W_dec: [d_sae, d_model], W_U: [d_model, vocab] (the model's unembedding, src/lm/unembedding.ts)
 * as Neuronpedia shows them: the final layer norm's per-input scale (and its centring) is ignored,
 * and so is everything between the hook and the unembedding. They are defined when the SAE reads
 * d_model-wide vectors that are added into the residual stream (residual, attention and MLP outputs),
 * not for MLP neurons, and not for encoders without an unembedding.
 *
 * For 16384 latents over a 50k vocabulary the whole product is 3 GB: it runs on onnxruntime for a
 * chunk of latents at a time, the [chunk, vocab] block never leaves the graph, and only each latent's
 * top-k positive and top-k negative tokens come back.
 */
import { existsSync } from 'node:fs';
import type { Engine } from '../engine/index.js';
import { GraphBuilder } from '../engine/onnx.js';
import type { HostTensor } from '../engine/ort.js';
import { UserError } from '../errors.js';
import { OnnxLm } from '../lm/onnx-lm.js';
import type { Unembedding } from '../lm/unembedding.js';
import { isUseLite } from '../lm/model.js';
import { USE_LITE_NAME } from '../lm/use-lite.js';

/** Tokens kept per latent and sign (Neuronpedia shows 10). */
export const LOGIT_TOP_K = 10;

/** Each asked latent's top-k tokens by effect: ids [n, k] and values [n, k], row j for latents[j]. */
export interface LogitEffects {
  readonly latents: readonly number[];
  readonly k: number;
  /** Largest first. */
  readonly posIds: Int32Array;
  readonly posValues: Float32Array;
  /** Most negative first. */
  readonly negIds: Int32Array;
  readonly negValues: Float32Array;
}

/** One token's effect, as shown. */
export interface TokenEffect {
  readonly token: string;
  readonly value: number;
}

export interface FeatureLogits {
  readonly pos: readonly TokenEffect[];
  readonly neg: readonly TokenEffect[];
}

/** The [chunk, vocab] block inside the graph stays near 2^24 floats (64 MB). */
function defaultChunk(vocab: number): number {
  return Math.max(1, Math.min(4096, Math.floor(2 ** 24 / vocab)));
}

/**
 * wDec: [dSae, dModel] -> the top-k positive and negative logit effects of `latents` (rows of wDec),
 * computed on the engine `chunk` latents at a time.
 */
export async function topLogitEffects(
  engine: Engine,
  wDec: Float32Array,
  u: Unembedding,
  latents: readonly number[],
  o: { readonly k?: number; readonly chunk?: number } = {},
): Promise<LogitEffects> {
  const d = u.dModel;
  if (wDec.length % d !== 0) throw new RangeError(`topLogitEffects: W_dec of ${wDec.length} floats is not a whole number of ${d}-wide rows`);
  const k = Math.min(o.k ?? LOGIT_TOP_K, u.vocab);
  const chunk = o.chunk ?? defaultChunk(u.vocab);
  const n = latents.length;
  const out = {
    latents,
    k,
    posIds: new Int32Array(n * k),
    posValues: new Float32Array(n * k),
    negIds: new Int32Array(n * k),
    negValues: new Float32Array(n * k),
  };
  const g = await engine.graph(`logit-effects:${u.transposed ? 'T' : 'N'}`, () => effectsGraph(u.transposed));
  const wU = { data: u.data, dims: u.transposed ? [u.vocab, d] : [d, u.vocab] };
  for (let first = 0; first < n; first += chunk) {
    const rows = Math.min(chunk, n - first);
    const w = new Float32Array(rows * d); // [rows, dModel]
    for (let j = 0; j < rows; j++) {
      const i = latents[first + j]!;
      w.set(wDec.subarray(i * d, (i + 1) * d), j * d);
    }
    const r = await g.run({ w: { data: w, dims: [rows, d] }, u: wU, k: { data: BigInt64Array.of(BigInt(k)), dims: [1] } });
    const take = (name: string): Float32Array | Int32Array => (r[name] as HostTensor<Float32Array | Int32Array>).data;
    out.posValues.set(take('pos_values'), first * k);
    out.negValues.set(take('neg_values'), first * k);
    out.posIds.set(take('pos_ids'), first * k);
    out.negIds.set(take('neg_ids'), first * k);
  }
  return out;
}

/** w: [rows, d], u: [d, V] (or [V, d] when transposed), k -> top-k of w u per row, both ends: [rows, k] each. */
function effectsGraph(transposed: boolean): Uint8Array {
  const b = new GraphBuilder();
  const w = b.input('w', ['rows', 'd']);
  const u = b.input('u', transposed ? ['vocab', 'd'] : ['d', 'vocab']);
  const k = b.input('k', [1], 'int64');
  const y = transposed ? b.gemm(w, u, { transB: true }) : b.matmul(w, u); // [rows, vocab]
  for (const [side, largest] of [
    ['pos', true],
    ['neg', false],
  ] as const) {
    const [values, ids] = b.topk(y, k, 1, largest);
    b.output(values, `${side}_values`, ['rows', 'k']);
    b.output(b.cast(ids, 'int32'), `${side}_ids`, ['rows', 'k'], 'int32');
  }
  return b.encode();
}

/** Row j of the effects (latent latents[j]) with token strings (`<id>` for ids past the vocabulary). */
export function featureLogits(e: LogitEffects, j: number, vocab: readonly string[]): FeatureLogits {
  const side = (ids: Int32Array, values: Float32Array): TokenEffect[] =>
    Array.from({ length: e.k }, (_, t) => {
      const id = ids[j * e.k + t]!;
      return { token: vocab[id] ?? `<${id}>`, value: values[j * e.k + t]! };
    });
  return { pos: side(e.posIds, e.posValues), neg: side(e.negIds, e.negValues) };
}

/** Where the dashboard's logit effects come from: a model's unembedding and vocabulary, or why there are none. */
export type LogitSource =
  | { readonly kind: 'model'; readonly model: string; readonly unembedding: Unembedding; readonly vocab: readonly string[] }
  | { readonly kind: 'none'; readonly reason: string };

/** What is recorded about the model: the SAE's cfg.json metadata, else the activation store's manifest. */
export interface RecordedModel {
  /** SAELens model_name (or the store's model). */
  readonly name?: string;
  /** The model file or folder the activations were harvested from. */
  readonly path?: string;
}

/**
 * The model for logit effects: `flag` (--model) when given, else the recorded path when it is on
 * disk. Undefined when nothing names a model at all. A recorded model that cannot be read gives a
 * reason instead of an error (the dashboard is still worth having); a --model that cannot be read
 * is the user's error.
 */
export async function logitSource(engine: Engine, flag: string | undefined, recorded: RecordedModel): Promise<LogitSource | undefined> {
  const none = (reason: string): LogitSource => ({ kind: 'none', reason });
  const encoder = `${USE_LITE_NAME} is a sentence encoder: it has no unembedding (no next-token logits), so features have no logit effects`;
  if (flag !== undefined) return isUseLite(flag) ? none(encoder) : fromModel(await OnnxLm.load(flag, engine));
  if (recorded.name !== undefined && isUseLite(recorded.name)) return none(encoder);
  if (recorded.path !== undefined && existsSync(recorded.path)) {
    try {
      return fromModel(await OnnxLm.load(recorded.path, engine));
    } catch (e) {
      if (e instanceof UserError) return none(`the recorded model could not be read (${e.message}); pass --model PATH`);
      throw e;
    }
  }
  if (recorded.path !== undefined)
    return none(`the model '${recorded.name ?? recorded.path}' is not at ${recorded.path} any more; pass --model PATH to show them`);
  if (recorded.name !== undefined)
    return none(`no path to the model '${recorded.name}' is recorded; pass --model PATH (an ONNX causal language model) to show them`);
  return undefined;
}

function fromModel(lm: OnnxLm): LogitSource {
  const u = lm.unembedding();
  if (!u.found) return { kind: 'none', reason: `no unembedding found in ${lm.name}: ${u.reason}` };
  return { kind: 'model', model: lm.name, unembedding: u.unembedding, vocab: lm.vocab };
}
