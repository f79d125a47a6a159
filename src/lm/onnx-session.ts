/**
 * The graphs we run from an ONNX language model, one per model and command, each written as a small
 * model file whose weights stay where they are (OnnxModel.writeSessionModel):
 *   logits   ids -> logits                                      (no hook)
 *   cut      ids -> h                                           (harvest: only the nodes h needs:
 *                                                                no later layers, no logits)
 *   splice   ids, r, s -> logits, h    with h' = Where(s, r, h) read by every consumer of h
 * In the splice graph one session serves both runs of an edit: s = false gives the clean logits
 * and h; s = true feeds r = edit(h) in place of h (r is [1] when s is false). Where was chosen over
 * an If on the flag: both compute the layers before h either way (the If reads h from the outer
 * scope), and Where needs no subgraph (measured: the splice graph's clean run is as fast as the
 * plain logits graph, bench/onnx-lm.ts). Hooks and logits of any float type (float16 graphs) leave
 * the graph as float32 and r enters as float32: Cast nodes convert in the graph. The residual sum
 * a fused final norm does not output (hooks.ts residualSumOf) is added as its output 3; to splice
 * it, the norm's output is made again by the unfused norm of the spliced sum.
 */
import { UserError } from '../errors.js';
import { residualSumNode } from './hooks.js';
import { attributeFields, elemTypes, nodeField, ONNX_TYPE, type OnnxModel, renameInputs, type SessionGraph, valueInfoField, withOutput } from './onnx-proto.js';

/** Names of the values the session graphs add. */
export const SESSION = { hook: 'sae.hook', logits: 'sae.logits', replacement: 'sae.replacement', splice: 'sae.splice' } as const;

export type SessionKind = 'logits' | 'cut' | 'splice';

export interface SessionPlan {
  readonly graph: SessionGraph;
  /** The output holding the logits as float32 (absent for cut). */
  readonly logits?: string;
  /** The output holding the hook as float32 (absent for logits). */
  readonly hook?: string;
  /** The graph inputs it keeps (a cut graph drops the cache inputs of later layers). */
  readonly inputs: ReadonlySet<string>;
}

/** Indices of the nodes that `wanted` needs (graph order is topological); all when a needed node has subgraphs. */
function needed(model: OnnxModel, wanted: readonly string[]): { nodes: Set<number>; values: Set<string> } {
  const nodes = model.info.nodes;
  const values = new Set(wanted);
  const keep = new Set<number>();
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (!n.outputs.some((o) => values.has(o))) continue;
    if (n.subgraphs) return { nodes: new Set(nodes.map((_, k) => k)), values: new Set([...model.info.tensors]) };
    keep.add(i);
    for (const x of n.inputs) if (x) values.add(x);
  }
  return { nodes: keep, values };
}

