/**
 * GGUF files (llama.cpp's format for local LLMs; versions 2 and 3), read lazily: open() parses the
 * header, metadata and tensor infos; read(name) loads and dequantises one tensor.
 *
 *   "GGUF" u32 version  u64 n_tensors  u64 n_kv
 *   n_kv x      { string key, u32 value_type, value }
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
 *   padding to `general.alignment` (default 32), then the data section; a tensor's data starts at
 *   data_offset + offset. string = u64 length + UTF-8 bytes; array = u32 item type, u64 count, items.
 *   Value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool, 8 string, 9 array, 10 u64,
 *   11 i64, 12 f64. All little-endian (big-endian files are refused).
 *
 * ggml's ne lists dimensions fastest-first; GgufTensorInfo.shape is row-major (ne reversed), so
 * token_embd.weight (ne = [n_embd, n_vocab]) is [n_vocab, n_embd] and read() returns its rows in order.
 *
 * Why our own parser and not @huggingface/gguf (0.4.6, which reads local files in ~0.1 s): it does not
 * notice truncation (a copy of the TinyLlama GGUF cut to 100 bytes parsed "fine", 201 tensors), and we
 * need every count checked against the bytes left before anything is allocated, and one-line errors
 * naming the file. 64-bit integers (u64, i64) come back as bigint, everything else as number.
 */
import { availableParallelism } from 'node:os';
import { readSync } from 'node:fs';
import { fileError } from '../errors.js';
import { DEQUANT_TYPES, GGML_BLOCKS, ggmlTypeOf, isDequantType, type DequantType, type GgmlType } from '../engine/dequant.js';
import type { Kernels } from '../engine/kernels.js';
import { formatShape, openForReading, quoteName, readExactly, type OpenedFile } from './atomic.js';

export type { GgmlType } from '../engine/dequant.js';

export type GgufValue = number | bigint | string | boolean | GgufValue[];

export interface GgufTensorInfo {
  readonly name: string;
  /** The ggml type by name ('Q4_K'). */
  readonly type: GgmlType;
  /** Row-major: ggml's ne reversed ([n_vocab, n_embd] for token_embd.weight). */
  readonly shape: readonly number[];
  /** Absolute file offset of the tensor's data. */
  readonly offset: number;
  /** Bytes of data. */
  readonly bytes: number;
}

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const DEFAULT_ALIGNMENT = 32;
const MAX_DIMS = 4; // GGML_MAX_DIMS
const CHUNK = 1 << 20;

/** Smallest encoding of a value of each type (bytes), to bound counts by the bytes left. */
const MIN_SIZE: readonly number[] = [1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8];
const TYPE_NAMES = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'];

/**
 * Sequential reads of the header through a window of the file (read synchronously: thousands of small
 * values, no await per value); `what` names the part being read for truncation errors.
 */
class HeaderReader {
  private buf = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  private start = 0; // file position of buf[0]
  private at = 0; // index in buf
  what = 'header';
  private readonly decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // keep a leading U+FEFF (a token may be one)

  constructor(
    private readonly file: OpenedFile,
    private readonly path: string,
  ) {}

  get position(): number {
    return this.start + this.at;
  }

  get left(): number {
    return this.file.size - this.position;
  }

  fail(problem: string): never {
    throw fileError(this.path, problem);
  }

  private need(n: number): number {
    if (this.at + n <= this.buf.length) return this.at;
    if (n > this.left) this.fail(`truncated ${this.what}: file ends at byte ${this.file.size}, ${n} more bytes needed at ${this.position}`);
    const keep = this.buf.subarray(this.at);
    const size = Math.min(Math.max(n, CHUNK), this.left);
    const next = new Uint8Array(size);
    next.set(keep);
    let done = keep.length;
    while (done < size) {
      const got = readSync(this.file.handle.fd, next, done, size - done, this.position + done);
      if (got === 0) this.fail(`truncated ${this.what}: file ended at byte ${this.position + done}`);
      done += got;
    }
    this.start = this.position;
    this.buf = next;
    this.view = new DataView(next.buffer);
    this.at = 0;
    return 0;
  }

