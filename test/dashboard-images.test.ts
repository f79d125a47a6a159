/** Image data for the dashboard: where each patch was cut, and the patches shown in their source image. */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDashboard } from '../src/dashboard/build.js';
import { imageNames, patchInContext, shrinkImage } from '../src/dashboard/images.js';
import type { NeuronpediaBatch } from '../src/dashboard/neuronpedia.js';
import { imagePatchDataset } from '../src/data/image-dataset.js';
import { type GreyImage, readGreyImage } from '../src/data/images.js';
import { Engine } from '../src/engine/index.js';
import { encodePng } from '../src/io/png.js';
import { Rng } from '../src/rng.js';
import { Sae } from '../src/sae.js';

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

describe('patches in their source image', () => {
  /** 6 x 4, pixel value (10 y + x) / 255 */
  const im: GreyImage = {
    path: 'ramp.png',
    width: 6,
    height: 4,
    pixels: Float32Array.from({ length: 24 }, (_, i) => (10 * Math.floor(i / 6) + (i % 6)) / 255),
  };

  it('a patch with its context, the canvas beyond the image a dark checkerboard', () => {
    const c = patchInContext(im, 4, 0, 2, 1); // patch columns 4..5, rows 0..1; context one pixel around
    expect([c.width, c.height, c.channels]).toEqual([4, 4, 1]);
    const at = (x: number, y: number): number => c.data[y * 4 + x]!;
    expect(at(1, 1)).toBe(4); // the patch's top-left pixel: image (4, 0)
    expect(at(2, 2)).toBe(15); // image (5, 1)
    expect(at(0, 3)).toBe(23); // image (3, 2)
    expect([at(0, 0), at(3, 1), at(3, 3)].every((v) => v === 34 || v === 52)).toBe(true); // outside
  });

  it('a source image shrunk by block means', () => {
    const { image, factor } = shrinkImage(im, 3);
    expect(factor).toBe(2);
    expect([image.width, image.height]).toEqual([3, 2]);
    expect(image.data[0]).toBe(Math.round((0 + 1 + 10 + 11) / 4));
    expect(image.data[5]).toBe(Math.round((24 + 25 + 34 + 35) / 4));
  });

  it('short names that tell the images apart', () => {
    expect(imageNames(['/a/x/data/image.jpg', '/a/y/data/image.jpg'])).toEqual(['x', 'y']);
    expect(imageNames(['/p/one.png', '/p/two.png'])).toEqual(['one.png', 'two.png']);
    expect(imageNames(['/p/photo.jpg'])).toEqual(['photo.jpg']);
    expect(imageNames(['/p/a/i.png', '/p/i.png'])).toEqual(['a', 'p']); // the folders tell them apart
    expect(imageNames(['/m/datasets-img-black-canyon/data/image.jpg', '/m/datasets-img-boats/data/image.jpg'])).toEqual(['black-canyon', 'boats']);
    expect(imageNames(['/q/img-1.png', '/q/img-2.png'])).toEqual(['1.png', '2.png']);
  });
});

describe('dashboard of image patches', () => {
  it('shows decoder filters, the top patches in context and their source images', async () => {
    const p = 4;
    const ds = await imagePatchDataset(pngs, { patchSize: p, patches: 400, whitening: 'zca', eps: 1e-2 }, engine);
    const rng = new Rng(4);
    const n = (k: number): Float32Array => Float32Array.from({ length: k }, () => rng.normal());
    const sae = new Sae('standard', { dIn: 16, dSae: 5 }, {}, { W_enc: n(80), b_enc: new Float32Array(5), W_dec: n(80), b_dec: new Float32Array(16) });
    const out = join(dir, 'site');
    const r = await buildDashboard(
      engine,
      sae,
      ds,
      { kind: 'images', images: ds.images, origins: ds.origins, patchSize: p },
      { out, preprocess: ds.preprocess, showTop: 6 },
    );
    expect(r.pages).toBe(5);
    const index = await readFile(join(out, 'index.html'), 'utf8');
    expect(index.match(/<img class="px thumb" src="data:image\/png;base64,/g)).toHaveLength(5);
    const page = await readFile(join(out, 'features', '0.html'), 'utf8');
    expect(page.match(/<figure class="ex"><div class="patch"><img class="px" src="data:image\/png;base64,/g)!.length).toBeGreaterThanOrEqual(6);
    expect(page).toContain('as trained (whitened space)');
    expect(page).toContain('in pixel space');
    const sources = [...page.matchAll(/src="\.\.\/images\/(source-\d\.png)"/g)].map((m) => m[1]!);
    expect(sources.length).toBeGreaterThan(0);
    for (const f of sources) expect(existsSync(join(out, 'images', f))).toBe(true);
    const batch = JSON.parse(await readFile(join(out, 'neuronpedia', 'batch-0.json'), 'utf8')) as NeuronpediaBatch;
    const top = batch.features[0]!.activations[0]!;
    expect(top.tokens[0]).toMatch(/^[ab]\.png@\d+,\d+$/);
  });
});
