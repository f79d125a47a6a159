/**
 * Half-precision conversions for tensors stored as raw 16-bit words.
 *
 * float16 (IEEE 754 binary16): sign s, 5-bit exponent e, 10-bit mantissa m;
 *   value = (-1)^s * 2^(e - 15) * (1 + m / 1024)   for 0 < e < 31,
 *           (-1)^s * 2^-14 * (m / 1024)            for e = 0 (zero and subnormals),
 *           ±Infinity (m = 0) or NaN (m != 0)      for e = 31.
 * bfloat16: the top 16 bits of a float32, so widening is a 16-bit shift.
 * float32 -> float16 rounds to nearest, ties to even; too large becomes ±Infinity, NaN stays NaN.
 */

let halfTable: Float32Array | undefined; // [65536]: float32 value of every half bit pattern

/** The float32 value of one float16 bit pattern (exact: every half is a float32). */
export function halfBitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  return sign * (1024 + m) * 2 ** (e - 25);
}

function table(): Float32Array {
  if (halfTable === undefined) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfBitsToFloat(h);
    // NaNs keep their payload (as numpy does): mantissa bits move to the top of the float32 mantissa.
    const bits = new Uint32Array(halfTable.buffer);
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) bits[h] = ((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13);
    }
  }
  return halfTable;
}

/** src: [n] float16 bit patterns -> [n] float32 (exact). */
export function float16ToFloat32(src: Uint16Array): Float32Array {
  const t = table();
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]!]!;
  return out;
}

/** src: [n] bfloat16 bit patterns -> [n] float32 (exact). */
export function bfloat16ToFloat32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return out;
}

/** The float16 bit pattern nearest to float32 bits `x` (ties to even). */
export function float32BitsToHalfBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) {
    if (mant === 0) return sign | 0x7c00;
    const nan = 0x7c00 | (mant >>> 13);
    return sign | (nan === 0x7c00 ? 0x7c01 : nan); // keep the payload, but never turn a NaN into Infinity
  }
  const e = exp - 112; // the half exponent field, if the value were a normal half
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: round(value / 2^-24) = round(m * 2^(e - 14)) with the implicit bit in m.
    const shift = 14 - e;
    if (shift > 25) return sign; // below half the smallest subnormal
    const m = mant | 0x800000;
    return sign | roundShift(m, shift);
  }
  // A carry out of the mantissa bumps the exponent; 0x7bff + 1 is 0x7c00, Infinity, as it should be.
  return sign | roundedAdd((e << 10) | (mant >>> 13), mant & 0x1fff, 0x1000);
}

/** m >> shift, rounded to nearest with ties to even (1 <= shift <= 25). */
function roundShift(m: number, shift: number): number {
  return roundedAdd(m >>> shift, m & ((1 << shift) - 1), 1 << (shift - 1));
}

/** q plus one when the dropped bits `rest` exceed half, or equal it and q is odd. */
function roundedAdd(q: number, rest: number, half: number): number {
  return rest > half || (rest === half && (q & 1) === 1) ? q + 1 : q;
}

/** The float16 bit pattern nearest to x, after x is rounded to float32. */
export function floatToHalfBits(x: number): number {
  const f = new Float32Array([x]);
  return float32BitsToHalfBits(new Uint32Array(f.buffer)[0]!);
}

/** src: [n] float32 -> [n] float16 bit patterns (round to nearest, ties to even). */
export function float32ToFloat16(src: Float32Array): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = float32BitsToHalfBits(bits[i]!);
  return out;
}
