/**
 * Reads existing ONNX models without holding their weights, and writes the graphs we run from them.
 *   OnnxModel.open   reads the model file field by field from disk: every message but the large
 *                    initializers' data is read; a weight is only located (file, offset, length),
 *                    in the .onnx itself (raw_data) or in an external data file beside it
 *                    (model.onnx_data, or one file per tensor, as onnx's save_as_external_data writes)
 *   readTensor       one weight's bytes, read from its byte range only (the unembedding W_U)
 *   sessionModel     a graph (rewritten nodes, inputs, outputs) in which every large weight is an
 *                    external reference to its bytes where they already are (the model file's
 *                    raw_data included): onnxruntime reads the weights once, straight from the
 *                    files, and the rewritten model holds none of them.
 * Field numbers follow onnx/onnx.proto3: ModelProto graph = 7, opset_import = 8; GraphProto node =
 * 1, initializer = 5, input = 11, output = 12, value_info = 13; NodeProto input = 1, output = 2,
 * name = 3, op_type = 4, attribute = 5, domain = 7; AttributeProto name = 1, i = 3, g = 6,
 * ints = 8, graphs = 11; ValueInfoProto name = 1, type = 2; TensorProto dims = 1, data_type = 2,
 * float_data = 4, name = 8, raw_data = 9, external_data = 13 (key = 1, value = 2), data_location = 14.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { type Field, fieldHead, fields, ProtoError, ProtoWriter, text, varints } from '../engine/protobuf.js';
import { fileError, UserError } from '../errors.js';
import { float16ToFloat32 } from '../io/float16.js';
import type { OnnxNodeInfo } from './hooks.js';

/** TensorProto.DataType values we read. */
export const ONNX_TYPE = { float: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10, bfloat16: 16 } as const;

/** Bytes per element of a TensorProto.DataType (0: not a fixed-size type). */
const TYPE_BYTES: Readonly<Record<number, number>> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 };

/** A graph input or output: its name, element type and dims (numbers or symbolic names). */
export interface OnnxValueInfo {
  readonly name: string;
  /** TensorProto.DataType (1 float, 7 int64, 9 bool, 10 float16, ...); 0 when not given. */
  readonly elemType: number;
  readonly dims: readonly (number | string)[];
}

/** A node with its integer attributes (Gemm's transB, Transpose's perm, MatMulNBits's bits). */
export interface OnnxNode extends OnnxNodeInfo {
  readonly ints: ReadonlyMap<string, number | readonly number[]>;
  /** Whether it holds subgraphs (If, Loop, Scan): values inside them are not in `nodes`. */
  readonly subgraphs: boolean;
}

export interface OnnxGraphInfo {
  readonly nodes: readonly OnnxNode[];
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
  /** Every tensor name: node outputs, graph inputs, initializers. */
  readonly tensors: ReadonlySet<string>;
  /** The names of the initializers (the graph's stored weights). */
  readonly initializers: ReadonlySet<string>;
  /** Whether weights live in files beside the model. */
  readonly externalData: boolean;
  /** Element types the graph declares: inputs, outputs, value_info, initializers. */
  readonly declaredTypes: ReadonlyMap<string, number>;
}

// --- reading a model from a file or from memory ---

/** Random access to bytes: a file read through a window, or a buffer. */
interface ByteSource {
  readonly size: number;
  /** The path for external references, or undefined for bytes in memory. */
  readonly path: string | undefined;
  /** A copy of [offset, offset + length). */
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

/** Bytes read at once around a small field; larger fields are read on their own (a weight's head is ~100 bytes). */
const WINDOW = 1 << 16;

function fileSource(path: string): ByteSource {
  const fd = openSync(path, 'r');
  const size = fstatSync(fd).size;
  let window = new Uint8Array(0);
  let windowAt = 0;
  const readAt = (buf: Uint8Array, offset: number): void => {
    for (let got = 0; got < buf.length;) {
      const n = readSync(fd, buf, got, buf.length - got, offset + got);
      if (n === 0) throw new ProtoError('the file ends inside a field');
      got += n;
    }
  };
  return {
    size,
    path,
    read(offset, length) {
      if (offset + length > size) throw new ProtoError('a field runs past the end of the file');
      if (length > WINDOW / 4) {
        const out = new Uint8Array(length);
        readAt(out, offset);
        return out;
      }
      if (offset < windowAt || offset + length > windowAt + window.length) {
        window = new Uint8Array(Math.min(WINDOW, size - offset));
        windowAt = offset;
        readAt(window, offset);
      }
      return window.slice(offset - windowAt, offset - windowAt + length);
    },
    close: () => closeSync(fd),
  };
}

function memorySource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    path: undefined,
    read(offset, length) {
      if (offset + length > bytes.length) throw new ProtoError('a field runs past the end');
      return bytes.subarray(offset, offset + length);
    },
    close: () => undefined,
  };
}

