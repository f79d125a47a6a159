/**
 * The forward graph of a hooked transformer, built from shared components with the ONNX graph
 * builder. Residual stream h: [N = batch * pos, d_model]; linear weights are [out, in] (the
 * Hugging Face layout), applied as Gemm(h, W, b, transB): y = h W^T + b.
 *
 *   h_0 = embed_scale * W_E[ids] (+ W_pos[pos])
 *   block (sequential):  a = attn(ln1(h)) [-> ln1_post];  m = h + a;  f = mlp(ln2(m)) [-> ln2_post];  h' = m + f
 *   block (parallel, NeoX):  h' = h + attn(ln1(h)) + mlp(ln2(h))
 *   logits = softcap(ln_final(h) W_U^T + b_U)
 * Norms:   LayerNorm(x) = (x - mean) / sqrt(var + eps) * w + b;   RMSNorm(x) = x / sqrt(mean(x^2) + eps) * w
 *          (Gemma: * (1 + w))
 * Attention (head h uses key/value head floor(h / (n_heads / n_kv_heads)), grouped-query):
 *   q = qnorm(h W_Q^T + b_Q), k = knorm(h W_K^T + b_K), v = h W_V^T + b_V   (hooks, per head)
 *   rotary on the first `dim` features of each head (NeoX halves):
 *     [x1, x2] -> [x1 cos - x2 sin, x2 cos + x1 sin],  angle(p, i) = p * inv_freq_i
 *   scores = softcap(scale * q k^T) + mask;  pattern = softmax(scores);  z = pattern v;  out = z W_O^T + b_O
 *   mask: 0 where key j <= query i (and i - j < window on sliding layers), -inf elsewhere
 * MLP:     gated: post = act(x W_gate^T) * (x W_in^T);  plain: post = act(x W_in^T + b_in);  out = post W_out^T + b_out
 *          gelu(x) = x/2 (1 + erf(x / sqrt 2)),  gelu_tanh(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
 *          silu(x) = x sigmoid(x)
 * softcap_c(x) = c tanh(x / c).
 *
 * Every hook point is a value of the graph (see hooks.ts). A hook can be returned (a graph output of
 * the value the model computed, before any edit), replaced by a graph input, or edited in the graph
 * (a vector added; a feature clamped). The graph is pruned to what its outputs need, so a run that
 * returns blocks.4.hook_resid_post computes layers 0..4 and nothing else, and a replaced hook cuts
 * off what only fed it.
 */
import { type Dim, GraphBuilder, type Value } from '../../engine/onnx.js';
import { UserError } from '../../errors.js';
import type { Activation, Norm, Rotary, TransformerConfig } from './config.js';
import { hookTail } from './hooks.js';

/** What a graph does at a hook besides computing it. */
export type EditKind = 'replace' | 'add' | 'clamp';

export interface GraphPlan {
  /** Hooks returned as outputs (named as the hook). */
  readonly outputs: readonly string[];
  /** Whether 'logits' [batch, pos, vocab] is an output. */
  readonly logits: boolean;
  readonly edits: Readonly<Record<string, EditKind>>;
  /** Blocks to build (up to those of the outputs and edits). */
  readonly layers: number;
  /** Build the final norm (and the logits when asked). */
  readonly head: boolean;
}

/** Names of the graph inputs other than the weights. */
export const INPUT = {
  ids: 'input_ids',
  positions: 'position_ids',
  causal: 'mask.causal',
  window: (w: number): string => `mask.window.${w}`,
  cos: (i: number): string => `rope.${i}.cos`,
  sin: (i: number): string => `rope.${i}.sin`,
  replace: (hook: string): string => `edit.${hook}`,
  add: (hook: string): string => `edit.${hook}.add`,
  clamp: (hook: string, part: 'direction' | 'encoder' | 'bias' | 'value'): string => `edit.${hook}.${part}`,
};

/** The distinct rotary settings of a model (Gemma 3 has two); layer l uses rotaries[ropeIndex[l]]. */
export function distinctRotaries(cfg: TransformerConfig): { rotaries: Rotary[]; ropeIndex: number[] } {
  const rotaries: Rotary[] = [];
  const ropeIndex = cfg.rotary.map((r) => {
    const key = JSON.stringify(r);
    let i = rotaries.findIndex((x) => JSON.stringify(x) === key);
    if (i < 0) i = rotaries.push(r) - 1;
    return i;
  });
  return { rotaries, ropeIndex };
}

/** The builder with the model's weights as graph inputs, declared when first used. */
class Ctx {
  readonly b = new GraphBuilder();
  private readonly declared = new Set<string>();
  /** Shape(input_ids) = [batch, pos], int64. */
  readonly bs: Value;
  readonly ids: Value;

