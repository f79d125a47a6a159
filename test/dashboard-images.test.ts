/** Image data for the dashboard: where each patch was cut, and the patches shown in their source image. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagePatchDataset } from '../src/data/image-dataset.js';
import { readGreyImage } from '../src/data/images.js';
import { Engine } from '../src/engine/index.js';
import { encodePng } from '../src/io/png.js';
import { Rng } from '../src/rng.js';

let dir: string;
let pngs: string[];
const engine = new Engine({ kernels: 'reference', threads: 1 });

function noisePng(width: number, height: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  return encodePng({ width, height, channels: 1, data: Uint8Array.from({ length: width * height }, () => rng.int(256)) });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dashboard-images-'));
  pngs = [join(dir, 'a.png'), join(dir, 'b.png')];
  await writeFile(pngs[0]!, noisePng(30, 20, 1));
  await writeFile(pngs[1]!, noisePng(16, 40, 2));
});
afterAll(async () => {
  await engine.release();
  await rm(dir, { recursive: true, force: true });
});

describe('patch origins', () => {
  it('each row is the patch of its recorded image at its recorded corner', async () => {
    const p = 5;
    const ds = await imagePatchDataset(pngs, { patchSize: p, patches: 300, whitening: 'none', meanRemoval: false }, engine);
    const images = await Promise.all(ds.images.map((f) => readGreyImage(f)));
    const row = new Float32Array(p * p);
    const used = new Set<number>();
    for (let r = 0; r < ds.rows; r += 7) {
      await ds.read(r, 1, row);
      const im = images[ds.origins.image[r]!]!;
      const x = ds.origins.x[r]!;
      const y = ds.origins.y[r]!;
      expect(x + p).toBeLessThanOrEqual(im.width);
      expect(y + p).toBeLessThanOrEqual(im.height);
      for (let i = 0; i < p * p; i++) expect(row[i]).toBe(im.pixels[(y + Math.floor(i / p)) * im.width + x + (i % p)]);
      used.add(ds.origins.image[r]!);
    }
    expect(used.size).toBe(2);
  });
});
