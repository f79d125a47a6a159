/**
 * GPT-2: learned absolute positions, LayerNorm, multi-head attention with biases, GELU (tanh) MLP:
 *   h_0 = W_E[ids] + W_pos[pos]
 *   h += c_proj(attn(c_attn(LN1 h)));  h += mlp.c_proj(gelu_new(c_fc(LN2 h)));  logits = LN_f(h) W_E^T
 * Hugging Face names ('transformer.' prefix optional): wte, wpe, h.L.{ln_1, attn.c_attn, attn.c_proj,
 * ln_2, mlp.c_fc, mlp.c_proj}, ln_f; Conv1D weights are stored [in, out] (transposed here), and
 * c_attn holds Q, K and V side by side: [d, 3d].
 */
import { fileError } from '../../../errors.js';
import { activation, bool, checkConfig, type ConfigJson, int, layerCount, num, plainBlocks, type TransformerConfig } from '../config.js';
import type { TensorSource } from '../hf-folder.js';
import { type LoadScope, putInto, putLayerNorm, readShaped, transpose, Weights } from '../weights.js';
import { unembedding } from './llama.js';

export function gpt2Config(c: ConfigJson): TransformerConfig {
  if (bool(c, 'scale_attn_by_inverse_layer_idx', false)) throw fileError(c.file, 'scale_attn_by_inverse_layer_idx is not supported');
  if (!bool(c, 'scale_attn_weights', true)) throw fileError(c.file, 'scale_attn_weights false is not supported');
  const dModel = int(c, 'n_embd');
  const nHeads = int(c, 'n_head');
  const nLayers = layerCount(c, 'n_layer');
  const dHead = dModel / nHeads;
  if (!Number.isInteger(dHead)) throw fileError(c.file, `n_embd ${dModel} is not a multiple of n_head ${nHeads}`);
  const inner = c.json['n_inner'];
  return checkConfig(
    {
      family: 'gpt2',
      nLayers,
      dModel,
      nHeads,
      nKvHeads: nHeads,
      dHead,
      dMlp: inner === null || inner === undefined ? 4 * dModel : int(c, 'n_inner'),
      vocab: int(c, 'vocab_size'),
      maxPositions: int(c, 'n_positions'),
      norm: { kind: 'layer', eps: num(c, 'layer_norm_epsilon', 1e-5), onePlus: false },
      positions: 'learned',
      rotary: [],
      act: activation(c, 'activation_function', 'gelu_new'),
      gated: false,
      parallel: false,
      tied: bool(c, 'tie_word_embeddings', true),
      ...plainBlocks(nLayers, dHead),
    },
    c.file,
  );
}

export async function loadGpt2(cfg: TransformerConfig, src: TensorSource, scope: LoadScope): Promise<Weights> {
  const w = new Weights(scope);
  const p = src.has('wte.weight') ? '' : 'transformer.';
  const { dModel: d, dMlp } = cfg;
  const put = putInto(w, src, p);
  /** A Conv1D weight [in, out] -> [out, in]. */
  const conv = async (to: string, from: string, inDim: number, outDim: number): Promise<void> =>
    w.set(to, transpose(await readShaped(src, `${p}${from}`, [inDim, outDim]), inDim, outDim), [outDim, inDim]);
  await put('embed.W_E', 'wte.weight', [cfg.vocab, d]);
  await put('pos_embed.W_pos', 'wpe.weight', [cfg.maxPositions, d]);
  for (let l = 0; l < scope.layers; l++) {
    const hf = `h.${l}.`;
    const to = `blocks.${l}.`;
    await putLayerNorm(put, `${to}ln1`, `${hf}ln_1`, d);
    await putLayerNorm(put, `${to}ln2`, `${hf}ln_2`, d);
    const qkv = transpose(await readShaped(src, `${p}${hf}attn.c_attn.weight`, [d, 3 * d]), d, 3 * d); // [3d, d]
    const qkvBias = await readShaped(src, `${p}${hf}attn.c_attn.bias`, [3 * d]);
    ['Q', 'K', 'V'].forEach((x, i) => {
      w.set(`${to}attn.W_${x}`, qkv.slice(i * d * d, (i + 1) * d * d), [d, d]);
      w.set(`${to}attn.b_${x}`, qkvBias.slice(i * d, (i + 1) * d), [d]);
    });
    await conv(`${to}attn.W_O`, `${hf}attn.c_proj.weight`, d, d);
    await put(`${to}attn.b_O`, `${hf}attn.c_proj.bias`, [d]);
    await conv(`${to}mlp.W_in`, `${hf}mlp.c_fc.weight`, d, dMlp);
    await put(`${to}mlp.b_in`, `${hf}mlp.c_fc.bias`, [dMlp]);
    await conv(`${to}mlp.W_out`, `${hf}mlp.c_proj.weight`, dMlp, d);
    await put(`${to}mlp.b_out`, `${hf}mlp.c_proj.bias`, [d]);
  }
  if (scope.head) {
    await putLayerNorm(put, 'ln_final', 'ln_f', d);
    await unembedding(w, cfg, src, 'lm_head.weight');
  }
  return w;
}
