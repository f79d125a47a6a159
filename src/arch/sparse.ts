/**
 * The machinery shared by the TopK family (topk, batchtopk, matryoshka). The encoder product and
 * the selection run on onnxruntime, which returns only the selected entries ([batch, k] values and
 * indices); everything after touches those entries alone, on the kernels, O(nnz * dIn):
 *   x_hat = sum_e f_e W_dec[i_e] + b_dec                  sparseDecode
 *   dW_dec[i] = sum_{e: i_e = i} f_e g[row(e)]            sparseScatter 'rows'
 *   df_e = g[row(e)] . W_dec[i_e];  dpre_e = df_e [pre_e > 0]   sparseGatherDot
 *   dW_enc[:, i] = sum_{e: i_e = i} dpre_e xc[row(e)]      sparseScatter 'columns'
 *   db_enc[i] = sum_{e: i_e = i} dpre_e;  db_dec = sum_r g[r] - W_enc db_enc
 * where g = d loss / d x_hat and xc = x - b_dec (the encoder's input).
 */
import type { Engine } from '../engine/index.js';
import type { CsrRows, Kernels } from '../engine/kernels.js';
import { GraphBuilder, type Value } from '../engine/onnx.js';
import type { Feeds, HostTensor } from '../engine/ort.js';
import type { Dims, Params } from './types.js';

/** A selection of latents per row and their pre-activations. */
export interface Selection {
  readonly code: CsrRows;
  /** [nnz] pre-activation of each entry. */
  readonly pre: Float32Array;
}

/** rows x k entries in row order: rowPtr[r] = r k. */
export function fixedRows(rows: number, k: number, idx: Int32Array): CsrRows {
  return { rows, idx, rowPtr: Int32Array.from({ length: rows + 1 }, (_, r) => r * k) };
}

/** [nnz] relu of the pre-activations: the latent activations f. */
export function reluOf(pre: Float32Array): Float32Array {
  return pre.map((v) => (v > 0 ? v : 0));
}

/** x: [rows, d], in place: every row plus b: [d]. */
export function addRowVector(x: Float32Array, rows: number, b: Float32Array): void {
  const d = b.length;
  for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) x[r * d + j]! += b[j]!;
}

/** [dSae] inputs on which each latent fired (f > 0). */
export function firesOf(k: Kernels, s: Selection, dSae: number): Float32Array {
  const fires = new Float32Array(dSae);
  k.sparseScatterSum(s.code, s.pre.map((v) => (v > 0 ? 1 : 0)), dSae, fires, false);
  return fires;
}

/** Entries as a dense [rows, dSae] matrix (for conformance checks only). */
export function densify(s: Selection, values: Float32Array, dSae: number): Float32Array {
  const out = new Float32Array(s.code.rows * dSae);
  for (let r = 0; r < s.code.rows; r++) {
    for (let e = s.code.rowPtr[r]!; e < s.code.rowPtr[r + 1]!; e++) out[r * dSae + s.code.idx[e]!] = values[e]!;
  }
  return out;
}

/**
 * Float32Arrays a training step keeps from one call to the next, by name. Fresh arrays cost page
 * faults on first touch (measured ~7 ms per 12 MB, and the two 50 MB gradients of a 768 x 16384
 * SAE made the scatters ~20 ms slower each). What is made from them is valid until the next step.
 */
export class Workspace {
  private readonly buffers = new Map<string, Float32Array>();

  /** The buffer `name` of n floats; its contents are whatever the last step left there. */
  floats(name: string, n: number): Float32Array {
    let b = this.buffers.get(name);
    if (b?.length !== n) {
      b = new Float32Array(n);
      this.buffers.set(name, b);
    }
    return b;
  }
}

/** Gradients of the four SAE parameters, accumulated path by path (main, auxiliary, prefixes). */
export class SparseGrads {
  readonly W_dec: Float32Array; // [dSae, dIn]
  readonly W_enc: Float32Array; // [dIn, dSae]
  readonly b_enc: Float32Array; // [dSae]
  readonly b_dec: Float32Array; // [dIn]
  private first = { dec: true, enc: true };

