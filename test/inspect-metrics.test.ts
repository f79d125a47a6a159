import { describe, expect, it } from 'vitest';
import { auPro, pixelAuroc, proCurve, trapezoidTo } from '../src/anomaly/pixel-metrics.js';
import { connectedRegions } from '../src/anomaly/regions.js';
import { fitMapCalibration, imageScore, judgeMap } from '../src/anomaly/map-calibration.js';

const row = (map: number[], mask: number[]) => ({ map, mask, width: map.length, height: 1 });

describe('connected regions', () => {
  it('joins pixels touching by a corner (8-connectivity) and reports boxes and areas', () => {
    // 1 1 0 0
    // 0 0 1 0     the diagonal joins the first two rows into one region; the lone pixel at (3, 3) is another
    // 0 0 0 0
    // 0 0 0 1
    const mask = [1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const { labels, regions } = connectedRegions(mask, 4, 4);
    expect(regions).toEqual([
      { bbox: [0, 0, 3, 2], area: 3 },
      { bbox: [3, 3, 1, 1], area: 1 },
    ]);
    expect(Array.from(labels)).toEqual([1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
  });
});

describe('pixel AUROC', () => {
  it('pools the pixels of every image', () => {
    // defects 0.9, 0.3; normal 0.5, 0.1, 0.2, 0.4: 0.9 wins 4 pairs, 0.3 wins 2 (over 0.1, 0.2): 6 of 8
    expect(pixelAuroc([row([0.9, 0.5, 0.1], [1, 0, 0]), row([0.3, 0.2, 0.4], [1, 0, 0])])).toBe(6 / 8);
  });
});

describe('PRO (MVTec AD protocol)', () => {
  it('weights regions equally, whatever their size (hand-computed curve)', () => {
    // pixels 0..5 of one row; regions {0} (area 1) and {2, 3} (area 2); normal {1, 4, 5}
    // falling scores: p0 -> pro 1/2; p2 -> +1/4 = 3/4; p1 -> fpr 1/3; p3 -> pro 1; p4, p5 -> fpr 2/3, 1
    const c = proCurve([row([6, 4, 5, 3, 2, 1], [1, 0, 1, 1, 0, 0])]);
    expect(Array.from(c.fpr)).toEqual([0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1, 1]);
    expect(Array.from(c.pro)).toEqual([0, 0.5, 0.75, 0.75, 1, 1, 1, 1]);
    // up to FPR 0.3 the curve is flat at 3/4: area 0.225, normalised 0.75
    expect(auPro([row([6, 4, 5, 3, 2, 1], [1, 0, 1, 1, 0, 0])])).toBeCloseTo(0.75, 12);
  });

  it('is 1 when every defect pixel outscores every normal one, 0 when they all come last', () => {
    expect(auPro([row([4, 3, 2, 1], [1, 1, 0, 0])])).toBe(1);
    expect(auPro([row([1, 2, 3, 4], [1, 1, 0, 0])])).toBe(0);
  });

  it('moves tied pixels together, interpolating at the limit', () => {
    // one threshold: (0, 0) -> (1, 1); area to 0.3 = 0.045, normalised 0.15
    const c = proCurve([row([1, 1, 1, 1], [1, 0, 0, 1])]);
    expect(Array.from(c.fpr)).toEqual([0, 1, 1]);
    expect(auPro([row([1, 1, 1, 1], [1, 0, 0, 1])])).toBeCloseTo(0.15, 12);
  });

  it('counts normal pixels of defect-free images in the FPR', () => {
    // image 1: region {0}; image 2 all normal with a high score: FPR jumps to 1/3 before any overlap
    const maps = [row([5, 1], [1, 0]), row([9, 0], [0, 0])];
    const c = proCurve(maps);
    expect(Array.from(c.fpr)).toEqual([0, 1 / 3, 1 / 3, 2 / 3, 1, 1]);
    expect(Array.from(c.pro)).toEqual([0, 0, 1, 1, 1, 1]);
    // area to 0.3: zero (PRO is 0 until FPR 1/3)
    expect(auPro(maps)).toBe(0);
    expect(auPro(maps, 1)).toBeCloseTo(2 / 3 / 1, 12);
  });

  it('integrates by trapezoids with the end interpolated', () => {
    expect(trapezoidTo([0, 1], [0, 1], 0.3)).toBeCloseTo(0.045, 12);
    expect(trapezoidTo([0, 0.2, 0.4], [0.5, 0.5, 1], 0.3)).toBeCloseTo(0.1 + 0.5 * (0.5 + 0.75) * 0.1, 12);
  });
});

describe('map calibration', () => {
  it('puts the pixel threshold at the (1 - fpr)-quantile and flags above the clean scores', () => {
    const clean = [Float32Array.from({ length: 100 }, (_, i) => i), Float32Array.from({ length: 100 }, (_, i) => 100 + i)];
    const c = fitMapCalibration(clean, { stride: 2, pixelFpr: 0.01, imageFpr: 0, scoreQuantile: 1 });
    expect(c.pixelThreshold).toBeCloseTo(197.01, 6); // 0.99 * 199
    expect(c.pixelMedian).toBeCloseTo(99.5, 6);
    expect(c.imageThreshold).toBe(199); // max of the clean images' maxima
    const map = new Float32Array(16).fill(1);
    map[5] = 300;
    map[10] = 250;
    const v = judgeMap(map, 4, 4, c);
    expect(v.flagged).toBe(true);
    expect(v.score).toBe(300);
    expect(v.regions).toEqual([{ bbox: [1, 1, 2, 2], area: 2 }]);
    expect(judgeMap(new Float32Array(16).fill(150), 4, 4, c).flagged).toBe(false);
    expect(imageScore([1, 2, 3, 4, 5], 0.5)).toBe(3);
  });
});
