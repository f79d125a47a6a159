/**
 * A HookedTransformer as the HookedModel that harvesting reads (src/lm/harvest.ts): each batch of
 * contexts runs up to the hook and no further, and the rows of the real tokens come back
 * [tokens, width] (width = d_model, d_mlp, or heads * d_head for attn.hook_q/k/v/z).
 */
import { UserError } from '../../errors.js';
import type { HookedModel } from '../harvest.js';
import { unpad } from '../rows.js';
import type { HookedTransformer } from './model.js';

export function harvestModel(t: HookedTransformer, hook: string, vocab: readonly string[]): HookedModel {
  const dIn = t.hookWidth(hook);
  if (hook.endsWith('attn.hook_pattern'))
    throw new UserError(`hook '${hook}' is an attention pattern [batch, heads, pos, pos], not one row per token; harvest another hook`);
  return {
    model: t.name,
    hookName: hook,
    hookTensor: hook,
    dIn,
    vocab,
    activations: async (contexts) => {
      const r = await t.run(contexts, { stopAfter: hook });
      return unpad(r.hooks[hook]!.data, r.lengths, r.pos, dIn);
    },
  };
}