  u8(): number {
    const i = this.need(1);
    this.at += 1;
    return this.buf[i]!;
  }
  i8(): number {
    const i = this.need(1);
    this.at += 1;
    return this.view.getInt8(i);
  }
  u16(): number {
    const i = this.need(2);
    this.at += 2;
    return this.view.getUint16(i, true);
  }
  i16(): number {
    const i = this.need(2);
    this.at += 2;
    return this.view.getInt16(i, true);
  }
  u32(): number {
    const i = this.need(4);
    this.at += 4;
    return this.view.getUint32(i, true);
  }
  i32(): number {
    const i = this.need(4);
    this.at += 4;
    return this.view.getInt32(i, true);
  }
  f32(): number {
    const i = this.need(4);
    this.at += 4;
    return this.view.getFloat32(i, true);
  }
  u64(): bigint {
    const i = this.need(8);
    this.at += 8;
    return this.view.getBigUint64(i, true);
  }
  i64(): bigint {
    const i = this.need(8);
    this.at += 8;
    return this.view.getBigInt64(i, true);
  }
  f64(): number {
    const i = this.need(8);
    this.at += 8;
    return this.view.getFloat64(i, true);
  }

  /** A u64 count of items of at least `minSize` bytes each, checked against the bytes left. */
  count(what: string, minSize: number): number {
    const n = this.u64();
    if (n * BigInt(minSize) > BigInt(this.left)) {
      this.fail(`truncated or corrupt ${this.what}: ${what} is ${n}, more than the ${this.left} bytes left can hold`);
    }
    return Number(n);
  }

  string(): string {
    const n = this.count('a string length', 1);
    const i = this.need(n);
    this.at += n;
    try {
      return this.decoder.decode(this.buf.subarray(i, i + n));
    } catch {
      return this.fail(`corrupt ${this.what}: a string at byte ${this.start + i} is not UTF-8`);
    }
  }

  value(type: number, depth = 0): GgufValue {
    switch (type) {
      case 0:
        return this.u8();
      case 1:
        return this.i8();
      case 2:
        return this.u16();
      case 3:
        return this.i16();
      case 4:
        return this.u32();
      case 5:
        return this.i32();
      case 6:
        return this.f32();
      case 7: {
        const b = this.u8();
        if (b > 1) this.fail(`corrupt ${this.what}: a bool is ${b}`);
        return b === 1;
      }
      case 8:
        return this.string();
      case 9: {
        const itemType = this.u32();
        const minSize = MIN_SIZE[itemType];
        if (minSize === undefined) this.fail(`corrupt ${this.what}: unknown array item type ${itemType}`);
        if (depth > 8) this.fail(`corrupt ${this.what}: arrays nested deeper than 8`);
        const n = this.count('an array length', minSize);
        const out: GgufValue[] = new Array<GgufValue>(n);
        for (let i = 0; i < n; i++) out[i] = this.value(itemType, depth + 1);
        return out;
      }
      case 10:
        return this.u64();
      case 11:
        return this.i64();
      case 12:
        return this.f64();
      default:
        return this.fail(`corrupt ${this.what}: unknown value type ${type} (known: ${TYPE_NAMES.map((t, i) => `${i} ${t}`).join(', ')})`);
    }
  }
}

/** The tensor's type if we can dequantise it, else a one-line error listing the types we can. */
function dequantType(path: string, t: GgufTensorInfo): DequantType {
  if (isDequantType(t.type)) return t.type;
  throw fileError(path, `tensor ${quoteName(t.name)} has type ${t.type}, which we cannot dequantise (supported: ${DEQUANT_TYPES.join(', ')})`);
}

function describeValue(v: GgufValue | undefined): string {
  if (v === undefined) return 'missing';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return `${typeof v} ${quoteName(String(v))}`;
}

export class GgufFile {
  /** general.alignment, or 32. */
  readonly alignment: number;
  /** Absolute file offset of the data section. */
  readonly dataOffset: number;
  private defaultKernels: Kernels | undefined;

