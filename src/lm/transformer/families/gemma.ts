/**
 * Gemma, Gemma 2 and Gemma 3 (text): Llama-like blocks with
 *   h_0 = sqrt(d_model) * W_E[ids];   RMSNorm(x) = x / sqrt(mean(x^2) + eps) * (1 + w)
 *   MLP = down(gelu_tanh(gate x) * up x)   (GeGLU; hidden_activation)
 *   scores = softcap(q k^T / sqrt(query_pre_attn_scalar)),  softcap_c(s) = c tanh(s / c)   (Gemma 2)
 *   Gemma 2/3: h += post_norm(attn(pre_norm h)); h += post_ff_norm(mlp(pre_ff_norm h))
 *   logits = softcap(final_logit_softcapping)(...)   (Gemma 2)
 *   sliding-window layers: layer_types, else Gemma 2: even layers; Gemma 3: all but every
 *   sliding_window_pattern-th; Gemma 3 rotates sliding layers with rope_local_base_freq, global
 *   layers with rope_theta and rope_scaling, and normalizes q and k per head ((1 + w) RMSNorm).
 * Hugging Face names as Llama, plus pre_feedforward_layernorm / post_feedforward_layernorm (2, 3);
 * the unembedding is tied to the embedding.
 */
import { fileError } from '../../../errors.js';
import { activation, type ConfigJson, int, num, optionalNum, type TransformerConfig } from '../config.js';
import { llamaLike } from './llama.js';

function layerKinds(c: ConfigJson, nLayers: number, sliding: (l: number) => boolean): boolean[] {
  const types = c.json['layer_types'];
  if (types === undefined || types === null) return Array.from({ length: nLayers }, (_, l) => sliding(l));
  if (!Array.isArray(types) || types.length !== nLayers) throw fileError(c.file, `'layer_types' is not a list of ${nLayers} layer types`);
  return types.map((t) => {
    if (t === 'sliding_attention') return true;
    if (t === 'full_attention') return false;
    throw fileError(c.file, `layer type ${JSON.stringify(t)} is not supported (sliding_attention, full_attention)`);
  });
}

function gemmaBase(c: ConfigJson, family: string): TransformerConfig {
  const base = llamaLike(c, family);
  return {
    ...base,
    norm: { ...base.norm, onePlus: true },
    act: activation(c, 'hidden_activation', 'gelu_pytorch_tanh'),
    embedScale: Math.sqrt(base.dModel),
    attnScale: 1 / Math.sqrt(num(c, 'query_pre_attn_scalar', base.dHead)),
    tied: true,
  };
}

export function gemmaConfig(c: ConfigJson): TransformerConfig {
  return gemmaBase(c, 'gemma');
}

export function gemma2Config(c: ConfigJson): TransformerConfig {
  const base = gemmaBase(c, 'gemma2');
  const window = int(c, 'sliding_window');
  return {
    ...base,
    postNorms: true,
    attnSoftcap: optionalNum(c, 'attn_logit_softcapping'),
    finalSoftcap: optionalNum(c, 'final_logit_softcapping'),
    window: layerKinds(c, base.nLayers, (l) => l % 2 === 0).map((s) => (s ? window : undefined)),
  };
}

export function gemma3Config(c: ConfigJson): TransformerConfig {
  const base = gemmaBase(c, 'gemma3_text');
  const window = int(c, 'sliding_window');
  const pattern = int(c, 'sliding_window_pattern', 6);
  const sliding = layerKinds(c, base.nLayers, (l) => (l + 1) % pattern !== 0);
  const local = num(c, 'rope_local_base_freq', 10000);
  return {
    ...base,
    postNorms: true,
    qkNorm: true,
    attnSoftcap: optionalNum(c, 'attn_logit_softcapping'),
    finalSoftcap: optionalNum(c, 'final_logit_softcapping'),
    window: sliding.map((s) => (s ? window : undefined)),
    rotary: base.rotary.map((r, l) => (sliding[l] ? { dim: r.dim, base: local, scaling: { type: 'none' } } : r)),
  };
}
