import { describe, expect, it } from 'vitest';
import { type Canvas, DEFECT_KINDS, drawDefect } from '../src/anomaly/defects.js';
import { Rng } from '../src/rng.js';

function texture(channels: 1 | 3): Canvas {
  const rng = new Rng(1);
  const w = 48;
  const h = 40;
  return { width: w, height: h, channels, pixels: Float32Array.from({ length: w * h * channels }, () => 0.4 + 0.2 * rng.uniform()) };
}

describe('synthetic defects', () => {
  for (const kind of DEFECT_KINDS) {
    it(`${kind}: changes the image where its mask is, little elsewhere, and is reproducible from the seed`, () => {
      const img = texture(3);
      for (const size of ['small', 'large'] as const) {
        const d = drawDefect(img, { kind, size, contrast: 'high' }, new Rng(5));
        const again = drawDefect(img, { kind, size, contrast: 'high' }, new Rng(5));
        expect(Array.from(again.pixels)).toEqual(Array.from(d.pixels));
        expect(Array.from(again.mask)).toEqual(Array.from(d.mask));
        let inside = 0;
        let changedInside = 0;
        let changedOutside = 0;
        for (let i = 0; i < img.width * img.height; i++) {
          const delta = Math.max(...[0, 1, 2].map((k) => Math.abs(d.pixels[3 * i + k]! - img.pixels[3 * i + k]!)));
          if (d.mask[i]) {
            inside++;
            if (delta > 0.02) changedInside++;
          } else if (delta > 0.5 * 0.2) changedOutside++; // only the soft rim (coverage < 0.5) may change outside
        }
        expect(inside).toBeGreaterThan(size === 'small' ? 2 : 20);
        expect(changedInside / inside).toBeGreaterThan(0.6);
        expect(changedOutside).toBeLessThan(0.5 * inside + 20);
      }
      // the original is untouched
      expect(Array.from(img.pixels)).toEqual(Array.from(texture(3).pixels));
    });
  }

  it('makes large defects larger than small ones, and works on grey images', () => {
    const img = texture(1);
    const area = (size: 'small' | 'large'): number => drawDefect(img, { kind: 'hole', size, contrast: 'low' }, new Rng(2)).mask.reduce((s, v) => s + v, 0);
    expect(area('large')).toBeGreaterThan(4 * area('small'));
  });
});