  /** With a workspace, the gradients live in its buffers (valid until the next step). */
  constructor(
    private readonly k: Kernels,
    private readonly d: Dims,
    ws: Workspace = new Workspace(),
  ) {
    // W_dec, W_enc and b_enc are overwritten by the first path's scatters; b_dec accumulates.
    this.W_dec = ws.floats('grad.W_dec', d.dSae * d.dIn);
    this.W_enc = ws.floats('grad.W_enc', d.dIn * d.dSae);
    this.b_enc = ws.floats('grad.b_enc', d.dSae);
    this.b_dec = ws.floats('grad.b_dec', d.dIn).fill(0);
  }

  /**
   * A decode path x_hat = sum f_e W_dec[i_e] (+ b_dec when `bias`) with upstream gradient g [rows, dIn]:
   * adds its share of dW_dec (and db_dec) and returns df [nnz].
   */
  decoderBackward(s: Selection, f: Float32Array, g: Float32Array, wDec: Float32Array, bias: boolean): Float32Array {
    const { dIn, dSae } = this.d;
    this.k.sparseScatter(s.code, f, g, dIn, dSae, this.W_dec, 'rows', !this.first.dec);
    this.first.dec = false;
    if (bias) this.k.columnSums(g, s.code.rows, dIn, this.b_dec, true);
    const df = new Float32Array(f.length);
    this.k.sparseGatherDot(s.code, wDec, g, dIn, df);
    return df;
  }

  /** The encoder path of df: dpre = df [pre > 0] into dW_enc and db_enc (through xc [rows, dIn]). */
  encoderBackward(s: Selection, df: Float32Array, xc: Float32Array): void {
    const { dIn, dSae } = this.d;
    const dpre = df.map((v, e) => (s.pre[e]! > 0 ? v : 0));
    this.k.sparseScatter(s.code, dpre, xc, dIn, dSae, this.W_enc, 'columns', !this.first.enc);
    this.k.sparseScatterSum(s.code, dpre, dSae, this.b_enc, !this.first.enc);
    this.first.enc = false;
  }

  /** db_dec's encoder share when the encoder reads x - b_dec: -W_enc db_enc (a product on onnxruntime). */
  async finishBDec(engine: Engine, wEnc: Float32Array): Promise<void> {
    const { dIn, dSae } = this.d;
    const share = await engine.matmul(wEnc, this.b_enc, dIn, dSae, 1); // [dIn, dSae] @ [dSae, 1]
    for (let j = 0; j < dIn; j++) this.b_dec[j] = this.b_dec[j]! - share[j]!;
  }

  record(): Record<string, Float32Array> {
    return { W_enc: this.W_enc, b_enc: this.b_enc, W_dec: this.W_dec, b_dec: this.b_dec };
  }
}

/** Options of the TopK-family encoder graph. */
export interface EncoderGraphOptions {
  /** Subtract b_dec from x first (SAELens's apply_b_dec_to_input). */
  readonly applyBDec: boolean;
  /** Also select among dead latents (AuxK): inputs dead_bias [dSae] (0 dead, -inf live) and k_aux [1]. */
  readonly aux: boolean;
  /** Also return pre [batch, dSae] (conformance checks). */
  readonly debug: boolean;
}

/**
 * The encoder and the per-row selection: x [batch, dIn] (and the parameters) -> xc [batch, dIn],
 * val/idx [batch, k] (the k largest pre-activations of each row; k is an input [1]), and with aux
 * aux_val/aux_idx [batch, k_aux] among dead latents.
 */
export function encoderGraph(d: Dims, o: EncoderGraphOptions): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input('x', ['batch', d.dIn]);
  const wEnc = g.input('W_enc', [d.dIn, d.dSae]);
  const bEnc = g.input('b_enc', [d.dSae]);
  const bDec = g.input('b_dec', [d.dIn]);
  const k = g.input('k', [1], 'int64');
  const xc = o.applyBDec ? g.sub(x, bDec) : x;
  const pre = g.gemm(xc, wEnc, { c: bEnc }); // [B, dSae]
  const select = (v: Value, kv: Value, name: string): void => {
    const [val, idx] = g.topk(v, kv);
    g.output(val, `${name}val`, ['batch', 'k']);
    g.output(g.cast(idx, 'int32'), `${name}idx`, ['batch', 'k'], 'int32');
  };
  select(pre, k, '');
  if (o.aux) select(g.add(pre, g.input('dead_bias', [d.dSae])), g.input('k_aux', [1], 'int64'), 'aux_');
  g.output(o.applyBDec ? xc : g.op('Identity', [x]), 'xc', ['batch', d.dIn]);
  if (o.debug) g.output(pre, 'pre', ['batch', d.dSae]);
  return g.encode();
}