/** The head of the field at `at` of the source (key and length), in absolute offsets. */
function headAt(src: ByteSource, at: number): { field: number; wire: number; start: number; end: number } {
  const h = fieldHead(src.read(at, Math.min(20, src.size - at)), 0);
  return { field: h.field, wire: h.wire, start: at + h.start, end: at + h.end };
}

/** Where a weight's bytes are: a byte range of a file. */
export interface DataRef {
  readonly file: string;
  readonly offset: number;
  readonly length: number;
}

/** An initializer: its name, dims, type, and its bytes, held (small ones) or located (large ones). */
export interface Initializer {
  readonly name: string;
  readonly dims: readonly number[];
  readonly dataType: number;
  /** The TensorProto's fields other than its data (name, dims, data_type, ...), encoded. */
  readonly head: readonly Uint8Array[];
  /** The whole TensorProto, when it is held in memory. */
  readonly proto?: Uint8Array;
  /** Where its raw bytes are, when they are not held. */
  readonly data?: DataRef;
}

/** Tensors at least this large (bytes) are located, not read; smaller ones are kept in memory. */
const HELD_LIMIT = 4096;

/** A TensorProto's external_data entries: location, offset, length. */
function externalRef(t: readonly Field[], dir: string, where: string): DataRef {
  const kv = new Map<string, string>();
  for (const f of t) {
    if (f.field !== 13) continue;
    const e = fields(f.payload);
    kv.set(text(e.find((x) => x.field === 1)?.payload ?? new Uint8Array()), text(e.find((x) => x.field === 2)?.payload ?? new Uint8Array()));
  }
  const location = kv.get('location');
  if (!location) throw fileError(where, 'an initializer has external data without a location');
  const file = resolve(dir, location);
  const size = statSync(file, { throwIfNoEntry: false })?.size;
  if (size === undefined) throw fileError(where, `its weights are in '${location}', which is not beside it (${file})`);
  const offset = Number(kv.get('offset') ?? 0);
  const length = kv.has('length') ? Number(kv.get('length')) : size - offset;
  if (!(offset >= 0 && offset + length <= size))
    throw fileError(file, `is too short for the weights the model reads from it (offset ${offset}, length ${length}, size ${size})`);
  return { file, offset, length };
}

function tensorInfo(t: readonly Field[]): { name: string; dims: number[]; dataType: number } {
  return {
    name: text(t.find((x) => x.field === 8)?.payload ?? new Uint8Array()),
    dims: varints(t, 1),
    dataType: Number(t.find((x) => x.field === 2)?.value ?? 0n),
  };
}

/** Reads an initializer at [start, end) of the source: held when small, else its raw_data located. */
function readInitializerField(src: ByteSource, start: number, end: number, dir: string, where: string): Initializer {
  if (end - start < HELD_LIMIT || src.path === undefined) {
    const proto = src.read(start, end - start);
    const t = fields(proto);
    const external = t.some((x) => x.field === 14 && x.value === 1n);
    const info = tensorInfo(t);
    if (!external) return { ...info, head: [], proto };
    return { ...info, head: t.filter((x) => x.field !== 13 && x.field !== 14).map((x) => x.raw), data: externalRef(t, dir, where) };
  }
  const head: Field[] = [];
  let data: DataRef | undefined;
  for (let at = start; at < end;) {
    const h = headAt(src, at);
    if (h.field === 9 && h.wire === 2) data = { file: src.path, offset: h.start, length: h.end - h.start };
    else head.push(...fields(src.read(at, h.end - at)));
    at = h.end;
  }
  const info = tensorInfo(head);
  const external = head.some((x) => x.field === 14 && x.value === 1n);
  if (external) data = externalRef(head, dir, where);
  if (data === undefined) return { ...info, head: [], proto: src.read(start, end - start) }; // float_data, int64_data ...: held
  return { ...info, head: head.filter((x) => x.field !== 13 && x.field !== 14).map((x) => x.raw), data };
}

