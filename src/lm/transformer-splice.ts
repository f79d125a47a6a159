/**
 * Splicing, steering and sampling on a hooked transformer (src/lm/transformer/), every edit inside
 * the model's own graph. Over the real next-token positions t of the contexts (logits z_t [vocab],
 * target y_t = the next id, p = softmax(z)):
 *   CE       = mean_t ( logsumexp(z_t) - z_t[y_t] )          clean, spliced (hook <- SAE(x)), zero (hook <- 0)
 *              (with keepPositions k, positions < k keep their clean value in both edits)
 *   loss_recovered = (CE_zero - CE_spliced) / (CE_zero - CE_clean),  delta_loss = CE_spliced - CE_clean
 *   KL       = mean_t sum_v p_clean(v) (log p_clean(v) - log p_spliced(v))   (nats; clean || spliced)
 * Steering edits of the hooked value x (every position):
 *   add:     x + alpha W_dec[i]
 *   clamp:   x + (c - f_i(x)) W_dec[i],  f_i(x) = relu((x - b_dec) . W_enc[:, i] + b_enc[i])   (ReLU SAEs)
 * Sampling the next token: greedy (temperature 0), else softmax(z / T) over the top k logits (all
 * when k is not given), drawn with a seeded generator.
 * Sums are float64 in TypeScript: the [tokens, vocab] logits are already on the host.
 */
import { paramsOf } from '../arch/common.js';
import type { Engine } from '../engine/index.js';
import { UserError } from '../errors.js';
import { Rng } from '../rng.js';
import type { Sae } from '../sae.js';
import { repad, unpad } from './rows.js';
import { causalMetrics, type CausalSpliceMetrics, reconstructEdit, zeroEdit } from './splice.js';
import type { RowEdit } from './use-lite.js';
import type { HookEdit, HookedTransformer } from './transformer/index.js';

export interface TransformerSpliceMetrics extends CausalSpliceMetrics {
  /** Mean KL(clean || spliced) of the next-token distributions, nats. */
  readonly kl_spliced: number;
}

/** logsumexp of z[from, from + n), in float64. */
function logSumExp(z: Float32Array, from: number, n: number): number {
  let max = -Infinity;
  for (let v = 0; v < n; v++) max = Math.max(max, z[from + v]!);
  let s = 0;
  for (let v = 0; v < n; v++) s += Math.exp(z[from + v]! - max);
  return max + Math.log(s);
}

/** logits [batch, pos, V] of contexts -> per next-token position: CE, in context order. */
export function nextTokenCe(logits: Float32Array, contexts: readonly Int32Array[], pos: number, V: number): Float64Array {
  const out: number[] = [];
  contexts.forEach((c, b) => {
    for (let p = 0; p + 1 < c.length; p++) {
      const at = (b * pos + p) * V;
      out.push(logSumExp(logits, at, V) - logits[at + c[p + 1]!]!);
    }
  });
  return Float64Array.from(out);
}

/** KL(p || q) per next-token position of two logits [batch, pos, V], in context order. */
export function nextTokenKl(p: Float32Array, q: Float32Array, contexts: readonly Int32Array[], pos: number, V: number): Float64Array {
  const out: number[] = [];
  contexts.forEach((c, b) => {
    for (let t = 0; t + 1 < c.length; t++) {
      const at = (b * pos + t) * V;
      const lp = logSumExp(p, at, V);
      const lq = logSumExp(q, at, V);
      let kl = 0;
      for (let v = 0; v < V; v++) {
        const a = p[at + v]! - lp;
        kl += Math.exp(a) * (a - (q[at + v]! - lq));
      }
      out.push(Math.max(0, kl));
    }
  });
  return Float64Array.from(out);
}

const sum = (a: Float64Array): number => a.reduce((s, x) => s + x, 0);