  constructor(
    readonly cfg: TransformerConfig,
    private readonly weightDims: (name: string) => readonly number[] | undefined,
    readonly plan: GraphPlan,
    /** Weights as initializers inside the model (for measurements only; under 2 GB). */
    private readonly inline?: (name: string) => Float32Array,
  ) {
    this.ids = this.b.input(INPUT.ids, ['batch', 'pos'], 'int64');
    this.bs = this.b.op('Shape', [this.ids]);
  }

  /** A weight as a graph input, or undefined when the model has none of that name (a bias). */
  maybe(name: string): Value | undefined {
    const dims = this.weightDims(name);
    if (dims === undefined) return undefined;
    if (this.inline) return this.b.constant(this.inline(name), dims);
    if (!this.declared.has(name)) {
      this.b.input(name, dims);
      this.declared.add(name);
    }
    return name as Value;
  }

  w(name: string): Value {
    const v = this.maybe(name);
    if (v === undefined) throw new Error(`weight '${name}' was not loaded`);
    return v;
  }

  /** Another input, declared once. */
  input(name: string, shape: readonly Dim[], type: 'float32' | 'int64' = 'float32'): Value {
    if (!this.declared.has(name)) {
      this.b.input(name, shape, type);
      this.declared.add(name);
    }
    return name as Value;
  }

  /** [batch, pos, ...tail] as an int64 shape value. */
  shapeBS(tail: readonly number[]): Value {
    return this.b.concat([this.bs, this.b.ints(tail)], 0);
  }

  /**
   * The hook point `name` at internal value `v`: `toHook` gives the hook's own shape and `fromHook`
   * goes back. Returns the value the rest of the graph uses (edited when the plan says so).
   */
  hook(name: string, v: Value, toHook: (v: Value) => Value, fromHook: (v: Value) => Value): Value {
    const kind = this.plan.edits[name];
    const wanted = this.plan.outputs.includes(name);
    if (kind === undefined && !wanted) return v;
    const b = this.b;
    const shaped = toHook(v);
    const tail = hookTail(this.cfg, name);
    const isPattern = name.endsWith('attn.hook_pattern');
    if (wanted) b.output(shaped, name, isPattern ? ['batch', ...tail, 'pos', 'pos'] : ['batch', 'pos', ...tail]);
    if (kind === undefined) return v;
    if (kind === 'replace') return fromHook(this.input(INPUT.replace(name), isPattern ? ['batch', ...tail, 'pos', 'pos'] : ['batch', 'pos', ...tail]));
    if (isPattern) throw new UserError(`hook '${name}': an attention pattern can be replaced, not edited with a vector`);
    const width = tail.reduce((a, c) => a * c, 1);
    const flat = b.reshape(shaped, [0, 0, width]); // [batch, pos, width]
    let edited: Value;
    if (kind === 'add') edited = b.add(flat, this.input(INPUT.add(name), [width]));
    else {
      // f = relu(x . encoder + bias);  x' = x + (value - f) direction
      const f = b.relu(b.add(b.sum(b.mul(flat, this.input(INPUT.clamp(name, 'encoder'), [width])), [2], true), this.input(INPUT.clamp(name, 'bias'), [1])));
      const scale = b.sub(this.input(INPUT.clamp(name, 'value'), [1]), f); // [batch, pos, 1]
      edited = b.add(flat, b.mul(scale, this.input(INPUT.clamp(name, 'direction'), [width])));
    }
    return fromHook(b.reshape(edited, b.op('Shape', [shaped])));
  }

  /** A hook on the residual-shaped value v: [N, width]. */
  rowHook(name: string, v: Value, width: number): Value {
    return this.hook(
      name,
      v,
      (x) => this.b.reshape(x, this.shapeBS([width])),
      (x) => this.b.reshape(x, [-1, width]),
    );
  }
}

// --- components ---

/** x: [..., d] -> norm(x) [..., d] with weights `${prefix}.w` (and `.b` for LayerNorm). */
function norm(c: Ctx, n: Norm, x: Value, prefix: string): Value {
  const b = c.b;
  const w = c.w(`${prefix}.w`);
  if (n.kind === 'layer') {
    const bias = c.maybe(`${prefix}.b`);
    return b.op('LayerNormalization', bias ? [x, w, bias] : [x, w], { axis: -1, epsilon: { float: n.eps } });
  }
  const inv = b.op('Reciprocal', [b.sqrt(b.add(b.mean(b.square(x), [-1]), b.scalar(n.eps)))]);
  return b.mul(b.mul(x, inv), n.onePlus ? b.add(w, b.scalar(1)) : w);
}

