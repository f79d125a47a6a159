import { describe, expect, it } from 'vitest';
import { bfloat16ToFloat32, float16ToFloat32, float32BitsToHalfBits, float32ToFloat16, floatToHalfBits } from '../src/io/float16.js';

/**
 * The textbook formula for a 16-bit float with `e` exponent bits and `m` mantissa bits (half: 5, 10;
 * bfloat16: 8, 7), written independently of the code under test.
 */
function refValue(h: number, eBits: number, mBits: number): number {
  const s = h >> 15 ? -1 : 1;
  const bias = 2 ** (eBits - 1) - 1;
  const e = (h >> mBits) & (2 ** eBits - 1);
  const m = (h & (2 ** mBits - 1)) / 2 ** mBits;
  if (e === 2 ** eBits - 1) return m ? NaN : s * Infinity;
  return e === 0 ? s * Math.pow(2, 1 - bias) * m : s * Math.pow(2, e - bias) * (1 + m);
}

const allPatterns = Uint16Array.from({ length: 65536 }, (_, i) => i);

function f32Bits(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0]!;
}

function fromBits(bits: number): number {
  return new Float32Array(new Uint32Array([bits]).buffer)[0]!;
}

/** The nearest half by search over all finite halves, ties to the even pattern; for x >= 0. */
function refNearestHalf(x: number, positives: readonly number[]): number {
  if (x >= 65520) return 0x7c00; // 65504 + half an ulp: rounds to the (even) pattern after 0x7bff
  let lo = 0;
  let hi = 0x7bff;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (positives[mid]! <= x) lo = mid;
    else hi = mid;
  }
  const dLo = x - positives[lo]!;
  const dHi = positives[hi]! - x;
  if (dLo < dHi) return lo;
  if (dHi < dLo) return hi;
  return lo % 2 === 0 ? lo : hi;
}

describe('float16', () => {
  it('widens all 65536 half patterns exactly as the formula says', () => {
    const out = float16ToFloat32(allPatterns);
    for (let h = 0; h < 65536; h++) {
      const ref = refValue(h, 5, 10);
      if (Number.isNaN(ref)) expect(Number.isNaN(out[h]!)).toBe(true);
      else if (out[h] !== ref || Object.is(out[h], -0) !== Object.is(ref, -0)) expect([h, out[h]]).toEqual([h, ref]);
    }
  });

  it('narrows every half value back to its own pattern (NaN payloads and -0 included)', () => {
    const back = float32ToFloat16(float16ToFloat32(allPatterns));
    expect(back.findIndex((h, i) => h !== i)).toBe(-1);
  });

  it('rounds midpoints between neighbouring halves to the even one, and others to the nearest', () => {
    const values = Array.from(float16ToFloat32(allPatterns.subarray(0, 0x7c00)));
    const wrong: number[][] = [];
    for (let h = 0; h < 0x7bff; h++) {
      const mid = (values[h]! + values[h + 1]!) / 2; // exact in float32: halves have 11 significant bits
      const even = h % 2 === 0 ? h : h + 1;
      const got = [floatToHalfBits(mid), floatToHalfBits(-mid), float32BitsToHalfBits(f32Bits(mid) - 1), float32BitsToHalfBits(f32Bits(mid) + 1)];
      const want = [even, even | 0x8000, h, h + 1];
      if (got.some((g, i) => g !== want[i])) wrong.push([h, ...got]);
    }
    expect(wrong).toEqual([]);
  });

  it('handles overflow, underflow, infinities and NaN', () => {
    expect(floatToHalfBits(65504)).toBe(0x7bff);
    expect(floatToHalfBits(65519.99)).toBe(0x7bff);
    expect(floatToHalfBits(65520)).toBe(0x7c00);
    expect(floatToHalfBits(1e9)).toBe(0x7c00);
    expect(floatToHalfBits(-Infinity)).toBe(0xfc00);
    expect(floatToHalfBits(2 ** -25)).toBe(0); // exactly half the smallest subnormal: ties to even 0
    expect(float32BitsToHalfBits(f32Bits(2 ** -25) + 1)).toBe(1);
    expect(floatToHalfBits(1.5 * 2 ** -24)).toBe(2); // tie between 1 and 2
    expect(floatToHalfBits(-1e-30)).toBe(0x8000);
    expect(floatToHalfBits(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the normals
    expect(float32BitsToHalfBits(0x7f800001)).toBe(0x7c01); // a NaN whose payload would vanish stays NaN
    expect(float32BitsToHalfBits(0xffc00000)).toBe(0xfe00);
  });

  it('agrees with a nearest-value search on random float32 values', () => {
    const positives = Array.from(float16ToFloat32(allPatterns.subarray(0, 0x7c00)));
    let seed = 12345;
    const xs = new Float32Array(20000);
    for (let i = 0; i < xs.length; i++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      // exponents spread over the half range and a little beyond
      xs[i] = fromBits(((seed >>> 9) & 0x7fffff) | ((103 + (seed % 40)) << 23));
    }
    const got = float32ToFloat16(xs);
    for (let i = 0; i < xs.length; i++) {
      const want = refNearestHalf(xs[i]!, positives);
      if (got[i] !== want) expect([xs[i], got[i]]).toEqual([xs[i], want]);
    }
  });

  it('widens all 65536 bfloat16 patterns exactly', () => {
    const out = bfloat16ToFloat32(allPatterns);
    for (let h = 0; h < 65536; h++) {
      const ref = refValue(h, 8, 7);
      if (Number.isNaN(ref)) expect(Number.isNaN(out[h]!)).toBe(true);
      else if (out[h] !== ref) expect([h, out[h]]).toEqual([h, ref]);
    }
  });

  it('converts views that start inside a larger buffer', () => {
    const big = new Float32Array([9, 1.5, -2, 9]);
    expect(Array.from(float16ToFloat32(float32ToFloat16(big.subarray(1, 3))))).toEqual([1.5, -2]);
  });
});
