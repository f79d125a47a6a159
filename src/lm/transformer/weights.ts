/**
 * The weights of a hooked transformer under the components' names (one copy in memory; every
 * graph is fed views of the same arrays):
 *   embed.W_E [vocab, d]   pos_embed.W_pos [positions, d]
 *   blocks.L.ln1.w/.b, ln1_post.w, ln2.w/.b, ln2_post.w [d]
 *   blocks.L.attn.W_Q [nH dH, d], W_K/W_V [nKV dH, d], W_O [d, nH dH], b_Q/b_K/b_V/b_O, q_norm.w/k_norm.w [dH]
 *   blocks.L.mlp.W_gate/W_in [d_mlp, d], W_out [d, d_mlp], b_gate/b_in [d_mlp], b_out [d]
 *   ln_final.w/.b [d]   unembed.W_U [vocab, d] (the same array as W_E when tied), unembed.b_U [vocab]
 * Linear weights are [out, in], as Hugging Face stores them.
 */
import type { HostTensor } from '../../engine/ort.js';
import { fileError } from '../../errors.js';
import type { TensorSource } from './hf-folder.js';

/** What to load: the first `layers` blocks, and the final norm and unembedding when `head`. */
export interface LoadScope {
  readonly layers: number;
  readonly head: boolean;
}

export class Weights {
  private readonly tensors = new Map<string, HostTensor<Float32Array>>();

  constructor(readonly scope: LoadScope) {}

  set(name: string, data: Float32Array, dims: readonly number[]): void {
    const n = dims.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new Error(`weight '${name}': ${data.length} values for shape [${dims.join(', ')}]`);
    this.tensors.set(name, { data, dims });
  }

  get(name: string): HostTensor<Float32Array> | undefined {
    return this.tensors.get(name);
  }

  dims(name: string): readonly number[] | undefined {
    return this.tensors.get(name)?.dims;
  }

  /** All weights as graph feeds (views, no copy). */
  feeds(): Record<string, HostTensor<Float32Array>> {
    return Object.fromEntries(this.tensors);
  }

  /** Bytes held, counting a shared array once. */
  bytes(): number {
    const seen = new Set<Float32Array>();
    let n = 0;
    for (const t of this.tensors.values()) {
      if (seen.has(t.data)) continue;
      seen.add(t.data);
      n += t.data.byteLength;
    }
    return n;
  }
}

/** Reads `name` from the source after checking its shape. */
export async function readShaped(src: TensorSource, name: string, shape: readonly number[]): Promise<Float32Array> {
  const got = src.shape(name);
  if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
    throw fileError(src.file, `tensor '${name}' has shape [${got.join(', ')}], expected [${shape.join(', ')}] from config.json`);
  }
  return src.read(name);
}

/** A loader's step: reads tensor `from` (after the loader's prefix), checked to be `shape`, into weight `to`. */
export type Put = (to: string, from: string, shape: readonly number[]) => Promise<void>;

/** The Put of a loader that reads `src` (its tensor names after `prefix`) into `w`. */
export function putInto(w: Weights, src: TensorSource, prefix = ''): Put {
  return async (to, from, shape) => w.set(to, await readShaped(src, `${prefix}${from}`, shape), shape);
}

/** A LayerNorm: Hugging Face's `from`.weight and `from`.bias [d] as `to`.w and `to`.b. */
export async function putLayerNorm(put: Put, to: string, from: string, d: number): Promise<void> {
  await put(`${to}.w`, `${from}.weight`, [d]);
  await put(`${to}.b`, `${from}.bias`, [d]);
}

/** Copies rows [start, start + count) of a row-major matrix with `cols` columns. */
export function rows(m: Float32Array, cols: number, start: number, count: number): Float32Array {
  return m.slice(start * cols, (start + count) * cols);
}

/** a: [r, c] -> a^T: [c, r] */
export function transpose(a: Float32Array, r: number, c: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = a[i * c + j]!;
  return out;
}
