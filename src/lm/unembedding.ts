/**
 * The unembedding W_U of an ONNX causal language model: the weight of the last matrix product
 * before the logits,
 *   logits = h_final W_U (+ b)          W_U: [d_model, vocab]
 * found by walking back from the logits output through Identity / Reshape / Cast and a bias Add
 * to a MatMul or Gemm, then from its weight input through Identity and a 2-D Transpose to an
 * initializer. A Gemm with transB, or a Transpose of a tied embedding, keeps W_U^T [vocab, d_model]:
 * it is read as stored and marked `transposed` (the product W_dec @ W_U is then a Gemm with transB).
 * Quantised weights are dequantised to float32 (the values the product uses):
 *   MatMulNBits (4 or 8 bits, blocks of block_size along K, stored per output column n):
 *     W^T[n, k] = (q[n, k] - z[n, k / block_size]) * scale[n, k / block_size],  z = 2^(bits-1) by default
 *   DequantizeLinear of a stored int8/uint8 weight: W = (q - z) * scale (per tensor or per axis)
 *   dynamic quantisation (onnxruntime's quantize_dynamic, transformers.js model_quantized.onnx):
 *     logits = Cast(MatMulInteger(x_q, W_q, x_z, W_z)) * (x_scale * W_scale), so W = (W_q - W_z) * W_scale
 * When the graph is not of that shape, the reason is returned instead, in words.
 */
import { fileError } from '../errors.js';
import { ONNX_TYPE, type OnnxGraphInfo, type OnnxModel, type OnnxNode, type OnnxTensor } from './onnx-proto.js';

export interface Unembedding {
  /** The initializer it was read from. */
  readonly tensor: string;
  readonly dModel: number;
  readonly vocab: number;
  /** false: data is W_U [dModel, vocab]; true: data is W_U^T [vocab, dModel]. */
  readonly transposed: boolean;
  readonly data: Float32Array;
}

export type UnembeddingLookup = { readonly found: true; readonly unembedding: Unembedding } | { readonly found: false; readonly reason: string };

/** Ops the walk from the logits back to their MatMul passes through (their first input carries the logits). */
const PASS_THROUGH = new Set(['Identity', 'Reshape', 'Cast', 'Squeeze', 'Unsqueeze']);

/** At most this many nodes between the logits and their product, and between the product and its weight. */
const MAX_HOPS = 8;

/** The logits output: the one named 'logits', else the first (as OnnxLm reads it). */
export function logitsOutput(graph: OnnxGraphInfo): string | undefined {
  return graph.outputs.find((o) => o.name === 'logits')?.name ?? graph.outputs[0]?.name;
}

