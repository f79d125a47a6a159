/**
 * GGUF reading and ggml dequantisation against the numpy oracle (tools/gen_gguf_reference.py, which
 * wrote test/fixtures/gguf/): every supported block type on every backend, bit for bit (the oracle,
 * the TypeScript reference and the native kernel all compute in float32 with one rounding per
 * operation in ggml's order, so the values are identical, -0 and infinities included); the tiny GGUF
 * files (v3 with alignment 64, v2 with the default 32): metadata of every value type, tensor infos,
 * tensor values; and malformed files, each a one-line UserError naming the file.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { DEQUANT_TYPES, GGML_BLOCKS, GGML_TYPE_IDS, type DequantType } from '../src/engine/dequant.js';
import type { Kernels } from '../src/engine/kernels.js';
import { loadNativeBinding, loadNativeKernels } from '../src/engine/native.js';
import { referenceKernels } from '../src/engine/reference.js';
import { GgufFile, type GgufValue } from '../src/io/gguf.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'gguf');
const native = loadNativeKernels(2);
const BACKENDS: readonly { name: string; kernels: Kernels | Error }[] = [
  { name: 'reference', kernels: referenceKernels },
  { name: 'native', kernels: native },
];
const skipNote = (k: Kernels | Error): string => (k instanceof Error ? ` (SKIPPED: ${k.message}; run npm run build:native)` : '');

function bytes(file: string): Uint8Array {
  return new Uint8Array(readFileSync(join(FIXTURES, file)));
}

/**
 * The float32 bits of each value, so that -0 differs from +0 and the comparison is exact; every NaN
 * as one (a NaN scale in random bytes: C keeps its payload, JavaScript may not).
 */
function bitsOf(x: Float32Array | readonly number[]): number[] {
  const f = Float32Array.from(x);
  return Array.from(new Uint32Array(f.buffer), (b, i) => (Number.isNaN(f[i]) ? 0x7fc00000 : b));
}

