import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { float32ToFloat16 } from '../src/io/float16.js';
import {
  decodeSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  serializeSafetensors,
  toFloat32,
  type TensorToWrite,
  writeSafetensors,
} from '../src/io/safetensors.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'io-safetensors-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A file from a header given as JSON text (not padded) and the data section. */
function rawFile(header: string, data: Uint8Array = new Uint8Array(0), length?: bigint): Uint8Array {
  const h = text(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/** What the Rust library writes for a header text: length, then the text padded with spaces to 8. */
function expectedHeader(json: string): Uint8Array {
  return rawFile(json + ' '.repeat((8 - (json.length % 8)) % 8));
}

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function join2(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The UserError message `fn` throws; fails the test on any other outcome. */
function userErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as UserError).message;
  }
  throw new Error('expected a UserError');
}

describe('serializeSafetensors: the byte layout of the reference implementation', () => {
  const six = new Float32Array([0, 1, 2, 3, 4, 5]);

  it('writes one F32 tensor as the Rust library does', () => {
    const out = serializeSafetensors({ 'attn.0': { dtype: 'F32', shape: [1, 2, 3], data: six } });
    const header = expectedHeader('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}');
    expect(header.length).toBe(8 + 64);
    expect(out).toEqual(join2(header, bytesOf(six)));
  });

  it('pads the header with spaces so data starts on a multiple of 8', () => {
    const out = serializeSafetensors({ attn0: { dtype: 'F32', shape: [1, 1, 2, 3], data: six } });
    const header = expectedHeader('{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}');
    expect(header.length).toBe(8 + 72);
    expect(out).toEqual(join2(header, bytesOf(six)));
  });

  it('writes empty files and __metadata__ first', () => {
    expect(serializeSafetensors({})).toEqual(expectedHeader('{}'));
    expect(serializeSafetensors({}, { framework: 'pt' })).toEqual(expectedHeader('{"__metadata__":{"framework":"pt"}}'));
  });

  it('orders tensors by dtype (largest items first), then by name, so every tensor is aligned', () => {
    const out = serializeSafetensors(
      {
        b_u8: { dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 3]) },
        z_f32: { dtype: 'F32', shape: [1], data: new Float32Array([1]) },
        a_f32: { dtype: 'F32', shape: [1], data: new Float32Array([2]) },
        h: { dtype: 'F16', shape: [1], data: new Uint16Array([0x3c00]) },
        i: { dtype: 'I32', shape: [], data: new Int32Array([7]) },
        l: { dtype: 'I64', shape: [1], data: new BigInt64Array([-1n]) },
      },
      { b: '2', a: '1' },
    );
    const json =
      '{"__metadata__":{"a":"1","b":"2"},"l":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},' +
      '"a_f32":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},"z_f32":{"dtype":"F32","shape":[1],"data_offsets":[12,16]},' +
      '"i":{"dtype":"I32","shape":[],"data_offsets":[16,20]},"h":{"dtype":"F16","shape":[1],"data_offsets":[20,22]},' +
      '"b_u8":{"dtype":"U8","shape":[3],"data_offsets":[22,25]}}';
    const header = expectedHeader(json);
    expect(out.subarray(0, header.length)).toEqual(header);
    expect(out.length).toBe(header.length + 25);
  });

  it('refuses tensors whose data does not fill the shape', () => {
    expect(() => serializeSafetensors({ w: { dtype: 'F32', shape: [2, 3], data: new Float32Array(5) } })).toThrow(
      "safetensors: tensor 'w': 5 values but shape [2, 3] holds 6",
    );
    expect(() => serializeSafetensors({ __metadata__: { dtype: 'U8', shape: [0], data: new Uint8Array(0) } })).toThrow('reserved');
  });
});