/** x: [N, in] -> x W^T + b: [N, out] */
function linear(c: Ctx, x: Value, weight: string, bias: string): Value {
  const bv = c.maybe(bias);
  return c.b.gemm(x, c.w(weight), bv ? { c: bv, transB: true } : { transB: true });
}

function act(b: GraphBuilder, a: Activation, x: Value): Value {
  switch (a) {
    case 'relu':
      return b.relu(x);
    case 'silu':
      return b.mul(x, b.sigmoid(x));
    case 'gelu':
      return b.mul(b.mul(x, b.scalar(0.5)), b.add(b.scalar(1), b.erf(b.mul(x, b.scalar(Math.SQRT1_2)))));
    case 'gelu_tanh': {
      const inner = b.mul(b.scalar(Math.sqrt(2 / Math.PI)), b.add(x, b.mul(b.scalar(0.044715), b.mul(x, b.square(x)))));
      return b.mul(b.mul(x, b.scalar(0.5)), b.add(b.scalar(1), b.tanh(inner)));
    }
  }
}

function softcap(b: GraphBuilder, x: Value, cap: number | undefined): Value {
  return cap === undefined ? x : b.mul(b.tanh(b.mul(x, b.scalar(1 / cap))), b.scalar(cap));
}

/** x: [batch, pos, heads, d_head] -> rotated by the tables rope.i.cos/sin: [pos, 1, dim/2]. */
function rotary(c: Ctx, x: Value, r: Rotary, i: number): Value {
  const b = c.b;
  const half = r.dim / 2;
  const cos = c.input(INPUT.cos(i), ['pos', 1, half]);
  const sin = c.input(INPUT.sin(i), ['pos', 1, half]);
  const x1 = b.slice(x, [0], [half], [3]);
  const x2 = b.slice(x, [half], [r.dim], [3]);
  const parts = [b.sub(b.mul(x1, cos), b.mul(x2, sin)), b.add(b.mul(x2, cos), b.mul(x1, sin))];
  if (r.dim < c.cfg.dHead) parts.push(b.slice(x, [r.dim], [c.cfg.dHead], [3]));
  return b.concat(parts, 3);
}

/** x: [N, d] (normalized) -> attention output [N, d], with the attention hooks of layer l. */
function attention(c: Ctx, l: number, x: Value, ropeIndex: number | undefined): Value {
  const { cfg, b } = c;
  const p = `blocks.${l}.attn`;
  // q: [N, nH * dH] -> [batch, pos, heads, d_head]
  const heads = (name: 'q' | 'k' | 'v', n: number): Value => {
    const big = name.toUpperCase();
    let t = b.reshape(linear(c, x, `${p}.W_${big}`, `${p}.b_${big}`), c.shapeBS([n, cfg.dHead]));
    if (cfg.qkNorm && name !== 'v') t = norm(c, cfg.norm, t, `${p}.${name}_norm`);
    return c.hook(
      `${p}.hook_${name}`,
      t,
      (v) => v,
      (v) => v,
    );
  };
  let q = heads('q', cfg.nHeads);
  let k = heads('k', cfg.nKvHeads);
  const v = heads('v', cfg.nKvHeads);
  if (ropeIndex !== undefined) {
    const r = cfg.rotary[l]!;
    q = rotary(c, q, r, ropeIndex);
    k = rotary(c, k, r, ropeIndex);
  }
  // grouped: [batch, nKV, g * pos, dH] @ [batch, nKV, dH, pos] -> [batch, nKV, g * pos, pos]
  const qg = b.reshape(b.transpose(q, [0, 2, 1, 3]), [0, cfg.nKvHeads, -1, cfg.dHead]);
  const kt = b.transpose(k, [0, 2, 3, 1]);
  let scores = b.reshape(b.mul(b.matmul(qg, kt), b.scalar(cfg.attnScale)), [0, cfg.nHeads, -1, 0]); // [batch, nH, pos, pos]
  scores = softcap(b, scores, cfg.attnSoftcap);
  const window = cfg.window[l];
  const mask = window === undefined ? c.input(INPUT.causal, ['pos', 'pos']) : c.input(INPUT.window(window), ['pos', 'pos']);
  const pattern = c.hook(
    `${p}.hook_pattern`,
    b.softmax(b.add(scores, mask), -1),
    (t) => t,
    (t) => t,
  );
  const vt = b.transpose(v, [0, 2, 1, 3]); // [batch, nKV, pos, dH]
  const zg = b.matmul(b.reshape(pattern, [0, cfg.nKvHeads, -1, 0]), vt); // [batch, nKV, g * pos, dH]
  let z = b.transpose(b.reshape(zg, [0, cfg.nHeads, -1, cfg.dHead]), [0, 2, 1, 3]); // [batch, pos, nH, dH]
  z = c.hook(
    `${p}.hook_z`,
    z,
    (t) => t,
    (t) => t,
  );
  return linear(c, b.reshape(z, [-1, cfg.nHeads * cfg.dHead]), `${p}.W_O`, `${p}.b_O`);
}