function expected(file: string): Float32Array {
  const b = bytes(file);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

/** A JSON number, or 'inf', '-inf', '-0' as the oracle writes them. */
function fromJson(v: number | string): number {
  return v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v === '-0' ? -0 : Number(v);
}

interface TinyJson {
  metadata: Record<string, { type: number; value: unknown }>;
  tensors: Record<string, { type: string; shape: number[]; values?: (number | string)[] }>;
}
const TINY = JSON.parse(readFileSync(join(FIXTURES, 'tiny.json'), 'utf8')) as TinyJson;

/** The oracle's JSON value as our reader returns it: 64-bit integers as bigint. */
function expectedValue(type: number, v: unknown): GgufValue {
  if (type === 10 || type === 11) return BigInt(v as string);
  if (type === 9) return (v as unknown[]).map((x) => expectedValue(-1, x));
  if (type === -1 && Array.isArray(v)) return v.map((x) => expectedValue(-1, x));
  return v as GgufValue;
}

describe.each(BACKENDS)('$name dequantisation', ({ name, kernels }) => {
  const run = kernels instanceof Error ? it.skip : it;
  it.each(DEQUANT_TYPES)(`%s equals the numpy oracle bit for bit${skipNote(kernels)}`, (type) => {
    if (kernels instanceof Error) return;
    const src = bytes(`blocks-${type}.bin`);
    const want = expected(`blocks-${type}.f32`);
    const out = new Float32Array(want.length).fill(NaN);
    kernels.dequantize(type, src, out);
    expect(bitsOf(out)).toEqual(bitsOf(want));
  });

  run(`rejects partial blocks and a wrong output length (${name})`, () => {
    if (kernels instanceof Error) return;
    expect(() => kernels.dequantize('Q4_K', new Uint8Array(143), new Float32Array(256))).toThrow(RangeError);
    expect(() => kernels.dequantize('Q4_K', new Uint8Array(144), new Float32Array(255))).toThrow(RangeError);
  });
});

describe(`native dequantisation on many blocks and threads${skipNote(native)}`, () => {
  const run = native instanceof Error ? it.skip : it;
  run('equals the reference on 2,000 random blocks of every type (multi-threaded path)', () => {
    if (native instanceof Error) return;
    let seed = 12345;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (const type of DEQUANT_TYPES) {
      const [values, size] = GGML_BLOCKS[type];
      const blocks = values === 1 ? 40_000 : 2_000;
      const src = new Uint8Array(blocks * size).map(random);
      // finite scales: clear the exponent's top bit of every float16 half-word (harmless for quants)
      if (type === 'F16' || type === 'BF16') for (let i = 1; i < src.length; i += 2) src[i]! &= 0x3f;
      if (type === 'F32') for (let i = 3; i < src.length; i += 4) src[i]! &= 0x3f;
      const a = new Float32Array(blocks * values);
      const b = new Float32Array(blocks * values);
      referenceKernels.dequantize(type, src, a);
      native.dequantize(type, src, b);
      expect(bitsOf(b), type).toEqual(bitsOf(a));
    }
  });

  run('checks its arguments', () => {
    const b = loadNativeBinding();
    if (b instanceof Error) return;
    expect(() => b.dequantize(GGML_TYPE_IDS.IQ3_S, new Uint8Array(110), new Float32Array(256))).toThrow(/dequantize: ggml type 21 cannot be dequantised/);
    expect(() => b.dequantize(GGML_TYPE_IDS.Q8_0, new Uint8Array(33), new Float32Array(32))).toThrow(/not whole blocks of 34/);
    expect(() => b.dequantize(GGML_TYPE_IDS.Q8_0, new Uint8Array(34), new Float32Array(31))).toThrow(/out has 31 elements/);
    const untyped = (...args: unknown[]): unknown => Reflect.apply(b.dequantize.bind(b), undefined, args);
    expect(() => untyped(GGML_TYPE_IDS.Q8_0, new Float32Array(34), new Float32Array(32))).toThrow('dequantize: src must be a Uint8Array, got a Float32Array');
    expect(() => untyped(1.5, new Uint8Array(2), new Float32Array(1))).toThrow(/type must be an integer/);
  });
});

describe.each([
  ['tiny-v3.gguf', 3, 64],
  ['tiny-v2.gguf', 2, 32],
] as const)('%s', (file, version, alignment) => {
  const path = join(FIXTURES, file);

  it('has the version, alignment and every metadata value of the oracle', async () => {
    const g = await GgufFile.open(path);
    try {
      expect(g.version).toBe(version);
      expect(g.alignment).toBe(alignment);
      expect(g.dataOffset % alignment).toBe(0);
      for (const [key, { type, value }] of Object.entries(TINY.metadata)) expect(g.metadata.get(key), key).toEqual(expectedValue(type, value));
      expect(g.metadata.size).toBe(Object.keys(TINY.metadata).length + (alignment === 32 ? 0 : 1));
      expect(g.string('test.string')).toBe('h\u00e9llo \u4e16\u754c');
      expect(g.number('test.u32')).toBe(4_000_000_000);
      expect(g.array('test.strings')).toEqual(['<unk>', '<s>', '\u2581the']);
      // 2^63 + 5 is not a safe integer: number() refuses it with a one-line error
      expect(() => g.number('test.u64')).toThrow(`${path}: metadata 'test.u64' must be a number, got bigint '9223372036854775813'`);
      expect(() => g.string('test.u8')).toThrow(/metadata 'test.u8' must be a string, got number '200'/);
      expect(() => g.array('missing')).toThrow(/metadata 'missing' must be an array, got missing/);
    } finally {
      await g.close();
    }
  });

  it.each(BACKENDS)('reads every tensor with the $name kernels', async ({ kernels }) => {
    if (kernels instanceof Error) return;
    const g = await GgufFile.open(path);
    try {
      expect([...g.tensors.keys()]).toEqual(Object.keys(TINY.tensors));
      for (const [name, t] of Object.entries(TINY.tensors)) {
        const info = g.tensor(name);
        expect(info.type).toBe(t.type);
        expect(info.shape).toEqual(t.shape);
        expect((info.offset - g.dataOffset) % alignment).toBe(0);
        if (!t.values) continue;
        const values = await g.read(name, kernels);
        expect(bitsOf(values), name).toEqual(bitsOf(t.values.map(fromJson)));
        const rows = t.shape[0]!;
        if (rows > 1) {
          const row = values.length / rows;
          expect(bitsOf(await g.readRows(name, 1, rows - 1, kernels))).toEqual(bitsOf(values.subarray(row)));
        }
      }
      await expect(g.read('t.iq3_s', kernels)).rejects.toThrow(
        `${path}: tensor 't.iq3_s' has type IQ3_S, which we cannot dequantise (supported: ${DEQUANT_TYPES.join(', ')})`,
      );
      // without kernels: the engine's choice (native when the addon loads, else the reference)
      expect(bitsOf(await g.read('t.iq2_xxs'))).toEqual(bitsOf(TINY.tensors['t.iq2_xxs']!.values!.map(fromJson)));
      await expect(g.read('nope', kernels)).rejects.toThrow(/no tensor 'nope' \(it has 8 tensors: 't.f32'/);
      await expect(g.readRows('t.q8_0', 1, 2, kernels)).rejects.toThrow(/rows \[1, 3\) of tensor 't.q8_0' are out of its 2 rows/);
    } finally {
      await g.close();
    }
  });
});

describe('malformed GGUF files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gguf-test-'));
  const good = bytes('tiny-v3.gguf');
  const at = (text: string): number => Buffer.from(good).indexOf(text);
  /** Where a tensor info's name starts (found with its u64 length, as metadata keys contain the same text). */
  const info = (name: string): number => {
    const prefixed = Buffer.alloc(8 + name.length);
    prefixed.writeBigUInt64LE(BigInt(name.length));
    prefixed.write(name, 8);
    return Buffer.from(good).indexOf(prefixed) + 8;
  };
  const tensorField = info('t.f32') + 5 + 4 + 16; // after the name, n_dims and two dims: the type, then the offset

  /** Makes the bytes of a broken file from a copy `b` of tiny-v3.gguf: returns them, or edits `b` in place. */
  type Edit = ((b: Uint8Array, v: DataView) => Uint8Array) | ((b: Uint8Array, v: DataView) => void);

  /** A copy of tiny-v3.gguf changed by `edit`, written to the temp folder. */
  function variant(name: string, edit: Edit): string {
    const b = Uint8Array.from(good);
    const out = edit(b, new DataView(b.buffer)) ?? b;
    const path = join(dir, `${name}.gguf`);
    writeFileSync(path, out);
    return path;
  }

  const CASES: readonly [string, Edit, RegExp][] = [
    ['not-gguf', (b) => b.set([0x50, 0x4b, 0x03, 0x04]), /not a GGUF file \(it does not start with "GGUF"\)/],
    ['empty', (b) => b.subarray(0, 0), /not a GGUF file/],
    ['version-1', (_b, v) => v.setUint32(4, 1, true), /GGUF version 1 is not supported \(only versions 2 and 3\)/],
    ['version-4', (_b, v) => v.setUint32(4, 4, true), /GGUF version 4 is not supported/],
    ['big-endian', (_b, v) => v.setUint32(4, 0x03000000, true), /big-endian GGUF file, which is not supported/],
    ['cut-header', (b) => b.subarray(0, 12), /truncated header: file ends at byte 12/],
    ['cut-value', (b) => b.subarray(0, at('test.u64') + 8 + 4 + 3), /truncated metadata: file ends at byte \d+, 8 more bytes needed/],
    ['cut-metadata', (b) => b.subarray(0, 200), /truncated or corrupt header: the tensor count is 8, more than the 184 bytes left can hold/],
    ['cut-infos', (b) => b.subarray(0, info('t.q8_0') + 2), /truncated or corrupt tensor infos: a string length is 6, more than the 2 bytes left can hold/],
    ['cut-data', (b) => b.subarray(0, b.length - 40), /tensor 't.iq3_s': its data \(110 bytes at \d+\) runs past the end of the file at \d+ \(truncated\?\)/],
    [
      'tensor-count',
      (_b, v) => v.setBigUint64(8, 1n << 60n, true),
      /truncated or corrupt header: the tensor count is 1152921504606846976, more than the \d+ bytes left can hold/,
    ],
    ['kv-count', (_b, v) => v.setBigUint64(16, 1n << 40n, true), /truncated or corrupt header: the metadata count is 1099511627776/],
    [
      'string-length',
      (_b, v) => v.setBigUint64(at('general.architecture') + 24, 1n << 62n, true),
      /truncated or corrupt metadata: a string length is 4611686018427387904/,
    ],
    [
      'array-length',
      (_b, v) => v.setBigUint64(at('test.strings') + 12 + 8, 1n << 40n, true),
      /truncated or corrupt metadata: an array length is 1099511627776, more than/,
    ],
    ['value-type', (_b, v) => v.setUint32(at('test.u8') + 7, 99, true), /corrupt metadata: unknown value type 99/],
    ['item-type', (_b, v) => v.setUint32(at('test.strings') + 12 + 4, 77, true), /corrupt metadata: unknown array item type 77/],
    ['bool', (b) => void (b[at('test.bool') + 9 + 4] = 7), /corrupt metadata: a bool is 7/],
    ['utf8', (b) => void (b[at('test.string') + 11 + 12] = 0xff), /corrupt metadata: a string at byte \d+ is not UTF-8/],
    ['ggml-type', (_b, v) => v.setUint32(tensorField, 250, true), /tensor 't.f32' has an unknown ggml type 250/],
    ['n-dims', (_b, v) => v.setUint32(info('t.f32') + 5, 9, true), /tensor 't.f32' has 9 dimensions \(at most 4\)/],
    [
      'block-shape',
      (_b, v) => v.setBigUint64(info('t.q8_0') + 6 + 4, 48n, true),
      /tensor 't.q8_0': its first ggml dimension 48 is not a multiple of Q8_0's block size 32/,
    ],
    ['unaligned', (_b, v) => v.setBigUint64(tensorField + 4, 8n, true), /tensor 't.f32': data offset 8 is not a multiple of the alignment 64/],
    ['offset-past-end', (_b, v) => v.setBigUint64(tensorField + 4, 1n << 40n, true), /tensor 't.f32': its data \(24 bytes at \d+\) runs past the end/],
    ['alignment', (_b, v) => v.setUint32(at('general.alignment') + 17 + 4, 48, true), /general.alignment must be a power of two, got number '48'/],
  ];

  it.each(CASES)('%s: one line naming the file', async (name, edit, message) => {
    const path = variant(name, edit);
    const err = await GgufFile.open(path).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UserError);
    const text = (err as Error).message;
    expect(text.startsWith(`${path}: `), text).toBe(true);
    expect(text).not.toContain('\n');
    expect(text).toMatch(message);
  });

  it('a missing file and a folder', async () => {
    await expect(GgufFile.open(join(dir, 'missing.gguf'))).rejects.toThrow(UserError);
    await expect(GgufFile.open(dir)).rejects.toThrow(/is a folder, not a file/);
  });
});

// Every dequantisable type has a fixture (a new type must come with its oracle).
it('the fixtures cover every dequantisable type', () => {
  for (const type of DEQUANT_TYPES satisfies readonly DequantType[]) expect(bytes(`blocks-${type}.bin`).length % GGML_BLOCKS[type][1]).toBe(0);
});
