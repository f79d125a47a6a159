/**
 * The engine: onnxruntime for the dense products, kernels (native addon or TypeScript reference)
 * for the rest. The choice of kernels is made here and nowhere else.
 */
import { availableParallelism } from 'node:os';
import ortNode from 'onnxruntime-node';
import { UserError } from '../errors.js';
import type { Kernels, KernelsName } from './kernels.js';
import { loadNativeKernels } from './native.js';
import { GraphBuilder } from './onnx.js';
import { type CompileOptions, compileGraph, type Graph, type OrtApi } from './ort.js';
import { referenceKernels } from './reference.js';

export type KernelsChoice = KernelsName | 'auto';
export const KERNELS_CHOICES: readonly KernelsChoice[] = ['auto', 'native', 'reference'];

export interface EngineOptions {
  /** Threads for onnxruntime and the native kernels; default: every core. */
  readonly threads?: number;
  /** 'auto' (default): native if the addon loads, else the reference with one warning. */
  readonly kernels?: KernelsChoice;
  /** onnxruntime's JS API; default onnxruntime-node. */
  readonly ort?: OrtApi;
  /** Where the fallback warning goes; default console.warn. */
  readonly warn?: (message: string) => void;
}

/** Checks a user-given kernels choice (a flag or config value). */
export function kernelsChoice(value: unknown): KernelsChoice {
  if (typeof value === 'string' && (KERNELS_CHOICES as readonly string[]).includes(value)) return value as KernelsChoice;
  throw new UserError(`unknown kernels '${String(value)}': choose one of ${KERNELS_CHOICES.join(', ')}`);
}

let warned = false;

export function selectKernels(choice: KernelsChoice, threads: number, warn: (m: string) => void): Kernels {
  kernelsChoice(choice);
  if (choice === 'reference') return referenceKernels;
  const native = loadNativeKernels(threads);
  if (!(native instanceof Error)) return native;
  if (choice === 'native') throw new UserError(`the native kernels could not be loaded: ${native.message}`);
  if (!warned) {
    warned = true;
    warn(
      `sparse-autoencoder: the native addon is not built (${native.message}); running on the TypeScript ` +
        `reference kernels, which are slower. To fix it: install g++, make and python3; if npm blocked the ` +
        `install script, run \`npm install-scripts approve sparse-autoencoder\`; then \`npm rebuild sparse-autoencoder\` ` +
        `(in a clone: \`npm run build:native\`).`,
    );
  }
  return referenceKernels;
}

export class Engine {
  readonly threads: number;
  readonly kernels: Kernels;
  private readonly ort: OrtApi;
  private readonly cache = new Map<string, Promise<Graph>>();

  constructor(options: EngineOptions = {}) {
    this.threads = options.threads ?? availableParallelism();
    if (!Number.isInteger(this.threads) || this.threads < 1) throw new UserError(`threads must be a positive integer, got ${this.threads}`);
    this.ort = options.ort ?? ortNode;
    this.kernels = selectKernels(options.kernels ?? 'auto', this.threads, options.warn ?? ((m) => console.warn(m)));
  }

  /** Compiles the model built by `build` once per key. */
  graph(key: string, build: () => Uint8Array, options: CompileOptions = {}): Promise<Graph> {
    let g = this.cache.get(key);
    if (!g) {
      g = compileGraph(this.ort, build(), this.threads, options);
      this.cache.set(key, g);
    }
    return g;
  }

  /** a: [m, k] @ b: [k, n] -> [m, n] on onnxruntime (never a TypeScript loop). */
  async matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Promise<Float32Array> {
    if (a.length !== m * k || b.length !== k * n) throw new Error(`matmul: sizes ${a.length}, ${b.length} do not fit [${m}, ${k}] @ [${k}, ${n}]`);
    const g = await this.graph('matmul', () => {
      const gb = new GraphBuilder();
      gb.output(gb.matmul(gb.input('a', ['m', 'k']), gb.input('b', ['k', 'n'])), 'y', ['m', 'n']);
      return gb.encode();
    });
    const out = await g.run({ a: { data: a, dims: [m, k] }, b: { data: b, dims: [k, n] } });
    return out['y']!.data as Float32Array;
  }

  async release(): Promise<void> {
    const graphs = await Promise.all(this.cache.values());
    this.cache.clear();
    await Promise.all(graphs.map((g) => g.release()));
  }
}
