/**
 * safetensors files (the format of huggingface/safetensors, which SAELens saves weights in):
 *
 *   [8 bytes: N, little-endian u64] [N bytes: JSON header, padded with spaces] [data section]
 *   header = { "__metadata__"?: {string: string},
 *              <name>: { "dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end] }, ... }
 *
 * Offsets in the JSON are relative to the data section; StTensorInfo holds absolute file offsets.
 * Every number in a header is checked before it is used, so a corrupt or hostile file gives one
 * UserError naming the file and the problem. Data is little-endian, as on every host Node runs on
 * but s390x, which is not supported here.
 */
import { bfloat16ToFloat32, float16ToFloat32 } from './float16.js';
import { byteSizeOf, concatBytes, formatShape, openForReading, quoteName, readExactly, readWholeFile, writeFileAtomic } from './atomic.js';
import { fileError } from '../errors.js';

export type StDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** The typed array that holds each dtype (F16 and BF16 as raw 16-bit words). */
export interface StArrays {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
}

/**
 * Item size, and the rank the Rust library sorts by when it writes (larger dtypes first, so that
 * every tensor stays aligned to its item size).
 */
const DTYPES = {
  BOOL: { size: 1, rank: 0 },
  U8: { size: 1, rank: 1 },
  I8: { size: 1, rank: 2 },
  I16: { size: 2, rank: 3 },
  F16: { size: 2, rank: 4 },
  BF16: { size: 2, rank: 5 },
  I32: { size: 4, rank: 6 },
  F32: { size: 4, rank: 7 },
  F64: { size: 8, rank: 8 },
  I64: { size: 8, rank: 9 },
} as const satisfies Record<StDtype, { size: number; rank: number }>;

const DTYPE_NAMES = Object.keys(DTYPES).reverse().join(', ');

function isStDtype(s: string): s is StDtype {
  return Object.hasOwn(DTYPES, s);
}

/** One tensor of a header; begin and end are absolute byte offsets in the file. */
export interface StTensorInfo {
  name: string;
  dtype: StDtype;
  shape: number[];
  begin: number;
  end: number;
}

export interface StHeader {
  /** In file order (by begin offset). */
  tensors: StTensorInfo[];
  metadata: Record<string, string>;
  fileSize: number;
}

/** A tensor read into memory: data is a fresh, aligned typed array of the dtype's kind. */
export type LoadedTensor = { [D in StDtype]: { name: string; dtype: D; shape: number[]; data: StArrays[D] } }[StDtype];

export type WritableDtype = 'F32' | 'F16' | 'I32' | 'I64' | 'U8';

/** A tensor to write; F16 data is float16 bit patterns (see float32ToFloat16). */
export type TensorToWrite = {
  [D in WritableDtype]: { dtype: D; shape: readonly number[]; data: StArrays[D] };
}[WritableDtype];

/** The Rust library refuses larger headers; so do we, before allocating for one. */
export const MAX_HEADER_BYTES = 100_000_000;

/** N from the first 8 bytes, checked against the file size and the limit. */
function headerLength(prefix: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8) throw fileError(file, `file is ${fileSize} bytes, too short for a safetensors file (needs at least 8)`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) {
    throw fileError(file, `header length ${n} runs past the end of the file (${fileSize} bytes)`);
  }
  if (n > BigInt(MAX_HEADER_BYTES)) throw fileError(file, `header length ${n} is over the limit of ${MAX_HEADER_BYTES} bytes`);
  return Number(n);
}

/**
 * Parses and checks a header. `bytes` holds at least the first 8 + N bytes of a file of `fileSize`
 * bytes. Checks: N against the file, UTF-8 and JSON, each dtype known, shapes of non-negative
 * integers, offsets inside the data section with begin <= end and end - begin = product(shape) *
 * itemsize, each name once, and, as the Rust library's reader requires, the tensors tiling the data
 * section exactly: sorted by offsets, each begins where the previous one ends (no gap, no overlap)
 * and the last ends at the end of the file; __metadata__ a map of strings.
 */
export function parseSafetensorsHeader(bytes: Uint8Array, fileSize: number, file: string): StHeader {
  if (fileSize >= 8 && bytes.length < 8) throw new RangeError('parseSafetensorsHeader: bytes must hold the first 8 bytes');
  const n = headerLength(bytes, fileSize, file);
  if (bytes.length < 8 + n) throw new RangeError(`parseSafetensorsHeader: bytes must hold the ${8 + n} header bytes`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    throw fileError(file, 'header is not valid UTF-8 (not a safetensors file?)');
  }
  if (!text.startsWith('{')) throw fileError(file, `header does not start with '{' (not a safetensors file?)`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const why = err instanceof Error ? err.message.replace(/[^\x20-\x7e]/g, '?').slice(0, 120) : 'parse error';
    throw fileError(file, `header is not valid JSON (${why})`);
  }
  if (!isPlainObject(json)) throw fileError(file, 'header is not a JSON object');
  const repeated = repeatedTopLevelKey(text);
  if (repeated !== undefined) throw fileError(file, `the header names ${quoteName(repeated)} twice`);

  const dataStart = 8 + n;
  const tensors: StTensorInfo[] = [];
  let metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(json)) {
    if (key === '__metadata__') metadata = parseMetadata(value, file);
    else tensors.push(parseTensorInfo(key, value, dataStart, fileSize, file));
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  checkTiling(tensors, dataStart, fileSize, file);
  return { tensors, metadata, fileSize };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseMetadata(value: unknown, file: string): Record<string, string> {
  if (!isPlainObject(value)) throw fileError(file, '__metadata__ is not a JSON object of strings');
  const entries = Object.entries(value);
  for (const [k, v] of entries) {
    if (typeof v !== 'string') throw fileError(file, `__metadata__ ${quoteName(k)} is a ${jsonKind(v)}, not a string`);
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, String(v)]));
}

