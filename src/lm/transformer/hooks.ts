/**
 * The hook points of a hooked transformer, in the order the forward pass computes them
 * (TransformerLens's names), and their shapes:
 *   hook_embed, hook_pos_embed (learned positions)                      [batch, pos, d_model]
 *   blocks.L.hook_resid_pre, ln1.hook_normalized                         [batch, pos, d_model]
 *   blocks.L.attn.hook_q / hook_z                                        [batch, pos, n_heads, d_head]
 *   blocks.L.attn.hook_k / hook_v                                        [batch, pos, n_kv_heads, d_head]
 *   blocks.L.attn.hook_pattern                                           [batch, n_heads, q_pos, k_pos]
 *   blocks.L.hook_attn_out, hook_resid_mid (not with a parallel residual), ln2.hook_normalized,
 *   hook_mlp_out, hook_resid_post                                        [batch, pos, d_model]
 *   blocks.L.mlp.hook_pre, mlp.hook_post                                 [batch, pos, d_mlp]
 *   ln_final.hook_normalized                                             [batch, pos, d_model]
 */
import { UserError } from '../../errors.js';
import type { TransformerConfig } from './config.js';

const BLOCK_POINTS = [
  'hook_resid_pre',
  'ln1.hook_normalized',
  'attn.hook_q',
  'attn.hook_k',
  'attn.hook_v',
  'attn.hook_pattern',
  'attn.hook_z',
  'hook_attn_out',
  'hook_resid_mid',
  'ln2.hook_normalized',
  'mlp.hook_pre',
  'mlp.hook_post',
  'hook_mlp_out',
  'hook_resid_post',
] as const;

export type BlockPoint = (typeof BLOCK_POINTS)[number];

/** Every hook of the model, in the order they are computed. */
export function hookNames(cfg: TransformerConfig): string[] {
  const names = ['hook_embed'];
  if (cfg.positions === 'learned') names.push('hook_pos_embed');
  for (let l = 0; l < cfg.nLayers; l++) {
    for (const p of BLOCK_POINTS) if (!(p === 'hook_resid_mid' && cfg.parallel)) names.push(`blocks.${l}.${p}`);
  }
  names.push('ln_final.hook_normalized');
  return names;
}

/** The dims of a hook after [batch, pos] (after [batch] for the pattern, whose last two are positions). */
export function hookTail(cfg: TransformerConfig, name: string): readonly number[] {
  const point = name.replace(/^blocks\.\d+\./, '');
  switch (point) {
    case 'attn.hook_q':
    case 'attn.hook_z':
      return [cfg.nHeads, cfg.dHead];
    case 'attn.hook_k':
    case 'attn.hook_v':
      return [cfg.nKvHeads, cfg.dHead];
    case 'attn.hook_pattern':
      return [cfg.nHeads];
    case 'mlp.hook_pre':
    case 'mlp.hook_post':
      return [cfg.dMlp];
    default:
      return [cfg.dModel];
  }
}

/** Position of each hook in the forward order; an unknown name is a one-line error listing the valid ones. */
export class HookIndex {
  private readonly order: ReadonlyMap<string, number>;

  constructor(private readonly cfg: TransformerConfig) {
    this.order = new Map(hookNames(cfg).map((n, i) => [n, i]));
  }

  has(name: string): boolean {
    return this.order.has(name);
  }

  indexOf(name: string): number {
    const i = this.order.get(name);
    if (i === undefined) throw new UserError(`unknown hook '${name}': this ${this.cfg.family} model has ${this.describe()}`);
    return i;
  }

  /** Blocks a hook needs computed: L + 1 for blocks.L.*, 0 before the blocks, all for ln_final. */
  blocksFor(name: string): number {
    this.indexOf(name);
    const m = /^blocks\.(\d+)\./.exec(name);
    if (m) return Number(m[1]) + 1;
    return name.startsWith('ln_final') ? this.cfg.nLayers : 0;
  }

  /** The valid names, as a pattern. */
  describe(): string {
    const pos = this.cfg.positions === 'learned' ? ', hook_pos_embed' : '';
    const points = BLOCK_POINTS.filter((p) => !(p === 'hook_resid_mid' && this.cfg.parallel)).join('|');
    return `hook_embed${pos}, blocks.L.{${points}} for L in 0..${this.cfg.nLayers - 1}, ln_final.hook_normalized`;
  }
}
