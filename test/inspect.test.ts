import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coverMean, inspector, mapImage, patchOrigins, saeModel } from '../src/anomaly/inspect.js';
import { inspectFiles, INSPECT_RESULTS_FILENAME, loadInspector } from '../src/anomaly/inspect-files.js';
import { fitMapCalibration } from '../src/anomaly/map-calibration.js';
import { type ChannelImage, readChannelImage } from '../src/data/images.js';
import { loadImagePreprocess, saveImagePreprocess } from '../src/data/preprocess-file.js';
import { fitPreprocess, type ImagePreprocess, preprocessPatches } from '../src/data/whitening.js';
import { Engine } from '../src/engine/index.js';
import { readNpy } from '../src/io/npy.js';
import { encodePng, writePng } from '../src/io/png.js';
import { saveSae } from '../src/io/saelens.js';
import { Rng } from '../src/rng.js';
import { Sae } from '../src/sae.js';
import { PREPROCESS_FILENAME } from '../src/train/run.js';
import { runCli } from './helpers/cli.js';

let engine: Engine;
beforeAll(() => {
  engine = new Engine({ threads: 1, kernels: 'reference' });
});
afterAll(async () => {
  await engine.release();
});

/** The mean of the covering patches' errors, patch by patch. */
function naiveCoverMean(errors: Float32Array, ys: Int32Array, xs: Int32Array, p: number, h: number, w: number): Float64Array {
  const sum = new Float64Array(h * w);
  const count = new Float64Array(h * w);
  ys.forEach((oy, j) => {
    xs.forEach((ox, i) => {
      for (let y = oy; y < oy + p; y++) {
        for (let x = ox; x < ox + p; x++) {
          sum[y * w + x]! += errors[j * xs.length + i]!;
          count[y * w + x]! += 1;
        }
      }
    });
  });
  return sum.map((s, k) => s / count[k]!);
}

function randomSae(dIn: number, dSae: number, seed: number): Sae {
  const rng = new Rng(seed);
  const r = (n: number, s: number): Float32Array => Float32Array.from({ length: n }, () => s * rng.normal());
  return new Sae('standard', { dIn, dSae }, {}, { W_enc: r(dIn * dSae, 0.3), b_enc: r(dSae, 0.1), W_dec: r(dSae * dIn, 0.3), b_dec: r(dIn, 0.1) });
}

function randomImage(w: number, h: number, channels: 1 | 3, seed: number, path = 'image'): ChannelImage {
  const rng = new Rng(seed);
  return { path, width: w, height: h, channels, pixels: Float32Array.from({ length: w * h * channels }, () => rng.uniform()) };
}

async function fittedPreprocess(p: number, channels: 1 | 3, meanRemoval: boolean, whitening: 'none' | 'zca'): Promise<ImagePreprocess> {
  const d = channels * p * p;
  const rng = new Rng(7);
  const sample = Float32Array.from({ length: 400 * d }, () => rng.uniform());
  return fitPreprocess(sample, 400, { patchSize: p, channels, meanRemoval, whitening, eps: 1e-2 }, engine);
}

describe('patch origins and the per-pixel mean', () => {
  it('covers the last pixels when the stride does not land there', () => {
    expect(Array.from(patchOrigins(10, 4, 3))).toEqual([0, 3, 6]);
    expect(Array.from(patchOrigins(11, 4, 3))).toEqual([0, 3, 6, 7]);
    expect(Array.from(patchOrigins(4, 4, 5))).toEqual([0]);
  });

  it('matches the patch-by-patch mean of the covering patches', () => {
    for (const [w, h, p, s] of [
      [13, 9, 4, 3],
      [8, 8, 8, 1],
      [17, 11, 5, 2],
      [9, 12, 3, 3],
      [10, 7, 6, 4],
    ] as const) {
      const ys = patchOrigins(h, p, s);
      const xs = patchOrigins(w, p, s);
      const rng = new Rng(w * h);
      const errors = Float32Array.from({ length: ys.length * xs.length }, () => rng.uniform() * 10);
      const fast = coverMean(errors, ys, xs, p, h, w);
      const slow = naiveCoverMean(errors, ys, xs, p, h, w);
      for (let k = 0; k < w * h; k++) expect(fast[k]).toBeCloseTo(slow[k]!, 4);
    }
  });
});

