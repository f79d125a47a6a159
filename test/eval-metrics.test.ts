/**
 * Every metric against values worked out by hand on three inputs through a hand-made SAE:
 * d_in 2, d_sae 4, standard architecture, b_dec = 0,
 *   W_enc columns (1, 0), (0, 1), (-1, 0), (0, 0);  b_enc = (0, 0, 0, -1)  (latent 3 never fires)
 *   W_dec rows    (0.5, 0), (0, 1), (-1, 1), (1, 1)
 *   x = (1, 2):  f = (1, 2, 0, 0)  x_hat = (0.5, 2)   ||e||^2 = 0.25
 *   x = (3, 0):  f = (3, 0, 0, 0)  x_hat = (1.5, 0)   ||e||^2 = 2.25
 *   x = (-2, 1): f = (0, 1, 2, 0)  x_hat = (-2, 3)    ||e||^2 = 4
 * mean x = (2/3, 1); sum ||x - mean||^2 = 10/9 + 58/9 + 64/9 = 132/9.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/index.js';
import { encoderDecoderCosine, evaluate, type EvalBatch, firingRateHistogram, histogram, l0Histogram, log10FiringRates } from '../src/eval.js';
import { Sae } from '../src/sae.js';

const engine = new Engine({ threads: 1, kernels: 'reference' });
afterAll(() => engine.release());

const sae = new Sae(
  'standard',
  { dIn: 2, dSae: 4 },
  {},
  {
    W_enc: Float32Array.from([1, 0, -1, 0, /* row 2 */ 0, 1, 0, 0]), // [2, 4]
    b_enc: Float32Array.from([0, 0, 0, -1]),
    W_dec: Float32Array.from([0.5, 0, 0, 1, -1, 1, 1, 1]), // [4, 2]
    b_dec: Float32Array.from([0, 0]),
  },
);
const X = Float32Array.from([1, 2, 3, 0, -2, 1]); // [3, 2]

// eslint-disable-next-line @typescript-eslint/require-await -- an AsyncIterable of data already in memory
async function* batchesOf(x: Float32Array, sizes: readonly number[]): AsyncGenerator<EvalBatch & { start: number }> {
  let start = 0;
  for (const rows of sizes) {
    yield { x: x.slice(start * 2, (start + rows) * 2), rows, start };
    start += rows;
  }
}