/** Mean next-token CE of the model over contexts (nats), in batches of `batch` contexts. */
export async function meanCrossEntropy(model: HookedTransformer, contexts: readonly Int32Array[], batch = 8): Promise<{ ce: number; tokens: number }> {
  let total = 0;
  let n = 0;
  for (let i = 0; i < contexts.length; i += batch) {
    const b = contexts.slice(i, i + batch);
    const r = await model.run(b);
    const ce = nextTokenCe(r.logits!.data, b, r.pos, model.config.vocab);
    total += sum(ce);
    n += ce.length;
  }
  return { ce: total / Math.max(1, n), tokens: n };
}

export interface SpliceOptions {
  /** Add the SAE's error term back (x_hat + (x - x_hat)): a check that nothing is lost. */
  readonly keepError?: boolean;
  /** Contexts per run (default 8). */
  readonly batch?: number;
  /** Leading positions of each context left clean (1: BOS, for SAEs trained without it). */
  readonly keepPositions?: number;
}

/** CE clean / spliced / zero-ablated and KL(clean || spliced) with the SAE's reconstruction at `hook`. */
export async function transformerSplice(
  engine: Engine,
  model: HookedTransformer,
  sae: Sae,
  hook: string,
  contexts: readonly Int32Array[],
  o: SpliceOptions = {},
): Promise<TransformerSpliceMetrics> {
  const width = model.hookWidth(hook);
  if (hook.endsWith('attn.hook_pattern')) throw new UserError(`hook '${hook}' is an attention pattern; an SAE splices into one row per token`);
  if (width !== sae.dims.dIn) throw new UserError(`the SAE reads ${sae.dims.dIn}-wide vectors, but ${hook} of ${model.name} is ${width} wide`);
  const edit = reconstructEdit(engine, sae, o.keepError ?? false);
  const V = model.config.vocab;
  const batch = o.batch ?? 8;
  const sums = { clean: 0, spliced: 0, zero: 0, kl: 0, n: 0 };
  for (let i = 0; i < contexts.length; i += batch) {
    const b = contexts.slice(i, i + batch);
    const clean = await model.run(b, { returnHooks: [hook], logits: true });
    const x = clean.hooks[hook]!.data; // [batch, pos, width]
    const replaced = await editRows(x, clean.lengths, clean.pos, width, o.keepPositions ?? 0, edit);
    const spliced = await model.run(b, { edits: { [hook]: { replace: replaced } } });
    const zeroed = await editRows(x, clean.lengths, clean.pos, width, o.keepPositions ?? 0, zeroEdit);
    const zero = await model.run(b, { edits: { [hook]: { replace: zeroed } } });
    const ceClean = nextTokenCe(clean.logits!.data, b, clean.pos, V);
    sums.clean += sum(ceClean);
    sums.spliced += sum(nextTokenCe(spliced.logits!.data, b, clean.pos, V));
    sums.zero += sum(nextTokenCe(zero.logits!.data, b, clean.pos, V));
    sums.kl += sum(nextTokenKl(clean.logits!.data, spliced.logits!.data, b, clean.pos, V));
    sums.n += ceClean.length;
  }
  if (sums.n === 0) throw new UserError('no next-token positions to evaluate (every context is a single token)');
  return { ...causalMetrics(sums.n, sums.clean / sums.n, sums.spliced / sums.n, sums.zero / sums.n), kl_spliced: sums.kl / sums.n };
}

/** x [batch, pos, width] with the rows of real tokens at positions >= keep edited; the rest kept. */
async function editRows(x: Float32Array, lengths: readonly number[], pos: number, width: number, keep: number, edit: RowEdit): Promise<Float32Array> {
  const kept = lengths.map((n) => Math.max(0, n - keep));
  const shifted = new Float32Array(x.length); // [batch, pos, width]: each context's rows from `keep` on, moved to the front
  lengths.forEach((n, b) => shifted.set(x.subarray((b * pos + Math.min(keep, n)) * width, (b * pos + n) * width), b * pos * width));
  const edited = await edit(unpad(shifted, kept, pos, width)); // [tokens, width]
  const back = repad(shifted, edited, kept, pos, width);
  const out = x.slice();
  lengths.forEach((n, b) => out.set(back.subarray(b * pos * width, (b * pos + kept[b]!) * width), (b * pos + Math.min(keep, n)) * width));
  return out;
}

