import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { decodeNpy, readNpy, readNpyHeader, serializeNpy } from '../src/io/npy.js';
import { decodeSafetensors, readSafetensors, readSafetensorsHeader, serializeSafetensors } from '../src/io/safetensors.js';
import { Rng } from '../src/rng.js';

/**
 * Random truncations and byte changes of valid files: the parsers may accept the result or throw a
 * UserError, never anything else (RangeError, SyntaxError, a DataView or typed-array error).
 */

const safetensorsFile = serializeSafetensors(
  {
    W_enc: { dtype: 'F32', shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => i / 7) },
    W_dec: { dtype: 'F16', shape: [4, 3], data: new Uint16Array(12).fill(0x3c00) },
    steps: { dtype: 'I64', shape: [1], data: new BigInt64Array([5n]) },
    ids: { dtype: 'I32', shape: [2], data: new Int32Array([1, 2]) },
    mask: { dtype: 'U8', shape: [3], data: new Uint8Array([1, 0, 1]) },
  },
  { format: 'pt', note: 'fuzz' },
);
const npyFiles = [
  serializeNpy(
    Float32Array.from({ length: 15 }, (_, i) => i),
    [3, 5],
  ),
  serializeNpy(new Int32Array([1, 2, 3]), [3]),
  serializeNpy(new Uint8Array([7]), []),
];

/** Bytes that steer a JSON or Python-literal parser into its rarer paths. */
const INTERESTING = Array.from('{}[]()"\':,-0123456789eE.L \n', (c) => c.charCodeAt(0)).concat([0, 0x7f, 0x80, 0xff]);

function mutate(src: Uint8Array, rng: Rng, headerEnd: number): Uint8Array {
  if (rng.uniform() < 0.3) return src.slice(0, rng.int(src.length + 1));
  const out = src.slice();
  const flips = 1 + rng.int(4);
  for (let k = 0; k < flips; k++) {
    const at = rng.uniform() < 0.8 ? rng.int(headerEnd) : rng.int(out.length);
    out[at] = rng.uniform() < 0.6 ? INTERESTING[rng.int(INTERESTING.length)]! : rng.int(256);
  }
  return out;
}

/** Non-UserError failures, described; empty when all is well. */
function strayErrors(decode: () => unknown, label: string, strays: string[]): void {
  try {
    decode();
  } catch (err) {
    if (!(err instanceof UserError)) strays.push(`${label}: ${String(err)}`);
  }
}

describe('fuzz: corrupt files only ever give UserErrors', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'io-fuzz-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('safetensors, in memory', () => {
    const rng = new Rng(1);
    const headerEnd = 8 + Number(new DataView(safetensorsFile.buffer).getBigUint64(0, true));
    const strays: string[] = [];
    let accepted = 0;
    for (let i = 0; i < 3000; i++) {
      const bytes = mutate(safetensorsFile, rng, headerEnd);
      strayErrors(
        () => {
          decodeSafetensors(bytes, 'f.safetensors');
          accepted++;
        },
        `case ${i}`,
        strays,
      );
    }
    expect(strays).toEqual([]);
    expect(accepted).toBeGreaterThan(0); // some changes only touch data or padding
  });

  it('npy, in memory', () => {
    const rng = new Rng(2);
    const strays: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const file = npyFiles[i % npyFiles.length]!;
      const bytes = mutate(file, rng, 128);
      strayErrors(() => decodeNpy(bytes, 'f.npy'), `case ${i}`, strays);
    }
    expect(strays).toEqual([]);
  });

  it('both, through files (header-only and whole-file readers)', async () => {
    const rng = new Rng(3);
    const strays: string[] = [];
    const f = join(dir, 'f');
    for (let i = 0; i < 150; i++) {
      const npy = i % 2 === 0;
      await writeFile(f, npy ? mutate(npyFiles[0]!, rng, 128) : mutate(safetensorsFile, rng, 200));
      const readers = npy ? [readNpyHeader, readNpy] : [readSafetensorsHeader, readSafetensors];
      for (const read of readers) {
        await read(f).catch((err: unknown) => {
          if (!(err instanceof UserError)) strays.push(`case ${i}, ${read.name}: ${String(err)}`);
        });
      }
    }
    expect(strays).toEqual([]);
  });
});
