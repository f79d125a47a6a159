import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/index.js';
import { Rng } from '../src/rng.js';
import { forEachBernoulli, SyntheticData, type SyntheticSpec } from '../src/synthetic/generator.js';
import { maxCosines, recoveryScores } from '../src/synthetic/recovery.js';

const engine = new Engine({ threads: 1, kernels: 'reference', warn: () => undefined });
afterAll(() => engine.release());

const base: SyntheticSpec = {
  dIn: 16,
  features: 40,
  firingProbability: 0.1,
  magnitude: { kind: 'uniform', low: 0.5, high: 1.5 },
  groupSize: 1,
  groupCorrelation: 0,
  noise: 0,
  batchSize: 256,
  seed: 3,
};

/** [rows, n] codes -> [rows, n] 0/1 firings */
function firings(codes: Float32Array): Float64Array {
  return Float64Array.from(codes, (a) => (a !== 0 ? 1 : 0));
}

function correlation(f: Float64Array, rows: number, n: number, i: number, j: number): number {
  let si = 0,
    sj = 0,
    sij = 0,
    sii = 0,
    sjj = 0;
  for (let r = 0; r < rows; r++) {
    const a = f[r * n + i]!;
    const b = f[r * n + j]!;
    si += a;
    sj += b;
    sij += a * b;
    sii += a * a;
    sjj += b * b;
  }
  const cov = sij / rows - (si / rows) * (sj / rows);
  return cov / Math.sqrt((sii / rows - (si / rows) ** 2) * (sjj / rows - (sj / rows) ** 2));
}

describe('synthetic generator', () => {
  it('has unit-norm features, and x = codes @ F', async () => {
    const data = new SyntheticData(engine, base);
    const { dIn: d, features: n } = base;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += data.features[i * d + j]! ** 2;
      expect(Math.sqrt(s)).toBeCloseTo(1, 5);
    }
    const b = await data.batchAt(0);
    for (const r of [0, 17, 255]) {
      for (let j = 0; j < d; j++) {
        let v = 0;
        for (let i = 0; i < n; i++) v += b.codes[r * n + i]! * data.features[i * d + j]!;
        expect(b.x[r * d + j]).toBeCloseTo(v, 5);
      }
    }
  });

  it('fires each feature with its probability, with magnitudes in range', async () => {
    const data = new SyntheticData(engine, base);
    const rows = 20_000;
    const { codes } = await data.evalSet(rows);
    const n = base.features;
    const perFeature = new Float64Array(n);
    let [lo, hi] = [Infinity, -Infinity];
    for (let k = 0; k < codes.length; k++) {
      const a = codes[k]!;
      if (a === 0) continue;
      perFeature[k % n]! += 1;
      [lo, hi] = [Math.min(lo, a), Math.max(hi, a)];
    }
    expect(lo).toBeGreaterThanOrEqual(0.5);
    expect(hi).toBeLessThan(1.5);
    const p = base.firingProbability;
    const sd = Math.sqrt((p * (1 - p)) / rows);
    for (const c of perFeature) expect(Math.abs(c / rows - p)).toBeLessThan(5 * sd);
    const overall = perFeature.reduce((s, c) => s + c, 0) / (rows * n);
    expect(Math.abs(overall - p)).toBeLessThan((5 * sd) / Math.sqrt(n));
  });

  it('correlates firings within groups only, at the asked correlation', async () => {
    const spec = { ...base, features: 12, groupSize: 4, groupCorrelation: 0.5, firingProbability: 0.2 };
    const rows = 30_000;
    const f = firings((await new SyntheticData(engine, spec).evalSet(rows)).codes);
    const n = spec.features;
    let within = 0,
      wn = 0,
      across = 0,
      an = 0;
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const c = correlation(f, rows, n, i, j);
        if (Math.floor(i / 4) === Math.floor(j / 4)) [within, wn] = [within + c, wn + 1];
        else [across, an] = [across + c, an + 1];
      }
    }
    expect(within / wn).toBeCloseTo(0.5, 1);
    expect(Math.abs(across / an)).toBeLessThan(0.02);
    let fires = 0;
    for (const v of f) fires += v;
    expect(fires / f.length).toBeCloseTo(0.2, 2); // the marginal rate is unchanged by the groups
  });

  it('streams reproducibly by step, and adds noise of the asked size', async () => {
    const a = new SyntheticData(engine, base);
    const b = new SyntheticData(engine, base);
    expect((await a.batchAt(5)).x).toEqual((await b.batchAt(5)).x);
    expect((await a.batchAt(5)).x).not.toEqual((await a.batchAt(6)).x);
    expect(new SyntheticData(engine, { ...base, seed: 4 }).features).not.toEqual(a.features);

    const noisy = new SyntheticData(engine, { ...base, noise: 0.1 });
    const clean = await new SyntheticData(engine, base).batchAt(2);
    const x = (await noisy.batchAt(2)).x;
    let s = 0;
    for (let k = 0; k < x.length; k++) s += (x[k]! - clean.x[k]!) ** 2;
    expect(Math.sqrt(s / x.length)).toBeCloseTo(0.1, 2);
  });

  it('rejects impossible settings', () => {
    expect(() => new SyntheticData(engine, { ...base, firingProbability: 0 })).toThrow(/firingProbability/);
    expect(() => new SyntheticData(engine, { ...base, groupCorrelation: 1.5 })).toThrow(/groupCorrelation/);
    expect(() => new SyntheticData(engine, { ...base, magnitude: { kind: 'uniform', low: 2, high: 1 } })).toThrow(/uniform/);
  });

  it('draws Bernoulli firings by geometric gaps at the right rate', () => {
    const rng = new Rng(1);
    let count = 0;
    let last = -1;
    let ordered = true;
    forEachBernoulli(100_000, 0.03, rng, (k) => {
      ordered &&= k > last;
      last = k;
      count++;
    });
    expect(ordered).toBe(true);
    expect(count / 100_000).toBeCloseTo(0.03, 2);
  });
});

describe('recovery scores', () => {
  it('scores a permuted, rescaled copy of the features as perfect and a sign flip as lost', async () => {
    const data = new SyntheticData(engine, base);
    const { dIn: d, features: n } = base;
    const dec = new Float32Array((n + 3) * d); // three extra rows of zeros
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) dec[((i * 7) % n) * d + j] = 3 * data.features[i * d + j]!;
    const best = await maxCosines(engine, data.features, n, dec, n + 3, d);
    expect(recoveryScores(best).mmcs).toBeCloseTo(1, 5);
    expect(recoveryScores(best).recovered).toBe(1);
    for (let j = 0; j < d; j++) dec[j]! *= -1; // row 0 holds feature 0, now negated
    const flipped = recoveryScores(await maxCosines(engine, data.features, n, dec, n + 3, d));
    expect(flipped.recovered).toBeCloseTo((n - 1) / n, 6);
  });
});