function jsonKind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  return typeof v === 'object' ? 'object' : typeof v;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isCountList(v: unknown): v is number[] {
  return Array.isArray(v) && v.every(isCount);
}

function parseTensorInfo(name: string, value: unknown, dataStart: number, fileSize: number, file: string): StTensorInfo {
  const t = `tensor ${quoteName(name)}`;
  if (!isPlainObject(value)) throw fileError(file, `${t}: entry is a ${jsonKind(value)}, not an object`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string') throw fileError(file, `${t} has no dtype`);
  if (!isStDtype(dtype)) throw fileError(file, `${t} has unsupported dtype ${quoteName(dtype)} (supported: ${DTYPE_NAMES})`);
  if (!isCountList(shape)) throw fileError(file, `${t} has an invalid shape (expected a list of non-negative integers)`);
  const [begin, end] = isCountList(offsets) && offsets.length === 2 ? offsets : [];
  if (begin === undefined || end === undefined) {
    throw fileError(file, `${t} has invalid data_offsets (expected [begin, end], non-negative integers)`);
  }
  if (begin > end) throw fileError(file, `${t} has data_offsets [${begin}, ${end}] with begin after end`);
  const dataSize = fileSize - dataStart;
  if (end > dataSize) {
    throw fileError(file, `${t} has data_offsets [${begin}, ${end}] past the end of the ${dataSize}-byte data section (file truncated?)`);
  }
  const needed = byteSizeOf(shape, DTYPES[dtype].size);
  if (needed !== end - begin) {
    const needs = needed === undefined ? 'is too large' : `needs ${needed}`;
    throw fileError(file, `${t} has ${end - begin} bytes of data but shape ${formatShape(shape)} of ${dtype} ${needs}`);
  }
  return { name, dtype, shape, begin: dataStart + begin, end: dataStart + end };
}

/**
 * tensors: sorted by (begin, end). Each must begin where the previous one ended, and the last end
 * at the end of the file: no gap, no overlap, no trailing bytes (the Rust library's rule).
 */
function checkTiling(tensors: readonly StTensorInfo[], dataStart: number, fileSize: number, file: string): void {
  const range = (x: StTensorInfo): string => `[${x.begin - dataStart}, ${x.end - dataStart}]`;
  let at = dataStart;
  let last: StTensorInfo | undefined;
  for (const t of tensors) {
    if (t.begin < at && last !== undefined)
      throw fileError(file, `tensors ${quoteName(last.name)} ${range(last)} and ${quoteName(t.name)} ${range(t)} overlap`);
    if (t.begin > at) {
      const after = last === undefined ? 'the start of the data section' : `${quoteName(last.name)} ${range(last)}`;
      throw fileError(file, `${t.begin - at} unused bytes between ${after} and ${quoteName(t.name)} ${range(t)} (the data section must be covered exactly)`);
    }
    at = t.end;
    last = t;
  }
  if (at !== fileSize) throw fileError(file, `${fileSize - at} bytes after the last tensor's data (the data section must be covered exactly)`);
}

/**
 * The first key that appears twice at the top level of a JSON object text (JSON.parse keeps the
 * last silently; the Rust library refuses the file). text: valid JSON, an object.
 */
function repeatedTopLevelKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = depth === 1;
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',' && depth === 1) expectKey = true;
  }
  return undefined;
}

/** Reads and checks only the header, with positional reads: safe on files of many GB. */
export async function readSafetensorsHeader(path: string): Promise<StHeader> {
  const file = await openForReading(path);
  try {
    const prefix = file.size < 8 ? new Uint8Array(0) : await readExactly(file, 0, 8, path);
    const n = headerLength(prefix, file.size, path);
    const bytes = new Uint8Array(8 + n);
    bytes.set(prefix);
    bytes.set(await readExactly(file, 8, n, path), 8);
    return parseSafetensorsHeader(bytes, file.size, path);
  } finally {
    await file.handle.close();
  }
}

export interface SafetensorsContents {
  /** By name, in file order. */
  tensors: Map<string, LoadedTensor>;
  metadata: Record<string, string>;
}

