import { describe, expect, it } from 'vitest';
import { confusionAt, quantile, rocAuc, rocCurve } from '../src/anomaly/roc.js';
import { fitCalibration, normalisedScores } from '../src/anomaly/score.js';
import { Rng } from '../src/rng.js';

/** P(anomaly > normal) + 0.5 P(tie), over every pair. */
function pairwiseAuc(scores: number[], labels: number[]): number {
  let wins = 0;
  let pairs = 0;
  scores.forEach((s, i) => {
    if (!labels[i]) return;
    scores.forEach((t, j) => {
      if (labels[j]) return;
      pairs++;
      wins += s > t ? 1 : s === t ? 0.5 : 0;
    });
  });
  return wins / pairs;
}

describe('ROC-AUC', () => {
  it('matches hand-computed cases', () => {
    expect(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBe(0.75);
    // pairs (anomaly, normal): (0.5, 0.5) tie = 1/2, (0.5, 0.2), (0.9, 0.5), (0.9, 0.2) = 1 each: 3.5 / 4
    expect(rocAuc([0.5, 0.5, 0.2, 0.9], [1, 0, 0, 1])).toBe(0.875);
    expect(rocAuc([1, 1, 1, 1], [0, 1, 0, 1])).toBe(0.5);
    expect(rocAuc([1, 2, 3, 4], [0, 0, 1, 1])).toBe(1);
    expect(rocAuc([4, 3, 2, 1], [0, 0, 1, 1])).toBe(0);
    expect(rocAuc([3, 1, 2], [true, false, false])).toBe(1);
  });

  it('is NaN when the labels hold one class', () => {
    expect(rocAuc([1, 2, 3], [0, 0, 0])).toBeNaN();
    expect(rocAuc([1, 2, 3], [1, 1, 1])).toBeNaN();
  });

  it('equals the pairwise count on random scores with many ties', () => {
    const rng = new Rng(9);
    for (let trial = 0; trial < 20; trial++) {
      const n = 5 + rng.int(60);
      const scores = Array.from({ length: n }, () => rng.int(6));
      const labels = Array.from({ length: n }, (_, i) => (i === 0 ? 1 : i === 1 ? 0 : rng.int(2)));
      expect(rocAuc(scores, labels)).toBeCloseTo(pairwiseAuc(scores, labels), 12);
    }
  });

  it('traces the curve one point per distinct score', () => {
    expect(rocCurve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toEqual([
      { fpr: 0, tpr: 0 },
      { fpr: 0, tpr: 0.5 },
      { fpr: 0.5, tpr: 0.5 },
      { fpr: 0.5, tpr: 1 },
      { fpr: 1, tpr: 1 },
    ]);
    expect(rocCurve([2, 2, 1], [1, 0, 0])).toEqual([
      { fpr: 0, tpr: 0 },
      { fpr: 0.5, tpr: 1 },
      { fpr: 1, tpr: 1 },
    ]);
  });
});

describe('thresholds', () => {
  it('flags scores strictly above the threshold', () => {
    const s = [1, 2, 3, 4, 5];
    const l = [0, 0, 1, 0, 1];
    expect(confusionAt(s, l, 2.5)).toMatchObject({ tp: 2, fp: 1, tn: 2, fn: 0, precision: 2 / 3, recall: 1, falsePositiveRate: 1 / 3 });
    expect(confusionAt(s, l, 3)).toMatchObject({ tp: 1, fp: 1, tn: 2, fn: 1, precision: 0.5, recall: 0.5 });
    expect(confusionAt(s, l, 9).precision).toBeNaN(); // nothing flagged
  });

  it('interpolates quantiles between order statistics', () => {
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(2.5);
    expect(quantile([4, 1, 3, 2], 0.99)).toBeCloseTo(3.97, 12);
    expect(quantile([4, 1, 3, 2], 0)).toBe(1);
    expect(quantile([4, 1, 3, 2], 1)).toBe(4);
    expect(quantile([7], 0.3)).toBe(7);
  });

  it('normalises errors to robust z-scores of their logs', () => {
    const errors = [0, 1, 2, 3, 4].map(Math.exp); // ln errors 0..4: median 2, MAD 1
    const c = fitCalibration(errors, 0.75);
    expect(c.logErrorMedian).toBeCloseTo(2, 6);
    expect(c.logErrorScale).toBeCloseTo(1.4826, 6);
    expect(c.threshold).toBeCloseTo(Math.exp(3), 4);
    const z = normalisedScores([Math.exp(2), Math.exp(2 + 1.4826), NaN], c);
    expect(z[0]).toBeCloseTo(0, 5);
    expect(z[1]).toBeCloseTo(1, 5);
    expect(z[2]).toBeNaN();
  });
});