  private constructor(
    readonly path: string,
    readonly version: number,
    readonly metadata: ReadonlyMap<string, GgufValue>,
    readonly tensors: ReadonlyMap<string, GgufTensorInfo>,
    alignment: number,
    dataOffset: number,
    private readonly file: OpenedFile,
  ) {
    this.alignment = alignment;
    this.dataOffset = dataOffset;
  }

  /** Opens and checks a GGUF file (header, metadata, tensor infos, that every tensor's data is inside the file). */
  static async open(path: string): Promise<GgufFile> {
    const file = await openForReading(path);
    try {
      return GgufFile.parse(path, file);
    } catch (err) {
      await file.handle.close();
      throw err;
    }
  }

  private static parse(path: string, file: OpenedFile): GgufFile {
    const r: HeaderReader = new HeaderReader(file, path);
    if (file.size < 4 || r.u32() !== MAGIC) throw fileError(path, 'not a GGUF file (it does not start with "GGUF")');
    const version = r.u32();
    if (version === 0x02000000 || version === 0x03000000) throw fileError(path, 'a big-endian GGUF file, which is not supported');
    if (version !== 2 && version !== 3) {
      throw fileError(path, `GGUF version ${version} is not supported (only versions 2 and 3)`);
    }
    const nTensors = r.count('the tensor count', 24);
    const nKv = r.count('the metadata count', 13);

    const metadata = new Map<string, GgufValue>();
    r.what = 'metadata';
    for (let i = 0; i < nKv; i++) {
      const key = r.string();
      if (metadata.has(key)) r.fail(`corrupt metadata: key ${quoteName(key)} appears twice`);
      metadata.set(key, r.value(r.u32()));
    }

    const align = metadata.get('general.alignment') ?? DEFAULT_ALIGNMENT;
    if (typeof align !== 'number' || !Number.isInteger(align) || align <= 0 || (align & (align - 1)) !== 0) {
      throw fileError(path, `general.alignment must be a power of two, got ${describeValue(align)}`);
    }

    r.what = 'tensor infos';
    const raw: { name: string; type: GgmlType; shape: number[]; rel: bigint; elements: number }[] = [];
    const names = new Set<string>();
    for (let i = 0; i < nTensors; i++) {
      const name = r.string();
      if (names.has(name)) r.fail(`corrupt tensor infos: tensor ${quoteName(name)} appears twice`);
      names.add(name);
      const nDims = r.u32();
      if (nDims > MAX_DIMS) r.fail(`tensor ${quoteName(name)} has ${nDims} dimensions (at most ${MAX_DIMS})`);
      const ne: number[] = [];
      let elements = 1;
      for (let d = 0; d < nDims; d++) {
        const n = r.u64();
        if (n > BigInt(Number.MAX_SAFE_INTEGER)) r.fail(`tensor ${quoteName(name)} has an absurd dimension ${n}`);
        ne.push(Number(n));
        elements *= Number(n);
      }
      if (!Number.isSafeInteger(elements)) r.fail(`tensor ${quoteName(name)} has an absurd shape ${formatShape(ne)}`);
      const typeId = r.u32();
      const type = ggmlTypeOf(typeId);
      if (type === undefined) r.fail(`tensor ${quoteName(name)} has an unknown ggml type ${typeId}`);
      const rel = r.u64();
      const blockSize = GGML_BLOCKS[type][0];
      if ((ne[0] ?? 1) % blockSize !== 0) {
        r.fail(`tensor ${quoteName(name)}: its first ggml dimension ${ne[0] ?? 1} is not a multiple of ${type}'s block size ${blockSize}`);
      }
      raw.push({ name, type, shape: ne.reverse(), rel, elements });
    }
    const dataOffset = Math.ceil(r.position / align) * align;

    const tensors = new Map<string, GgufTensorInfo>();
    for (const t of raw) {
      const [values, typeSize] = GGML_BLOCKS[t.type];
      const bytes = (t.elements / values) * typeSize;
      if (t.rel % BigInt(align) !== 0n) throw fileError(path, `tensor ${quoteName(t.name)}: data offset ${t.rel} is not a multiple of the alignment ${align}`);
      const end = BigInt(dataOffset) + t.rel + BigInt(bytes);
      if (end > BigInt(file.size)) {
        throw fileError(
          path,
          `tensor ${quoteName(t.name)}: its data (${bytes} bytes at ${BigInt(dataOffset) + t.rel}) runs past the end of the file at ${file.size} (truncated?)`,
        );
      }
      tensors.set(t.name, { name: t.name, type: t.type, shape: t.shape, offset: dataOffset + Number(t.rel), bytes });
    }
    return new GgufFile(path, version, metadata, tensors, align, dataOffset, file);
  }

