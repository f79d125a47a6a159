/**
 * The position-dependent inputs of the graph, computed in float64 and rounded once:
 *   rotary:  inv_freq_i = base^(-2i / dim), i < dim/2, changed by rope_scaling:
 *              linear:  inv_freq_i / factor
 *              llama3:  wavelength w_i = 2 pi / inv_freq_i; L = original_max_position_embeddings;
 *                       w_i > L / low_freq_factor: inv_freq_i / factor;  w_i < L / high_freq_factor: inv_freq_i;
 *                       else (1 - s) inv_freq_i / factor + s inv_freq_i,  s = (L / w_i - low) / (high - low)
 *            cos[p, 0, i] = cos(p inv_freq_i), sin likewise: [pos, 1, dim/2]
 *   masks:   [pos, pos] additive: 0 where j <= i (and i - j < window), -inf elsewhere.
 */
import type { Rotary } from './config.js';

export function inverseFrequencies(r: Rotary): Float64Array {
  const half = r.dim / 2;
  const inv = Float64Array.from({ length: half }, (_, i) => r.base ** (-(2 * i) / r.dim));
  const s = r.scaling;
  if (s.type === 'linear') return inv.map((f) => f / s.factor);
  if (s.type === 'llama3') {
    const lowWave = s.originalMax / s.lowFreqFactor;
    const highWave = s.originalMax / s.highFreqFactor;
    return inv.map((f) => {
      const wave = (2 * Math.PI) / f;
      if (wave > lowWave) return f / s.factor;
      if (wave < highWave) return f;
      const smooth = (s.originalMax / wave - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      return ((1 - smooth) * f) / s.factor + smooth * f;
    });
  }
  return inv;
}

/** cos and sin tables [pos, 1, dim/2] for positions 0..pos-1. */
export function rotaryTables(r: Rotary, pos: number): { cos: Float32Array; sin: Float32Array } {
  const inv = inverseFrequencies(r);
  const half = inv.length;
  const cos = new Float32Array(pos * half);
  const sin = new Float32Array(pos * half);
  for (let p = 0; p < pos; p++) {
    for (let i = 0; i < half; i++) {
      const a = p * inv[i]!;
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}

/** Additive causal mask [pos, pos], limited to the last `window` keys when given. */
export function causalMask(pos: number, window?: number): Float32Array {
  const m = new Float32Array(pos * pos);
  for (let i = 0; i < pos; i++) for (let j = 0; j < pos; j++) if (j > i || (window !== undefined && i - j >= window)) m[i * pos + j] = -Infinity;
  return m;
}