function parseValueInfo(payload: Uint8Array): OnnxValueInfo {
  let name = '';
  let elemType = 0;
  const dims: (number | string)[] = [];
  for (const f of fields(payload)) {
    if (f.field === 1) name = text(f.payload);
    if (f.field !== 2) continue;
    for (const t of fields(f.payload)) {
      if (t.field !== 1) continue; // tensor_type
      for (const tt of fields(t.payload)) {
        if (tt.field === 1) elemType = Number(tt.value);
        if (tt.field !== 2) continue;
        for (const d of fields(tt.payload)) {
          if (d.field !== 1) continue;
          const dim = fields(d.payload).find((x) => x.field === 1 || x.field === 2);
          dims.push(dim === undefined ? '?' : dim.field === 1 ? Number(dim.value) : text(dim.payload));
        }
      }
    }
  }
  return { name, elemType, dims };
}

function parseNode(payload: Uint8Array): OnnxNode {
  const inputs: string[] = [];
  const outputs: string[] = [];
  const ints = new Map<string, number | number[]>();
  let name = '';
  let opType = '';
  let subgraphs = false;
  for (const f of fields(payload)) {
    if (f.field === 1) inputs.push(text(f.payload));
    else if (f.field === 2) outputs.push(text(f.payload));
    else if (f.field === 3) name = text(f.payload);
    else if (f.field === 4) opType = text(f.payload);
    else if (f.field === 5) {
      const fs = fields(f.payload);
      const attr = text(fs.find((x) => x.field === 1)?.payload ?? new Uint8Array());
      if (fs.some((x) => x.field === 6 || x.field === 11)) subgraphs = true;
      const i = fs.find((x) => x.field === 3 && x.wire === 0);
      if (i !== undefined) ints.set(attr, Number(BigInt.asIntN(64, i.value)));
      else if (fs.some((x) => x.field === 8)) ints.set(attr, varints(fs, 8));
    }
  }
  return { name, opType, inputs, outputs, ints, subgraphs };
}

/** A field of the graph other than an initializer, kept as encoded. */
interface GraphField {
  readonly field: number;
  readonly raw: Uint8Array;
}

/** An ONNX model read from disk (or memory) with its weights located, not held. */
export class OnnxModel {
  private constructor(
    /** The model file (for messages). */
    readonly where: string,
    /** The ModelProto's fields other than the graph, encoded. */
    private readonly modelHead: readonly Uint8Array[],
    /** The graph's fields other than initializers, in order. */
    private readonly graphFields: readonly GraphField[],
    readonly initializers: ReadonlyMap<string, Initializer>,
    readonly info: OnnxGraphInfo,
  ) {}

  /** Reads the model file; large weights are located, not read. */
  static open(path: string): OnnxModel {
    const src = fileSource(path);
    try {
      return OnnxModel.read(src, path, dirname(path));
    } finally {
      src.close();
    }
  }

  /** A model held in memory (external data, if any, relative to `dir`). */
  static fromBytes(bytes: Uint8Array, where: string, dir = '.'): OnnxModel {
    return OnnxModel.read(memorySource(bytes), where, dir);
  }

  private static read(src: ByteSource, where: string, dir: string): OnnxModel {
    try {
      const modelHead: Uint8Array[] = [];
      const graphFields: GraphField[] = [];
      const initializers = new Map<string, Initializer>();
      let graphs = 0;
      for (let at = 0; at < src.size;) {
        const h = headAt(src, at);
        if (h.end > src.size) throw new ProtoError('a field runs past the end');
        if (h.field === 7 && h.wire === 2) {
          graphs++;
          for (let g = h.start; g < h.end;) {
            const f = headAt(src, g);
            if (f.end > h.end) throw new ProtoError('a graph field runs past the graph');
            if (f.field === 5 && f.wire === 2) {
              const init = readInitializerField(src, f.start, f.end, dir, where);
              initializers.set(init.name, init);
            } else graphFields.push({ field: f.field, raw: src.read(g, f.end - g) });
            g = f.end;
          }
        } else modelHead.push(src.read(at, h.end - at));
        at = h.end;
      }
      if (graphs !== 1) throw new ProtoError('no graph');
      // weights in a file other than the model's own are external data
      const externalData = [...initializers.values()].some(
        (i) => i.data !== undefined && (src.path === undefined || resolve(i.data.file) !== resolve(src.path)),
      );
      return new OnnxModel(where, modelHead, graphFields, initializers, { ...describe(graphFields, initializers), externalData });
    } catch (e) {
      if (e instanceof ProtoError) throw new UserError(`${where}: not an ONNX model (${e.message})`);
      throw e;
    }
  }