/** x: [N, d] (normalized) -> MLP output [N, d], with mlp.hook_pre and mlp.hook_post of layer l. */
function mlp(c: Ctx, l: number, x: Value): Value {
  const { cfg, b } = c;
  const p = `blocks.${l}.mlp`;
  let post: Value;
  if (cfg.gated) {
    const gate = c.rowHook(`${p}.hook_pre`, linear(c, x, `${p}.W_gate`, `${p}.b_gate`), cfg.dMlp);
    post = b.mul(act(b, cfg.act, gate), linear(c, x, `${p}.W_in`, `${p}.b_in`));
  } else {
    const pre = c.rowHook(`${p}.hook_pre`, linear(c, x, `${p}.W_in`, `${p}.b_in`), cfg.dMlp);
    post = act(b, cfg.act, pre);
  }
  post = c.rowHook(`${p}.hook_post`, post, cfg.dMlp);
  return linear(c, post, `${p}.W_out`, `${p}.b_out`);
}

function block(c: Ctx, l: number, h: Value, ropeIndex: number | undefined): Value {
  const { cfg, b } = c;
  const p = `blocks.${l}`;
  const d = cfg.dModel;
  h = c.rowHook(`${p}.hook_resid_pre`, h, d);
  const n1 = c.rowHook(`${p}.ln1.hook_normalized`, norm(c, cfg.norm, h, `${p}.ln1`), d);
  let a = attention(c, l, n1, ropeIndex);
  if (cfg.postNorms) a = norm(c, cfg.norm, a, `${p}.ln1_post`);
  a = c.rowHook(`${p}.hook_attn_out`, a, d);
  const mid = cfg.parallel ? h : c.rowHook(`${p}.hook_resid_mid`, b.add(h, a), d);
  const n2 = c.rowHook(`${p}.ln2.hook_normalized`, norm(c, cfg.norm, mid, `${p}.ln2`), d);
  let f = mlp(c, l, n2);
  if (cfg.postNorms) f = norm(c, cfg.norm, f, `${p}.ln2_post`);
  f = c.rowHook(`${p}.hook_mlp_out`, f, d);
  return c.rowHook(`${p}.hook_resid_post`, cfg.parallel ? b.add(b.add(h, a), f) : b.add(mid, f), d);
}

/**
 * The ONNX model for `plan`. `weightDims(name)` gives the dims of each loaded weight (undefined:
 * not in this model, e.g. a bias). Inputs: input_ids [batch, pos] int64, position_ids [pos] int64
 * (learned positions), the masks and rotary tables (INPUT), the weights, and the edits' inputs.
 */
export function buildGraph(
  cfg: TransformerConfig,
  weightDims: (name: string) => readonly number[] | undefined,
  plan: GraphPlan,
  inline?: (name: string) => Float32Array,
): Uint8Array {
  const c = new Ctx(cfg, weightDims, plan, inline);
  const b = c.b;
  const d = cfg.dModel;
  let e = b.reshape(b.gather(c.w('embed.W_E'), c.ids, 0), [-1, d]); // [N, d]
  if (cfg.embedScale !== 1) e = b.mul(e, b.scalar(cfg.embedScale));
  let h = c.rowHook('hook_embed', e, d);
  if (cfg.positions === 'learned') {
    const pos = b.gather(c.w('pos_embed.W_pos'), c.input(INPUT.positions, ['pos'], 'int64'), 0); // [pos, d]
    const full = b.reshape(b.expand(pos, c.shapeBS([d])), [-1, d]);
    h = b.add(h, c.rowHook('hook_pos_embed', full, d));
  }
  const { ropeIndex } = distinctRotaries(cfg);
  for (let l = 0; l < plan.layers; l++) h = block(c, l, h, cfg.positions === 'rotary' ? ropeIndex[l] : undefined);
  if (!plan.head) return b.encode({ prune: true });
  const n = c.rowHook('ln_final.hook_normalized', norm(c, cfg.norm, h, 'ln_final'), d);
  if (plan.logits) {
    const logits = softcap(b, linear(c, n, 'unembed.W_U', 'unembed.b_U'), cfg.finalSoftcap);
    b.output(b.reshape(logits, c.shapeBS([cfg.vocab])), 'logits', ['batch', 'pos', cfg.vocab]);
  }
  return b.encode({ prune: true });
}
