/** The streaming per-latent statistics against plain computations over all the inputs at once. */
import { describe, expect, it } from 'vitest';
import { FeatureCollector } from '../src/dashboard/collect.js';
import { Rng } from '../src/rng.js';

/** [rows, dSae] sparse random latents: each fires with probability p, with an exponential activation. */
function randomLatents(rows: number, dSae: number, p: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: rows * dSae }, () => (rng.uniform() < p ? -Math.log(1 - rng.uniform()) * 3 : 0));
}

/** Feeds x [rows, dSae] in batches of `batch`, rows numbered from 0. */
function collect(x: Float32Array, rows: number, dSae: number, batch: number, c: FeatureCollector): FeatureCollector {
  for (let s = 0; s < rows; s += batch) {
    const n = Math.min(batch, rows - s);
    c.add(
      x.subarray(s * dSae, (s + n) * dSae),
      n,
      Float64Array.from({ length: n }, (_, r) => s + r),
    );
  }
  return c;
}

describe('FeatureCollector', () => {
  const rows = 3000;
  const dSae = 7;
  const x = randomLatents(rows, dSae, 0.2, 1);
  const column = (i: number): { row: number; value: number }[] => {
    const out = [];
    for (let r = 0; r < rows; r++) if (x[r * dSae + i]! > 0) out.push({ row: r, value: x[r * dSae + i]! });
    return out;
  };

  it('keeps exactly the top k per latent, whatever the batching', () => {
    for (const batch of [1, 64, 3000]) {
      const c = collect(x, rows, dSae, batch, new FeatureCollector(dSae, { topK: 10 }));
      for (let i = 0; i < dSae; i++) {
        const expected = column(i)
          .sort((a, b) => b.value - a.value || a.row - b.row)
          .slice(0, 10);
        const s = c.stats(i);
        expect(s.top).toEqual(expected);
        expect(s.maxActivation).toBe(expected[0]!.value);
      }
    }
  });

  it('counts, density and mean activation', () => {
    const c = collect(x, rows, dSae, 100, new FeatureCollector(dSae));
    for (let i = 0; i < dSae; i++) {
      const col = column(i);
      const s = c.stats(i);
      expect(s.fires).toBe(col.length);
      expect(s.density).toBe(col.length / rows);
      expect(s.meanActivation).toBeCloseTo(col.reduce((a, e) => a + e.value, 0) / col.length, 5);
    }
  });

  it('the merged histogram equals binning every activation at the final width', () => {
    const c = collect(x, rows, dSae, 37, new FeatureCollector(dSae, { bins: 16 }));
    for (let i = 0; i < dSae; i++) {
      const h = c.stats(i).histogram;
      const w = h.edges[1]! - h.edges[0]!;
      expect(Math.log2(w) % 1).toBe(0); // a power of two
      const max = c.stats(i).maxActivation;
      expect(max).toBeLessThan(h.edges[h.edges.length - 1]!);
      expect(max).toBeGreaterThanOrEqual(8 * w); // the upper half of the 16 bins
      const counts = new Array<number>(h.counts.length).fill(0);
      for (const e of column(i)) counts[Math.floor(e.value / w) - Math.round(h.edges[0]! / w)]!++;
      expect(h.counts).toEqual(counts);
      expect(h.counts[0]).toBeGreaterThan(0);
      expect(h.counts[h.counts.length - 1]).toBeGreaterThan(0);
    }
  });

  it('samples are firing inputs, at most S, spread over the whole pass', () => {
    const c = collect(x, rows, dSae, 500, new FeatureCollector(dSae, { samples: 50, seed: 3 }));
    for (let i = 0; i < dSae; i++) {
      const s = c.sampled(i);
      expect(s).toHaveLength(50);
      for (const e of s) expect(x[e.row * dSae + i]).toBe(e.value);
      expect(new Set(s.map((e) => e.row)).size).toBe(50);
      // a uniform sample of ~600 firing rows over 3000: some from each half
      expect(s.some((e) => e.row < 1500) && s.some((e) => e.row >= 1500)).toBe(true);
    }
    // same seed, same samples
    const again = collect(x, rows, dSae, 500, new FeatureCollector(dSae, { samples: 50, seed: 3 }));
    expect(again.sampled(2)).toEqual(c.sampled(2));
  });

  it('quantile bands cover the sample in order, top band first, examples largest first', () => {
    const c = collect(x, rows, dSae, 500, new FeatureCollector(dSae, { samples: 50 }));
    const bands = c.quantileBands(0, 5, 3);
    expect(bands.map((b) => [b.from, b.to])).toEqual([
      [0.8, 1],
      [0.6, 0.8],
      [0.4, 0.6],
      [0.2, 0.4],
      [0, 0.2],
    ]);
    for (let k = 0; k < bands.length; k++) {
      const b = bands[k]!;
      expect(b.examples).toHaveLength(3);
      expect(b.examples[0]!.value).toBe(b.hi);
      expect(b.examples[2]!.value).toBe(b.lo);
      if (k > 0) expect(b.hi).toBeLessThanOrEqual(bands[k - 1]!.lo);
    }
  });

  it('a latent that never fires has empty statistics; few firings make few bands', () => {
    const c = new FeatureCollector(2, { samples: 10 });
    c.add(Float32Array.from([0, 2, 0, 0, 0, 5]), 3, [10, 11, 12]);
    expect(c.stats(0)).toMatchObject({ fires: 0, density: 0, maxActivation: 0, top: [], histogram: { edges: [], counts: [] } });
    expect(c.quantileBands(0)).toEqual([]);
    expect(c.stats(1).top).toEqual([
      { row: 12, value: 5 },
      { row: 10, value: 2 },
    ]);
    expect(c.quantileBands(1, 5, 4).flatMap((b) => b.examples)).toEqual([
      { row: 12, value: 5 },
      { row: 10, value: 2 },
    ]);
  });
});