describe('mapImage', () => {
  for (const [channels, meanRemoval, whitening] of [
    [1, true, 'zca'],
    [3, false, 'zca'],
    [3, true, 'none'],
  ] as const) {
    it(`gives each patch the SAE's error on its preprocessed values (${channels} channel(s), mean removal ${meanRemoval}, ${whitening})`, async () => {
      const p = 3;
      const pre = await fittedPreprocess(p, channels, meanRemoval, whitening);
      const d = channels * p * p;
      const sae = randomSae(d, 7, 3);
      const image = randomImage(11, 8, channels, 5);
      const m = await mapImage(engine, inspector(pre, saeModel(sae)), image, 2);
      expect(Array.from(m.ys)).toEqual([0, 2, 4, 5]);
      expect(Array.from(m.xs)).toEqual([0, 2, 4, 6, 8]);
      // The reference: cut each patch, preprocess it as training did, encode and decode.
      const n = m.ys.length * m.xs.length;
      const x = new Float32Array(n * d);
      m.ys.forEach((oy, j) =>
        m.xs.forEach((ox, i) => {
          for (let r = 0; r < p; r++)
            for (let c = 0; c < p * channels; c++) x[(j * m.xs.length + i) * d + r * p * channels + c] = image.pixels[((oy + r) * 11 + ox) * channels + c]!;
        }),
      );
      await preprocessPatches(pre, x, n, engine);
      const xHat = await sae.decode(engine, await sae.encode(engine, x));
      for (let k = 0; k < n; k++) {
        let e = 0;
        for (let t = 0; t < d; t++) e += (xHat[k * d + t]! - x[k * d + t]!) ** 2;
        expect(m.patchErrors[k]).toBeCloseTo(e, 3);
      }
      const slow = naiveCoverMean(m.patchErrors, m.ys, m.xs, p, 8, 11);
      for (let k = 0; k < 88; k++) expect(m.map[k]).toBeCloseTo(slow[k]!, 3);
    });
  }

  it('refuses an image of other channels, one smaller than a patch, and a bad stride', async () => {
    const pre = await fittedPreprocess(3, 3, false, 'none');
    const ins = inspector(pre, saeModel(randomSae(27, 5, 1)));
    await expect(mapImage(engine, ins, randomImage(8, 8, 1, 1, 'grey.png'), 1)).rejects.toThrow(
      'grey.png: is a grey image, but the SAE reads colour (RGB) patches',
    );
    await expect(mapImage(engine, ins, randomImage(2, 8, 3, 1, 'thin.png'), 1)).rejects.toThrow(
      "thin.png: is 2 x 8 pixels, smaller than the SAE's 3 x 3 patch",
    );
    await expect(mapImage(engine, ins, randomImage(8, 8, 3, 1), 0)).rejects.toThrow('the stride must be an integer from 1 to the patch side 3');
    await expect(mapImage(engine, ins, randomImage(8, 8, 3, 1), 4)).rejects.toThrow('leaves pixels uncovered');
    expect(() => inspector(pre, saeModel(randomSae(12, 5, 1)))).toThrow('reads rows of 12 values, but the image preprocessing makes patches of 27');
  });
});

describe('reading images in their own channels', () => {
  it('reads a colour JPEG as RGB and refuses a truncated one with one line', async () => {
    const { demoImagePaths } = await import('../src/data/demo-images.js');
    const path = (await demoImagePaths()).find((p) => p.includes('dust-bowl-home'))!;
    const im = await readChannelImage(path);
    expect([im.width, im.height, im.channels, im.pixels.length]).toEqual([1024, 788, 3, 1024 * 788 * 3]);
    const dir = await mkdtemp(join(tmpdir(), 'inspect-jpeg-'));
    const bytes = await readFile(path);
    await writeFile(join(dir, 'cut.jpg'), bytes.subarray(0, bytes.length >> 1));
    await expect(readChannelImage(join(dir, 'cut.jpg'))).rejects.toThrow(`${join(dir, 'cut.jpg')}: cannot decode the JPEG image`);
  });
});

