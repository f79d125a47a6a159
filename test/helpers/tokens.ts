/** A tiny synthetic token dataset for the dashboard tests, with a hostile token in it. */
import { Sae } from '../../src/sae.js';

export const HOSTILE = '<img src=x onerror=alert(1)>';

/**
 * Two documents of tokens; each row is a one-hot of its token's id (vocabulary of 3) times 1 + its
 * position / 10, and the SAE's latent i is relu(x_i): latent 2 fires on the hostile token only.
 */
export function syntheticTokens(): { tokens: string[]; documents: number[]; x: Float32Array; sae: Sae } {
  const docs = [
    ['The', ' cat', ' sat', '\n', HOSTILE, ' cat'],
    ['A', ' cat', ' & ', HOSTILE],
  ];
  const vocab = new Map([
    [' cat', 1],
    [HOSTILE, 2],
  ]);
  const tokens = docs.flat();
  const documents = docs.flatMap((d, k) => d.map(() => k));
  const x = new Float32Array(tokens.length * 3);
  tokens.forEach((t, r) => (x[r * 3 + (vocab.get(t) ?? 0)] = 1 + r / 10));
  const eye = Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]);
  const sae = new Sae('standard', { dIn: 3, dSae: 3 }, {}, { W_enc: eye, b_enc: new Float32Array(3), W_dec: eye.slice(), b_dec: new Float32Array(3) });
  return { tokens, documents, x, sae };
}
