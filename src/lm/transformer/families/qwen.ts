/**
 * Qwen2 / Qwen2.5 and Qwen3: Llama blocks (RMSNorm, rotary, grouped-query attention, SwiGLU) with
 *   Qwen2:  biases on q_proj, k_proj and v_proj (not o_proj):  q = x W_Q^T + b_Q, ...
 *   Qwen3:  no biases; q and k normalized per head before rotary:  q_h = RMSNorm(q_h) * q_norm.w
 * Same Hugging Face names as Llama (self_attn.q_norm / k_norm for Qwen3). Qwen2's optional
 * sliding-window layers (use_sliding_window) are refused.
 */
import { fileError } from '../../../errors.js';
import { bool, type ConfigJson, type TransformerConfig } from '../config.js';
import { llamaLike } from './llama.js';

export function qwen2Config(c: ConfigJson): TransformerConfig {
  if (bool(c, 'use_sliding_window', false)) throw fileError(c.file, 'use_sliding_window is not supported');
  return llamaLike(c, 'qwen2');
}

export function qwen3Config(c: ConfigJson): TransformerConfig {
  if (bool(c, 'use_sliding_window', false)) throw fileError(c.file, 'use_sliding_window is not supported');
  return { ...llamaLike(c, 'qwen3'), qkNorm: true };
}