describe('metrics on a hand-made SAE', () => {
  it('every metric equals its hand-computed value', async () => {
    const m = (await evaluate(engine, sae, batchesOf(X, [3]))).metrics();
    expect(m.inputs).toBe(3);
    expect(m.mse).toBeCloseTo(6.5 / 3, 6);
    expect(m.fvu).toBeCloseTo(6.5 / (132 / 9), 6);
    expect(m.explained_variance).toBeCloseTo(1 - 6.5 / (132 / 9), 6);
    // per input: 1 - 0.25 / (10/9), 1 - 2.25 / (58/9), 1 - 4 / (64/9)
    expect(m.explained_variance_legacy).toBeCloseTo((1 - 0.225 + 1 - 2.25 / (58 / 9) + 1 - 0.5625) / 3, 6);
    expect(m.l0).toBeCloseTo(5 / 3, 6);
    expect(m.l1).toBeCloseTo(3, 6);
    expect(m.dead_fraction).toBe(0.25);
    expect(m.dense_fraction_1pct).toBe(0.75);
    expect(m.dense_fraction_10pct).toBe(0.75);
    // ||x_hat|| / ||x||: sqrt(4.25 / 5), 1.5 / 3, sqrt(13 / 5)
    expect(m.l2_ratio).toBeCloseTo((Math.sqrt(4.25 / 5) + 0.5 + Math.sqrt(13 / 5)) / 3, 6);
    // sum ||x_hat||^2 = 4.25 + 2.25 + 13; sum <x, x_hat> = 4.5 + 4.5 + 7
    expect(m.relative_reconstruction_bias).toBeCloseTo(19.5 / 16, 6);
  });

  it('batch-level metrics do not depend on the batching; the legacy one is centred per batch', async () => {
    const acc = await evaluate(engine, sae, batchesOf(X, [2, 1]));
    const m = acc.metrics();
    expect(m.fvu).toBeCloseTo(6.5 / (132 / 9), 6);
    expect(m.mse).toBeCloseTo(6.5 / 3, 6);
    // batch {x0, x1} has mean (2, 1): 1 - 0.25 / 2 and 1 - 2.25 / 2; the lone x2 equals its batch mean and is left out
    expect(m.explained_variance_legacy).toBeCloseTo((0.875 - 0.125) / 2, 6);
  });

  it('firing counts, rates and histograms', async () => {
    const acc = await evaluate(engine, sae, batchesOf(X, [1, 2]));
    expect(Array.from(acc.fires)).toEqual([2, 2, 1, 0]);
    expect(Array.from(acc.log10FiringRates())).toEqual(Array.from(log10FiringRates([2, 2, 1, 0], 3)));
    expect(acc.log10FiringRates()[3]).toBeCloseTo(-10, 5);
    // one input fires 1 latent, two fire 2
    expect(acc.l0Histogram()).toEqual({ edges: [0, 1, 2, 3], counts: [0, 1, 2] });
    // log10(1/3) = -0.477 and log10(2/3) = -0.176, in quarter decades
    expect(acc.firingRateHistogram(4)).toEqual({ edges: [-0.5, -0.25, 0], counts: [1, 2], dead: 1 });
    // by default about 40 bins over the range seen, widened to half a decade
    const h = acc.firingRateHistogram();
    expect(h.counts).toHaveLength(40);
    expect(h.edges[40]! - h.edges[0]!).toBeCloseTo(0.5, 9);
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(3);
  });

  it('hands each batch its latents (f where the latent fires, else 0)', async () => {
    const seen: number[][] = [];
    await evaluate(engine, sae, batchesOf(X, [2, 1]), (f, b) => seen.push([b.start, ...f]));
    expect(seen).toEqual([
      [0, 1, 2, 0, 0, 3, 0, 0, 0],
      [2, 0, 1, 2, 0],
    ]);
  });

  it('encoder-decoder cosine per latent', async () => {
    const cos = await encoderDecoderCosine(engine, sae);
    expect(Array.from(cos!).map((c) => Number(c.toFixed(6)))).toEqual([1, 1, Number(Math.SQRT1_2.toFixed(6)), 0]);
  });

  it('counts firing by the architecture mask, not f > 0 (kl: a > 0.5)', async () => {
    const kl = new Sae(
      'kl',
      { dIn: 2, dSae: 2 },
      { rho: 0.05, weightDecay: 0, decoderActivation: 'identity' },
      {
        W_enc: new Float32Array(4),
        b_enc: Float32Array.from([2, -2]),
        W_dec: new Float32Array(4),
        b_dec: new Float32Array(2),
      },
    );
    let latents: Float32Array | undefined;
    const m = (await evaluate(engine, kl, batchesOf(X, [3]), (f) => (latents = f))).metrics();
    expect(m.l0).toBe(1);
    expect(m.l1).toBeCloseTo(1, 6); // sigmoid(2) + sigmoid(-2)
    expect(m.dead_fraction).toBe(0.5);
    expect(latents![0]).toBeCloseTo(1 / (1 + Math.exp(-2)), 6);
    expect(latents![1]).toBe(0);
  });
});

describe('histograms', () => {
  it('equal bins with the ends clamped', () => {
    expect(histogram([-5, 0, 0.5, 1, 1.9, 2, 99, NaN], 0, 2, 2)).toEqual({ edges: [0, 1, 2], counts: [3, 4] });
  });

  it('firing rates over the range seen', () => {
    expect(firingRateHistogram([0, 10, 100, 1000], 1000, 4).edges[0]).toBe(-2);
    expect(firingRateHistogram([0, 1, 10, 100, 1000], 1000).counts).toHaveLength(39); // 13 per decade over 3
    const h = firingRateHistogram([0, 1, 10, 100, 1000], 1000, 4);
    expect(h.edges[0]).toBe(-3);
    expect(h.counts).toHaveLength(12);
    expect(h.counts[0]).toBe(1);
    expect(h.counts[4]).toBe(1);
    expect(h.counts[8]).toBe(1);
    expect(h.counts[11]).toBe(1); // rate 1 falls in the last bin
    expect(h.dead).toBe(1);
  });

  it('L0 in integer bins, wider ones when L0 is large', () => {
    const counts = new Float64Array(201);
    counts[0] = 1;
    counts[150] = 2;
    counts[199] = 3;
    const h = l0Histogram(counts, 50);
    expect(h.edges[1]).toBe(4);
    expect(h.counts).toHaveLength(50);
    expect(h.counts[0]).toBe(1);
    expect(h.counts[37]).toBe(2);
    expect(h.counts[49]).toBe(3);
  });
});