describe('colour preprocessing files', () => {
  it('round-trips channels, and reads a file without them as grey', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inspect-pre-'));
    const rgb = await fittedPreprocess(2, 3, false, 'zca');
    await saveImagePreprocess(join(dir, 'rgb.safetensors'), rgb);
    const back = await loadImagePreprocess(join(dir, 'rgb.safetensors'));
    expect(back.channels).toBe(3);
    expect(Array.from(back.matrix)).toEqual(Array.from(rgb.matrix));
    const grey = await fittedPreprocess(2, 1, true, 'zca');
    await saveImagePreprocess(join(dir, 'grey.safetensors'), grey);
    // An older file: the same header without the channels entry.
    const bytes = await readFile(join(dir, 'grey.safetensors'));
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as { __metadata__: Record<string, string> };
    delete header.__metadata__['channels'];
    const text = Buffer.from(JSON.stringify(header).padEnd(n, ' '));
    await writeFile(join(dir, 'old.safetensors'), Buffer.concat([bytes.subarray(0, 8), text, bytes.subarray(8 + n)]));
    expect((await loadImagePreprocess(join(dir, 'old.safetensors'))).channels).toBe(1);
  });
});

/** A folder with a random RGB SAE (3 x 3 patches, with preprocess.safetensors) and images: good ones, a grey one, a tiny one, a truncated one. */
async function setup(): Promise<{ dir: string; saeDir: string; images: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'inspect-'));
  const saeDir = join(dir, 'sae');
  const pre = await fittedPreprocess(3, 3, false, 'zca');
  await saveSae(saeDir, randomSae(27, 6, 2));
  await saveImagePreprocess(join(saeDir, PREPROCESS_FILENAME), pre);
  const images = join(dir, 'images');
  const rgb = (w: number, h: number, seed: number) => {
    const rng = new Rng(seed);
    return { width: w, height: h, channels: 3 as const, data: Uint8Array.from({ length: w * h * 3 }, () => rng.int(256)) };
  };
  await mkdir(images);
  await writePng(join(images, 'a.png'), rgb(12, 10, 1));
  await writePng(join(images, 'b.png'), rgb(9, 9, 2));
  await writePng(join(images, 'grey.png'), { width: 9, height: 9, channels: 1, data: new Uint8Array(81).fill(128) });
  await writePng(join(images, 'tiny.png'), rgb(2, 2, 3));
  const png = encodePng(rgb(9, 9, 4));
  await writeFile(join(images, 'cut.png'), png.subarray(0, png.length - 30));
  return { dir, saeDir, images };
}

