/**
 * Splicing an SAE into a model and steering with it. Edits of the hooked rows x [tokens, d]:
 *   reconstruct:  x -> x_hat = decode(encode(x))            (+ (x - x_hat) with keepError: = x)
 *   zero:         x -> 0                                     (zero ablation)
 *   add:          x -> x + alpha W_dec[i]                    (steering by a feature's direction)
 *   clamp:        x -> x + (c - f_i(x)) W_dec[i]             (feature i held at c, error kept)
 * What is lost, for causal language models (next-token cross-entropy over the contexts):
 *   loss_recovered = (CE_zero - CE_sae) / (CE_zero - CE_clean),  delta_loss = CE_sae - CE_clean
 * and for sentence encoders, the cosine between clean and spliced sentence embeddings.
 */
import type { Engine } from '../engine/index.js';
import type { Sae } from '../sae.js';
import { crossEntropy, type OnnxLm } from './onnx-lm.js';
import type { RowEdit, UseLite } from './use-lite.js';

export type Steer = { readonly feature: number; readonly add: number } | { readonly feature: number; readonly clamp: number };

/** x [rows, d] -> the SAE's reconstruction, plus the error term when asked (which gives x back). */
export function reconstructEdit(engine: Engine, sae: Sae, keepError = false): RowEdit {
  return async (x) => {
    const xHat = await sae.decode(engine, await sae.encode(engine, x));
    if (keepError) for (let i = 0; i < xHat.length; i++) xHat[i]! += x[i]! - xHat[i]!;
    return xHat;
  };
}

export const zeroEdit: RowEdit = (x) => Promise.resolve(new Float32Array(x.length));

/** The steering edit: add alpha W_dec[i] to every row, or hold feature i at a value. */
export function steerEdit(engine: Engine, sae: Sae, s: Steer): RowEdit {
  const { dIn, dSae } = sae.dims;
  if (!Number.isInteger(s.feature) || s.feature < 0 || s.feature >= dSae) throw new RangeError(`feature must be in [0, ${dSae}), got ${s.feature}`);
  const w = sae.param('W_dec').subarray(s.feature * dIn, (s.feature + 1) * dIn); // [dIn]
  return async (x) => {
    const rows = x.length / dIn;
    const scale = new Float32Array(rows).fill('add' in s ? s.add : 0); // [rows]
    if ('clamp' in s) {
      const f = await sae.encode(engine, x); // [rows, dSae]
      for (let r = 0; r < rows; r++) scale[r] = s.clamp - f[r * dSae + s.feature]!;
    }
    const out = x.slice();
    for (let r = 0; r < rows; r++) for (let j = 0; j < dIn; j++) out[r * dIn + j]! += scale[r]! * w[j]!;
    return out;
  };
}

export interface CausalSpliceMetrics {
  readonly tokens: number;
  readonly ce_clean: number;
  readonly ce_spliced: number;
  readonly ce_zero: number;
  readonly loss_recovered: number;
  readonly delta_loss: number;
}

/** Mean next-token cross-entropy over the contexts with the hook edited (clean without edit). */
async function meanCe(engine: Engine, lm: OnnxLm, contexts: readonly Int32Array[], hook: string, edit?: RowEdit): Promise<{ sum: number; n: number }> {
  const f = await lm.forward(contexts, hook, edit);
  const V = f.vocabSize;
  const n = contexts.reduce((a, c) => a + Math.max(0, c.length - 1), 0);
  const logits = new Float32Array(n * V); // [n, V]: positions that have a next token
  const targets = new Int32Array(n);
  let row = 0;
  let at = 0;
  for (const c of contexts) {
    for (let p = 0; p + 1 < c.length; p++, at++) {
      logits.set(f.logits.subarray((row + p) * V, (row + p + 1) * V), at * V);
      targets[at] = c[p + 1]!;
    }
    row += c.length;
  }
  const ce = await crossEntropy(engine, logits, targets, V);
  return { sum: ce.reduce((a, b) => a + b, 0), n };
}

/** CE clean / spliced / zero-ablated over contexts, in batches of `batch`. */
export async function causalSplice(
  engine: Engine,
  lm: OnnxLm,
  hook: string,
  edit: RowEdit,
  contexts: readonly Int32Array[],
  batch = 8,
): Promise<CausalSpliceMetrics> {
  const sums = { clean: 0, spliced: 0, zero: 0, n: 0 };
  for (let i = 0; i < contexts.length; i += batch) {
    const b = contexts.slice(i, i + batch);
    const clean = await meanCe(engine, lm, b, hook);
    sums.clean += clean.sum;
    sums.spliced += (await meanCe(engine, lm, b, hook, edit)).sum;
    sums.zero += (await meanCe(engine, lm, b, hook, zeroEdit)).sum;
    sums.n += clean.n;
  }
  const n = Math.max(1, sums.n);
  return causalMetrics(sums.n, sums.clean / n, sums.spliced / n, sums.zero / n);
}

/** The splice figures from the mean next-token cross-entropies over `tokens` predictions. */
export function causalMetrics(tokens: number, ceClean: number, ceSpliced: number, ceZero: number): CausalSpliceMetrics {
  return {
    tokens,
    ce_clean: ceClean,
    ce_spliced: ceSpliced,
    ce_zero: ceZero,
    loss_recovered: (ceZero - ceSpliced) / (ceZero - ceClean),
    delta_loss: ceSpliced - ceClean,
  };
}

export interface EncoderSpliceMetrics {
  readonly sentences: number;
  /** Mean cosine between clean and spliced sentence embeddings. */
  readonly embedding_cosine: number;
  readonly embedding_cosine_min: number;
  /** The same with the hook zero-ablated, for scale. */
  readonly embedding_cosine_zero: number;
}

/** a, b: [n, d] -> [n] cosine of each row pair. */
export function rowCosines(a: Float32Array, b: Float32Array, d: number): Float64Array {
  const n = a.length / d;
  const out = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let ab = 0;
    let aa = 0;
    let bb = 0;
    for (let j = 0; j < d; j++) {
      const x = a[r * d + j]!;
      const y = b[r * d + j]!;
      ab += x * y;
      aa += x * x;
      bb += y * y;
    }
    out[r] = ab / Math.sqrt(aa * bb || 1);
  }
  return out;
}

/** Cosine between USE-lite's clean and spliced sentence embeddings, in batches of `batch` sentences. */
export async function encoderSplice(use: UseLite, node: string, edit: RowEdit, sentences: readonly Int32Array[], batch = 64): Promise<EncoderSpliceMetrics> {
  let sum = 0;
  let sumZero = 0;
  let min = Infinity;
  for (let i = 0; i < sentences.length; i += batch) {
    const b = sentences.slice(i, i + batch);
    const spliced = await use.run(b, node, edit);
    const clean = spliced.clean;
    const zero = (await use.run(b, node, zeroEdit)).embeddings;
    const d = clean.length / b.length;
    for (const c of rowCosines(clean, spliced.embeddings, d)) {
      sum += c;
      min = Math.min(min, c);
    }
    for (const c of rowCosines(clean, zero, d)) sumZero += c;
  }
  const n = Math.max(1, sentences.length);
  return { sentences: sentences.length, embedding_cosine: sum / n, embedding_cosine_min: min, embedding_cosine_zero: sumZero / n };
}
