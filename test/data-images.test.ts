import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodeJpeg } from 'jpeg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoImagePaths } from '../src/data/demo-images.js';
import { symmetricEigen } from '../src/data/eigen.js';
import { imagePatchDataset } from '../src/data/image-dataset.js';
import { listImages, readGreyImage } from '../src/data/images.js';
import { openDataset } from '../src/store/open.js';
import { loadImagePreprocess, saveImagePreprocess } from '../src/data/preprocess-file.js';
import { toPixelSpace } from '../src/data/whitening.js';
import { Engine } from '../src/engine/index.js';
import { UserError } from '../src/errors.js';
import { encodePng } from '../src/io/png.js';
import { Rng } from '../src/rng.js';

let dir: string;
let engine: Engine;
/** A 40 x 30 RGB noise image (luma variance about 0.04). */
let noisePng: string;
/** The same kind of image, 24 x 20, in a subfolder. */
let smallPng: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'data-images-'));
  engine = new Engine({ kernels: 'reference', threads: 1 });
  noisePng = join(dir, 'noise.png');
  await writeFile(noisePng, encodePng(noiseImage(40, 30, 1)));
  await mkdir(join(dir, 'sub'));
  smallPng = join(dir, 'sub', 'small.PNG');
  await writeFile(smallPng, encodePng(noiseImage(24, 20, 2)));
});
afterAll(async () => {
  await engine.release();
  await rm(dir, { recursive: true, force: true });
});

function noiseImage(width: number, height: number, seed: number): { width: number; height: number; channels: 3; data: Uint8Array } {
  const rng = new Rng(seed);
  return { width, height, channels: 3, data: Uint8Array.from({ length: width * height * 3 }, () => rng.int(256)) };
}

/** x: [rows, d] -> [d, d] covariance (float64, centred on the sample mean). */
function cov(x: Float32Array, rows: number, d: number): Float64Array {
  const mu = new Float64Array(d);
  for (let i = 0; i < rows * d; i++) mu[i % d] = mu[i % d]! + x[i]! / rows;
  const c = new Float64Array(d * d);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) c[i * d + j] = c[i * d + j]! + ((x[r * d + i]! - mu[i]!) * (x[r * d + j]! - mu[j]!)) / (rows - 1);
    }
  }
  return c;
}

function maxAbsDiffFromIdentity(c: Float64Array, d: number): number {
  let worst = 0;
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) worst = Math.max(worst, Math.abs(c[i * d + j]! - (i === j ? 1 : 0)));
  return worst;
}

describe('symmetricEigen', () => {
  it('decomposes A = V diag(l) V^T with V orthogonal, l descending', () => {
    const n = 17;
    const rng = new Rng(3);
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = rng.normal();
    const { values, vectors: v } = symmetricEigen(a, n);
    for (let j = 1; j < n; j++) expect(values[j]!).toBeLessThanOrEqual(values[j - 1]!);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let av = 0;
        let vtv = 0;
        for (let k = 0; k < n; k++) {
          av += a[i * n + k]! * v[k * n + j]!;
          vtv += v[k * n + i]! * v[k * n + j]!;
        }
        expect(av).toBeCloseTo(v[i * n + j]! * values[j]!, 10);
        expect(vtv).toBeCloseTo(i === j ? 1 : 0, 12);
      }
    }
  });

  it('handles repeated eigenvalues and a diagonal matrix', () => {
    const { values } = symmetricEigen(Float64Array.from([2, 0, 0, 0, 5, 0, 0, 0, 2]), 3);
    expect(Array.from(values)).toEqual([5, 2, 2]);
  });
});

