import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { decodeNpy, decodeNpyArray, readNpy, readNpyArray, readNpyHeader, serializeNpy, writeNpy } from '../src/io/npy.js';

/** Files written by numpy 1.24 (np.save, and write_array with version=(2, 0) and (3, 0)). */
const fixtures = join(import.meta.dirname, 'fixtures', 'io');
const fixture = (name: string): string => join(fixtures, name);
/** The values every 2x3 float fixture holds: (arange(6) - 2.5) / 4, exact in float16. */
const values = Float32Array.from({ length: 6 }, (_, i) => (i - 2.5) / 4);

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'io-npy-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A .npy file (version 1.0) with the given header text, unpadded, and data. */
function rawNpy(header: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(10 + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(data, 10 + header.length);
  return out;
}

const header23 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";

describe('reading files numpy wrote', () => {
  it.each(['f4.npy', 'f2.npy', 'f8.npy', 'v2.npy', 'v3.npy'])('%s as float32', async (name) => {
    expect(await readNpy(fixture(name))).toEqual({ shape: [2, 3], data: values });
  });

  it('reads integer arrays with their own types', async () => {
    expect(await readNpyArray(fixture('i4.npy'))).toEqual({ descr: '<i4', shape: [2, 3], data: new Int32Array([-3, -2, -1, 0, 1, 2]) });
    expect(await readNpyArray(fixture('i8.npy'))).toEqual({ descr: '<i8', shape: [2, 3], data: new BigInt64Array([-3n, -2n, -1n, 0n, 1n, 2n]) });
    expect(await readNpyArray(fixture('u1.npy'))).toEqual({ descr: '|u1', shape: [2, 3], data: new Uint8Array([250, 251, 252, 253, 254, 255]) });
  });

  it('reads 0-d and empty arrays', async () => {
    expect(await readNpy(fixture('scalar.npy'))).toEqual({ shape: [], data: new Float32Array([1.5]) });
    expect(await readNpy(fixture('empty.npy'))).toEqual({ shape: [0, 3], data: new Float32Array(0) });
  });

  it('gives the header and data offset without reading the data', async () => {
    expect(await readNpyHeader(fixture('f4.npy'))).toEqual({ descr: '<f4', shape: [2, 3], dataOffset: 128, fileSize: 152 });
    expect(await readNpyHeader(fixture('v2.npy'))).toMatchObject({ dataOffset: 128 });
  });

  it('refuses big-endian, Fortran-order, complex and integer-as-float arrays, saying what to do', async () => {
    const cases: [string, string][] = [
      ['big-endian.npy', "big-endian dtype '>f4' is not supported (save a.astype('<f4') instead)"],
      ['fortran.npy', 'Fortran-order arrays are not supported (save np.ascontiguousarray(a) instead)'],
      ['complex.npy', "unsupported dtype '<c8' (supported: <f4, <f2, <f8, |u1, <i4, <i8)"],
      ['i4.npy', "dtype '<i4' holds integers, but a float array (<f4, <f2, <f8) is needed"],
    ];
    for (const [name, problem] of cases) {
      await expect(readNpy(fixture(name))).rejects.toThrow(new UserError(`${fixture(name)}: ${problem}`));
    }
  });
});

describe('decoding bytes in memory', () => {
  it('a Node Buffer from readFile (a view into a shared pool) decodes to exactly its own values', async () => {
    const path = join(await mkdtemp(join(tmpdir(), 'sae-npy-')), 'x.npy');
    const x = Float32Array.from({ length: 128 }, (_, i) => i / 7);
    await writeNpy(path, x, [32, 4]);
    const bytes = Buffer.concat([Buffer.from('padding'), await readFile(path)]).subarray(7);
    expect(decodeNpyArray(bytes, path).data).toEqual(x);
    expect(decodeNpy(bytes, path).data).toEqual(x);
  });
});

describe('writing', () => {
  it('writes the same bytes as np.save', async () => {
    expect(serializeNpy(values, [2, 3])).toEqual(new Uint8Array(await readFile(fixture('f4.npy'))));
    const ints = new Int32Array([-3, -2, -1, 0, 1, 2]);
    expect(serializeNpy(ints, [2, 3])).toEqual(new Uint8Array(await readFile(fixture('i4.npy'))));
    const bytes = new Uint8Array([250, 251, 252, 253, 254, 255]);
    expect(serializeNpy(bytes, [2, 3])).toEqual(new Uint8Array(await readFile(fixture('u1.npy'))));
    expect(serializeNpy(new Float32Array([1.5]), [])).toEqual(new Uint8Array(await readFile(fixture('scalar.npy'))));
    expect(serializeNpy(new Float32Array(0), [0, 3])).toEqual(new Uint8Array(await readFile(fixture('empty.npy'))));
  });

  it('round-trips f4, i4 and u1 through files, 1-d and 3-d', async () => {
    const f = join(dir, 'x.npy');
    const big = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i));
    await writeNpy(f, big, [1000]);
    expect(await readNpy(f)).toEqual({ shape: [1000], data: big });
    const ints = Int32Array.from({ length: 24 }, (_, i) => i * 1000003 - 7);
    await writeNpy(f, ints, [2, 3, 4]);
    expect(await readNpyArray(f)).toEqual({ descr: '<i4', shape: [2, 3, 4], data: ints });
    const header = await readNpyHeader(f);
    expect(header.dataOffset % 64).toBe(0);
    await writeNpy(f, new Uint8Array([9, 8, 7]), [3, 1]);
    expect(await readNpyArray(f)).toEqual({ descr: '|u1', shape: [3, 1], data: new Uint8Array([9, 8, 7]) });
  });

  it('writes views of larger buffers', () => {
    const whole = new Float32Array([9, 1, 2, 9]);
    expect(decodeNpy(serializeNpy(whole.subarray(1, 3), [2]), 'v.npy')).toEqual({ shape: [2], data: new Float32Array([1, 2]) });
  });

  it('refuses data that does not fill the shape', () => {
    expect(() => serializeNpy(new Float32Array(5), [2, 3])).toThrow('serializeNpy: 5 values do not fill shape [2, 3]');
  });
});