describe('round trips', () => {
  it('keeps every writable dtype, shape and the metadata', async () => {
    const w = Float32Array.from({ length: 12 }, (_, i) => (i - 5.5) / 3);
    const tensors: Record<string, TensorToWrite> = {
      W_enc: { dtype: 'F32', shape: [3, 4], data: w },
      W_half: { dtype: 'F16', shape: [4, 3], data: float32ToFloat16(w) },
      steps: { dtype: 'I64', shape: [2], data: new BigInt64Array([0n, -(2n ** 62n)]) },
      ids: { dtype: 'I32', shape: [2, 2], data: new Int32Array([-1, 0, 1, 2 ** 31 - 1]) },
      mask: { dtype: 'U8', shape: [5], data: new Uint8Array([0, 1, 255, 3, 4]) },
      empty: { dtype: 'F32', shape: [0, 7], data: new Float32Array(0) },
      scalar: { dtype: 'F32', shape: [], data: new Float32Array([Math.PI]) },
      view: { dtype: 'F32', shape: [2], data: w.subarray(3, 5) },
    };
    const f = join(dir, 'round.safetensors');
    await writeSafetensors(f, tensors, { format: 'pt', déjà: 'vu\n"quoted"' });
    const back = await readSafetensors(f);
    expect(back.metadata).toEqual({ format: 'pt', déjà: 'vu\n"quoted"' });
    expect([...back.tensors.keys()].sort()).toEqual(Object.keys(tensors).sort());
    for (const [name, t] of Object.entries(tensors)) {
      const got = back.tensors.get(name)!;
      expect([got.name, got.dtype, got.shape]).toEqual([name, t.dtype, t.shape]);
      expect(got.data).toEqual(t.data);
    }
    expect(toFloat32(back.tensors.get('W_enc')!, f)).toEqual(w);
    const half = toFloat32(back.tensors.get('W_half')!, f);
    for (let i = 0; i < w.length; i++) expect(half[i]).toBeCloseTo(w[i]!, 3);
    expect(userErrorOf(() => toFloat32(back.tensors.get('ids')!, f))).toBe(
      `${f}: tensor 'ids' has dtype I32, but a float tensor (F32, F16, BF16, F64) is needed`,
    );
  });

  it('reads only the header, with absolute offsets, even from a 3 GB file', async () => {
    const n = 3 * 2 ** 28; // 3 GiB of F32
    const json = `{"big":{"dtype":"F32","shape":[${n}],"data_offsets":[0,${4 * n}]}}`;
    const f = join(dir, 'big.safetensors');
    await writeFile(f, rawFile(json));
    await truncate(f, 8 + json.length + 4 * n); // sparse: takes no disk space
    const header = await readSafetensorsHeader(f);
    expect(header).toEqual({
      tensors: [{ name: 'big', dtype: 'F32', shape: [n], begin: 8 + json.length, end: 8 + json.length + 4 * n }],
      metadata: {},
      fileSize: 8 + json.length + 4 * n,
    });
    await rm(f);
  });

  it('reads dtypes it does not write: BF16, F64, I16, I8, BOOL', () => {
    const data = new Uint8Array(8 + 4 + 2 + 1 + 1);
    const view = new DataView(data.buffer);
    view.setFloat64(0, -0.1, true);
    view.setUint16(8, 0x3f80, true); // bfloat16 1.0
    view.setUint16(10, 0xc000, true); // bfloat16 -2.0
    view.setInt16(12, -300, true);
    view.setInt8(14, -5);
    view.setUint8(15, 1);
    const header =
      '{"d":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},' +
      '"s":{"dtype":"I16","shape":[1],"data_offsets":[12,14]},"c":{"dtype":"I8","shape":[1],"data_offsets":[14,15]},' +
      '"t":{"dtype":"BOOL","shape":[1],"data_offsets":[15,16]}}';
    const { tensors } = decodeSafetensors(rawFile(header, data), 'm.safetensors');
    expect(toFloat32(tensors.get('d')!, 'm')).toEqual(new Float32Array([-0.1]));
    expect(toFloat32(tensors.get('b')!, 'm')).toEqual(new Float32Array([1, -2]));
    expect(tensors.get('s')?.data).toEqual(new Int16Array([-300]));
    expect(tensors.get('c')?.data).toEqual(new Int8Array([-5]));
    expect(tensors.get('t')).toEqual({ name: 't', dtype: 'BOOL', shape: [1], data: new Uint8Array([1]) });
  });

  it('reads unaligned data (offsets the Rust library would not write)', () => {
    const data = new Uint8Array(1 + 4);
    new DataView(data.buffer).setFloat32(1, 2.5, true);
    const header = '{"pad":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"x":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}}';
    expect(decodeSafetensors(rawFile(header, data), 'u').tensors.get('x')?.data).toEqual(new Float32Array([2.5]));
  });
});