export function findUnembedding(model: OnnxModel): UnembeddingLookup {
  const graph = model.info;
  const none = (reason: string): UnembeddingLookup => ({ found: false, reason });
  const producer = new Map<string, OnnxNode>();
  for (const n of graph.nodes) for (const o of n.outputs) producer.set(o, n);
  const logits = logitsOutput(graph);
  if (logits === undefined) return none('the graph has no outputs');

  let t = logits;
  let product: OnnxNode | undefined;
  for (let hop = 0; hop < MAX_HOPS && product === undefined; hop++) {
    const n = producer.get(t);
    if (n === undefined) return none(`the logits '${logits}' are not made by a MatMul or Gemm`);
    if (n.opType === 'MatMul' || n.opType === 'Gemm' || n.opType === 'MatMulNBits') product = n;
    else if (PASS_THROUGH.has(n.opType) && n.inputs[0]) t = n.inputs[0];
    else if (n.opType === 'Add' && n.inputs.length === 2 && n.inputs.some((i) => graph.initializers.has(i)))
      t = n.inputs.find((i) => !graph.initializers.has(i)) ?? '';
    else if (
      n.opType === 'Mul' &&
      n.inputs.some((i) => producer.get(i)?.opType === 'Cast' && producer.get(producer.get(i)!.inputs[0] ?? '')?.opType === 'MatMulInteger')
    )
      return matMulInteger(model, n, producer);
    else return none(`the logits come from a ${n.opType} node ('${n.name}'), not from a MatMul or Gemm with a stored weight`);
  }
  if (product === undefined) return none(`no MatMul or Gemm within ${MAX_HOPS} nodes of the logits '${logits}'`);
  if (product.opType === 'MatMulNBits') return matMulNBits(model, product);
  if (product.opType === 'Gemm' && product.ints.get('transA') === 1)
    return none(`the logits' Gemm ('${product.name}') transposes its input (transA), which is not supported`);

  let weight = product.inputs[1] ?? '';
  let transposed = product.opType === 'Gemm' && product.ints.get('transB') === 1;
  let w: OnnxTensor | undefined;
  for (let hop = 0; hop < MAX_HOPS && w === undefined; hop++) {
    if (graph.initializers.has(weight)) {
      w = model.readTensor(weight);
      break;
    }
    const n = producer.get(weight);
    const perm = n?.ints.get('perm');
    if (n?.opType === 'Identity' && n.inputs[0]) weight = n.inputs[0];
    else if (n?.opType === 'Cast' && n.inputs[0])
      weight = n.inputs[0]; // float16 weights cast to float32
    else if (n?.opType === 'Transpose' && n.inputs[0] && (perm === undefined || (Array.isArray(perm) && perm.join() === '1,0'))) {
      weight = n.inputs[0];
      transposed = !transposed;
    } else if (n?.opType === 'DequantizeLinear' && n.inputs.every((i) => i === '' || graph.initializers.has(i))) {
      w = dequantizeLinear(model, n);
      weight = n.inputs[0]!;
    } else
      return none(
        `the weight of the logits' ${product.opType} ('${weight}') is ${n ? `made by a ${n.opType} node` : 'a graph input'}, not a stored initializer`,
      );
  }
  if (w === undefined) return none(`the weight of the logits' ${product.opType} ('${weight}') is not a stored initializer`);
  if (w.dims.length !== 2) return none(`the unembedding '${weight}' has shape [${w.dims.join(', ')}], not a matrix`);
  const [rows, cols] = [w.dims[0]!, w.dims[1]!];
  return { found: true, unembedding: { tensor: weight, dModel: transposed ? cols : rows, vocab: transposed ? rows : cols, transposed, data: w.data } };
}

/** Integers of an 8-bit initializer (int8 or uint8). */
function int8s(model: OnnxModel, name: string): { values: Int8Array | Uint8Array; dims: readonly number[] } {
  const t = model.tensorBytes(name);
  if (t === undefined) throw fileError(model.where, `'${name}' is not a stored initializer`);
  if (t.dataType === ONNX_TYPE.int8) return { values: new Int8Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.length), dims: t.dims };
  if (t.dataType === ONNX_TYPE.uint8) return { values: t.bytes, dims: t.dims };
  throw fileError(model.where, `quantised weight '${name}' has data type ${t.dataType}; int8 or uint8 was expected`);
}

/** DequantizeLinear(q, scale, zero point; axis) of stored tensors -> float32, same dims as q. */
function dequantizeLinear(model: OnnxModel, n: OnnxNode): OnnxTensor {
  const q = int8s(model, n.inputs[0]!);
  const scale = model.readTensor(n.inputs[1]!)!.data;
  const zero = n.inputs[2] ? int8s(model, n.inputs[2]).values : new Uint8Array(scale.length);
  const axisAttr = n.ints.get('axis');
  const axis = typeof axisAttr === 'number' ? (axisAttr + q.dims.length) % q.dims.length : 1;
  const inner = q.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const size = q.dims[axis] ?? 1;
  const data = new Float32Array(q.values.length);
  for (let i = 0; i < data.length; i++) {
    const c = scale.length === 1 ? 0 : Math.floor(i / inner) % size;
    data[i] = (q.values[i]! - zero[c]!) * scale[c]!;
  }
  return { name: n.inputs[0]!, dims: q.dims, data };
}

