/**
 * GPT-NeoX (Pythia): LayerNorm, multi-head attention with biases, partial rotary (the first
 * rotary_pct * d_head features of each head, NeoX halves), GELU MLP with biases, and (by default)
 * the parallel residual:
 *   h += attn(LN1 h) + mlp(LN2 h)            (use_parallel_residual; else sequential as GPT-2)
 * Hugging Face names: gpt_neox.embed_in, gpt_neox.layers.L.{input_layernorm, post_attention_layernorm,
 * attention.query_key_value, attention.dense, mlp.dense_h_to_4h, mlp.dense_4h_to_h},
 * gpt_neox.final_layer_norm, embed_out. query_key_value [3d, d] holds, for each head in turn, its
 * d_head rows of Q, then of K, then of V.
 */
import { activation, bool, checkConfig, type ConfigJson, int, layerCount, num, plainBlocks, ropeScaling, type TransformerConfig } from '../config.js';
import type { TensorSource } from '../hf-folder.js';
import { type LoadScope, putInto, putLayerNorm, readShaped, Weights } from '../weights.js';
import { unembedding } from './llama.js';

export function neoxConfig(c: ConfigJson): TransformerConfig {
  const dModel = int(c, 'hidden_size');
  const nHeads = int(c, 'num_attention_heads');
  const nLayers = layerCount(c, 'num_hidden_layers');
  const dHead = Math.floor(dModel / nHeads);
  const pct = num(c, 'rotary_pct', num(c, 'partial_rotary_factor', 1));
  const rotaryDim = Math.floor(dHead * pct);
  const base = num(c, 'rotary_emb_base', num(c, 'rope_theta', 10000));
  return checkConfig(
    {
      family: 'gpt_neox',
      nLayers,
      dModel,
      nHeads,
      nKvHeads: nHeads,
      dHead,
      dMlp: int(c, 'intermediate_size'),
      vocab: int(c, 'vocab_size'),
      maxPositions: int(c, 'max_position_embeddings'),
      norm: { kind: 'layer', eps: num(c, 'layer_norm_eps', 1e-5), onePlus: false },
      positions: 'rotary',
      rotary: Array.from({ length: nLayers }, () => ({ dim: rotaryDim, base, scaling: ropeScaling(c) })),
      act: activation(c, 'hidden_act', 'gelu'),
      gated: false,
      parallel: bool(c, 'use_parallel_residual', true),
      tied: bool(c, 'tie_word_embeddings', false),
      ...plainBlocks(nLayers, dHead),
    },
    c.file,
  );
}

export async function loadNeox(cfg: TransformerConfig, src: TensorSource, scope: LoadScope): Promise<Weights> {
  const w = new Weights(scope);
  const { dModel: d, dMlp, nHeads, dHead } = cfg;
  const put = putInto(w, src);
  await put('embed.W_E', 'gpt_neox.embed_in.weight', [cfg.vocab, d]);
  for (let l = 0; l < scope.layers; l++) {
    const hf = `gpt_neox.layers.${l}.`;
    const to = `blocks.${l}.`;
    await putLayerNorm(put, `${to}ln1`, `${hf}input_layernorm`, d);
    await putLayerNorm(put, `${to}ln2`, `${hf}post_attention_layernorm`, d);
    const qkv = await readShaped(src, `${hf}attention.query_key_value.weight`, [3 * d, d]);
    const qkvBias = await readShaped(src, `${hf}attention.query_key_value.bias`, [3 * d]);
    ['Q', 'K', 'V'].forEach((x, i) => {
      const W = new Float32Array(d * d);
      const b = new Float32Array(d);
      for (let h = 0; h < nHeads; h++) {
        const from = (h * 3 + i) * dHead; // first row of head h's part i
        W.set(qkv.subarray(from * d, (from + dHead) * d), h * dHead * d);
        b.set(qkvBias.subarray(from, from + dHead), h * dHead);
      }
      w.set(`${to}attn.W_${x}`, W, [d, d]);
      w.set(`${to}attn.b_${x}`, b, [d]);
    });
    await put(`${to}attn.W_O`, `${hf}attention.dense.weight`, [d, d]);
    await put(`${to}attn.b_O`, `${hf}attention.dense.bias`, [d]);
    await put(`${to}mlp.W_in`, `${hf}mlp.dense_h_to_4h.weight`, [dMlp, d]);
    await put(`${to}mlp.b_in`, `${hf}mlp.dense_h_to_4h.bias`, [dMlp]);
    await put(`${to}mlp.W_out`, `${hf}mlp.dense_4h_to_h.weight`, [d, dMlp]);
    await put(`${to}mlp.b_out`, `${hf}mlp.dense_4h_to_h.bias`, [d]);
  }
  if (scope.head) {
    await putLayerNorm(put, 'ln_final', 'gpt_neox.final_layer_norm', d);
    await unembedding(w, cfg, src, 'embed_out.weight');
  }
  return w;
}
