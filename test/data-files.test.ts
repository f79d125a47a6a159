import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Dataset } from '../src/data/dataset.js';
import { openDataset } from '../src/store/open.js';
import { Engine } from '../src/engine/index.js';
import { UserError } from '../src/errors.js';
import { float32ToFloat16 } from '../src/io/float16.js';
import { serializeNpy } from '../src/io/npy.js';
import { writeSafetensors } from '../src/io/safetensors.js';

let dir: string;
let engine: Engine;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'data-files-'));
  engine = new Engine({ kernels: 'reference', threads: 1 });
});
afterAll(async () => {
  await engine.release();
  await rm(dir, { recursive: true, force: true });
});

/** [rows, width] with x[r, c] = r + c / 8 - 7: exact in float16 and bfloat16 for these sizes. */
function table(rows: number, width: number): Float32Array {
  return Float32Array.from({ length: rows * width }, (_, i) => Math.floor(i / width) + (i % width) / 8 - 7);
}

async function readAll(ds: Dataset): Promise<Float32Array> {
  const out = new Float32Array(ds.rows * ds.dIn);
  await ds.read(0, ds.rows, out);
  return out;
}

/** A .npy of float16 (serializeNpy writes float32 only): its header with '<f2', then the half bits. */
function npyFloat16(data: Float32Array, shape: number[]): Uint8Array {
  const f32 = serializeNpy(new Float32Array(data.length), shape);
  const headerEnd = f32.length - data.length * 4;
  const header = new TextDecoder('latin1').decode(f32.subarray(0, headerEnd)).replace("'<f4'", "'<f2'");
  const half = float32ToFloat16(data);
  const out = new Uint8Array(headerEnd + half.byteLength);
  out.set(Uint8Array.from(header, (c) => c.charCodeAt(0)));
  out.set(new Uint8Array(half.buffer), headerEnd);
  return out;
}

async function expectUserError(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof UserError)) throw new Error(`expected a UserError, got ${String(err)}`);
  expect(err.message).toMatch(pattern);
  expect(err.message).not.toContain('\n');
}

describe('npy', () => {
  it('reads float32 rows of an odd width, from any start', async () => {
    const x = table(37, 13);
    const path = join(dir, 'odd.npy');
    await writeFile(path, serializeNpy(x, [37, 13]));
    const ds = await openDataset({ path }, engine);
    expect([ds.rows, ds.dIn, ds.name]).toEqual([37, 13, path]);
    expect(ds.description).toMatchObject({ format: 'npy', dtype: '<f4', shape: [37, 13] });
    expect(await readAll(ds)).toEqual(x);
    const part = new Float32Array(5 * 13);
    await ds.read(30, 5, part);
    expect(part).toEqual(x.subarray(30 * 13, 35 * 13));
    await expect(ds.read(35, 3, part)).rejects.toThrow(RangeError);
    await ds.close();
  });

  it('widens float16 exactly', async () => {
    const x = table(9, 7);
    x[3] = 65504; // the largest half
    x[4] = -Infinity;
    x[5] = 2 ** -24; // the smallest subnormal
    const path = join(dir, 'half.npy');
    await writeFile(path, npyFloat16(x, [9, 7]));
    const ds = await openDataset({ path }, engine);
    expect(ds.description).toMatchObject({ dtype: '<f2' });
    expect(await readAll(ds)).toEqual(x);
    await ds.close();
  });

  it('refuses a 1-D array and an integer array', async () => {
    await writeFile(join(dir, 'flat.npy'), serializeNpy(new Float32Array(4), [4]));
    await expectUserError(openDataset({ path: join(dir, 'flat.npy') }, engine), /flat\.npy: .*shape \[4\]; data must be 2-D, \[rows, width\]/);
    await writeFile(join(dir, 'int.npy'), serializeNpy(new Int32Array(4), [2, 2]));
    await expectUserError(openDataset({ path: join(dir, 'int.npy') }, engine), /int\.npy: dtype <i4 is not supported/);
  });
});

