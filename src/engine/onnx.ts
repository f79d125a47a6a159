/**
 * Builds ONNX models in TypeScript: a small protobuf writer for the few messages of onnx.proto we
 * emit (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto), and a
 * GraphBuilder with one method per operator we use. Field numbers follow onnx/onnx.proto3; the
 * protobuf encoding itself is src/engine/protobuf.ts.
 */
import { ProtoWriter } from './protobuf.js';

/** ONNX TensorProto.DataType values. */
export const DataType = { float32: 1, uint8: 2, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11 } as const;
export type ElemType = keyof typeof DataType;

/** A dimension: a fixed size, or a symbolic name such as 'batch'. */
export type Dim = number | string;

/** An ONNX node attribute: an integer, a float, a list of integers or a string. */
export type AttrValue = number | { float: number } | readonly number[] | string;

function attribute(name: string, value: AttrValue): ProtoWriter {
  const a = new ProtoWriter().string(1, name);
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: use { float: x } for a float`);
    return a.int(20, 2).int(3, value);
  }
  if (typeof value === 'string') return a.int(20, 3).string(4, value);
  if ('float' in value) return a.int(20, 1).float(2, value.float);
  a.int(20, 7);
  for (const x of value) a.int(8, x);
  return a;
}

function valueInfo(name: string, type: ElemType, shape: readonly Dim[]): ProtoWriter {
  const dims = new ProtoWriter();
  for (const d of shape) dims.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
  const tensorType = new ProtoWriter().int(1, DataType[type]).message(2, dims);
  return new ProtoWriter().string(1, name).message(2, new ProtoWriter().message(1, tensorType));
}

/** The data of a constant tensor in a graph. */
export type ConstData = Float32Array | Int32Array | BigInt64Array;

function tensorProto(name: string, type: ElemType, dims: readonly number[], data: ConstData): ProtoWriter {
  const t = new ProtoWriter();
  for (const d of dims) t.int(1, d);
  t.int(2, DataType[type]).string(8, name);
  return t.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice()); // copied: the writer keeps views
}

/** A value in the graph under construction: its name. */
export type Value = string & { readonly __value: unique symbol };

/**
 * Accumulates nodes; `encode()` returns the serialised ModelProto. Values are named automatically
 * (`<op>_<n>`) unless a name is given; graph outputs are named by `output()`.
 */
export class GraphBuilder {
  private nodes: ProtoWriter[] = [];
  private initializers: ProtoWriter[] = [];
  private inputs: ProtoWriter[] = [];
  private outputs: ProtoWriter[] = [];
  /** Each node's input and output names, parallel to `nodes`, for pruning. */
  private edges: { inputs: readonly string[]; outputs: readonly string[] }[] = [];
  private inputNames: string[] = [];
  private outputNames: string[] = [];
  private initializerNames: string[] = [];
  private counter = 0;
  private readonly constCache = new Map<string, Value>();

  constructor(private readonly opset = 17) {}

  /** A graph input of this shape and element type. */
  input(name: string, shape: readonly Dim[], type: ElemType = 'float32'): Value {
    this.inputs.push(valueInfo(name, type, shape));
    this.inputNames.push(name);
    return name as Value;
  }

  /** Marks `value` as a graph output named `name` (an Identity node renames it). */
  output(value: Value, name: string, shape: readonly Dim[], type: ElemType = 'float32'): void {
    this.op('Identity', [value], {}, name);
    this.outputs.push(valueInfo(name, type, shape));
    this.outputNames.push(name);
  }

  /** A constant tensor (an initializer); scalars are cached. */
  constant(data: ConstData, dims: readonly number[] = []): Value {
    const type: ElemType = data instanceof Float32Array ? 'float32' : data instanceof Int32Array ? 'int32' : 'int64';
    const key = dims.length === 0 ? `${type}:${String(data[0])}` : '';
    const cached = key ? this.constCache.get(key) : undefined;
    if (cached) return cached;
    const name = `const_${this.counter++}` as Value;
    this.initializers.push(tensorProto(name, type, dims, data));
    this.initializerNames.push(name);
    if (key) this.constCache.set(key, name);
    return name;
  }

  /** A float32 scalar constant. */
  scalar(x: number): Value {
    return this.constant(new Float32Array([x]));
  }

  /** An int64 [n] constant of axes, for the reductions and Unsqueeze. */
  axes(...axes: number[]): Value {
    return this.constant(BigInt64Array.from(axes.map(BigInt)), [axes.length]);
  }

  /** A node of any ONNX operator with one output. */
  op(type: string, inputs: readonly (Value | '')[], attrs: Record<string, AttrValue> = {}, name?: string): Value {
    return this.opN(type, inputs, 1, attrs, name ? [name] : undefined)[0]!;
  }

  /** A node of any ONNX operator with nOut outputs. */
  opN(type: string, inputs: readonly (Value | '')[], nOut: number, attrs: Record<string, AttrValue> = {}, names?: string[]): Value[] {
    const id = this.counter++;
    const outs = (names ?? Array.from({ length: nOut }, (_, i) => `${type}_${id}_${i}`)) as Value[];
    const node = new ProtoWriter();
    for (const i of inputs) node.string(1, i);
    for (const o of outs) node.string(2, o);
    node.string(3, `node_${id}`).string(4, type);
    for (const [k, v] of Object.entries(attrs)) node.message(5, attribute(k, v));
    this.nodes.push(node);
    this.edges.push({ inputs, outputs: outs });
    return outs;
  }

  // --- the operators we use ---
  /** a + b, broadcasting. */
  add(a: Value, b: Value): Value {
    return this.op('Add', [a, b]);
  }
  /** a - b, broadcasting. */
  sub(a: Value, b: Value): Value {
    return this.op('Sub', [a, b]);
  }
  /** a * b, broadcasting. */
  mul(a: Value, b: Value): Value {
    return this.op('Mul', [a, b]);
  }
  /** a / b, broadcasting. */
  div(a: Value, b: Value): Value {
    return this.op('Div', [a, b]);
  }
  /** -a. */
  neg(a: Value): Value {
    return this.op('Neg', [a]);
  }
  /** max(a, 0). */
  relu(a: Value): Value {
    return this.op('Relu', [a]);
  }
  /** 1 / (1 + exp(-a)). */
  sigmoid(a: Value): Value {
    return this.op('Sigmoid', [a]);
  }
  /** sqrt(a). */
  sqrt(a: Value): Value {
    return this.op('Sqrt', [a]);
  }
  /** exp(a). */
  exp(a: Value): Value {
    return this.op('Exp', [a]);
  }
  /** ln(a). */
  log(a: Value): Value {
    return this.op('Log', [a]);
  }
  /** a * a. */
  square(a: Value): Value {
    return this.op('Mul', [a, a]);
  }
  /** a > b (boolean). */
  greater(a: Value, b: Value): Value {
    return this.op('Greater', [a, b]);
  }
  /** a < b (boolean). */
  less(a: Value, b: Value): Value {
    return this.op('Less', [a, b]);
  }
  /** a and b (booleans). */
  and(a: Value, b: Value): Value {
    return this.op('And', [a, b]);
  }
  /** a where cond, else b. */
  where(cond: Value, a: Value, b: Value): Value {
    return this.op('Where', [cond, a, b]);
  }
  /** a converted to another element type. */
  cast(a: Value, to: ElemType): Value {
    return this.op('Cast', [a], { to: DataType[to] });
  }
  /** a @ b. */
  matmul(a: Value, b: Value): Value {
    return this.op('MatMul', [a, b]);
  }
  /** Gemm: op(a) @ op(b) (+ c, broadcast), op = transpose when asked. */
  gemm(a: Value, b: Value, opts: { c?: Value; transA?: boolean; transB?: boolean } = {}): Value {
    return this.op('Gemm', opts.c ? [a, b, opts.c] : [a, b], { transA: opts.transA ? 1 : 0, transB: opts.transB ? 1 : 0 });
  }
  /** Sum over the given axes (all axes when none). */
  sum(a: Value, axes: number[] = [], keepdims = false): Value {
    return this.op('ReduceSum', axes.length ? [a, this.axes(...axes)] : [a], { keepdims: keepdims ? 1 : 0 });
  }
  /** a with size-1 axes inserted. */
  unsqueeze(a: Value, ...axes: number[]): Value {
    return this.op('Unsqueeze', [a, this.axes(...axes)]);
  }
  /** The k largest (or smallest) along an axis, sorted: values and int64 indices. */
  topk(a: Value, k: Value, axis = -1, largest = true): [values: Value, indices: Value] {
    const [v, i] = this.opN('TopK', [a, k], 2, { axis, largest: largest ? 1 : 0, sorted: 1 });
    return [v!, i!];
  }

  /** Softmax along `axis`. */
  softmax(a: Value, axis = -1): Value {
    return this.op('Softmax', [a], { axis });
  }
  /** tanh(a). */
  tanh(a: Value): Value {
    return this.op('Tanh', [a]);
  }
  /** The error function of a. */
  erf(a: Value): Value {
    return this.op('Erf', [a]);
  }
  /** sin(a). */
  sin(a: Value): Value {
    return this.op('Sin', [a]);
  }
  /** cos(a). */
  cos(a: Value): Value {
    return this.op('Cos', [a]);
  }
  /** a to the power b. */
  pow(a: Value, b: Value): Value {
    return this.op('Pow', [a, b]);
  }
  /** Reshape to `shape` (a constant list, 0 = keep, -1 = infer, or an int64 value). */
  reshape(a: Value, shape: readonly number[] | Value): Value {
    return this.op('Reshape', [a, typeof shape === 'string' ? shape : this.ints(shape)]);
  }
  /** a with its axes permuted. */
  transpose(a: Value, perm: readonly number[]): Value {
    return this.op('Transpose', [a], { perm });
  }
  /** Rows of `data` along `axis` picked by integer `indices`. */
  gather(data: Value, indices: Value, axis = 0): Value {
    return this.op('Gather', [data, indices], { axis });
  }
  /** The values one after another along `axis`. */
  concat(values: readonly Value[], axis: number): Value {
    return this.op('Concat', values, { axis });
  }
  /** a[..., starts:ends] along `axes` (constant bounds). */
  slice(a: Value, starts: readonly number[], ends: readonly number[], axes: readonly number[]): Value {
    return this.op('Slice', [a, this.ints(starts), this.ints(ends), this.ints(axes)]);
  }
  /** Mean over the given axes (opset < 18: axes as an attribute). */
  mean(a: Value, axes: number[], keepdims = true): Value {
    return this.op('ReduceMean', [a], { axes, keepdims: keepdims ? 1 : 0 });
  }
  /** a broadcast to `shape` (an int64 value). */
  expand(a: Value, shape: Value): Value {
    return this.op('Expand', [a, shape]);
  }
  /** The lower (upper = false) or upper triangle of the last two axes, from diagonal k on. */
  trilu(a: Value, upper: boolean, k = 0): Value {
    return this.op('Trilu', [a, this.ints([k])], { upper: upper ? 1 : 0 });
  }
  /** An int64 constant vector. */
  ints(values: readonly number[]): Value {
    return this.constant(BigInt64Array.from(values.map(BigInt)), [values.length]);
  }

  /**
   * The serialised ModelProto. With `prune`, only the nodes that the outputs depend on are kept,
   * and only the inputs and initializers those nodes read (a graph input nothing reads is dropped).
   */
  encode(options: { prune?: boolean } = {}): Uint8Array {
    const keep = options.prune ? this.liveNodes() : undefined;
    const used = new Set<string>();
    if (keep) for (const i of keep) for (const name of this.edges[i]!.inputs) used.add(name);
    const graph = new ProtoWriter();
    this.nodes.forEach((n, i) => {
      if (!keep || keep.has(i)) graph.message(1, n);
    });
    graph.string(2, 'sparse_autoencoder');
    this.initializers.forEach((t, i) => {
      if (!keep || used.has(this.initializerNames[i]!)) graph.message(5, t);
    });
    this.inputs.forEach((t, i) => {
      if (!keep || used.has(this.inputNames[i]!)) graph.message(11, t);
    });
    for (const o of this.outputs) graph.message(12, o);
    const model = new ProtoWriter().int(1, 8).string(2, 'sparse-autoencoder');
    model.message(7, graph);
    model.message(8, new ProtoWriter().string(1, '').int(2, this.opset));
    return model.finish();
  }

  /** Indices of the nodes the graph outputs depend on. */
  private liveNodes(): Set<number> {
    const producer = new Map<string, number>();
    this.edges.forEach((e, i) => {
      for (const o of e.outputs) producer.set(o, i);
    });
    const live = new Set<number>();
    const stack = [...this.outputNames];
    while (stack.length > 0) {
      const i = producer.get(stack.pop()!);
      if (i === undefined || live.has(i)) continue;
      live.add(i);
      for (const name of this.edges[i]!.inputs) if (name) stack.push(name);
    }
    return live;
  }
}