/** Parses a whole safetensors file held in memory; `file` names it in errors. */
export function decodeSafetensors(bytes: Uint8Array, file: string): SafetensorsContents {
  const header = parseSafetensorsHeader(bytes, bytes.length, file);
  const tensors = new Map<string, LoadedTensor>();
  for (const info of header.tensors) {
    const buffer = bytes.slice(info.begin, info.end).buffer; // a copy, so the typed array is aligned
    tensors.set(info.name, typedTensor(info, buffer));
  }
  return { tensors, metadata: header.metadata };
}

function typedTensor(info: StTensorInfo, b: ArrayBuffer): LoadedTensor {
  const { name, shape } = info;
  switch (info.dtype) {
    case 'F64':
      return { name, shape, dtype: info.dtype, data: new Float64Array(b) };
    case 'F32':
      return { name, shape, dtype: info.dtype, data: new Float32Array(b) };
    case 'F16':
      return { name, shape, dtype: info.dtype, data: new Uint16Array(b) };
    case 'BF16':
      return { name, shape, dtype: info.dtype, data: new Uint16Array(b) };
    case 'I64':
      return { name, shape, dtype: info.dtype, data: new BigInt64Array(b) };
    case 'I32':
      return { name, shape, dtype: info.dtype, data: new Int32Array(b) };
    case 'I16':
      return { name, shape, dtype: info.dtype, data: new Int16Array(b) };
    case 'I8':
      return { name, shape, dtype: info.dtype, data: new Int8Array(b) };
    case 'U8':
      return { name, shape, dtype: info.dtype, data: new Uint8Array(b) };
    case 'BOOL':
      return { name, shape, dtype: info.dtype, data: new Uint8Array(b) };
  }
}

/** Loads a whole (small) safetensors file: every tensor and the metadata. */
export async function readSafetensors(path: string): Promise<SafetensorsContents> {
  return decodeSafetensors(await readWholeFile(path), path);
}

/**
 * The values of a float tensor as float32 (F32 is returned as it is, not copied); an integer
 * tensor where floats are needed is a UserError naming `file` and the tensor.
 */
export function toFloat32(t: LoadedTensor, file: string): Float32Array {
  switch (t.dtype) {
    case 'F32':
      return t.data;
    case 'F16':
      return float16ToFloat32(t.data);
    case 'BF16':
      return bfloat16ToFloat32(t.data);
    case 'F64':
      return Float32Array.from(t.data);
    default:
      throw fileError(file, `tensor ${quoteName(t.name)} has dtype ${t.dtype}, but a float tensor (F32, F16, BF16, F64) is needed`);
  }
}

/** Compares as the Rust library does (by UTF-8 bytes, i.e. by code points). */
function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The file as chunks: the header, then a view of each tensor's data (no copy). Layout as the Rust
 * library writes it: tensors sorted by dtype (largest item first), then by name; the header JSON
 * compact with __metadata__ first and padded with spaces to a multiple of 8 bytes.
 */
export function safetensorsChunks(tensors: Readonly<Record<string, TensorToWrite>>, metadata?: Readonly<Record<string, string>>): Uint8Array[] {
  const entries = Object.entries(tensors).sort(([na, a], [nb, b]) => DTYPES[b.dtype].rank - DTYPES[a.dtype].rank || byBytes(na, nb));
  const parts: string[] = [];
  if (metadata !== undefined) {
    const sorted = Object.entries(metadata).sort(([a], [b]) => byBytes(a, b));
    parts.push(`"__metadata__":${JSON.stringify(Object.fromEntries(sorted))}`);
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    checkTensorToWrite(name, t);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const info = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`);
    chunks.push(bytes);
    offset += bytes.length;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  padded.set(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(padded.length), true);
  return [prefix, padded, ...chunks];
}

function checkTensorToWrite(name: string, t: TensorToWrite): void {
  const where = `safetensors: tensor ${quoteName(name)}`;
  if (name === '__metadata__') throw new Error(`${where}: the name is reserved for metadata`);
  if (!t.shape.every(isCount)) throw new Error(`${where}: shape ${formatShape(t.shape)} is not a list of non-negative integers`);
  const n = byteSizeOf(t.shape, 1);
  if (n !== t.data.length) {
    throw new Error(`${where}: ${t.data.length} values but shape ${formatShape(t.shape)} holds ${n ?? 'too many'}`);
  }
}

/** The whole file in one buffer. */
export function serializeSafetensors(tensors: Readonly<Record<string, TensorToWrite>>, metadata?: Readonly<Record<string, string>>): Uint8Array {
  return concatBytes(safetensorsChunks(tensors, metadata));
}

/** Writes the file atomically, streaming each tensor's data without building the whole file in memory. */
export async function writeSafetensors(
  path: string,
  tensors: Readonly<Record<string, TensorToWrite>>,
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  await writeFileAtomic(path, safetensorsChunks(tensors, metadata));
}