describe('safetensors', () => {
  it('reads the only tensor, F32, F16 and BF16', async () => {
    const x = table(11, 5);
    await writeSafetensors(join(dir, 'one.safetensors'), { acts: { dtype: 'F32', shape: [11, 5], data: x } });
    const ds = await openDataset({ path: join(dir, 'one.safetensors') }, engine);
    expect(ds.description).toMatchObject({ format: 'safetensors', tensor: 'acts', dtype: 'F32' });
    expect(await readAll(ds)).toEqual(x);
    await ds.close();

    await writeSafetensors(join(dir, 'half.safetensors'), { h: { dtype: 'F16', shape: [11, 5], data: float32ToFloat16(x) } });
    const half = await openDataset({ path: join(dir, 'half.safetensors') }, engine);
    expect(await readAll(half)).toEqual(x);
    await half.close();
  });

  it('reads BF16 (the top half of float32)', async () => {
    const x = table(4, 3);
    const bits = new Uint16Array(x.length);
    const words = new Uint32Array(x.buffer);
    for (let i = 0; i < x.length; i++) bits[i] = words[i]! >>> 16;
    const path = join(dir, 'bf16.safetensors');
    // writeSafetensors writes no BF16: the file is built by hand.
    const json = new TextEncoder().encode(JSON.stringify({ b: { dtype: 'BF16', shape: [4, 3], data_offsets: [0, bits.byteLength] } }));
    const file = new Uint8Array(8 + json.length + bits.byteLength);
    new DataView(file.buffer).setBigUint64(0, BigInt(json.length), true);
    file.set(json, 8);
    file.set(new Uint8Array(bits.buffer), 8 + json.length);
    await writeFile(path, file);
    const ds = await openDataset({ path }, engine);
    expect(await readAll(ds)).toEqual(x);
    await ds.close();
  });

  it('chooses a tensor by name, and says which exist when the name is missing or needed', async () => {
    const path = join(dir, 'many.safetensors');
    const a = table(3, 2);
    const b = table(5, 4);
    await writeSafetensors(path, { a: { dtype: 'F32', shape: [3, 2], data: a }, b: { dtype: 'F32', shape: [5, 4], data: b } });
    const ds = await openDataset({ path, tensor: 'b' }, engine);
    expect([ds.rows, ds.dIn]).toEqual([5, 4]);
    expect(await readAll(ds)).toEqual(b);
    await ds.close();
    await expectUserError(openDataset({ path }, engine), /many\.safetensors: the file holds 2 tensors \('a', 'b'\); choose one with --tensor/);
    await expectUserError(openDataset({ path, tensor: 'c' }, engine), /many\.safetensors: no tensor named 'c'; it holds 'a', 'b'/);
  });

  it('refuses a tensor that is not 2-D float', async () => {
    const path = join(dir, 'bad.safetensors');
    await writeSafetensors(path, { v: { dtype: 'F32', shape: [6], data: new Float32Array(6) }, i: { dtype: 'I32', shape: [2, 3], data: new Int32Array(6) } });
    await expectUserError(openDataset({ path, tensor: 'v' }, engine), /tensor 'v' has shape \[6\]; data must be 2-D/);
    await expectUserError(openDataset({ path, tensor: 'i' }, engine), /tensor 'i' has dtype I32/);
  });
});

describe('raw float32', () => {
  it('reads rows of the given width', async () => {
    const x = table(10, 3);
    const path = join(dir, 'rows.f32');
    await writeFile(path, new Uint8Array(x.buffer));
    const ds = await openDataset({ path, width: 3 }, engine);
    expect([ds.rows, ds.dIn]).toEqual([10, 3]);
    expect(await readAll(ds)).toEqual(x);
    await ds.close();
    const named = await openDataset({ path, format: 'raw', width: 5 }, engine);
    expect(named.rows).toBe(6);
    await named.close();
  });

  it('needs a width that divides the file', async () => {
    const path = join(dir, 'odd.bin');
    await writeFile(path, new Uint8Array(28));
    await expectUserError(openDataset({ path }, engine), /odd\.bin: raw float32 data needs a width/);
    await expectUserError(openDataset({ path, width: 2 }, engine), /odd\.bin: the file has 28 bytes, which is not a multiple of width \* 4 = 8 bytes/);
  });
});

describe('openDataset errors', () => {
  it('names a missing file', async () => {
    await expectUserError(openDataset({ path: join(dir, 'nope.npy') }, engine), /nope\.npy: no such file$/);
    await expectUserError(openDataset({ path: join(dir, 'nope.dat') }, engine), /nope\.dat: no such file$/);
    await expectUserError(openDataset({ path: join(dir, 'nope.bin'), width: 4 }, engine), /nope\.bin: no such file$/);
  });

  it('lists the formats for an unknown extension', async () => {
    await writeFile(join(dir, 'x.csv'), 'a,b\n');
    await expectUserError(openDataset({ path: join(dir, 'x.csv') }, engine), /x\.csv: unknown data format '\.csv': use \.npy, \.safetensors, raw float32/);
  });

  it('refuses an empty dataset', async () => {
    await writeFile(join(dir, 'empty.npy'), serializeNpy(new Float32Array(0), [0, 8]));
    await expectUserError(openDataset({ path: join(dir, 'empty.npy') }, engine), /empty\.npy: the dataset is empty$/);
    await writeFile(join(dir, 'empty.f32'), new Uint8Array(0));
    await expectUserError(openDataset({ path: join(dir, 'empty.f32'), width: 4 }, engine), /empty\.f32: the dataset is empty$/);
  });

  it('detects a file truncated after its header was written', async () => {
    const path = join(dir, 'cut.safetensors');
    await writeSafetensors(path, { t: { dtype: 'F32', shape: [4, 4], data: new Float32Array(16) } });
    const bytes = await readFile(path);
    await writeFile(path, bytes.subarray(0, bytes.length - 8));
    await expectUserError(openDataset({ path }, engine), /cut\.safetensors: /);
  });
});
