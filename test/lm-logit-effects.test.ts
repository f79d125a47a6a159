/** The unembedding of ONNX causal LMs and the top logit effects W_dec @ W_U of features. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { featureLogits, topLogitEffects } from '../src/dashboard/logit-effects.js';
import { Engine } from '../src/engine/index.js';
import { GraphBuilder } from '../src/engine/onnx.js';
import { OnnxLm } from '../src/lm/onnx-lm.js';
import { OnnxModel } from '../src/lm/onnx-proto.js';
import { findUnembedding, type Unembedding, type UnembeddingLookup } from '../src/lm/unembedding.js';
import { Rng } from '../src/rng.js';
import { TINY, writeTinyGpt2 } from './helpers/tiny-gpt2.js';

let dir = '';
let lm: OnnxLm;
const engine = new Engine({ threads: 1 });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sae-logits-'));
  await writeTinyGpt2(join(dir, 'tiny-gpt2'));
  lm = await OnnxLm.load(join(dir, 'tiny-gpt2'), engine);
});
afterAll(async () => {
  await engine.release();
  await rm(dir, { recursive: true, force: true });
});

function found(r: UnembeddingLookup): Unembedding {
  if (!r.found) throw new Error(r.reason);
  return r.unembedding;
}

/** The reason a lookup found nothing; throws when it found an unembedding. */
function notFound(r: UnembeddingLookup): string {
  if (r.found) throw new Error(`found ${r.unembedding.tensor}`);
  return r.reason;
}

/** W_U[j, v] in float64, whichever way it is stored. */
function wU(u: Unembedding, j: number, v: number): number {
  return u.transposed ? u.data[v * u.dModel + j]! : u.data[j * u.vocab + v]!;
}

/** A graph x: [n, d] -> logits through `head` (tests of the walk back to the weight). */
function headModel(head: (b: GraphBuilder, x: ReturnType<GraphBuilder['input']>) => ReturnType<GraphBuilder['input']>): Uint8Array {
  const b = new GraphBuilder();
  b.output(head(b, b.input('x', ['n', 4])), 'logits', ['n', 6]);
  return b.encode();
}

const W46 = Float32Array.from({ length: 24 }, (_, i) => i - 11.5); // [4, 6] or [6, 4]

describe('unembedding', () => {
  it("finds the tiny model's tied embedding behind a Transpose: logits = ln_f(h) @ W_U", async () => {
    const u = found(lm.unembedding());
    expect(u).toMatchObject({ dModel: TINY.d, vocab: lm.vocab.length, transposed: true });
    const ctx = Int32Array.from([lm.bosId!, ...lm.tokenize('Call me Ishmael.')]);
    const f = await lm.forward([ctx], '/transformer/ln_f/LayerNormalization_output_0');
    for (let p = 0; p < ctx.length; p++) {
      for (const v of [0, 7, 100, u.vocab - 1]) {
        let s = 0;
        for (let j = 0; j < u.dModel; j++) s += f.hook[p * u.dModel + j]! * wU(u, j, v);
        expect(f.logits[p * f.vocabSize + v]).toBeCloseTo(s, 4);
      }
    }
  });

  it('reads a MatMul weight [d, V] behind a bias, a Gemm weight with transB [V, d] behind a Reshape, and says why when there is none', () => {
    const matmul = headModel((b, x) => b.add(b.matmul(x, b.constant(W46, [4, 6])), b.constant(new Float32Array(6), [6])));
    const { tensor, ...fromMatmul } = found(findUnembedding(OnnxModel.fromBytes(matmul, 'm')));
    expect(typeof tensor).toBe('string');
    expect(fromMatmul).toEqual({ dModel: 4, vocab: 6, transposed: false, data: W46 });
    const gemm = headModel((b, x) => b.op('Reshape', [b.gemm(x, b.constant(W46, [6, 4]), { transB: true }), b.constant(BigInt64Array.of(-1n, 6n), [2])]));
    expect(found(findUnembedding(OnnxModel.fromBytes(gemm, 'g')))).toMatchObject({ dModel: 4, vocab: 6, transposed: true, data: W46 });
    const computed = headModel((b, x) => b.matmul(x, b.op('Mul', [b.constant(W46, [4, 6]), b.scalar(2)])));
    expect(notFound(findUnembedding(OnnxModel.fromBytes(computed, 'c')))).toMatch(/made by a Mul node, not a stored initializer/);
    const softmax = headModel((b, x) => b.op('Softmax', [x], { axis: 1 }));
    expect(notFound(findUnembedding(OnnxModel.fromBytes(softmax, 's')))).toMatch(/come from a Softmax node/);
  });
});

describe('top logit effects', () => {
  it('equal a float64 W_dec @ W_U for a few latents, across chunks, whichever way W_U is stored', async () => {
    const tied = found(lm.unembedding());
    const plain: Unembedding = {
      ...tied,
      transposed: false,
      data: Float32Array.from({ length: tied.data.length }, (_, i) => wU(tied, Math.floor(i / tied.vocab), i % tied.vocab)),
    };
    const rng = new Rng(3);
    const dSae = 40;
    const wDec = Float32Array.from({ length: dSae * TINY.d }, () => rng.normal()); // [dSae, d]
    const latents = [0, 7, 13, 39, 21];
    for (const u of [tied, plain]) {
      const e = await topLogitEffects(engine, wDec, u, latents, { chunk: 2 });
      expect(e.k).toBe(10);
      latents.forEach((i, row) => {
        const exact = Array.from({ length: u.vocab }, (_, v) => {
          let s = 0;
          for (let j = 0; j < u.dModel; j++) s += wDec[i * u.dModel + j]! * wU(u, j, v);
          return { v, s };
        });
        const pos = [...exact].sort((a, b) => b.s - a.s).slice(0, 10);
        const neg = [...exact].sort((a, b) => a.s - b.s).slice(0, 10);
        expect(Array.from(e.posIds.subarray(row * 10, row * 10 + 10))).toEqual(pos.map((x) => x.v));
        expect(Array.from(e.negIds.subarray(row * 10, row * 10 + 10))).toEqual(neg.map((x) => x.v));
        pos.forEach((x, t) => expect(e.posValues[row * 10 + t]).toBeCloseTo(x.s, 4));
        neg.forEach((x, t) => expect(e.negValues[row * 10 + t]).toBeCloseTo(x.s, 4));
        const shown = featureLogits(e, row, lm.vocab);
        expect(shown.pos[0]).toEqual({ token: lm.vocab[pos[0]!.v], value: e.posValues[row * 10] });
      });
    }
  });

  it('names ids past the vocabulary by number', () => {
    const e = { latents: [5], k: 1, posIds: Int32Array.of(9), posValues: Float32Array.of(2), negIds: Int32Array.of(0), negValues: Float32Array.of(-1) };
    expect(featureLogits(e, 0, ['a', 'b'])).toEqual({ pos: [{ token: '<9>', value: 2 }], neg: [{ token: 'a', value: -1 }] });
  });
});
