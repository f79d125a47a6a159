/**
 * Gemma Scope (Lieberum et al. 2024): one params.npz per SAE with W_enc [d_in, d_sae],
 * W_dec [d_sae, d_in], b_enc [d_sae], b_dec [d_in], threshold [d_sae]. Its JumpReLU, as the
 * release's tutorial and SAELens compute it:
 *   pre = x @ W_enc + b_enc (x not shifted by b_dec);  f = relu(pre) * H(pre - threshold)
 *   x_hat = f @ W_dec + b_dec
 * SAELens also renames `w_*` arrays to `W_*`; we accept both. (SAELens rescales embedding-layer
 * SAEs for TransformerLens's unscaled embeddings; we compute the release as published.)
 */
import type { Params } from '../arch/types.js';
import { fileError } from '../errors.js';
import { expectShape, type LoadedSae, toSae } from './external.js';
import { readNpz } from './npz.js';

const ARRAYS = ['W_enc', 'W_dec', 'b_enc', 'b_dec', 'threshold'] as const;

export async function loadGemmaScope(path: string): Promise<LoadedSae> {
  const raw = await readNpz(path);
  const arrays = new Map([...raw].map(([k, v]) => [k.startsWith('w_') ? `W_${k.slice(2)}` : k, v]));
  for (const name of ARRAYS) if (!arrays.has(name)) throw fileError(path, `array '${name}' is missing (Gemma Scope's params.npz has ${ARRAYS.join(', ')})`);
  const extra = [...arrays.keys()].filter((k) => !(ARRAYS as readonly string[]).includes(k));
  if (extra.length)
    throw fileError(path, `unexpected array${extra.length > 1 ? 's' : ''} ${extra.map((k) => `'${k}'`).join(', ')} in a Gemma Scope params.npz`);
  const wEnc = arrays.get('W_enc')!;
  if (wEnc.shape.length !== 2) throw fileError(path, `array 'W_enc' has shape [${wEnc.shape.join(', ')}], expected [d_in, d_sae]`);
  const [dIn, dSae] = wEnc.shape as [number, number];
  const shapes: Record<(typeof ARRAYS)[number], number[]> = { W_enc: [dIn, dSae], W_dec: [dSae, dIn], b_enc: [dSae], b_dec: [dIn], threshold: [dSae] };
  const params: Params = {};
  for (const name of ARRAYS) {
    const a = arrays.get(name)!;
    expectShape(path, `array '${name}'`, a.shape, shapes[name], `W_enc is [${dIn}, ${dSae}]`);
    params[name] = a.data;
  }
  const folded: string[] = [];
  const sae = toSae({ kind: 'jumprelu', dIn, dSae, applyBDec: false, params, metadata: { source_format: 'gemma-scope' } }, folded);
  return { sae, format: 'gemma-scope', folded };
}
