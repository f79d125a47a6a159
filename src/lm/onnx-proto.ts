/**
 * Reads and rewrites existing ONNX models (src/engine/onnx.ts writes the ones we build). A small
 * protobuf reader splits a message into its fields without copying; the rewrites touch only what
 * they must and keep every other byte (weights included) as it was:
 *   exposeOutputs   adds graph outputs (tensors inside the graph become results of a run)
 *   cutAt           turns a tensor into a graph input: its producer's output is renamed away, so
 *                   every consumer reads what the caller feeds (splicing an SAE's reconstruction)
 *   readInitializer one weight of the graph as float32 (the unembedding, for logit effects)
 * Field numbers follow onnx/onnx.proto3: ModelProto.graph = 7; GraphProto node = 1,
 * initializer = 5, input = 11, output = 12, value_info = 13; NodeProto input = 1, output = 2,
 * name = 3, op_type = 4, attribute = 5; AttributeProto name = 1, i = 3, ints = 8; ValueInfoProto
 * name = 1, type = 2; TensorProto dims = 1, data_type = 2, float_data = 4, name = 8, raw_data = 9,
 * data_location = 14.
 */
import { UserError } from '../errors.js';
import { float16ToFloat32 } from '../io/float16.js';
import type { OnnxNodeInfo } from './hooks.js';

/** One field of a message: its number, wire type, and its bytes (payload for length-delimited fields). */
interface Field {
  readonly field: number;
  readonly wire: number;
  /** Varint value (wire 0). */
  readonly value: bigint;
  /** The whole field as it was encoded (key included). */
  readonly raw: Uint8Array;
  /** Length-delimited payload (wire 2). */
  readonly payload: Uint8Array;
}

function readVarint(buf: Uint8Array, at: number): [value: bigint, next: number] {
  let v = 0n;
  let shift = 0n;
  for (let i = at; i < buf.length; i++) {
    const b = buf[i]!;
    v |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [v, i + 1];
    shift += 7n;
    if (shift > 63n) break;
  }
  throw new ProtoError('bad varint');
}

class ProtoError extends Error {}

/** The fields of a message, in order. */
function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let at = 0;
  while (at < buf.length) {
    const start = at;
    const [key, afterKey] = readVarint(buf, at);
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    let value = 0n;
    let payload = buf.subarray(0, 0);
    if (wire === 0) [value, at] = readVarint(buf, afterKey);
    else if (wire === 1) at = afterKey + 8;
    else if (wire === 5) at = afterKey + 4;
    else if (wire === 2) {
      const [len, afterLen] = readVarint(buf, afterKey);
      at = afterLen + Number(len);
      payload = buf.subarray(afterLen, at);
    } else throw new ProtoError(`unsupported wire type ${wire}`);
    if (at > buf.length) throw new ProtoError('field runs past the end');
    out.push({ field, wire, value, raw: buf.subarray(start, at), payload });
  }
  return out;
}

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

function varint(v: number): number[] {
  const out: number[] = [];
  let x = v;
  while (x >= 0x80) {
    out.push((x & 0x7f) | 0x80);
    x = Math.floor(x / 128);
  }
  out.push(x);
  return out;
}