  /** The nodes of the graph as encoded, with their parsed form, in graph order. */
  nodeFields(): { node: OnnxNode; raw: Uint8Array }[] {
    return this.graphFields.filter((f) => f.field === 1).map((f, i) => ({ node: this.info.nodes[i]!, raw: f.raw }));
  }

  /** An initializer's bytes (raw, little-endian), read from its byte range only. */
  tensorBytes(name: string): { dims: readonly number[]; dataType: number; bytes: Uint8Array } | undefined {
    const init = this.initializers.get(name);
    if (init === undefined) return undefined;
    const size = init.dims.reduce((a, b) => a * b, 1);
    const bad = (problem: string): UserError => fileError(this.where, `weight '${name}' ${problem}`);
    let bytes: Uint8Array;
    if (init.data !== undefined) {
      const src = fileSource(init.data.file);
      try {
        bytes = src.read(init.data.offset, init.data.length);
      } finally {
        src.close();
      }
    } else {
      const t = fields(init.proto!);
      const raw = t.find((x) => x.field === 9)?.payload;
      if (raw !== undefined)
        bytes = new Uint8Array(raw); // a copy (Buffer.slice would be a view)
      else if (init.dataType === ONNX_TYPE.float) bytes = floatData(t);
      else if (init.dataType === ONNX_TYPE.int32 || init.dataType === ONNX_TYPE.uint8 || init.dataType === ONNX_TYPE.int8)
        bytes = Uint8Array.from(varints(t, 5)); // int32_data holds the 8-bit types too
      else throw bad(`has data type ${init.dataType} stored in a way not read here`);
    }
    const per = TYPE_BYTES[init.dataType] ?? 0;
    if (per !== 0 && bytes.length !== size * per && init.dataType !== ONNX_TYPE.int32)
      throw bad(`holds ${bytes.length} bytes for dims [${init.dims.join(', ')}]`);
    return { dims: init.dims, dataType: init.dataType, bytes };
  }

  /** A float32 or float16 weight as float32; undefined when the graph has none of that name. */
  readTensor(name: string): OnnxTensor | undefined {
    const t = this.tensorBytes(name);
    if (t === undefined) return undefined;
    const aligned = t.bytes.byteOffset % 4 === 0 ? t.bytes : new Uint8Array(t.bytes);
    let data: Float32Array;
    if (t.dataType === ONNX_TYPE.float) data = new Float32Array(aligned.buffer, aligned.byteOffset, aligned.length / 4);
    else if (t.dataType === ONNX_TYPE.float16) data = float16ToFloat32(new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.length / 2));
    else throw fileError(this.where, `weight '${name}' has data type ${t.dataType}; only float32 and float16 weights are read as numbers`);
    return { name, dims: t.dims, data };
  }

  /**
   * This model with its graph's nodes, inputs and outputs replaced, each large weight an external
   * reference to where its bytes already are (the model file's own raw_data, or its external data
   * files), relative to the model's folder: onnxruntime reads them with
   * session.model_external_initializers_file_folder_path set to `folder`. Small: the weights are
   * not in it.
   */
  sessionModel(graph: SessionGraph): { bytes: Uint8Array; folder: string } {
    const folder = dirname(resolve(this.where));
    const g = new ProtoWriter();
    for (const n of graph.nodes) g.raw(n);
    for (const f of this.graphFields) if (f.field === 2 || f.field === 10) g.raw(f.raw); // name, doc_string
    for (const init of this.initializers.values()) {
      if (!graph.uses.has(init.name)) continue;
      if (init.proto !== undefined) g.bytes(5, init.proto);
      else {
        const location = relative(folder, init.data!.file);
        if (location.startsWith('..') || isAbsolute(location))
          throw fileError(this.where, `weight '${init.name}' is in ${init.data!.file}, outside the model's folder`);
        g.message(5, externalTensor(init, location));
      }
    }
    for (const i of graph.inputs) g.raw(i);
    for (const o of graph.outputs) g.raw(o);
    for (const f of this.graphFields) if (f.field === 13) g.raw(f.raw);
    const m = new ProtoWriter();
    for (const raw of this.modelHead) m.raw(raw);
    m.message(7, g);
    return { bytes: m.finish(), folder };
  }

  /** The graph's fields of one kind (inputs 11, outputs 12), as encoded. */
  graphFieldsOf(field: number): Uint8Array[] {
    return this.graphFields.filter((f) => f.field === field).map((f) => f.raw);
  }
}

