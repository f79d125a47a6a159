/**
 * Kernel timings, native against the TypeScript reference, at the sizes of a 768 -> 16384 SAE:
 * one Adam step over a weight matrix (768 x 16384 = 12.6M floats: W_enc, or W_dec transposed),
 * rowNorms/normalizeRows over W_dec: [16384, 768], and the kernels of one TopK training step
 * (batch 4096, k = 32: nnz = 131,072): decode, residual, FVU denominator, b_dec's gradient, the
 * gathered dots of the latents' gradient, the scatters into W_dec, W_enc ([768, 16384]) and b_enc.
 * Median of a few runs, one line per kernel, then the sum of the TopK step's kernels.
 *
 *   npx tsx bench/kernels.ts
 */
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import type { AdamHyper, CsrRows, Kernels } from '../src/engine/kernels.js';
import { loadNativeKernels } from '../src/engine/native.js';
import { referenceKernels } from '../src/engine/reference.js';
import { median, randomArray } from './util.js';

const D_IN = 768;
const D_SAE = 16384;
const BATCH = 4096;
const K = 32;
const HYPER: AdamHyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/** One kernel call on prepared buffers. */
interface Case {
  readonly name: string;
  readonly runs: { native: number; reference: number };
  /** Part of the TopK training step (summed at the end). */
  readonly topkStep?: boolean;
  run(k: Kernels, step: number): void;
}

/** A TopK code: rows of k distinct latents drawn uniformly (seeded), in CSR form. */
function topkCode(rows: number, k: number, dSae: number, seed: number): CsrRows {
  const rowPtr = new Int32Array(rows + 1);
  const idx = new Int32Array(rows * k);
  let s = seed >>> 0;
  const seen = new Set<number>();
  for (let r = 0; r < rows; r++) {
    seen.clear();
    while (seen.size < k) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const i = Math.floor((s / 2 ** 32) * dSae);
      if (!seen.has(i)) idx[r * k + seen.size] = i;
      seen.add(i);
    }
    rowPtr[r + 1] = (r + 1) * k;
  }
  return { rowPtr, idx, rows };
}

/** The kernels of one TopK step, on its buffers. */
function topkCases(wDec: Float32Array): Case[] {
  const code = topkCode(BATCH, K, D_SAE, 7);
  const nnz = BATCH * K;
  const x = randomArray(BATCH * D_IN, 1, 4); // [B, dIn]
  const val = randomArray(nnz, 1, 5); // [nnz]
  const recon = new Float32Array(BATCH * D_IN);
  const residual = new Float32Array(BATCH * D_IN);
  const dots = new Float32Array(nnz);
  const dWdec = new Float32Array(D_SAE * D_IN); // [dSae, dIn]
  const dWenc = new Float32Array(D_IN * D_SAE); // [dIn, dSae]
  const dbEnc = new Float32Array(D_SAE);
  const dbDec = new Float32Array(D_IN);
  const runs = { native: 9, reference: 3 };
  const c = (name: string, run: (k: Kernels) => void): Case => ({ name, runs, topkStep: true, run });
  return [
    c(`sparseDecode B${BATCH} k${K}`, (k) => k.sparseDecode(code, val, wDec, D_IN, recon)),
    c(`subtract ${BATCH}x${D_IN}`, (k) => k.subtract(recon, x, residual)),
    c(`centeredSumSquares ${BATCH}x${D_IN}`, (k) => k.centeredSumSquares(x, BATCH, D_IN)),
    c(`columnSums ${BATCH}x${D_IN}`, (k) => k.columnSums(residual, BATCH, D_IN, dbDec, false)),
    c(`sparseGatherDot B${BATCH} k${K}`, (k) => k.sparseGatherDot(code, wDec, residual, D_IN, dots)),
    c(`sparseScatter rows`, (k) => k.sparseScatter(code, val, residual, D_IN, D_SAE, dWdec, 'rows', false)),
    c(`sparseScatter columns`, (k) => k.sparseScatter(code, dots, x, D_IN, D_SAE, dWenc, 'columns', false)),
    c(`sparseScatterSum`, (k) => k.sparseScatterSum(code, dots, D_SAE, dbEnc, false)),
  ];
}

function cases(): Case[] {
  const n = D_IN * D_SAE;
  const param = randomArray(n, 0.1, 1); // [768, 16384]
  const grad = randomArray(n, 1, 2);
  const m = new Float32Array(n);
  const v = new Float32Array(n);
  const wDec = randomArray(n, 0.1, 3); // [16384, 768]
  const norms = new Float32Array(D_SAE);
  return [
    {
      name: `adam ${D_IN}x${D_SAE}`,
      runs: { native: 9, reference: 3 },
      run: (k, step) => k.adam(param, grad, m, v, HYPER, step),
    },
    {
      name: `rowNorms ${D_SAE}x${D_IN}`,
      runs: { native: 9, reference: 3 },
      run: (k) => k.rowNorms(wDec, D_SAE, D_IN, norms),
    },
    {
      name: `normalizeRows ${D_SAE}x${D_IN}`,
      runs: { native: 9, reference: 3 },
      run: (k) => k.normalizeRows(wDec, D_SAE, D_IN, 1),
    },
    ...topkCases(wDec),
  ];
}

/** Median wall time of `runs` calls (after one warm-up call), in ms. */
function time(c: Case, k: Kernels, runs: number): number {
  c.run(k, 1);
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    c.run(k, i + 2);
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

/** Times every case; keys: '<case> native' / '<case> reference' (ms) and '<case> speedup'. */
export async function benchKernels(): Promise<Record<string, number>> {
  const threads = availableParallelism();
  const native = loadNativeKernels(threads);
  if (native instanceof Error) console.log(`kernels: native addon unavailable (${native.message}); reference only`);
  const out: Record<string, number> = {};
  const step = { native: 0, reference: 0 };
  const line = (name: string, ref: number, nat?: number): void =>
    console.log(
      nat === undefined
        ? `${name.padEnd(32)} reference ${ref.toFixed(1).padStart(7)} ms`
        : `${name.padEnd(32)} native (${threads} threads) ${nat.toFixed(1).padStart(6)} ms` +
            `   reference ${ref.toFixed(1).padStart(7)} ms   x${(ref / nat).toFixed(1)}`,
    );
  for (const c of cases()) {
    const ref = time(c, referenceKernels, c.runs.reference);
    out[`${c.name} reference`] = ref;
    if (c.topkStep) step.reference += ref;
    if (native instanceof Error) {
      line(c.name, ref);
      continue;
    }
    const nat = time(c, native, c.runs.native);
    out[`${c.name} native`] = nat;
    out[`${c.name} speedup`] = ref / nat;
    if (c.topkStep) step.native += nat;
    line(c.name, ref, nat);
    await new Promise((resolve) => setImmediate(resolve));
  }
  const name = `TopK step kernels (sum)`;
  out[`${name} reference`] = step.reference;
  if (native instanceof Error) {
    line(name, step.reference);
  } else {
    out[`${name} native`] = step.native;
    out[`${name} speedup`] = step.reference / step.native;
    line(name, step.reference, step.native);
  }
  return out;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) await benchKernels();