/** The dequantised weight of a MatMulNBits: W^T [N, K] (so `transposed`). */
function matMulNBits(model: OnnxModel, n: OnnxNode): UnembeddingLookup {
  const [K, N, bits, block] = ['K', 'N', 'bits', 'block_size'].map((a) => n.ints.get(a));
  if (typeof K !== 'number' || typeof N !== 'number' || typeof block !== 'number')
    return { found: false, reason: `the logits' MatMulNBits ('${n.name}') lacks its K, N or block_size attribute` };
  const b = typeof bits === 'number' ? bits : 4;
  if (b !== 4 && b !== 8) return { found: false, reason: `the logits' MatMulNBits ('${n.name}') has ${b}-bit weights; 4 and 8 bits are dequantised here` };
  if (n.inputs[4]) return { found: false, reason: `the logits' MatMulNBits ('${n.name}') reorders its blocks (g_idx), which is not dequantised here` };
  const q = model.tensorBytes(n.inputs[1] ?? '');
  const scales = model.readTensor(n.inputs[2] ?? '');
  if (q === undefined || scales === undefined)
    return { found: false, reason: `the weight or scales of the logits' MatMulNBits ('${n.name}') are not stored initializers` };
  const blocks = Math.ceil(K / block);
  const blob = (block * b) / 8;
  const zp = n.inputs[3] ? model.tensorBytes(n.inputs[3]) : undefined;
  if (zp !== undefined && zp.dataType !== ONNX_TYPE.uint8)
    return { found: false, reason: `the zero points of the logits' MatMulNBits ('${n.name}') are not packed uint8` };
  const zpRow = Math.ceil((blocks * b) / 8); // packed zero points per column n
  const data = new Float32Array(N * K); // W^T [N, K]
  for (let col = 0; col < N; col++) {
    for (let kb = 0; kb < blocks; kb++) {
      const scale = scales.data[col * blocks + kb]!;
      let z = 1 << (b - 1);
      if (zp !== undefined) z = b === 8 ? zp.bytes[col * zpRow + kb]! : (zp.bytes[col * zpRow + (kb >> 1)]! >> ((kb & 1) * 4)) & 0xf;
      const base = (col * blocks + kb) * blob;
      for (let i = 0; i < block && kb * block + i < K; i++) {
        const v = b === 8 ? q.bytes[base + i]! : (q.bytes[base + (i >> 1)]! >> ((i & 1) * 4)) & 0xf;
        data[col * K + kb * block + i] = (v - z) * scale;
      }
    }
  }
  return { found: true, unembedding: { tensor: n.inputs[1]!, dModel: K, vocab: N, transposed: true, data } };
}

/** The weight of a dynamically quantised product Mul(Cast(MatMulInteger(x_q, W_q, x_z, W_z)), x_scale * W_scale): W [K, N]. */
function matMulInteger(model: OnnxModel, mul: OnnxNode, producer: ReadonlyMap<string, OnnxNode>): UnembeddingLookup {
  const graph = model.info;
  const none = (why: string): UnembeddingLookup => ({
    found: false,
    reason: `the logits come from a dynamically quantised product (MatMulInteger, '${mul.name}') whose ${why}`,
  });
  const castOut = mul.inputs.find((i) => producer.get(i)?.opType === 'Cast')!;
  const mmi = producer.get(producer.get(castOut)!.inputs[0]!)!;
  const scaleMul = producer.get(mul.inputs.find((i) => i !== castOut) ?? '');
  const wScale = scaleMul?.opType === 'Mul' ? scaleMul.inputs.find((i) => graph.initializers.has(i)) : undefined;
  const [wq, wz] = [mmi.inputs[1] ?? '', mmi.inputs[3] ?? ''];
  if (!graph.initializers.has(wq) || wScale === undefined) return none('weight or weight scale is not a stored initializer');
  const q = int8s(model, wq);
  const scale = model.readTensor(wScale)!.data;
  const zero = wz ? int8s(model, wz).values : new Uint8Array(1);
  if (q.dims.length !== 2) return none(`weight has shape [${q.dims.join(', ')}], not a matrix`);
  const [K, N] = [q.dims[0]!, q.dims[1]!];
  if ((scale.length !== 1 && scale.length !== N) || (zero.length !== 1 && zero.length !== N)) return none('scales are neither per tensor nor per column');
  const data = new Float32Array(K * N); // W [K, N]
  for (let i = 0; i < data.length; i++) {
    const c = i % N;
    data[i] = (q.values[i]! - zero[zero.length === 1 ? 0 : c]!) * scale[scale.length === 1 ? 0 : c]!;
  }
  return { found: true, unembedding: { tensor: wq, dModel: K, vocab: N, transposed: false, data } };
}