export interface EncoderOutput {
  readonly xc: Float32Array;
  readonly main: Selection;
  readonly aux: Selection | undefined;
  readonly pre: Float32Array | undefined;
}

/**
 * Rows per encoder call. The [rows, dSae] pre-activations of one call stay in cache for TopK
 * (512 x 16384 floats = 32 MB) instead of going through memory: measured here at 768 -> 16384,
 * the Gemm + TopK of 4096 rows took 0.97-1.1 s in one call and 0.80-0.83 s in calls of 256-1024.
 */
export const ENCODER_CHUNK = 512;

/** Runs the encoder graph, ENCODER_CHUNK rows a call: k per row (and kAux among dead latents when deadBias is given). */
export async function runEncoder(
  engine: Engine,
  key: string,
  d: Dims,
  o: EncoderGraphOptions,
  params: Params,
  x: Float32Array,
  rows: number,
  k: number,
  aux?: { deadBias: Float32Array; kAux: number },
): Promise<EncoderOutput> {
  const graph = await engine.graph(`${key}:encoder:${o.applyBDec}:${o.aux}:${o.debug}`, () => encoderGraph(d, o));
  const { dIn, dSae } = d;
  const kAux = aux?.kAux ?? 0;
  const xc = new Float32Array(rows * dIn);
  const main = { idx: new Int32Array(rows * k), pre: new Float32Array(rows * k) };
  const auxOut = { idx: new Int32Array(rows * kAux), pre: new Float32Array(rows * kAux) };
  const pre = o.debug ? new Float32Array(rows * dSae) : undefined;
  const feeds: Feeds = {
    W_enc: { data: params['W_enc']!, dims: [dIn, dSae] },
    b_enc: { data: params['b_enc']!, dims: [dSae] },
    b_dec: { data: params['b_dec']!, dims: [dIn] },
    k: { data: BigInt64Array.of(BigInt(k)), dims: [1] },
  };
  if (aux) {
    feeds['dead_bias'] = { data: aux.deadBias, dims: [dSae] };
    feeds['k_aux'] = { data: BigInt64Array.of(BigInt(kAux)), dims: [1] };
  }
  for (let r0 = 0; r0 < rows; r0 += ENCODER_CHUNK) {
    const n = Math.min(ENCODER_CHUNK, rows - r0);
    const out = await graph.run({ ...feeds, x: { data: x.subarray(r0 * dIn, (r0 + n) * dIn), dims: [n, dIn] } });
    const take = (name: string): Float32Array | Int32Array => (out[name] as HostTensor<Float32Array | Int32Array>).data;
    xc.set(take('xc') as Float32Array, r0 * dIn);
    main.idx.set(take('idx') as Int32Array, r0 * k);
    main.pre.set(take('val') as Float32Array, r0 * k);
    if (aux) {
      auxOut.idx.set(take('aux_idx') as Int32Array, r0 * kAux);
      auxOut.pre.set(take('aux_val') as Float32Array, r0 * kAux);
    }
    if (pre) pre.set(take('pre') as Float32Array, r0 * dSae);
  }
  return {
    xc,
    main: { code: fixedRows(rows, k, main.idx), pre: main.pre },
    aux: aux ? { code: fixedRows(rows, kAux, auxOut.idx), pre: auxOut.pre } : undefined,
    pre,
  };
}

/** [dSae] 0 for dead latents, -inf for live ones (added to pre to select among the dead only). */
export function deadBias(deadMask: Uint8Array): { bias: Float32Array; dead: number } {
  let dead = 0;
  const bias = Float32Array.from(deadMask, (m) => (m ? (dead++, 0) : Number.NEGATIVE_INFINITY));
  return { bias, dead };
}

/** The n-th largest of values (1-based), by quickselect on a copy. */
export function nthLargest(values: Float32Array, n: number): number {
  const a = values.slice();
  let lo = 0;
  let hi = a.length - 1;
  const target = n - 1; // index in descending order
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! > pivot) i++;
      while (a[j]! < pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i++] = a[j]!;
        a[j--] = t;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return pivot;
  }
  return a[lo]!;
}

