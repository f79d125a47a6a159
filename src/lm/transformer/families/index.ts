/**
 * The model families we implement, keyed by config.json's model_type: how each maps its config
 * onto the components' shape and its Hugging Face tensors onto the components' weights.
 */
import { fileError } from '../../../errors.js';
import type { ConfigJson, TransformerConfig } from '../config.js';
import type { TensorSource } from '../hf-folder.js';
import type { LoadScope, Weights } from '../weights.js';
import { gemma2Config, gemma3Config, gemmaConfig } from './gemma.js';
import { gpt2Config, loadGpt2 } from './gpt2.js';
import { llamaConfig, loadLlamaLike } from './llama.js';
import { loadNeox, neoxConfig } from './neox.js';
import { qwen2Config, qwen3Config } from './qwen.js';

export interface Family {
  readonly config: (c: ConfigJson) => TransformerConfig;
  readonly load: (cfg: TransformerConfig, src: TensorSource, scope: LoadScope) => Promise<Weights>;
}

const llamaNames = (cfg: TransformerConfig, src: TensorSource, scope: LoadScope): Promise<Weights> => loadLlamaLike(cfg, src, scope);
const sandwichNames = (cfg: TransformerConfig, src: TensorSource, scope: LoadScope): Promise<Weights> => loadLlamaLike(cfg, src, scope, { sandwich: true });

export const FAMILIES = {
  gpt2: { config: gpt2Config, load: loadGpt2 },
  llama: { config: llamaConfig, load: llamaNames },
  mistral: { config: llamaConfig, load: llamaNames },
  qwen2: { config: qwen2Config, load: llamaNames },
  qwen3: { config: qwen3Config, load: llamaNames },
  gemma: { config: gemmaConfig, load: llamaNames },
  gemma2: { config: gemma2Config, load: sandwichNames },
  gemma3_text: { config: gemma3Config, load: sandwichNames },
  gpt_neox: { config: neoxConfig, load: loadNeox },
} as const satisfies Record<string, Family>;

export type FamilyName = keyof typeof FAMILIES;

export function familyOf(c: ConfigJson): Family {
  const type = c.json['model_type'];
  if (typeof type !== 'string') throw fileError(c.file, `has no 'model_type'`);
  if (!Object.hasOwn(FAMILIES, type)) throw fileError(c.file, `model_type '${type}' is not supported (supported: ${Object.keys(FAMILIES).join(', ')})`);
  return FAMILIES[type as FamilyName];
}
