/**
 * Llama (Llama 2 and 3, TinyLlama, SmolLM) and Mistral: pre-norm blocks with RMSNorm,
 *   h += o_proj(attn(rope(q_proj x), rope(k_proj x), v_proj x)),   x = RMSNorm(h) * w
 *   h += down_proj(silu(gate_proj x) * up_proj x)
 * grouped-query attention (num_key_value_heads), rotary on the whole head (rope_theta, rope_scaling
 * none / linear / llama3), scores scaled by 1/sqrt(head_dim); Mistral limits attention to the last
 * `sliding_window` keys when set. Hugging Face names (shared with Qwen and Gemma):
 *   model.embed_tokens, model.layers.L.{input_layernorm, self_attn.{q,k,v,o}_proj (+ .bias),
 *   self_attn.{q,k}_norm, post_attention_layernorm, mlp.{gate,up,down}_proj}, model.norm, lm_head
 *   (absent when tied to the embedding).
 */
import { fileError } from '../../../errors.js';
import {
  activation,
  bool,
  checkConfig,
  type ConfigJson,
  int,
  layerCount,
  num,
  optionalNum,
  plainBlocks,
  ropeScaling,
  type TransformerConfig,
} from '../config.js';
import type { TensorSource } from '../hf-folder.js';
import { type LoadScope, putInto, readShaped, Weights } from '../weights.js';

/** The fields every Llama-like config.json has. */
export function llamaLike(c: ConfigJson, family: string): TransformerConfig {
  const dModel = int(c, 'hidden_size');
  const nHeads = int(c, 'num_attention_heads');
  const nLayers = layerCount(c, 'num_hidden_layers');
  const dHead = int(c, 'head_dim', Math.floor(dModel / nHeads));
  const window = optionalNum(c, 'sliding_window');
  return checkConfig(
    {
      family,
      nLayers,
      dModel,
      nHeads,
      nKvHeads: int(c, 'num_key_value_heads', nHeads),
      dHead,
      dMlp: int(c, 'intermediate_size'),
      vocab: int(c, 'vocab_size'),
      maxPositions: int(c, 'max_position_embeddings'),
      norm: { kind: 'rms', eps: num(c, 'rms_norm_eps', 1e-6), onePlus: false },
      positions: 'rotary',
      rotary: Array.from({ length: nLayers }, () => ({ dim: dHead, base: num(c, 'rope_theta', 10000), scaling: ropeScaling(c) })),
      act: activation(c, 'hidden_act', 'silu'),
      gated: true,
      parallel: false,
      tied: bool(c, 'tie_word_embeddings', false),
      ...plainBlocks(nLayers, dHead),
      window: Array.from({ length: nLayers }, () => (family === 'mistral' ? window : undefined)),
    },
    c.file,
  );
}

export function llamaConfig(c: ConfigJson): TransformerConfig {
  const family = String(c.json['model_type']);
  if (family !== 'mistral' && bool(c, 'use_sliding_window', false)) throw fileError(c.file, 'use_sliding_window is not supported for this model type');
  return llamaLike(c, family);
}

export interface LlamaNames {
  /** Gemma 2/3: pre_feedforward_layernorm and post_feedforward_layernorm; post_attention_layernorm is then the attention's post-norm. */
  readonly sandwich: boolean;
  /** Prefix of the decoder's tensors ('model.'). */
  readonly prefix?: string;
}

/** Reads a Llama-like checkpoint into the components' names. */
export async function loadLlamaLike(cfg: TransformerConfig, src: TensorSource, scope: LoadScope, names: LlamaNames = { sandwich: false }): Promise<Weights> {
  const w = new Weights(scope);
  const m = names.prefix ?? 'model.';
  const { dModel: d, nHeads, nKvHeads, dHead, dMlp, vocab } = cfg;
  const put = putInto(w, src);
  const maybe = async (to: string, from: string, shape: readonly number[]): Promise<void> => {
    if (src.has(from)) await put(to, from, shape);
  };
  await put('embed.W_E', `${m}embed_tokens.weight`, [vocab, d]);
  for (let l = 0; l < scope.layers; l++) {
    const hf = `${m}layers.${l}.`;
    const to = `blocks.${l}.`;
    await put(`${to}ln1.w`, `${hf}input_layernorm.weight`, [d]);
    if (names.sandwich) {
      await put(`${to}ln1_post.w`, `${hf}post_attention_layernorm.weight`, [d]);
      await put(`${to}ln2.w`, `${hf}pre_feedforward_layernorm.weight`, [d]);
      await put(`${to}ln2_post.w`, `${hf}post_feedforward_layernorm.weight`, [d]);
    } else await put(`${to}ln2.w`, `${hf}post_attention_layernorm.weight`, [d]);
    const widths = { q: nHeads * dHead, k: nKvHeads * dHead, v: nKvHeads * dHead };
    for (const [x, n] of Object.entries(widths)) {
      const big = x.toUpperCase();
      await put(`${to}attn.W_${big}`, `${hf}self_attn.${x}_proj.weight`, [n, d]);
      await maybe(`${to}attn.b_${big}`, `${hf}self_attn.${x}_proj.bias`, [n]);
    }
    await put(`${to}attn.W_O`, `${hf}self_attn.o_proj.weight`, [d, nHeads * dHead]);
    await maybe(`${to}attn.b_O`, `${hf}self_attn.o_proj.bias`, [d]);
    if (cfg.qkNorm) {
      await put(`${to}attn.q_norm.w`, `${hf}self_attn.q_norm.weight`, [dHead]);
      await put(`${to}attn.k_norm.w`, `${hf}self_attn.k_norm.weight`, [dHead]);
    }
    await put(`${to}mlp.W_gate`, `${hf}mlp.gate_proj.weight`, [dMlp, d]);
    await put(`${to}mlp.W_in`, `${hf}mlp.up_proj.weight`, [dMlp, d]);
    await put(`${to}mlp.W_out`, `${hf}mlp.down_proj.weight`, [d, dMlp]);
    await maybe(`${to}mlp.b_gate`, `${hf}mlp.gate_proj.bias`, [dMlp]);
    await maybe(`${to}mlp.b_in`, `${hf}mlp.up_proj.bias`, [dMlp]);
    await maybe(`${to}mlp.b_out`, `${hf}mlp.down_proj.bias`, [d]);
  }
  if (scope.head) {
    await put('ln_final.w', `${m}norm.weight`, [d]);
    await unembedding(w, cfg, src, 'lm_head.weight');
  }
  return w;
}

/** unembed.W_U: W_E itself (the same array) when the config ties them, else the tensor `name`. */
export async function unembedding(w: Weights, cfg: TransformerConfig, src: TensorSource, name: string): Promise<void> {
  const e = w.get('embed.W_E');
  if (e === undefined) throw new Error('unembedding: the embedding is read first');
  w.set('unembed.W_U', cfg.tied ? e.data : await readShaped(src, name, [cfg.vocab, cfg.dModel]), [cfg.vocab, cfg.dModel]);
}