/** A length-delimited field. */
function lenField(field: number, payload: Uint8Array): Uint8Array {
  const head = [...varint(field * 8 + 2), ...varint(payload.length)];
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const str = (field: number, s: string): Uint8Array => lenField(field, new TextEncoder().encode(s));

/** A graph input or output: its name, element type and dims (numbers or symbolic names). */
export interface OnnxValueInfo {
  readonly name: string;
  /** TensorProto.DataType (1 float, 7 int64, 9 bool, 10 float16, ...). */
  readonly elemType: number;
  readonly dims: readonly (number | string)[];
}

/** A node with its integer attributes (Gemm's transB, Transpose's perm). */
export interface OnnxNode extends OnnxNodeInfo {
  readonly ints: ReadonlyMap<string, number | readonly number[]>;
}

export interface OnnxGraphInfo {
  readonly nodes: readonly OnnxNode[];
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
  /** Every tensor name: node outputs, graph inputs, initializers. */
  readonly tensors: ReadonlySet<string>;
  /** The names of the initializers (the graph's stored weights). */
  readonly initializers: ReadonlySet<string>;
  /** Whether weights live in files beside the model (not supported here). */
  readonly externalData: boolean;
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

/** Varints of a repeated integer field, packed (wire 2) or not (wire 0), as signed numbers. */
function varints(fs: readonly Field[], field: number): number[] {
  const out: number[] = [];
  for (const f of fs) {
    if (f.field !== field) continue;
    if (f.wire === 0) out.push(Number(BigInt.asIntN(64, f.value)));
    else if (f.wire === 2) for (let at = 0; at < f.payload.length; ) {
      const [v, next] = readVarint(f.payload, at);
      out.push(Number(BigInt.asIntN(64, v)));
      at = next;
    }
  }
  return out;
}

/** An attribute's integer (i) or integers (ints), else undefined. */
function intAttribute(payload: Uint8Array): [string, number | number[]] | undefined {
  const fs = fields(payload);
  const name = fs.find((f) => f.field === 1);
  if (name === undefined) return undefined;
  const i = fs.find((f) => f.field === 3 && f.wire === 0);
  if (i !== undefined) return [text(name.payload), Number(BigInt.asIntN(64, i.value))];
  return fs.some((f) => f.field === 8) ? [text(name.payload), varints(fs, 8)] : undefined;
}

function parseNode(payload: Uint8Array): OnnxNode {
  const inputs: string[] = [];
  const outputs: string[] = [];
  const ints = new Map<string, number | number[]>();
  let name = '';
  let opType = '';
  for (const f of fields(payload)) {
    if (f.field === 1) inputs.push(text(f.payload));
    else if (f.field === 2) outputs.push(text(f.payload));
    else if (f.field === 3) name = text(f.payload);
    else if (f.field === 4) opType = text(f.payload);
    else if (f.field === 5) {
      const a = intAttribute(f.payload);
      if (a) ints.set(a[0], a[1]);
    }
  }
  return { name, opType, inputs, outputs, ints };
}

/** The graph's fields, or a one-line error naming the model. */
function graphFields(model: Uint8Array, where: string): { modelFields: Field[]; graph: Field[] } {
  try {
    const modelFields = fields(model);
    const graphs = modelFields.filter((f) => f.field === 7 && f.wire === 2);
    if (graphs.length !== 1) throw new ProtoError('no graph');
    return { modelFields, graph: fields(graphs[0]!.payload) };
  } catch (e) {
    if (e instanceof ProtoError) throw new UserError(`${where}: not an ONNX model (${e.message})`);
    throw e;
  }
}

/** Nodes (in graph order), inputs, outputs and tensor names of the model's main graph. */
export function readGraph(model: Uint8Array, where: string): OnnxGraphInfo {
  const { graph } = graphFields(model, where);
  const nodes: OnnxNode[] = [];
  const inputs: OnnxValueInfo[] = [];
  const outputs: OnnxValueInfo[] = [];
  const tensors = new Set<string>();
  const initializers = new Set<string>();
  let externalData = false;
  for (const f of graph) {
    if (f.field === 1) {
      const n = parseNode(f.payload);
      nodes.push(n);
      for (const o of n.outputs) tensors.add(o);
    } else if (f.field === 11) {
      const v = parseValueInfo(f.payload);
      inputs.push(v);
      tensors.add(v.name);
    } else if (f.field === 12) outputs.push(parseValueInfo(f.payload));
    else if (f.field === 5) {
      for (const t of fields(f.payload)) {
        if (t.field === 8) {
          tensors.add(text(t.payload));
          initializers.add(text(t.payload));
        }
        if (t.field === 14 && t.value === 1n) externalData = true;
      }
    }
  }
  return { nodes, inputs, outputs, tensors, initializers, externalData };
}

/** A weight of the graph, as float32. */
export interface OnnxTensor {
  readonly name: string;
  readonly dims: readonly number[];
  /** [prod(dims)] row-major */
  readonly data: Float32Array;
}

/** The initializer named `name` (float32 or float16, raw_data or float_data) as float32; undefined when the graph has none of that name. */
export function readInitializer(model: Uint8Array, name: string, where: string): OnnxTensor | undefined {
  const { graph } = graphFields(model, where);
  for (const f of graph) {
    if (f.field !== 5) continue;
    const t = fields(f.payload);
    const n = t.find((x) => x.field === 8);
    if (n === undefined || text(n.payload) !== name) continue;
    const dims = varints(t, 1);
    const type = Number(t.find((x) => x.field === 2)?.value ?? 0n);
    const size = dims.reduce((a, b) => a * b, 1);
    const raw = t.find((x) => x.field === 9)?.payload;
    const bad = (problem: string): UserError => new UserError(`${where}: weight '${name}' ${problem}`);
    let data: Float32Array;
    if (type === 1 && raw !== undefined) data = new Float32Array(raw.slice().buffer); // copied: raw_data need not be 4-byte aligned
    else if (type === 10 && raw !== undefined) data = float16ToFloat32(new Uint16Array(raw.slice().buffer));
    else if (type === 1) data = floatData(t);
    else throw bad(`has data type ${type}; only float32 and float16 weights are read`);
    if (data.length !== size) throw bad(`holds ${data.length} values for dims [${dims.join(', ')}]`);
    return { name, dims, data };
  }
  return undefined;
}

/** TensorProto.float_data: packed (wire 2) or one fixed32 per value (wire 5). */
function floatData(t: readonly Field[]): Float32Array {
  const parts = t.filter((x) => x.field === 4 && (x.wire === 2 || x.wire === 5));
  const bytes = (x: Field): Uint8Array => (x.wire === 2 ? x.payload : x.raw.subarray(x.raw.length - 4));
  const all = new Uint8Array(parts.reduce((n, x) => n + bytes(x).length, 0));
  let at = 0;
  for (const x of parts) {
    all.set(bytes(x), at);
    at += bytes(x).length;
  }
  return new Float32Array(all.buffer, 0, Math.floor(all.length / 4));
}

/** A float ValueInfoProto with no shape. */
function floatValueInfo(name: string, elemType = 1): Uint8Array {
  const tensorType = new Uint8Array([0x08, elemType]); // elem_type
  return concat([str(1, name), lenField(2, lenField(1, tensorType))]);
}

/** Rebuilds the model with its graph's fields replaced by `graph` (every other model field kept). */
function withGraph(modelFields: readonly Field[], graph: readonly Uint8Array[]): Uint8Array {
  return concat(modelFields.map((f) => (f.field === 7 && f.wire === 2 ? lenField(7, concat(graph)) : f.raw)));
}

/** The model with `names` (tensors inside the graph, float) added as graph outputs. */
export function exposeOutputs(model: Uint8Array, names: readonly string[], where: string): Uint8Array {
  const { modelFields, graph } = graphFields(model, where);
  const existing = new Set(graph.filter((f) => f.field === 12).map((f) => parseValueInfo(f.payload).name));
  const added = names.filter((n, i) => !existing.has(n) && names.indexOf(n) === i).map((n) => lenField(12, floatValueInfo(n)));
  return withGraph(modelFields, [...graph.map((f) => f.raw), ...added]);
}

/**
 * The model with tensor `name` made a graph input (float, fed by the caller): the node that made it
 * now writes `name::clean` instead, and a value_info naming it is dropped.
 */
export function cutAt(model: Uint8Array, name: string, where: string): Uint8Array {
  const { modelFields, graph } = graphFields(model, where);
  let found = false;
  const rewritten = graph.flatMap((f): Uint8Array[] => {
    if (f.field === 13 && parseValueInfo(f.payload).name === name) return [];
    if (f.field !== 1) return [f.raw];
    const nodeFields = fields(f.payload);
    if (!nodeFields.some((x) => x.field === 2 && text(x.payload) === name)) return [f.raw];
    found = true;
    return [lenField(1, concat(nodeFields.map((x) => (x.field === 2 && text(x.payload) === name ? str(2, `${name}::clean`) : x.raw))))];
  });
  if (!found) throw new UserError(`${where}: no node of the graph makes tensor '${name}'`);
  return withGraph(modelFields, [...rewritten, lenField(11, floatValueInfo(name))]);
}
