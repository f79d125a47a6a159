/**
 * The sparse decode, losses and backward pass of the TopK family (topk, batchtopk, matryoshka). The
 * encoder product and the selection run on onnxruntime (sparse-encoder.ts), which returns only the
 * selected entries (sparse-code.ts); everything here touches those entries alone, on the kernels,
 * O(nnz * dIn):
 *   x_hat = sum_e f_e W_dec[i_e] + b_dec                  sparseDecode
 *   dW_dec[i] = sum_{e: i_e = i} f_e g[row(e)]            sparseScatter 'rows'
 *   df_e = g[row(e)] . W_dec[i_e];  dpre_e = df_e [pre_e > 0]   sparseGatherDot
 *   dW_enc[:, i] = sum_{e: i_e = i} dpre_e xc[row(e)]      sparseScatter 'columns'
 *   db_enc[i] = sum_{e: i_e = i} dpre_e;  db_dec = sum_r g[r] - W_enc db_enc
 * where g = d loss / d x_hat and xc = x - b_dec (the encoder's input).
 */
import type { Engine } from '../engine/index.js';
import type { Kernels } from '../engine/kernels.js';
import { paramsOf } from './common.js';
import { addRowVector, entriesIn, reluOf, type Selection } from './sparse-code.js';
import type { Dims, Params } from './types.js';
import { Workspace } from './workspace.js';

/** Gradients of the four SAE parameters, accumulated path by path (main, auxiliary, prefixes). */
export class SparseGrads {
  readonly W_dec: Float32Array; // [dSae, dIn]
  readonly W_enc: Float32Array; // [dIn, dSae]
  readonly b_enc: Float32Array; // [dSae]
  readonly b_dec: Float32Array; // [dIn]
  private first = { dec: true, enc: true };

  /** With a workspace, the gradients live in its buffers (valid until the next step). */
  constructor(
    private readonly kernels: Kernels,
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
   * A decode path x_hat = sum f_e W_dec[i_e] (+ b_dec when `bias`) with upstream gradient dxHat [rows, dIn]:
   * adds its share of dW_dec (and db_dec) and returns df [nnz].
   */
  decoderBackward(s: Selection, f: Float32Array, dxHat: Float32Array, wDec: Float32Array, bias: boolean): Float32Array {
    const { dIn, dSae } = this.d;
    this.kernels.sparseScatter(s.code, f, dxHat, dIn, dSae, this.W_dec, 'rows', !this.first.dec);
    this.first.dec = false;
    if (bias) this.kernels.columnSums(dxHat, s.code.rows, dIn, this.b_dec, true);
    const df = new Float32Array(f.length);
    this.kernels.sparseGatherDot(s.code, wDec, dxHat, dIn, df);
    return df;
  }

  /** The encoder path of df: dpre = df [pre > 0] into dW_enc and db_enc (through xc [rows, dIn]). */
  encoderBackward(s: Selection, df: Float32Array, xc: Float32Array): void {
    const { dIn, dSae } = this.d;
    const dpre = df.map((v, e) => (s.pre[e]! > 0 ? v : 0));
    this.kernels.sparseScatter(s.code, dpre, xc, dIn, dSae, this.W_enc, 'columns', !this.first.enc);
    this.kernels.sparseScatterSum(s.code, dpre, dSae, this.b_enc, !this.first.enc);
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

/**
 * The decode, losses and backward of a TopK-family step, given the encoder's selections:
 *   x_hat_l = b_dec + sum over entries with latent < m_l of f_e W_dec[i_e]    (one prefix: plain decode)
 *   loss_l = sum (x_hat_l - x)^2 / N, N = T (fvu) or B (mse);  total = sum_l loss_l + aux_coefficient * auxk
 *   g_l = 2 (x_hat_l - x) / N; an entry in prefix group j gets the upstream sum_{l >= j} g_l
 *   AuxK as in topk.ts, on the full reconstruction's residual.
 */
export function sparsePass(
  engine: Engine,
  d: Dims,
  params: Params,
  x: Float32Array,
  rows: number,
  enc: { main: Selection; xc: Float32Array; aux?: Selection | undefined; auxScale?: number },
  o: SparsePassOptions,
): SparsePass {
  const kernels = engine.kernels;
  const { dIn, dSae } = d;
  const { W_dec: wDec, b_dec } = paramsOf(params, 'W_dec', 'b_dec');
  const prefixes = o.prefixes ?? [dSae];
  const variance = kernels.centeredSumSquares(x, rows, dIn);
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
    kernels.sparseDecode(grp.sel.code, fj, wDec, dIn, part);
    if (part !== xHat) for (let i = 0; i < xHat.length; i++) xHat[i]! += part[i]!;
    if (j === 0) addRowVector(xHat, rows, b_dec);
    sse = kernels.subtract(xHat, x, r);
    const loss = sse / norm;
    recon += loss;
    if (j < prefixes.length - 1) losses[`${o.loss}_${prefixes[j]}`] = loss;
    const dxHat = ws.floats(`g${j}`, n);
    dxHat.set(r);
    kernels.scale(dxHat, 2 / norm);
    upstream.push(dxHat);
  });
  losses[o.loss] = sse / norm;
  // suffix sums: group j's entries feed every prefix l >= j
  for (let j = upstream.length - 2; j >= 0; j--) {
    const [own, next] = [upstream[j]!, upstream[j + 1]!];
    for (let i = 0; i < own.length; i++) own[i]! += next[i]!;
  }
  const grads = new SparseGrads(kernels, d, ws);
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
    kernels.sparseDecode(enc.aux.code, fAux, wDec, dIn, eHat);
    const e = ws.floats('e', n); // e = x - x_hat = -r
    kernels.subtract(x, xHat, e);
    const h = ws.floats('h', n); // e_hat - e, then its gradient
    auxk = (scale * kernels.subtract(eHat, e, h)) / variance;
    kernels.scale(h, (o.auxCoefficient * scale * 2) / variance);
    grads.encoderBackward(enc.aux, grads.decoderBackward(enc.aux, fAux, h, wDec, false), enc.xc);
  }
  losses['auxk'] = auxk;
  losses['total'] = recon + o.auxCoefficient * auxk;
  return { grads, losses, xHat, f, fAux, sse, variance };
}