/** What a session model is made of: encoded graph fields, and which initializers it uses. */
export interface SessionGraph {
  readonly nodes: readonly Uint8Array[];
  readonly inputs: readonly Uint8Array[];
  readonly outputs: readonly Uint8Array[];
  /** Names of the initializers the nodes read (others are left out). */
  readonly uses: ReadonlySet<string>;
}

/** A TensorProto whose data is `length` bytes at `offset` of `location` (relative to the model). */
function externalTensor(init: Initializer, location: string): ProtoWriter {
  const t = new ProtoWriter();
  for (const raw of init.head) t.raw(raw);
  const entry = (k: string, v: string): ProtoWriter => new ProtoWriter().string(1, k).string(2, v);
  t.message(13, entry('location', location))
    .message(13, entry('offset', String(init.data!.offset)))
    .message(13, entry('length', String(init.data!.length)));
  return t.int(14, 1);
}

function describe(graphFields: readonly GraphField[], initializers: ReadonlyMap<string, Initializer>): Omit<OnnxGraphInfo, 'externalData'> {
  const nodes: OnnxNode[] = [];
  const inputs: OnnxValueInfo[] = [];
  const outputs: OnnxValueInfo[] = [];
  const tensors = new Set<string>(initializers.keys());
  const declaredTypes = new Map<string, number>();
  for (const init of initializers.values()) declaredTypes.set(init.name, init.dataType);
  for (const f of graphFields) {
    const payload = fields(f.raw)[0]!.payload;
    if (f.field === 1) {
      const n = parseNode(payload);
      nodes.push(n);
      for (const o of n.outputs) tensors.add(o);
    } else if (f.field === 11 || f.field === 12 || f.field === 13) {
      const v = parseValueInfo(payload);
      if (v.elemType !== 0) declaredTypes.set(v.name, v.elemType);
      if (f.field === 11) {
        inputs.push(v);
        tensors.add(v.name);
      } else if (f.field === 12) outputs.push(v);
    }
  }
  return { nodes, inputs, outputs, tensors, initializers: new Set(initializers.keys()), declaredTypes };
}

/** A weight of the graph, as float32. */
export interface OnnxTensor {
  readonly name: string;
  readonly dims: readonly number[];
  /** [prod(dims)] row-major */
  readonly data: Float32Array;
}

/** TensorProto.float_data as bytes: packed (wire 2) or one fixed32 per value (wire 5). */
function floatData(t: readonly Field[]): Uint8Array {
  const parts = t.filter((x) => x.field === 4 && (x.wire === 2 || x.wire === 5));
  const bytes = (x: Field): Uint8Array => (x.wire === 2 ? x.payload : x.raw.subarray(x.raw.length - 4));
  const all = new Uint8Array(parts.reduce((n, x) => n + bytes(x).length, 0));
  let at = 0;
  for (const x of parts) {
    all.set(bytes(x), at);
    at += bytes(x).length;
  }
  return all;
}

// --- element types of the graph's values ---

/** Output element type of ops whose type is not their first input's: index of the input to copy, or a fixed type. */
const TYPE_RULES: Readonly<Record<string, { input: number } | { type: number }>> = {
  Shape: { type: 7 },
  Size: { type: 7 },
  NonZero: { type: 7 },
  ArgMax: { type: 7 },
  ArgMin: { type: 7 },
  Equal: { type: 9 },
  Greater: { type: 9 },
  Less: { type: 9 },
  GreaterOrEqual: { type: 9 },
  LessOrEqual: { type: 9 },
  Not: { type: 9 },
  And: { type: 9 },
  Or: { type: 9 },
  IsNaN: { type: 9 },
  IsInf: { type: 9 },
  Where: { input: 1 },
  DequantizeLinear: { input: 1 },
  QuantizeLinear: { input: 2 },
  MatMulInteger: { type: 6 },
  ConvInteger: { type: 6 },
  DynamicQuantizeLinear: { type: 2 },
  QLinearMatMul: { input: 7 },
  QLinearConv: { input: 7 },
  QLinearAdd: { input: 7 },
  QLinearMul: { input: 7 },
  CastLike: { input: 1 },
  Expand: { input: 0 },
  Range: { input: 0 },
  GatherBlockQuantized: { input: 2 },
};