/** The session graph of `kind` for hook tensor `hook` (not for kind 'logits') and logits output `logits`. */
export function sessionPlan(model: OnnxModel, kind: SessionKind, logits: string, hook?: string): SessionPlan {
  const types = elemTypes(model.info);
  // a fused norm's residual sum it does not output (hooks.ts residualSumOf): the node gets output 3
  const sumOf = hook === undefined ? undefined : residualSumNode(hook);
  const sumNode = sumOf === undefined ? -1 : model.info.nodes.findIndex((n) => n.outputs[0] === sumOf);
  if (sumOf !== undefined && sumNode < 0) throw new UserError(`${model.where}: no node makes tensor '${sumOf}'`);
  if (sumOf !== undefined) types.set(hook!, types.get(model.info.nodes[sumNode]!.inputs[0] ?? '') ?? ONNX_TYPE.float);
  const typeOf = (t: string): number => {
    const e = types.get(t);
    if (e === undefined) throw new UserError(`${model.where}: cannot tell the element type of tensor '${t}'`);
    return e;
  };
  const floatOut = (t: string, as: string, extra: Uint8Array[]): string => {
    const e = typeOf(t);
    if (e !== ONNX_TYPE.float && e !== ONNX_TYPE.float16 && e !== ONNX_TYPE.bfloat16 && e !== 11)
      throw new UserError(`${model.where}: tensor '${t}' has element type ${e}, not a float type`);
    if (e === ONNX_TYPE.float && as === SESSION.logits) return t;
    extra.push(nodeField('Cast', [t], [as], `${as}/Cast`, { to: ONNX_TYPE.float }));
    return as;
  };
  if (kind !== 'logits' && hook === undefined) throw new Error(`a ${kind} session needs a hook`);
  const added: Uint8Array[] = [];
  const outputs: Uint8Array[] = [];
  const inputs: Uint8Array[] = [];
  let logitsOut: string | undefined;
  let hookOut: string | undefined;
  let rename = new Map<string, string>();
  if (kind !== 'cut') {
    logitsOut = floatOut(logits, SESSION.logits, added);
    outputs.push(valueInfoField(12, logitsOut, ONNX_TYPE.float));
  }
  if (hook !== undefined && kind !== 'logits') {
    hookOut = floatOut(hook, SESSION.hook, added);
    outputs.push(valueInfoField(12, hookOut, ONNX_TYPE.float));
  }
  if (kind === 'splice' && hook !== undefined) {
    const t = typeOf(hook);
    const r = t === ONNX_TYPE.float ? SESSION.replacement : `${SESSION.replacement}.cast`;
    if (r !== SESSION.replacement) added.push(nodeField('Cast', [SESSION.replacement], [r], `${r}/Cast`, { to: t }));
    added.push(nodeField('Where', [SESSION.splice, r, hook], ['sae.spliced'], 'sae.spliced/Where'));
    inputs.push(valueInfoField(11, SESSION.replacement, ONNX_TYPE.float), valueInfoField(11, SESSION.splice, ONNX_TYPE.bool, []));
    rename = new Map([[hook, 'sae.spliced']]);
    if (sumOf !== undefined) {
      // the fused norm normalises its own sum: its normalised output is made again from the spliced sum
      const n = model.info.nodes[sumNode]!;
      const plain = n.opType.replace(/^Skip/, '');
      const inputs = plain === 'LayerNormalization' ? ['sae.spliced', n.inputs[2]!, n.inputs[3] ?? ''] : ['sae.spliced', n.inputs[2]!];
      added.push(nodeField(plain, inputs, [sumOf], `${sumOf}/spliced`, { axis: -1 }, attributeFields(model.nodeFields()[sumNode]!.raw, ['epsilon'])));
    }
  }
  const wanted = [...(kind === 'cut' ? [] : [logits]), ...(hook !== undefined && kind !== 'logits' ? [sumOf ?? hook] : [])];
  const keep = needed(model, wanted);
  const nodes: Uint8Array[] = [];
  for (const [i, { raw }] of model.nodeFields().entries()) {
    if (!keep.nodes.has(i)) continue;
    let made = i === sumNode && kind !== 'logits' ? withOutput(raw, 3, hook!) : raw;
    if (i === sumNode && kind === 'splice') made = withOutput(made, 0, `${sumOf}::fused`); // replaced by the norm of the spliced sum
    nodes.push(rename.size > 0 ? renameInputs(made, rename) : made);
  }
  nodes.push(...added);
  const keptInputs = new Set(model.info.inputs.filter((i) => keep.values.has(i.name)).map((i) => i.name));
  const original = model.graphFieldsOf(11).filter((_, k) => keptInputs.has(model.info.inputs[k]!.name));
  const uses = new Set([...model.initializers.keys()].filter((n) => keep.values.has(n)));
  return {
    graph: { nodes, inputs: [...original, ...inputs], outputs, uses },
    ...(logitsOut === undefined ? {} : { logits: logitsOut }),
    ...(hookOut === undefined ? {} : { hook: hookOut }),
    inputs: keptInputs,
  };
}