export type Steering = { readonly feature: number; readonly add: number } | { readonly feature: number; readonly clamp: number };

/** The steering edit of feature i at `hook` as the graph applies it (add, or clamp for ReLU SAEs). */
export function steeringEdit(sae: Sae, s: Steering): HookEdit {
  const { dIn, dSae } = sae.dims;
  if (!Number.isInteger(s.feature) || s.feature < 0 || s.feature >= dSae) throw new UserError(`--feature must be in [0, ${dSae}), got ${s.feature}`);
  const { W_enc, b_enc, W_dec, b_dec } = paramsOf(sae.params, 'W_enc', 'b_enc', 'W_dec', 'b_dec');
  const direction = W_dec.slice(s.feature * dIn, (s.feature + 1) * dIn); // [dIn]
  if ('add' in s) return { add: direction.map((w) => w * s.add) };
  if (sae.architecture !== 'standard' || sae.metadata['normalize_activations'] === 'expected_average_only_in') {
    throw new UserError(
      `--clamp on a transformer runs inside the graph, which computes a ReLU SAE's feature relu((x - b_dec) W_enc + b_enc) on raw activations; this SAE is ${sae.architecture}${sae.architecture === 'standard' ? ' with normalised activations' : ''}: use --alpha`,
    );
  }
  const encoder = Float32Array.from({ length: dIn }, (_, j) => W_enc[j * dSae + s.feature]!); // W_enc: [dIn, dSae]
  let bias = b_enc[s.feature]!;
  for (let j = 0; j < dIn; j++) bias -= b_dec[j]! * encoder[j]!;
  return { clamp: { direction, encoder, bias, value: s.clamp } };
}

export interface Sampling {
  /** 0: greedy. */
  readonly temperature: number;
  /** Keep only the k largest logits (default: all). */
  readonly topK?: number | undefined;
  readonly seed: number;
}

/** The next id from logits z [V]: argmax, or a draw from softmax(z / T) over the top k. */
export function sampleNext(z: Float32Array, s: Sampling, rng: Rng): number {
  let best = 0;
  for (let v = 1; v < z.length; v++) if (z[v]! > z[best]!) best = v;
  if (s.temperature <= 0) return best;
  let ids = Array.from({ length: z.length }, (_, v) => v);
  if (s.topK !== undefined && s.topK < z.length) ids = ids.sort((a, b) => z[b]! - z[a]!).slice(0, s.topK);
  const w = ids.map((v) => Math.exp((z[v]! - z[best]!) / s.temperature));
  let u = rng.uniform() * w.reduce((a, b) => a + b, 0);
  for (let i = 0; i < ids.length; i++) {
    u -= w[i]!;
    if (u <= 0) return ids[i]!;
  }
  return ids.at(-1)!;
}

/**
 * Continues `prompt` by `steps` tokens with the edits applied at every position (no key/value
 * cache: each step runs the whole prefix); stops early at `eos`.
 */
export async function generateTokens(
  model: HookedTransformer,
  prompt: readonly number[],
  steps: number,
  o: { edits?: Readonly<Record<string, HookEdit>>; sampling?: Sampling; eos?: number | undefined } = {},
): Promise<number[]> {
  if (prompt.length + steps > model.config.maxPositions)
    throw new UserError(`${prompt.length} prompt tokens + ${steps} new ones exceed the model's ${model.config.maxPositions} positions`);
  const sampling = o.sampling ?? { temperature: 0, seed: 0 };
  const rng = new Rng(sampling.seed);
  const V = model.config.vocab;
  const ids = [...prompt];
  for (let s = 0; s < steps; s++) {
    const r = await model.run([Int32Array.from(ids)], { edits: o.edits ?? {} });
    const next = sampleNext(r.logits!.data.subarray((ids.length - 1) * V, ids.length * V), sampling, rng);
    ids.push(next);
    if (next === o.eos) break;
  }
  return ids.slice(prompt.length);
}