/** The element type of every value we can tell: declared, or carried through the nodes in order. */
export function elemTypes(info: OnnxGraphInfo): Map<string, number> {
  const types = new Map(info.declaredTypes);
  for (const n of info.nodes) {
    const rule = TYPE_RULES[n.opType];
    let t: number | undefined;
    if (n.opType === 'Cast') t = Number(n.ints.get('to'));
    else if (rule !== undefined && 'type' in rule) t = rule.type;
    else if (rule !== undefined) t = types.get(n.inputs[rule.input] ?? '');
    else t = n.inputs.map((i) => types.get(i)).find((x) => x !== undefined);
    if (t === undefined || Number.isNaN(t)) continue;
    for (const [k, o] of n.outputs.entries()) if (o && !types.has(o)) types.set(o, n.opType === 'DynamicQuantizeLinear' && k === 1 ? ONNX_TYPE.float : t);
  }
  return types;
}

// --- encoding the parts of a rewritten graph ---

/** A ValueInfoProto: name, element type, and dims (numbers or symbolic names; none: no shape given). */
export function valueInfo(name: string, elemType: number, dims?: readonly (number | string)[]): Uint8Array {
  const tensorType = new ProtoWriter().int(1, elemType);
  if (dims !== undefined) {
    const shape = new ProtoWriter();
    for (const d of dims) shape.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
    tensorType.message(2, shape);
  }
  return new ProtoWriter().string(1, name).message(2, new ProtoWriter().message(1, tensorType)).finish();
}

/** A NodeProto (as a graph field, number 1) with integer attributes, and attribute fields copied from another node. */
export function nodeField(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  name: string,
  ints: Readonly<Record<string, number>> = {},
  attributes: readonly Uint8Array[] = [],
): Uint8Array {
  const n = new ProtoWriter();
  for (const i of inputs) n.string(1, i);
  for (const o of outputs) n.string(2, o);
  n.string(3, name).string(4, opType);
  for (const [k, v] of Object.entries(ints)) n.message(5, new ProtoWriter().string(1, k).int(20, 2).int(3, v));
  for (const a of attributes) n.raw(a);
  return new ProtoWriter().message(1, n).finish();
}

/** A node field's attributes named in `names`, as encoded (to copy them to another node). */
export function attributeFields(raw: Uint8Array, names: readonly string[]): Uint8Array[] {
  return fields(fields(raw)[0]!.payload)
    .filter((f) => f.field === 5 && names.includes(text(fields(f.payload).find((x) => x.field === 1)?.payload ?? new Uint8Array())))
    .map((f) => f.raw);
}

/** A graph field (input 11, output 12) holding a ValueInfoProto. */
export function valueInfoField(field: 11 | 12, name: string, elemType: number, dims?: readonly (number | string)[]): Uint8Array {
  return new ProtoWriter().bytes(field, valueInfo(name, elemType, dims)).finish();
}

/** A node field with every input named in `rename` renamed (consumers of a replaced tensor). */
export function renameInputs(raw: Uint8Array, rename: ReadonlyMap<string, string>): Uint8Array {
  const nodeFields = fields(fields(raw)[0]!.payload);
  const n = new ProtoWriter();
  for (const f of nodeFields) {
    const to = f.field === 1 ? rename.get(text(f.payload)) : undefined;
    if (to !== undefined) n.string(1, to);
    else n.raw(f.raw);
  }
  return new ProtoWriter().message(1, n).finish();
}

/** A node field with output `index` named `name` (empty outputs before it, as optional outputs are skipped). */
export function withOutput(raw: Uint8Array, index: number, name: string): Uint8Array {
  const nodeFields = fields(fields(raw)[0]!.payload);
  const outputs = nodeFields.filter((f) => f.field === 2).map((f) => text(f.payload));
  while (outputs.length <= index) outputs.push('');
  outputs[index] = name;
  const n = new ProtoWriter();
  for (const f of nodeFields) if (f.field === 1) n.raw(f.raw);
  for (const o of outputs) n.string(2, o);
  for (const f of nodeFields) if (f.field !== 1 && f.field !== 2) n.raw(f.raw);
  return new ProtoWriter().message(1, n).finish();
}

/** Whether the model file is a merged decoder (its layers inside an If on use_cache_branch). */
export function isMergedDecoder(info: OnnxGraphInfo): boolean {
  return info.inputs.some((i) => i.name === 'use_cache_branch') || (info.nodes.some((n) => n.opType === 'If' && n.subgraphs) && info.nodes.length < 16);
}