export interface BatchSelection {
  readonly selection: Selection;
  /** The smallest kept value (0 when nothing was kept). */
  readonly minKept: number;
  /** A row had all its candidates kept: it may hold more of the batch's largest values. */
  readonly overflow: boolean;
}

/**
 * BatchTopK: from per-row candidates (each row's kCand largest pre-activations, in descending
 * order), keep the `total` largest positive values of the whole batch. Ties at the boundary go to
 * earlier rows, then earlier candidates, so the kept entries of a row are a prefix of its candidates.
 */
export function batchSelect(cand: Selection, kCand: number, total: number, dSae: number): BatchSelection {
  const { rows } = cand.code;
  const positive = cand.pre.filter((v) => v > 0);
  const n = Math.min(total, positive.length);
  const counts = new Int32Array(rows);
  let minKept = 0;
  if (n > 0) {
    minKept = nthLargest(positive, n);
    let ties = n;
    for (const v of positive) if (v > minKept) ties--;
    for (let r = 0; r < rows; r++) {
      let c = 0;
      for (let j = 0; j < kCand; j++) {
        const v = cand.pre[r * kCand + j]!;
        if (v > minKept) c++;
        else if (v === minKept && ties > 0) {
          c++;
          ties--;
        } else break;
      }
      counts[r] = c;
    }
  }
  const rowPtr = new Int32Array(rows + 1);
  for (let r = 0; r < rows; r++) rowPtr[r + 1] = rowPtr[r]! + counts[r]!;
  const nnz = rowPtr[rows]!;
  const idx = new Int32Array(nnz);
  const pre = new Float32Array(nnz);
  let overflow = false;
  for (let r = 0; r < rows; r++) {
    const c = counts[r]!;
    idx.set(cand.code.idx.subarray(r * kCand, r * kCand + c), rowPtr[r]!);
    pre.set(cand.pre.subarray(r * kCand, r * kCand + c), rowPtr[r]!);
    if (c === kCand && kCand < dSae) overflow = true;
  }
  return { selection: { code: { rowPtr, idx, rows }, pre }, minKept, overflow };
}

/** How the reconstruction error is normalised: by the batch's total variance (fvu) or its size (mse). */
export type ReconstructionLoss = 'fvu' | 'mse';

export interface SparsePassOptions {
  readonly loss: ReconstructionLoss;
  /** Coefficient of the AuxK term. */
  readonly auxCoefficient: number;
  /** Matryoshka: nested prefix widths m_1 < ... < m_L = dSae, each prefix reconstructing x (default [dSae]). */
  readonly prefixes?: readonly number[];
  /** Reuse these buffers for the gradients and the [rows, dIn] temporaries (results valid until the next step). */
  readonly workspace?: Workspace;
}

export interface SparsePass {
  readonly grads: SparseGrads;
  readonly losses: Record<string, number>;
  /** [rows, dIn] the full reconstruction. */
  readonly xHat: Float32Array;
  /** [nnz] main activations, [nnz_aux] auxiliary ones. */
  readonly f: Float32Array;
  readonly fAux: Float32Array | undefined;
  readonly sse: number;
  readonly variance: number;
}

/** Entries of s whose latent lies in [lo, hi), as a code of the same rows (with their positions in s). */
function entriesIn(s: Selection, lo: number, hi: number): { sel: Selection; at: Int32Array } {
  const { rows, rowPtr, idx } = s.code;
  const ptr = new Int32Array(rows + 1);
  const at: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let e = rowPtr[r]!; e < rowPtr[r + 1]!; e++) if (idx[e]! >= lo && idx[e]! < hi) at.push(e);
    ptr[r + 1] = at.length;
  }
  const pos = Int32Array.from(at);
  return { sel: { code: { rows, rowPtr: ptr, idx: pos.map((e) => idx[e]!) }, pre: pos.length ? Float32Array.from(pos, (e) => s.pre[e]!) : new Float32Array(0) }, at: pos };
}