describe('corrupt files give one UserError naming the file and the problem', () => {
  const f = 'w.safetensors';
  const good = '{"W":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}';
  const data24 = new Uint8Array(24);
  const cases: [string, Uint8Array, string][] = [
    ['too short for a length', new Uint8Array(5), 'file is 5 bytes, too short for a safetensors file (needs at least 8)'],
    ['header length past the end', rawFile(good, data24, 99999n), `header length 99999 runs past the end of the file (${8 + good.length + 24} bytes)`],
    ['a huge header length', rawFile(good, data24, 2n ** 64n - 1n), 'header length 18446744073709551615 runs past the end of the file'],
    ['file cut inside the header', rawFile(good).subarray(0, 30), `header length ${good.length} runs past the end of the file (30 bytes)`],
    ['invalid JSON', rawFile('{"W": {"dtype": "F32",', data24), 'header is not valid JSON ('],
    ['not JSON at all', rawFile('PK\u0003\u0004 zip'), "header does not start with '{' (not a safetensors file?)"],
    ['invalid UTF-8', join2(rawFile('{"\u00ff"}').subarray(0, 10), new Uint8Array([0xff, 0xfe, 0x22, 0x7d])), 'header is not valid UTF-8'],
    [
      'unknown dtype',
      rawFile('{"W":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}', new Uint8Array(2)),
      "tensor 'W' has unsupported dtype 'F8_E4M3' (supported: I64, F64, F32, I32, BF16, F16, I16, I8, U8, BOOL)",
    ],
    ['missing dtype', rawFile('{"W":{"shape":[2],"data_offsets":[0,2]}}', new Uint8Array(2)), "tensor 'W' has no dtype"],
    ['entry not an object', rawFile('{"W":[1,2]}'), "tensor 'W': entry is a list, not an object"],
    [
      'negative shape',
      rawFile('{"W":{"dtype":"U8","shape":[-2],"data_offsets":[0,2]}}', new Uint8Array(2)),
      "tensor 'W' has an invalid shape (expected a list of non-negative integers)",
    ],
    ['fractional shape', rawFile('{"W":{"dtype":"U8","shape":[1.5],"data_offsets":[0,2]}}', new Uint8Array(2)), "tensor 'W' has an invalid shape"],
    [
      'offsets not a pair',
      rawFile('{"W":{"dtype":"U8","shape":[2],"data_offsets":[0]}}', new Uint8Array(2)),
      "tensor 'W' has invalid data_offsets (expected [begin, end], non-negative integers)",
    ],
    [
      'begin after end',
      rawFile('{"W":{"dtype":"U8","shape":[2],"data_offsets":[2,0]}}', new Uint8Array(2)),
      "tensor 'W' has data_offsets [2, 0] with begin after end",
    ],
    [
      'data shorter than the header says',
      rawFile(good, new Uint8Array(20)),
      "tensor 'W' has data_offsets [0, 24] past the end of the 20-byte data section (file truncated?)",
    ],
    [
      'shape that does not match the bytes',
      rawFile('{"W_enc":{"dtype":"F32","shape":[10,24],"data_offsets":[0,4000]}}', new Uint8Array(4000)),
      "tensor 'W_enc' has 4000 bytes of data but shape [10, 24] of F32 needs 960",
    ],
    [
      'shape whose size overflows',
      rawFile('{"W":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}', new Uint8Array(4)),
      "tensor 'W' has 4 bytes of data but shape [4294967296, 4294967296] of F32 is too large",
    ],
    [
      'overlapping tensors',
      rawFile('{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}', new Uint8Array(6)),
      "tensors 'a' [0, 4] and 'b' [2, 6] overlap",
    ],
    ['metadata not a map of strings', rawFile('{"__metadata__":{"lr":0.001}}'), "__metadata__ 'lr' is a number, not a string"],
    ['metadata a list', rawFile('{"__metadata__":["x"]}'), '__metadata__ is not a JSON object of strings'],
    ['header not an object', rawFile('{}').fill(0x5b, 8, 9).fill(0x5d, 9, 10), "header does not start with '{'"],
    ['a name with a newline', rawFile('{"bad\\nname":{"dtype":"X","shape":[],"data_offsets":[0,0]}}'), "tensor 'bad\\u000aname' has unsupported dtype 'X'"],
  ];
  it.each(cases)('%s', (_, bytes, problem) => {
    const message = userErrorOf(() => decodeSafetensors(bytes, f));
    expect(message.startsWith(`${f}: `)).toBe(true);
    expect(message).toContain(problem);
    expect(message).not.toContain('\n');
  });

  it('says so for a missing file, a folder, and a truncated file on disk', async () => {
    const missing = join(dir, 'missing.safetensors');
    await expect(readSafetensors(missing)).rejects.toThrow(new UserError(`${missing}: no such file`));
    await expect(readSafetensorsHeader(missing)).rejects.toThrow(new UserError(`${missing}: no such file`));
    await expect(readSafetensorsHeader(dir)).rejects.toThrow(new UserError(`${dir}: is a folder, not a file`));
    const cut = join(dir, 'cut.safetensors');
    await writeFile(cut, rawFile(good, data24).subarray(0, 40));
    await expect(readSafetensorsHeader(cut)).rejects.toThrow(new UserError(`${cut}: header length ${good.length} runs past the end of the file (40 bytes)`));
    await writeFile(cut, rawFile(good, data24).subarray(0, 8 + good.length + 10));
    await expect(readSafetensors(cut)).rejects.toThrow(
      new UserError(`${cut}: tensor 'W' has data_offsets [0, 24] past the end of the 10-byte data section (file truncated?)`),
    );
  });
});