describe('inspectFiles', () => {
  it('writes an overlay, the raw map, a mask and a JSON line per image', async () => {
    const { dir, saeDir, images } = await setup();
    const { inspector: ins } = await loadInspector(saeDir);
    const cal = fitMapCalibration([new Float32Array(100).fill(0.5)], { stride: 1, pixelFpr: 0.01 });
    const out = join(dir, 'out');
    const records = await inspectFiles(engine, ins, cal, [join(images, 'a.png'), join(images, 'b.png')], out);
    expect(records.map((r) => r.image)).toEqual([join(images, 'a.png'), join(images, 'b.png')]);
    const lines = (await readFile(join(out, INSPECT_RESULTS_FILENAME), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { image: string; flagged: boolean; regions: { area: number }[] });
    expect(lines).toHaveLength(2);
    expect(lines[0]!.image).toBe(join(images, 'a.png'));
    expect((await readdir(out)).sort()).toEqual(
      ['a.map.npy', 'a.mask.png', 'a.overlay.png', 'b.map.npy', 'b.mask.png', 'b.overlay.png', INSPECT_RESULTS_FILENAME].sort(),
    );
    const map = await readNpy(join(out, 'a.map.npy'));
    expect(map.shape).toEqual([10, 12]);
    // every pixel above the (tiny) threshold: one region covering the image
    expect(lines[0]!.regions).toEqual([{ bbox: [0, 0, 12, 10], area: 120 }]);
  });

  for (const [name, message] of [
    ['grey.png', 'grey.png: is a grey image, but the SAE reads colour (RGB) patches'],
    ['tiny.png', "tiny.png: is 2 x 2 pixels, smaller than the SAE's 3 x 3 patch"],
    ['cut.png', 'cut.png: cannot decode the PNG image'],
  ] as const) {
    it(`stops at ${name} with one line and leaves no partial output`, async () => {
      const { dir, saeDir, images } = await setup();
      const { inspector: ins } = await loadInspector(saeDir);
      const cal = fitMapCalibration([new Float32Array(100).fill(0.5)], { stride: 2 });
      const out = join(dir, 'out');
      const err = await inspectFiles(engine, ins, cal, [join(images, 'a.png'), join(images, name)], out).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toContain(message);
      expect((err as Error).message).not.toContain('\n');
      expect(existsSync(out)).toBe(false); // not even the folder it made
    });
  }

  it('refuses an SAE folder with no image preprocessing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inspect-'));
    await saveSae(join(dir, 'sae'), randomSae(27, 6, 2));
    await expect(loadInspector(join(dir, 'sae'))).rejects.toThrow(`${join(dir, 'sae')}: holds no image preprocessing (preprocess.safetensors)`);
    expect(existsSync(join(dir, 'sae', PREPROCESS_FILENAME))).toBe(false);
  });
});

describe('sae inspect', () => {
  it('calibrates on clean images, inspects, and reuses the saved calibration', async () => {
    const { dir, saeDir, images } = await setup();
    const clean = join(dir, 'clean');
    await mkdir(clean);
    const rng = new Rng(9);
    for (const k of [1, 2, 3])
      await writePng(join(clean, `c${k}.png`), { width: 10, height: 10, channels: 3, data: Uint8Array.from({ length: 300 }, () => rng.int(256)) });
    const out = join(dir, 'out');
    const first = await runCli(
      'inspect',
      saeDir,
      join(images, 'a.png'),
      join(images, 'b.png'),
      '--out',
      out,
      '--clean',
      clean,
      '--stride',
      '2',
      '--threads',
      '1',
    );
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('image(s) flagged');
    expect(existsSync(join(saeDir, 'map-calibration.json'))).toBe(true);
    const again = await runCli('inspect', saeDir, join(images, 'a.png'), '--out', join(dir, 'out2'), '--threads', '1');
    expect(again.code).toBe(0);
    expect((await readFile(join(dir, 'out2', INSPECT_RESULTS_FILENAME), 'utf8')).trim().split('\n')).toHaveLength(1);
    const otherStride = await runCli('inspect', saeDir, join(images, 'a.png'), '--out', join(dir, 'out3'), '--stride', '1');
    expect(otherStride.code).not.toBe(0);
    expect(otherStride.stderr).toContain('was made at stride 2');
  });

  it('fails with one line and writes nothing on a bad image, or with fitting options but no --clean', async () => {
    const { dir, saeDir, images } = await setup();
    const out = join(dir, 'out');
    const bad = await runCli('inspect', saeDir, join(images, 'a.png'), join(images, 'cut.png'), '--out', out, '--clean', images);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(join(saeDir, 'map-calibration.json'))).toBe(false);
    const noClean = await runCli('inspect', saeDir, join(images, 'a.png'), '--out', out, '--pixel-fpr', '0.1');
    expect(noClean.code).not.toBe(0);
    expect(noClean.stderr).toContain('--pixel-fpr only apply with --clean');
  });
});
