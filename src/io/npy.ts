/**
 * NumPy .npy files (numpy.lib.format):
 *
 *   "\x93NUMPY" [major] [minor] [header length: u16 LE (1.0) or u32 LE (2.0, 3.0)]
 *   [header: a Python dict literal, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 *    padded with spaces and a final newline so that the data starts on a multiple of 64]
 *   [data: product(shape) items, C order]
 *
 * The header is parsed by a small literal parser (never evaluated). Recognised dtypes: <f4, <f2,
 * <f8, |u1, <i4, <i8. Big-endian and Fortran-order arrays are refused with a message saying how to
 * convert them. Data is little-endian, as on every host Node runs on but s390x.
 */
import { float16ToFloat32 } from './float16.js';
import { byteSizeOf, concatBytes, formatShape, openForReading, quoteName, readExactly, readWholeFile, writeFileAtomic } from './atomic.js';
import { fileError } from '../errors.js';

export type NpyDescr = '<f4' | '<f2' | '<f8' | '|u1' | '<i4' | '<i8';

/** The typed array for each dtype (<f2 as raw float16 bit patterns). */
export interface NpyArrays {
  '<f4': Float32Array;
  '<f2': Uint16Array;
  '<f8': Float64Array;
  '|u1': Uint8Array;
  '<i4': Int32Array;
  '<i8': BigInt64Array;
}

const ITEM_SIZE = { '<f4': 4, '<f2': 2, '<f8': 8, '|u1': 1, '<i4': 4, '<i8': 8 } as const satisfies Record<NpyDescr, number>;
const SUPPORTED = Object.keys(ITEM_SIZE).join(', ');

export interface NpyHeader {
  descr: NpyDescr;
  shape: number[];
  /** Absolute offset of the first data byte. */
  dataOffset: number;
  fileSize: number;
}

export type NpyArray = { [D in NpyDescr]: { descr: D; shape: number[]; data: NpyArrays[D] } }[NpyDescr];

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** Bytes before the header text: magic, version, and the length field of a 2.0/3.0 file. */
const PREFIX_MAX = 12;
/** numpy refuses headers over 10000 bytes by default; we allow more, but not unbounded. */
export const MAX_NPY_HEADER_BYTES = 1 << 20;

