import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { encodePng, type PngImage, writePng } from '../src/io/png.js';

/** An image that exercises every filter: smooth gradients, noise, flat areas and a sharp edge. */
function testImage(width: number, height: number, channels: PngImage['channels'], seed: number): PngImage {
  const data = new Uint8Array(width * height * channels);
  let s = seed;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        const i = (y * width + x) * channels + c;
        if (y % 4 === 0)
          data[i] = (s >>> 16) & 0xff; // noise
        else if (y % 4 === 1)
          data[i] = (x * 7 + c * 50) & 0xff; // horizontal gradient
        else if (y % 4 === 2)
          data[i] = (y * 9 + c) & 0xff; // vertical gradient
        else data[i] = x < width / 2 ? 0 : 255; // edge
      }
    }
  }
  return { width, height, channels, data };
}

/** Decodes with pngjs (which checks CRCs) and returns [height, width, 4] RGBA. */
function decode(bytes: Uint8Array): { width: number; height: number; rgba: Uint8Array } {
  const png = PNG.sync.read(Buffer.from(bytes));
  return { width: png.width, height: png.height, rgba: new Uint8Array(png.data) };
}

/** What pngjs gives back for img: grey and RGB expanded to RGBA with an opaque alpha. */
function asRgba(img: PngImage): Uint8Array {
  const out = new Uint8Array(img.width * img.height * 4);
  for (let p = 0; p < img.width * img.height; p++) {
    const px = img.data.subarray(p * img.channels, (p + 1) * img.channels);
    const [r, g, b] = img.channels === 1 ? [px[0]!, px[0]!, px[0]!] : [px[0]!, px[1]!, px[2]!];
    out.set([r, g, b, img.channels === 4 ? px[3]! : 255], p * 4);
  }
  return out;
}

describe('encodePng', () => {
  const sizes: [number, number][] = [
    [1, 1],
    [7, 5],
    [13, 3],
    [3, 17],
    [64, 33],
  ];
  for (const channels of [1, 3, 4] as const) {
    it.each(sizes)(`${channels} channel(s), %ix%i: pngjs decodes the same pixels`, (width, height) => {
      const img = testImage(width, height, channels, width * 31 + height);
      const back = decode(encodePng(img));
      expect([back.width, back.height]).toEqual([width, height]);
      expect(back.rgba).toEqual(asRgba(img));
    });
  }

  it('records the colour type and bit depth in IHDR', () => {
    for (const [channels, colourType] of [
      [1, 0],
      [3, 2],
      [4, 6],
    ] as const) {
      const bytes = encodePng(testImage(2, 2, channels, 1));
      expect([bytes[24], bytes[25]]).toEqual([8, colourType]);
    }
  });

  it('chooses filters per row, so smooth images compress well', () => {
    const width = 256;
    const height = 64;
    const data = new Uint8Array(width * height * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 3) & 0xff;
    const bytes = encodePng({ width, height, channels: 3, data });
    expect(bytes.length).toBeLessThan(1000);
  });

  it('refuses data of the wrong length and bad sizes', () => {
    expect(() => encodePng({ width: 2, height: 2, channels: 3, data: new Uint8Array(11) })).toThrow(
      'encodePng: 11 bytes for a 2x2 image of 3 channels (needs 12)',
    );
    expect(() => encodePng({ width: 0, height: 2, channels: 1, data: new Uint8Array(0) })).toThrow('encodePng: width 0 is not a positive integer');
  });

  it('writes files that decode', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'io-png-'));
    try {
      const img = testImage(9, 4, 4, 3);
      await writePng(join(dir, 'a.png'), img);
      expect(decode(new Uint8Array(await readFile(join(dir, 'a.png')))).rgba).toEqual(asRgba(img));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
