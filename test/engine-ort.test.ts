/**
 * The onnxruntime path of the kernel suite: the products the architectures build (Gemm with every
 * transpose combination and a broadcast bias, MatMul through Engine.matmul) against the float64
 * TypeScript oracle, on odd and power-of-two sizes. Tolerance: |ours - ref| <= 1e-5 * (sum_p |a||b| + |c|),
 * the float32 rounding bound of a length-k dot product (with slack).
 */
import { describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/index.js';
import { GraphBuilder } from '../src/engine/onnx.js';
import { referenceGemm } from '../src/engine/reference.js';
import { Rng } from '../src/rng.js';

const engine = new Engine({ threads: 2, kernels: 'reference' });
const SIZES: readonly (readonly [number, number, number])[] = [
  [1, 1, 1],
  [1, 7, 3],
  [7, 1, 5],
  [13, 17, 19],
  [64, 64, 64],
  [129, 33, 257],
  [256, 100, 31],
];

function randn(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal());
}

function expectClose(ours: Float32Array, ref: Float64Array, bound: Float64Array): void {
  expect(ours.length).toBe(ref.length);
  for (let i = 0; i < ref.length; i++) {
    if (!(Math.abs(ours[i]! - ref[i]!) <= 1e-5 * bound[i]! + 1e-30)) {
      throw new Error(`element ${i}: ${ours[i]} vs ${ref[i]} (bound ${1e-5 * bound[i]!})`);
    }
  }
}

describe('onnxruntime products against the TypeScript oracle', () => {
  for (const [m, k, n] of SIZES) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        it(`Gemm ${m}x${k}x${n} transA=${transA} transB=${transB} with bias`, async () => {
          const a = randn(m * k, 1);
          const b = randn(k * n, 2);
          const c = randn(n, 3);
          const key = `test:gemm:${m}:${k}:${n}:${transA}:${transB}`;
          const graph = await engine.graph(key, () => {
            const g = new GraphBuilder();
            const av = g.input('a', transA ? [k, m] : [m, k]);
            const bv = g.input('b', transB ? [n, k] : [k, n]);
            g.output(g.gemm(av, bv, { transA, transB, c: g.input('c', [n]) }), 'y', [m, n]);
            return g.encode();
          });
          const out = await graph.run({
            a: { data: a, dims: transA ? [k, m] : [m, k] },
            b: { data: b, dims: transB ? [n, k] : [k, n] },
            c: { data: c, dims: [n] },
          });
          const abs = (x: Float32Array): Float32Array => x.map(Math.abs);
          expectClose(
            out['y']!.data as Float32Array,
            referenceGemm(a, b, m, k, n, { transA, transB, c }),
            referenceGemm(abs(a), abs(b), m, k, n, { transA, transB, c: abs(c) }),
          );
        });
      }
    }
    it(`Engine.matmul ${m}x${k}x${n}`, async () => {
      const a = randn(m * k, 4);
      const b = randn(k * n, 5);
      const abs = (x: Float32Array): Float32Array => x.map(Math.abs);
      expectClose(await engine.matmul(a, b, m, k, n), referenceGemm(a, b, m, k, n), referenceGemm(abs(a), abs(b), m, k, n));
    });
  }

  it('matmul refuses sizes that do not fit', async () => {
    await expect(engine.matmul(new Float32Array(6), new Float32Array(6), 2, 3, 3)).rejects.toThrow(/do not fit/);
  });
});