/** Where the header text starts and how long it is, checked against the file size. */
function headerSpan(bytes: Uint8Array, fileSize: number, file: string): { start: number; length: number; version: number } {
  const seen = Math.min(bytes.length, MAGIC.length);
  for (let i = 0; i < seen; i++) if (bytes[i] !== MAGIC[i]) throw fileError(file, 'not a .npy file (bad magic bytes)');
  if (fileSize < 10) throw fileError(file, `file is ${fileSize} bytes, too short for a .npy header`);
  if (bytes.length < 10) throw new RangeError('parseNpyHeader: bytes must hold the whole header');
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if (![1, 2, 3].includes(major) || minor !== 0) {
    throw fileError(file, `unsupported .npy version ${major}.${minor} (supported: 1.0, 2.0, 3.0)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (major > 1 && fileSize < 12) throw fileError(file, `file is ${fileSize} bytes, too short for a .npy ${major}.0 header`);
  if (major > 1 && bytes.length < 12) throw new RangeError('parseNpyHeader: bytes must hold the whole header');
  const start = major === 1 ? 10 : 12;
  const length = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (start + length > fileSize) {
    throw fileError(file, `header length ${length} runs past the end of the file (${fileSize} bytes)`);
  }
  if (length > MAX_NPY_HEADER_BYTES) throw fileError(file, `header length ${length} is over the limit of ${MAX_NPY_HEADER_BYTES} bytes`);
  return { start, length, version: major };
}

/**
 * Parses and checks a header. `bytes` holds at least the magic, version, length field and header
 * text of a file of `fileSize` bytes; the data size must match the shape exactly.
 */
export function parseNpyHeader(bytes: Uint8Array, fileSize: number, file: string): NpyHeader {
  const { start, length, version } = headerSpan(bytes, fileSize, file);
  if (bytes.length < start + length) throw new RangeError('parseNpyHeader: bytes must hold the whole header');
  let text: string;
  try {
    text = new TextDecoder(version === 3 ? 'utf-8' : 'latin1', { fatal: true }).decode(bytes.subarray(start, start + length));
  } catch {
    throw fileError(file, 'header is not valid UTF-8');
  }
  const dict = parsePyLiteral(text, file);
  if (!(dict instanceof Map)) throw fileError(file, 'header is not a Python dict');
  const descr = dict.get('descr');
  const fortran = dict.get('fortran_order');
  const shape = dict.get('shape');
  if (descr === undefined || fortran === undefined || shape === undefined) {
    throw fileError(file, "header lacks one of 'descr', 'fortran_order', 'shape'");
  }
  const dtype = checkDescr(descr, file);
  if (typeof fortran !== 'boolean') throw fileError(file, "header 'fortran_order' is not True or False");
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw fileError(file, "header 'shape' is not a tuple of non-negative integers");
  }
  if (fortran && shape.length > 1) {
    throw fileError(file, 'Fortran-order arrays are not supported (save np.ascontiguousarray(a) instead)');
  }
  const dataOffset = start + length;
  const actual = fileSize - dataOffset;
  const needed = byteSizeOf(shape, ITEM_SIZE[dtype]);
  if (needed !== actual) {
    const needs = needed === undefined ? 'is too large' : `needs ${needed}${actual < needed ? ' (file truncated?)' : ''}`;
    throw fileError(file, `has ${actual} bytes of data but shape ${formatShape(shape)} of ${dtype} ${needs}`);
  }
  return { descr: dtype, shape, dataOffset, fileSize };
}

function isCount(v: PyValue): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isNpyDescr(s: string): s is NpyDescr {
  return Object.hasOwn(ITEM_SIZE, s);
}

function checkDescr(descr: PyValue, file: string): NpyDescr {
  if (typeof descr !== 'string') throw fileError(file, 'structured dtypes are not supported (descr is not a string)');
  // One-byte types have no byte order; numpy writes '|u1', other writers may use '<u1' or 'u1'.
  const normal = /^[<>=|]?u1$/.test(descr) ? '|u1' : descr;
  if (isNpyDescr(normal)) return normal;
  const little = `<${descr.slice(1)}`;
  if (descr.startsWith('>') && isNpyDescr(little)) {
    throw fileError(file, `big-endian dtype ${quoteName(descr)} is not supported (save a.astype('${little}') instead)`);
  }
  throw fileError(file, `unsupported dtype ${quoteName(descr)} (supported: ${SUPPORTED})`);
}

/** A Python literal from a header: str, int, bool, None, tuple or list (as arrays), dict (str keys). */
type PyValue = string | number | boolean | null | PyValue[] | Map<string, PyValue>;

/** Parses one Python literal (the header dict) without evaluating anything. */
function parsePyLiteral(text: string, file: string): PyValue {
  let i = 0;
  const fail = (what: string): never => {
    throw fileError(file, `header is not a valid Python dict literal (${what} at character ${i})`);
  };
  const skip = (): void => {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
  };
  const value = (depth: number): PyValue => {
    if (depth > 8) fail('nesting too deep');
    skip();
    const c = text[i];
    if (c === '{') return dict(depth);
    if (c === '(' || c === '[') return sequence(c === '(' ? ')' : ']', depth);
    if (c === "'" || c === '"') return str(c);
    const word = /^(True|False|None|-?\d+L?)/.exec(text.slice(i, i + 40))?.[0];
    if (word === undefined) return fail('unexpected character');
    i += word.length;
    if (word === 'True' || word === 'False') return word === 'True';
    if (word === 'None') return null;
    return Number(word.replace('L', ''));
  };
  const str = (quote: string): string => {
    let out = '';
    for (i++; i < text.length && text[i] !== quote; i++) {
      if (text[i] === '\\') i++;
      out += text[i] ?? '';
    }
    if (i >= text.length) fail('unterminated string');
    i++;
    return out;
  };
  /** Items separated by commas, a trailing comma allowed, up to `close`. */
  const items = (close: string, item: () => void): void => {
    i++;
    for (;;) {
      skip();
      if (text[i] === close) break;
      item();
      skip();
      if (text[i] === ',') i++;
      else if (text[i] !== close) fail(`expected ',' or '${close}'`);
    }
    i++;
  };
  const sequence = (close: string, depth: number): PyValue[] => {
    const out: PyValue[] = [];
    items(close, () => out.push(value(depth + 1)));
    return out;
  };
  const dict = (depth: number): Map<string, PyValue> => {
    const out = new Map<string, PyValue>();
    items('}', () => {
      const key = value(depth + 1);
      if (typeof key !== 'string') return fail('a dict key that is not a string');
      skip();
      if (text[i] !== ':') fail("expected ':'");
      i++;
      out.set(key, value(depth + 1));
    });
    return out;
  };
  const result = value(0);
  skip();
  if (i < text.length) fail('text after the dict');
  return result;
}

/** Reads and checks only the header (positional reads: safe on large files). */
export async function readNpyHeader(path: string): Promise<NpyHeader> {
  const file = await openForReading(path);
  try {
    const prefix = await readExactly(file, 0, Math.min(PREFIX_MAX, file.size), path);
    const { start, length } = headerSpan(prefix, file.size, path);
    return parseNpyHeader(await readExactly(file, 0, start + length, path), file.size, path);
  } finally {
    await file.handle.close();
  }
}

/** Parses a whole .npy file held in memory; the data is copied into a fresh typed array. */
export function decodeNpyArray(bytes: Uint8Array, file: string): NpyArray {
  const { descr, shape, dataOffset } = parseNpyHeader(bytes, bytes.length, file);
  // a fresh copy of exactly the data: a Node Buffer's slice() is a view into a shared pool, whose
  // .buffer would be the whole pool
  const b = new Uint8Array(bytes.subarray(dataOffset)).buffer;
  switch (descr) {
    case '<f4':
      return { descr, shape, data: new Float32Array(b) };
    case '<f2':
      return { descr, shape, data: new Uint16Array(b) };
    case '<f8':
      return { descr, shape, data: new Float64Array(b) };
    case '|u1':
      return { descr, shape, data: new Uint8Array(b) };
    case '<i4':
      return { descr, shape, data: new Int32Array(b) };
    case '<i8':
      return { descr, shape, data: new BigInt64Array(b) };
  }
}

/** A float array (<f4, <f2, <f8) as float32; an integer array is a UserError naming the file. */
export function decodeNpy(bytes: Uint8Array, file: string): { shape: number[]; data: Float32Array } {
  const a = decodeNpyArray(bytes, file);
  switch (a.descr) {
    case '<f4':
      return { shape: a.shape, data: a.data };
    case '<f2':
      return { shape: a.shape, data: float16ToFloat32(a.data) };
    case '<f8':
      return { shape: a.shape, data: Float32Array.from(a.data) };
    default:
      throw fileError(file, `dtype ${quoteName(a.descr)} holds integers, but a float array (<f4, <f2, <f8) is needed`);
  }
}

/** Loads a whole .npy file of any recognised dtype. */
export async function readNpyArray(path: string): Promise<NpyArray> {
  return decodeNpyArray(await readWholeFile(path), path);
}

/** Loads a whole float .npy file as float32. */
export async function readNpy(path: string): Promise<{ shape: number[]; data: Float32Array }> {
  return decodeNpy(await readWholeFile(path), path);
}

/** The data types serializeNpy writes, and their descr. */
export type NpyWritable = Float32Array | Int32Array | Uint8Array;

function descrOf(data: NpyWritable): NpyDescr {
  if (data instanceof Float32Array) return '<f4';
  return data instanceof Int32Array ? '<i4' : '|u1';
}

/** The header bytes numpy writes for this array (version 1.0, data aligned to 64 bytes). */
function npyHeaderBytes(descr: NpyDescr, shape: readonly number[]): Uint8Array {
  const shapeRepr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeRepr}, }`;
  // numpy leaves room to grow the first axis in place (GROWTH_AXIS_MAX_DIGITS = 21).
  if (shape.length > 0) dict += ' '.repeat(Math.max(0, 21 - String(shape[0]).length));
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  if (total - 10 > 0xffff) throw new Error(`serializeNpy: shape ${formatShape(shape)} makes the header too long`);
  const out = new Uint8Array(total).fill(0x20);
  out.set(MAGIC);
  out[6] = 1; // version 1.0
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, total - 10, true);
  out.set(new TextEncoder().encode(dict), 10);
  out[total - 1] = 0x0a;
  return out;
}

function npyChunks(data: NpyWritable, shape: readonly number[]): Uint8Array[] {
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0) || byteSizeOf(shape, 1) !== data.length) {
    throw new Error(`serializeNpy: ${data.length} values do not fill shape ${formatShape(shape)}`);
  }
  return [npyHeaderBytes(descrOf(data), shape), new Uint8Array(data.buffer, data.byteOffset, data.byteLength)];
}

/** data: [product(shape)] in C order -> the bytes of a .npy file, as np.save writes them. */
export function serializeNpy(data: NpyWritable, shape: readonly number[]): Uint8Array {
  return concatBytes(npyChunks(data, shape));
}

/** Writes a .npy file atomically, streaming the data without a second copy. */
export async function writeNpy(path: string, data: NpyWritable, shape: readonly number[]): Promise<void> {
  await writeFileAtomic(path, npyChunks(data, shape));
}
