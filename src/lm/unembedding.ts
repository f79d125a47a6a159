/**
 * The unembedding W_U of an ONNX causal language model: the weight of the last matrix product
 * before the logits,
 *   logits = h_final W_U (+ b)          W_U: [d_model, vocab]
 * found by walking back from the logits output through Identity / Reshape / Cast and a bias Add
 * to a MatMul or Gemm, then from its weight input through Identity and a 2-D Transpose to an
 * initializer. A Gemm with transB, or a Transpose of a tied embedding, keeps W_U^T [vocab, d_model]:
 * it is read as stored and marked `transposed` (the product W_dec @ W_U is then a Gemm with transB).
 * When the graph is not of that shape, the reason is returned instead, in words.
 */
import { type OnnxGraphInfo, type OnnxNode, readInitializer } from './onnx-proto.js';

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

export function findUnembedding(graph: OnnxGraphInfo, model: Uint8Array, where: string): UnembeddingLookup {
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
    if (n.opType === 'MatMul' || n.opType === 'Gemm') product = n;
    else if (PASS_THROUGH.has(n.opType) && n.inputs[0]) t = n.inputs[0];
    else if (n.opType === 'Add' && n.inputs.length === 2 && n.inputs.some((i) => graph.initializers.has(i))) t = n.inputs.find((i) => !graph.initializers.has(i)) ?? '';
    else return none(`the logits come from a ${n.opType} node ('${n.name}'), not from a MatMul or Gemm with a stored weight`);
  }
  if (product === undefined) return none(`no MatMul or Gemm within ${MAX_HOPS} nodes of the logits '${logits}'`);
  if (product.opType === 'Gemm' && product.ints.get('transA') === 1) return none(`the logits' Gemm ('${product.name}') transposes its input (transA), which is not supported`);

  let weight = product.inputs[1] ?? '';
  let transposed = product.opType === 'Gemm' && product.ints.get('transB') === 1;
  for (let hop = 0; hop < MAX_HOPS && !graph.initializers.has(weight); hop++) {
    const n = producer.get(weight);
    const perm = n?.ints.get('perm');
    if (n?.opType === 'Identity' && n.inputs[0]) weight = n.inputs[0];
    else if (n?.opType === 'Transpose' && n.inputs[0] && (perm === undefined || (Array.isArray(perm) && perm.join() === '1,0'))) {
      weight = n.inputs[0];
      transposed = !transposed;
    } else return none(`the weight of the logits' ${product.opType} ('${weight}') is ${n ? `made by a ${n.opType} node` : 'a graph input'}, not a stored initializer`);
  }
  const w = readInitializer(model, weight, where);
  if (w === undefined) return none(`the weight of the logits' ${product.opType} ('${weight}') is not a stored initializer`);
  if (w.dims.length !== 2) return none(`the unembedding '${weight}' has shape [${w.dims.join(', ')}], not a matrix`);
  const [rows, cols] = [w.dims[0]!, w.dims[1]!];
  return { found: true, unembedding: { tensor: weight, dModel: transposed ? cols : rows, vocab: transposed ? rows : cols, transposed, data: w.data } };
}