describe('images', () => {
  it('decodes PNG and JPEG to luma in [0, 1], and lists folders recursively', async () => {
    const grey = await readGreyImage(noisePng);
    const img = noiseImage(40, 30, 1);
    expect([grey.width, grey.height]).toEqual([40, 30]);
    const [r, g, b] = [img.data[3 * 45]!, img.data[3 * 45 + 1]!, img.data[3 * 45 + 2]!];
    expect(grey.pixels[45]).toBeCloseTo((0.299 * r + 0.587 * g + 0.114 * b) / 255, 6);

    const flat = { width: 16, height: 8, data: new Uint8Array(16 * 8 * 4).fill(200) };
    const jpg = join(dir, 'flat.jpg');
    await writeFile(jpg, encodeJpeg(flat, 95).data);
    const j = await readGreyImage(jpg);
    expect([j.width, j.height]).toEqual([16, 8]);
    for (const v of j.pixels) expect(v).toBeCloseTo(200 / 255, 1);

    expect(await listImages([dir])).toEqual([jpg, noisePng, smallPng]);
  });

  it('follows symbolic links to images and folders, each folder once', async () => {
    const links = join(dir, 'links');
    await mkdir(links);
    await symlink(noisePng, join(links, 'a.png'));
    await symlink(dir, join(links, 'up')); // a loop: dir holds links
    await symlink(join(dir, 'gone.png'), join(links, 'dangling.png'));
    expect(await listImages([links])).toEqual([
      join(links, 'a.png'),
      ...(await listImages([dir])).filter((p) => !p.startsWith(links)).map((p) => join(links, 'up', p.slice(dir.length + 1))),
    ]);
    await rm(links, { recursive: true });
  });

  it('refuses a corrupt image, a folder without images and a missing path, in one line', async () => {
    await writeFile(join(dir, 'bad.jpeg'), 'not a jpeg');
    const e1: unknown = await readGreyImage(join(dir, 'bad.jpeg')).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(UserError);
    expect(String(e1)).toMatch(/bad\.jpeg: cannot decode the JPEG image/);
    await rm(join(dir, 'bad.jpeg'));
    await mkdir(join(dir, 'empty'));
    await expect(openDataset({ path: join(dir, 'empty') }, engine)).rejects.toThrow(
      /empty: is neither an activation store \(no manifest.json\) nor a folder of images/,
    );
    await expect(openDataset({ path: join(dir, 'missing.png') }, engine)).rejects.toThrow(/missing\.png: no such file$/);
    await expect(imagePatchDataset([noisePng], { patchSize: 41 }, engine)).rejects.toThrow(/no image is at least 41 x 41 pixels/);
  });

  it('cuts seeded patches that are pieces of the images', async () => {
    const opts = { patchSize: 5, patches: 300, seed: 4, meanRemoval: false, whitening: 'none' } as const;
    const ds = await imagePatchDataset([noisePng, smallPng], opts, engine);
    expect([ds.rows, ds.dIn, ds.images.length]).toEqual([300, 25, 2]);
    const x = new Float32Array(300 * 25);
    await ds.read(0, 300, x);
    const again = new Float32Array(300 * 25);
    await (await imagePatchDataset([noisePng, smallPng], opts, engine)).read(0, 300, again);
    expect(again).toEqual(x);
    const images = [await readGreyImage(noisePng), await readGreyImage(smallPng)];
    const found = [0, 0];
    for (let n = 0; n < 300; n++) {
      const patch = x.subarray(n * 25, (n + 1) * 25);
      const where = images.findIndex((im) => {
        for (let top = 0; top + 5 <= im.height; top++) {
          for (let left = 0; left + 5 <= im.width; left++) {
            if (patch.every((v, k) => v === im.pixels[(top + Math.floor(k / 5)) * im.width + left + (k % 5)])) return true;
          }
        }
        return false;
      });
      expect(where).toBeGreaterThanOrEqual(0);
      found[where]!++;
    }
    // Weighted by area: 36 * 26 = 936 positions against 20 * 16 = 320.
    expect(found[0]! / 300).toBeGreaterThan(0.65);
    expect(found[0]! / 300).toBeLessThan(0.85);
  });

  it('removes each patch mean', async () => {
    const ds = await imagePatchDataset([noisePng], { patchSize: 6, patches: 200, whitening: 'none' }, engine);
    const x = new Float32Array(200 * 36);
    await ds.read(0, 200, x);
    for (let n = 0; n < 200; n++) expect(Math.abs(x.subarray(n * 36, (n + 1) * 36).reduce((a, b) => a + b, 0))).toBeLessThan(1e-5);
    expect(ds.preprocess.mean.every((v) => v === 0)).toBe(true);
  });

  for (const whitening of ['zca', 'pca'] as const) {
    it(`${whitening}-whitens: the covariance of whitened patches is the identity`, async () => {
      const d = 16;
      const ds = await imagePatchDataset([noisePng], { patchSize: 4, patches: 3000, whitening, meanRemoval: false, eps: 1e-7 }, engine);
      const x = new Float32Array(3000 * d);
      await ds.read(0, 3000, x);
      expect(maxAbsDiffFromIdentity(cov(x, 3000, d), d)).toBeLessThan(1e-3);
      const p = ds.preprocess;
      // W^-1 W = I
      const product = new Float64Array(d * d);
      for (let i = 0; i < d; i++)
        for (let j = 0; j < d; j++) for (let k = 0; k < d; k++) product[i * d + j] = product[i * d + j]! + p.inverse[i * d + k]! * p.matrix[k * d + j]!;
      expect(maxAbsDiffFromIdentity(product, d)).toBeLessThan(1e-4);
      if (whitening === 'zca') {
        for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) expect(p.matrix[i * d + j]).toBeCloseTo(p.matrix[j * d + i]!, 5);
      }
      // Whitened patches mapped back with the inverse, plus the mean, are the original pixels.
      const raw = await imagePatchDataset([noisePng], { patchSize: 4, patches: 3000, whitening: 'none', meanRemoval: false }, engine);
      const pixels = new Float32Array(3000 * d);
      await raw.read(0, 3000, pixels);
      const back = await toPixelSpace(p, x.subarray(0, 10 * d), 10, engine);
      for (let k = 0; k < 10 * d; k++) expect(back[k]! + p.mean[k % d]!).toBeCloseTo(pixels[k]!, 4);
    });
  }

  it('saves and loads the preprocessing, which then gives the same patches', async () => {
    const opts = { patchSize: 4, patches: 500, seed: 9, whitening: 'zca', eps: 1e-3 } as const;
    const ds = await imagePatchDataset([noisePng], opts, engine);
    const path = join(dir, 'pre.safetensors');
    await saveImagePreprocess(path, ds.preprocess);
    const loaded = await loadImagePreprocess(path);
    expect(loaded).toEqual(ds.preprocess);
    const reused = await imagePatchDataset([noisePng], { patches: 500, seed: 9, preprocess: loaded }, engine);
    const a = new Float32Array(500 * 16);
    const b = new Float32Array(500 * 16);
    await ds.read(0, 500, a);
    await reused.read(0, 500, b);
    expect(b).toEqual(a);
    await expect(imagePatchDataset([noisePng], { patchSize: 5, preprocess: loaded }, engine)).rejects.toThrow(/patchSize 5 \(saved: 4\)/);
    await expect(loadImagePreprocess(join(dir, 'nope.safetensors'))).rejects.toThrow(/nope\.safetensors: no such file/);
  });

  it('finds the eight demo photographs and cuts whitened patches from one', async () => {
    const paths = await demoImagePaths();
    expect(paths).toHaveLength(8);
    for (const p of paths) expect(p).toMatch(/datasets-img-.*\.jpg$/);
    expect(paths.some((p) => p.includes('locomotion'))).toBe(false);
    const ds = await imagePatchDataset([paths[0]!], { patchSize: 8, patches: 2000 }, engine);
    expect([ds.rows, ds.dIn]).toEqual([2000, 64]);
    expect(ds.preprocess.eigenvalues[0]).toBeGreaterThan(ds.preprocess.eigenvalues[63]!);
  });
});
