/** An SAE that reconstructs exactly, for splice tests: f = relu([x, -x]), x_hat = f [I; -I] = x. */
import { Sae } from '../../src/sae.js';

export function perfectSae(d: number): Sae {
  const W_enc = new Float32Array(d * 2 * d); // [d, 2d]
  const W_dec = new Float32Array(2 * d * d); // [2d, d]
  for (let i = 0; i < d; i++) {
    W_enc[i * 2 * d + i] = 1;
    W_enc[i * 2 * d + d + i] = -1;
    W_dec[i * d + i] = 1;
    W_dec[(d + i) * d + i] = -1;
  }
  return new Sae('standard', { dIn: d, dSae: 2 * d }, {}, { W_enc, W_dec, b_enc: new Float32Array(2 * d), b_dec: new Float32Array(d) });
}