  /** A tensor's info; a name not in the file is a one-line error. */
  tensor(name: string): GgufTensorInfo {
    const t = this.tensors.get(name);
    if (t) return t;
    const some = [...this.tensors.keys()].slice(0, 8).map(quoteName).join(', ');
    throw fileError(this.path, `no tensor ${quoteName(name)} (it has ${this.tensors.size} tensors: ${some}${this.tensors.size > 8 ? ', ...' : ''})`);
  }

  /**
   * The tensor dequantised to float32, row-major in its `shape`. kernels: pass the engine's
   * (engine.kernels, native or reference, on the engine's threads); default: the native kernels if
   * they load, else the reference, on every core (this sets the process-wide native pool's size).
   */
  async read(name: string, kernels?: Kernels): Promise<Float32Array> {
    const t = this.tensor(name);
    return this.load(t, dequantType(this.path, t), 0, t.bytes, kernels);
  }

  /**
   * Rows [first, first + count) of a tensor, dequantised: [count, ...shape.slice(1)] flattened, where
   * a row is the last dimension (ggml's ne[0]) times the ones between, i.e. shape[0] indexes rows.
   * For a lookup in an embedding table without loading all of it.
   */
  async readRows(name: string, first: number, count: number, kernels?: Kernels): Promise<Float32Array> {
    const t = this.tensor(name);
    const type = dequantType(this.path, t);
    const rows = t.shape[0] ?? 1;
    if (!Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count < 0 || first + count > rows) {
      throw fileError(this.path, `rows [${first}, ${first + count}) of tensor ${quoteName(name)} are out of its ${rows} rows`);
    }
    const rowBytes = rows === 0 ? 0 : t.bytes / rows;
    return this.load(t, type, first * rowBytes, count * rowBytes, kernels);
  }

  private async load(t: GgufTensorInfo, type: DequantType, start: number, length: number, kernels?: Kernels): Promise<Float32Array> {
    const bytes = await readExactly(this.file, t.offset + start, length, this.path);
    const [values, typeSize] = GGML_BLOCKS[type];
    const out = new Float32Array((length / typeSize) * values);
    (kernels ?? (await this.kernels())).dequantize(type, bytes, out);
    return out;
  }

  private async kernels(): Promise<Kernels> {
    if (!this.defaultKernels) {
      const { selectKernels } = await import('../engine/index.js');
      this.defaultKernels = selectKernels('auto', availableParallelism(), (m) => console.warn(m));
    }
    return this.defaultKernels;
  }

  /** A metadata value that must be a string. */
  string(key: string): string {
    const v = this.metadata.get(key);
    if (typeof v !== 'string') throw fileError(this.path, `metadata ${quoteName(key)} must be a string, got ${describeValue(v)}`);
    return v;
  }

  /** A metadata value that must be a number (a 64-bit integer is converted if it is a safe integer). */
  number(key: string): number {
    const v = this.metadata.get(key);
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
    throw fileError(this.path, `metadata ${quoteName(key)} must be a number, got ${describeValue(v)}`);
  }

  /** A metadata value that must be an array. */
  array(key: string): readonly GgufValue[] {
    const v = this.metadata.get(key);
    if (!Array.isArray(v)) throw fileError(this.path, `metadata ${quoteName(key)} must be an array, got ${describeValue(v)}`);
    return v;
  }

  async close(): Promise<void> {
    await this.file.handle.close();
  }
}