describe('header literals', () => {
  it('accepts what other writers produce: double quotes, no trailing comma, Python 2 longs, u1 byte orders', () => {
    const data = new Uint8Array(6);
    const shapes: [string, number[]][] = [
      ['{"descr": "|u1", "fortran_order": False, "shape": (2L, 3L)}', [2, 3]],
      ["{'shape': (6,), 'fortran_order': True, 'descr': '<u1'}", [6]],
      ["{'descr':'u1','fortran_order':False,'shape':[1,2,3]}\n", [1, 2, 3]],
    ];
    for (const [header, shape] of shapes) expect(decodeNpyArray(rawNpy(header, data), 'h.npy')).toMatchObject({ descr: '|u1', shape });
  });
});

describe('corrupt files give one UserError naming the file and the problem', () => {
  const f = 'data.npy';
  const good = rawNpy(header23, new Uint8Array(24));
  const withVersion = (major: number): Uint8Array => good.slice().fill(major, 6, 7);
  const cases: [string, Uint8Array, string][] = [
    ['bad magic', new TextEncoder().encode('PK\u0003\u0004 not numpy at all'), 'not a .npy file (bad magic bytes)'],
    ['empty file', new Uint8Array(0), 'file is 0 bytes, too short for a .npy header'],
    ['cut inside the prefix', good.subarray(0, 8), 'file is 8 bytes, too short for a .npy header'],
    ['unknown version', withVersion(4), 'unsupported .npy version 4.0 (supported: 1.0, 2.0, 3.0)'],
    ['header length past the end', good.subarray(0, 40), `header length ${header23.length} runs past the end of the file (40 bytes)`],
    ['data shorter than the shape', good.subarray(0, good.length - 4), 'has 20 bytes of data but shape [2, 3] of <f4 needs 24 (file truncated?)'],
    ['data longer than the shape', rawNpy(header23, new Uint8Array(28)), 'has 28 bytes of data but shape [2, 3] of <f4 needs 24'],
    [
      'shape too large',
      rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"),
      'has 0 bytes of data but shape [4294967296, 4294967296] of <f4 is too large',
    ],
    ['not a dict', rawNpy("['descr', '<f4']"), 'header is not a Python dict'],
    [
      'invalid literal',
      rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3) }}"),
      'header is not a valid Python dict literal (text after the dict at character',
    ],
    [
      'code instead of a literal',
      rawNpy("{'descr': __import__('os').system('x')}"),
      'header is not a valid Python dict literal (unexpected character at character 10)',
    ],
    ['unterminated string', rawNpy("{'descr: '<f4'}"), 'header is not a valid Python dict literal'],
    ['deep nesting', rawNpy(`{'shape': ${'('.repeat(100)}${')'.repeat(100)}}`), 'header is not a valid Python dict literal (nesting too deep at character'],
    ['missing shape', rawNpy("{'descr': '<f4', 'fortran_order': False}"), "header lacks one of 'descr', 'fortran_order', 'shape'"],
    ['negative shape', rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3)}"), "header 'shape' is not a tuple of non-negative integers"],
    ['fortran_order not a bool', rawNpy("{'descr': '<f4', 'fortran_order': 0, 'shape': (0,)}"), "header 'fortran_order' is not True or False"],
    ['structured dtype', rawNpy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (0,)}"), 'structured dtypes are not supported'],
  ];
  it.each(cases)('%s', (_, bytes, problem) => {
    let message = '';
    try {
      decodeNpyArray(bytes, f);
    } catch (err) {
      expect(err).toBeInstanceOf(UserError);
      message = (err as Error).message;
    }
    expect(message).toContain(`${f}: ${problem}`);
    expect(message).not.toContain('\n');
  });

  it('says so for a missing file and a truncated file on disk', async () => {
    const missing = join(dir, 'missing.npy');
    await expect(readNpy(missing)).rejects.toThrow(new UserError(`${missing}: no such file`));
    await expect(readNpyHeader(missing)).rejects.toThrow(new UserError(`${missing}: no such file`));
    const cut = join(dir, 'cut.npy');
    await writeFile(cut, (await readFile(fixture('f4.npy'))).subarray(0, 140));
    await expect(readNpyHeader(cut)).rejects.toThrow(new UserError(`${cut}: has 12 bytes of data but shape [2, 3] of <f4 needs 24 (file truncated?)`));
    await writeFile(cut, (await readFile(fixture('f4.npy'))).subarray(0, 60));
    await expect(readNpy(cut)).rejects.toThrow(new UserError(`${cut}: header length 118 runs past the end of the file (60 bytes)`));
  });
});
