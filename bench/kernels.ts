/**
 * Kernel timings, native against the TypeScript reference, at the sizes of a 768 -> 16384 SAE:
 * one Adam step over a weight matrix (768 x 16384 = 12.6M floats: W_enc, or W_dec transposed) and
 * rowNorms/normalizeRows over W_dec: [16384, 768]. Median of a few runs, one line per kernel.
 *
 *   npx tsx bench/kernels.ts
 */
import { availableParallelism } from 'node:os';
import { pathToFileURL } from 'node:url';
import type { AdamHyper, Kernels } from '../src/engine/kernels.js';
import { loadNativeKernels } from '../src/engine/native.js';
import { referenceKernels } from '../src/engine/reference.js';
import { median, randomArray } from './util.js';

const D_IN = 768;
const D_SAE = 16384;
const HYPER: AdamHyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/** One kernel call on prepared buffers. */
interface Case {
  readonly name: string;
  readonly runs: { native: number; reference: number };
  run(k: Kernels, step: number): void;
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
  for (const c of cases()) {
    const ref = time(c, referenceKernels, c.runs.reference);
    out[`${c.name} reference`] = ref;
    if (native instanceof Error) {
      console.log(`${c.name.padEnd(24)} reference ${ref.toFixed(1).padStart(7)} ms`);
      continue;
    }
    const nat = time(c, native, c.runs.native);
    out[`${c.name} native`] = nat;
    out[`${c.name} speedup`] = ref / nat;
    console.log(
      `${c.name.padEnd(24)} native (${threads} threads) ${nat.toFixed(1).padStart(6)} ms` +
        `   reference ${ref.toFixed(1).padStart(7)} ms   x${(ref / nat).toFixed(1)}`,
    );
    await new Promise((resolve) => setImmediate(resolve));
  }
  return out;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) await benchKernels();