/**
 * The decode, losses and backward of a TopK-family step, given the encoder's selections:
 *   x_hat_l = b_dec + sum over entries with latent < m_l of f_e W_dec[i_e]    (one prefix: plain decode)
 *   loss_l = sum (x_hat_l - x)^2 / N, N = T (fvu) or B (mse);  total = sum_l loss_l + aux_coefficient * auxk
 *   g_l = 2 (x_hat_l - x) / N; an entry in prefix group j gets the upstream sum_{l >= j} g_l
 *   AuxK as in topk.ts, on the full reconstruction's residual.
 */
export async function sparsePass(
  engine: Engine,
  d: Dims,
  params: Params,
  x: Float32Array,
  rows: number,
  enc: { main: Selection; xc: Float32Array; aux?: Selection | undefined; auxScale?: number },
  o: SparsePassOptions,
): Promise<SparsePass> {
  const K = engine.kernels;
  const { dIn, dSae } = d;
  const wDec = params['W_dec']!;
  const prefixes = o.prefixes ?? [dSae];
  const variance = K.centeredSumSquares(x, rows, dIn);
  const norm = o.loss === 'fvu' ? variance : rows;
  const f = reluOf(enc.main.pre);
  const groups = prefixes.length === 1 ? [{ sel: enc.main, at: undefined }] : prefixes.map((m, j) => entriesIn(enc.main, j ? prefixes[j - 1]! : 0, m));
  // forward: running reconstruction x_hat_l, residual r_l = x_hat_l - x, upstream g_l
  const ws = o.workspace ?? new Workspace();
  const n = rows * dIn;
  const xHat = ws.floats('x_hat', n); // one group decodes into it; more add their parts to it
  const part = groups.length > 1 ? ws.floats('part', n) : xHat;
  if (part !== xHat) xHat.fill(0);
  const upstream: Float32Array[] = [];
  const losses: Record<string, number> = {};
  const r = ws.floats('r', n);
  let sse = 0;
  let recon = 0;
  groups.forEach((grp, j) => {
    const fj = grp.at ? Float32Array.from(grp.at, (e) => f[e]!) : f;
    K.sparseDecode(grp.sel.code, fj, wDec, dIn, part);
    if (part !== xHat) for (let i = 0; i < xHat.length; i++) xHat[i]! += part[i]!;
    if (j === 0) addRowVector(xHat, rows, params['b_dec']!);
    sse = K.subtract(xHat, x, r);
    const loss = sse / norm;
    recon += loss;
    if (j < prefixes.length - 1) losses[`${o.loss}_${prefixes[j]}`] = loss;
    const g = ws.floats(`g${j}`, n);
    g.set(r);
    K.scale(g, 2 / norm);
    upstream.push(g);
  });
  losses[o.loss] = sse / norm;
  // suffix sums: group j's entries feed every prefix l >= j
  for (let j = upstream.length - 2; j >= 0; j--) {
    const [gj, next] = [upstream[j]!, upstream[j + 1]!];
    for (let i = 0; i < gj.length; i++) gj[i]! += next[i]!;
  }
  const grads = new SparseGrads(K, d, ws);
  groups.forEach((grp, j) => {
    const fj = grp.at ? Float32Array.from(grp.at, (e) => f[e]!) : f;
    grads.encoderBackward(grp.sel, grads.decoderBackward(grp.sel, fj, upstream[j]!, wDec, j === 0), enc.xc);
  });
  let auxk = 0;
  let fAux: Float32Array | undefined;
  if (enc.aux) {
    const scale = enc.auxScale ?? 1;
    fAux = reluOf(enc.aux.pre);
    const eHat = ws.floats('e_hat', n);
    K.sparseDecode(enc.aux.code, fAux, wDec, dIn, eHat);
    const e = ws.floats('e', n); // e = x - x_hat = -r
    K.subtract(x, xHat, e);
    const h = ws.floats('h', n); // e_hat - e, then its gradient
    auxk = (scale * K.subtract(eHat, e, h)) / variance;
    K.scale(h, (o.auxCoefficient * scale * 2) / variance);
    grads.encoderBackward(enc.aux, grads.decoderBackward(enc.aux, fAux, h, wDec, false), enc.xc);
  }
  losses['auxk'] = auxk;
  losses['total'] = recon + o.auxCoefficient * auxk;
  return { grads, losses, xHat, f, fAux, sse, variance };
}
