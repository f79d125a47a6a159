/**
 * GGML tensor types and the TypeScript reference of their dequantisation (llama.cpp's block formats,
 * ggml-quants.c `dequantize_row_*`; the native addon's native/dequant.cc computes the same values).
 * A tensor of a quantised type is a row-major run of blocks; a block of `blockSize` values takes
 * `typeSize` bytes. All scales are little-endian float16 (`d`, `dmin`, `m`); integers are little-endian.
 *
 *   F32, F16, BF16        y = the value (BF16: the top 16 bits of a float32)
 *   Q8_0  (32, 34 B)      y[i] = d * qs[i]                                (qs int8)
 *   Q4_0  (32, 18 B)      y[i] = d * (q_i - 8),  q_i = low nibble of qs[i] (i < 16), high nibble of qs[i - 16]
 *   Q4_1  (32, 20 B)      y[i] = d * q_i + m
 *   Q5_0  (32, 22 B)      y[i] = d * ((q_i | h_i << 4) - 16),  h_i = bit i of qh (uint32)
 *   Q5_1  (32, 24 B)      y[i] = d * (q_i | h_i << 4) + m
 *   Q2_K  (256, 84 B)     16 groups of 16: y = (d * sc_g) * q - (dmin * m_g), sc_g/m_g = low/high nibble of
 *                         scales[g], q = 2-bit field (shift 2 * ((g / 2) % 4)) of qs[32 * (g / 8) + 16 * (g % 2) + l]
 *   Q3_K  (256, 110 B)    16 groups of 16: y = (d * (s_g - 32)) * (q - (hmask bit ? 0 : 4)), s_g 6-bit from scales[12]
 *   Q4_K  (256, 144 B)    8 groups of 32: y = (d * sc_g) * q - (dmin * m_g), sc_g/m_g 6-bit from scales[12]
 *   Q5_K  (256, 176 B)    the same with q = 4 low bits | (qh bit) << 4
 *   Q6_K  (256, 210 B)    16 groups of 16: y = (d * sc_g) * (q - 32), q = 4 bits of ql | 2 bits of qh << 4, sc_g int8
 *   IQ2_XXS (256, 66 B)   8 groups of 32, each two uint32 (a, b): db = d * (0.5 + (b >> 28)) * 0.25; group
 *                         quarter l (8 values) = db * grid[a's byte l][j] * (sign bit j of signs[(b >> 7l) & 127] ? -1 : 1)
 *
 * Arithmetic is float32 as in ggml (each operation rounded once, in C's left-to-right order: `a * b * c`
 * is (a * b) * c), so the reference, the native kernel and the numpy oracle agree bit for bit.
 */
import { IQ2_XXS_GRID, IQ2_XXS_SIGNS } from './dequant-tables.js';

/** ggml's type ids (ggml.h `enum ggml_type`), by name. */
export const GGML_TYPE_IDS = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q8_1: 9,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  IQ2_XXS: 16,
  IQ2_XS: 17,
  IQ3_XXS: 18,
  IQ1_S: 19,
  IQ4_NL: 20,
  IQ3_S: 21,
  IQ2_S: 22,
  IQ4_XS: 23,
  I8: 24,
  I16: 25,
  I32: 26,
  I64: 27,
  F64: 28,
  IQ1_M: 29,
  BF16: 30,
  TQ1_0: 34,
  TQ2_0: 35,
  MXFP4: 39,
} as const;

/** A GGML tensor type by name ('Q4_K'). */
export type GgmlType = keyof typeof GGML_TYPE_IDS;

/** [values per block, bytes per block] of every type (ggml.c's type_traits). */
export const GGML_BLOCKS: Readonly<Record<GgmlType, readonly [number, number]>> = {
  F32: [1, 4],
  F16: [1, 2],
  Q4_0: [32, 18],
  Q4_1: [32, 20],
  Q5_0: [32, 22],
  Q5_1: [32, 24],
  Q8_0: [32, 34],
  Q8_1: [32, 36],
  Q2_K: [256, 84],
  Q3_K: [256, 110],
  Q4_K: [256, 144],
  Q5_K: [256, 176],
  Q6_K: [256, 210],
  Q8_K: [256, 292],
  IQ2_XXS: [256, 66],
  IQ2_XS: [256, 74],
  IQ3_XXS: [256, 98],
  IQ1_S: [256, 50],
  IQ4_NL: [32, 18],
  IQ3_S: [256, 110],
  IQ2_S: [256, 82],
  IQ4_XS: [256, 136],
  I8: [1, 1],
  I16: [1, 2],
  I32: [1, 4],
  I64: [1, 8],
  F64: [1, 8],
  IQ1_M: [256, 56],
  BF16: [1, 2],
  TQ1_0: [256, 54],
  TQ2_0: [256, 66],
  MXFP4: [32, 17],
};

/** The types we dequantise, in ggml's id order. */
export const DEQUANT_TYPES = [
  'F32',
  'F16',
  'Q4_0',
  'Q4_1',
  'Q5_0',
  'Q5_1',
  'Q8_0',
  'Q2_K',
  'Q3_K',
  'Q4_K',
  'Q5_K',
  'Q6_K',
  'IQ2_XXS',
  'BF16',
] as const satisfies readonly GgmlType[];
export type DequantType = (typeof DEQUANT_TYPES)[number];

const BY_ID = new Map<number, GgmlType>(Object.entries(GGML_TYPE_IDS).map(([name, id]) => [id, name as GgmlType]));

/** The type of a ggml id, or undefined for an id we do not know. */
export function ggmlTypeOf(id: number): GgmlType | undefined {
  return BY_ID.get(id);
}

export function isDequantType(t: GgmlType): t is DequantType {
  return (DEQUANT_TYPES as readonly GgmlType[]).includes(t);
}

/** The number of blocks in `src` (bytes of whole blocks of `type`) after checking that `out` fits them. */
export function dequantBlocks(type: DequantType, src: Uint8Array, out: Float32Array): number {
  const [values, bytes] = GGML_BLOCKS[type];
  if (src.length % bytes !== 0) throw new RangeError(`dequantize: ${src.length} bytes are not whole ${type} blocks of ${bytes} bytes`);
  const blocks = src.length / bytes;
  if (out.length !== blocks * values)
    throw new RangeError(`dequantize: out has ${out.length} elements, expected ${blocks} blocks * ${values} = ${blocks * values}`);
  return blocks;
}

const f = Math.fround;

/** IEEE half-precision bits -> its value (exact in float32). */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m === 0 ? s * Infinity : NaN;
  return s * (1024 + m) * 2 ** (e - 25);
}

/** One block: the bytes at `p` of `b` -> out[o .. o + blockSize). */
type BlockFn = (b: Uint8Array, v: DataView, p: number, out: Float32Array, o: number) => void;

/** 6-bit scale and min of group j of a Q4_K/Q5_K block's 12 scale bytes at s (ggml's get_scale_min_k4). */
function scaleMinK4(b: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [b[s + j]! & 63, b[s + j + 4]! & 63];
  return [(b[s + j + 4]! & 0xf) | ((b[s + j - 4]! >> 6) << 4), (b[s + j + 4]! >> 4) | ((b[s + j]! >> 6) << 4)];
}

/** SIGN_FACTORS[8 * i + j]: -1 where sign mask IQ2_XXS_SIGNS[i] has bit j, else 1 (a product by -1 is an exact negation). */
const SIGN_FACTORS = Float64Array.from({ length: 128 * 8 }, (_, k) => ((IQ2_XXS_SIGNS[k >> 3]! >> (k & 7)) & 1 ? -1 : 1));

const BLOCKS: Record<Exclude<DequantType, 'F32' | 'F16' | 'BF16'>, BlockFn> = {
  Q8_0(_b, v, p, out, o) {
    const d = halfToFloat(v.getUint16(p, true));
    for (let i = 0; i < 32; i++) out[o + i] = f(d * v.getInt8(p + 2 + i));
  },
  Q4_0(b, v, p, out, o) {
    const d = halfToFloat(v.getUint16(p, true));
    for (let i = 0; i < 16; i++) {
      const q = b[p + 2 + i]!;
      out[o + i] = f(((q & 0xf) - 8) * d);
      out[o + i + 16] = f(((q >> 4) - 8) * d);
    }
  },
  Q4_1(b, v, p, out, o) {
    const d = halfToFloat(v.getUint16(p, true));
    const m = halfToFloat(v.getUint16(p + 2, true));
    for (let i = 0; i < 16; i++) {
      const q = b[p + 4 + i]!;
      out[o + i] = f(f((q & 0xf) * d) + m);
      out[o + i + 16] = f(f((q >> 4) * d) + m);
    }
  },
  Q5_0(b, v, p, out, o) {
    const d = halfToFloat(v.getUint16(p, true));
    const qh = v.getUint32(p + 2, true);
    for (let i = 0; i < 16; i++) {
      const q = b[p + 6 + i]!;
      out[o + i] = f((((q & 0xf) | (((qh >>> i) & 1) << 4)) - 16) * d);
      out[o + i + 16] = f((((q >> 4) | (((qh >>> (i + 16)) & 1) << 4)) - 16) * d);
    }
  },
  Q5_1(b, v, p, out, o) {
    const d = halfToFloat(v.getUint16(p, true));
    const m = halfToFloat(v.getUint16(p + 2, true));
    const qh = v.getUint32(p + 4, true);
    for (let i = 0; i < 16; i++) {
      const q = b[p + 8 + i]!;
      out[o + i] = f(f(((q & 0xf) | (((qh >>> i) & 1) << 4)) * d) + m);
      out[o + i + 16] = f(f(((q >> 4) | (((qh >>> (i + 16)) & 1) << 4)) * d) + m);
    }
  },
  // scales[16] @0, qs[64] @16, d @80, dmin @82
  Q2_K(b, v, p, out, o) {
    const d = halfToFloat(v.getUint16(p + 80, true));
    const dmin = halfToFloat(v.getUint16(p + 82, true));
    for (let g = 0; g < 16; g++) {
      const sc = b[p + g]!;
      const dl = f(d * (sc & 0xf));
      const ml = f(dmin * (sc >> 4));
      const q = p + 16 + 32 * (g >> 3) + 16 * (g & 1);
      const shift = 2 * ((g >> 1) & 3);
      for (let l = 0; l < 16; l++) out[o + 16 * g + l] = f(f(dl * ((b[q + l]! >> shift) & 3)) - ml);
    }
  },
  // hmask[32] @0, qs[64] @32, scales[12] @96, d @108
  Q3_K(b, v, p, out, o) {
    const d = halfToFloat(v.getUint16(p + 108, true));
    const s = p + 96;
    for (let g = 0; g < 16; g++) {
      const low = g < 8 ? b[s + g]! & 0xf : b[s + g - 8]! >> 4;
      const high = (b[s + 8 + (g & 3)]! >> (2 * (g >> 2))) & 3;
      const dl = f(d * ((low | (high << 4)) - 32));
      const q = p + 32 + 32 * (g >> 3) + 16 * (g & 1);
      const h = p + 16 * (g & 1);
      const shift = 2 * ((g >> 1) & 3);
      const mask = 1 << ((g >> 1) & 7);
      for (let l = 0; l < 16; l++) {
        const x = ((b[q + l]! >> shift) & 3) - (b[h + l]! & mask ? 0 : 4);
        out[o + 16 * g + l] = f(dl * x);
      }
    }
  },
  // d @0, dmin @2, scales[12] @4, qs[128] @16
  Q4_K(b, v, p, out, o) {
    const d = halfToFloat(v.getUint16(p, true));
    const dmin = halfToFloat(v.getUint16(p + 2, true));
    for (let g = 0; g < 8; g++) {
      const [sc, m] = scaleMinK4(b, p + 4, g);
      const dl = f(d * sc);
      const ml = f(dmin * m);
      const q = p + 16 + 32 * (g >> 1);
      const shift = 4 * (g & 1);
      for (let l = 0; l < 32; l++) out[o + 32 * g + l] = f(f(dl * ((b[q + l]! >> shift) & 0xf)) - ml);
    }
  },
  // d @0, dmin @2, scales[12] @4, qh[32] @16, qs[128] @48
  Q5_K(b, v, p, out, o) {
    const d = halfToFloat(v.getUint16(p, true));
    const dmin = halfToFloat(v.getUint16(p + 2, true));
    for (let g = 0; g < 8; g++) {
      const [sc, m] = scaleMinK4(b, p + 4, g);
      const dl = f(d * sc);
      const ml = f(dmin * m);
      const q = p + 48 + 32 * (g >> 1);
      const shift = 4 * (g & 1);
      for (let l = 0; l < 32; l++) {
        const x = ((b[q + l]! >> shift) & 0xf) + ((b[p + 16 + l]! >> g) & 1 ? 16 : 0);
        out[o + 32 * g + l] = f(f(dl * x) - ml);
      }
    }
  },
  // ql[128] @0, qh[64] @128, scales[16] (int8) @192, d @208
  Q6_K(b, v, p, out, o) {
    const d = halfToFloat(v.getUint16(p + 208, true));
    for (let half = 0; half < 2; half++) {
      const ql = p + 64 * half;
      const qh = p + 128 + 32 * half;
      const sc = p + 192 + 8 * half;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = b[qh + l]!;
        const q1 = ((b[ql + l]! & 0xf) | ((h & 3) << 4)) - 32;
        const q2 = ((b[ql + l + 32]! & 0xf) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((b[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((b[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
        const y = o + 128 * half + l;
        out[y] = f(f(d * v.getInt8(sc + is)) * q1);
        out[y + 32] = f(f(d * v.getInt8(sc + is + 2)) * q2);
        out[y + 64] = f(f(d * v.getInt8(sc + is + 4)) * q3);
        out[y + 96] = f(f(d * v.getInt8(sc + is + 6)) * q4);
      }
    }
  },
  // d @0, qs: 8 groups of two uint32 @2
  IQ2_XXS(b, v, p, out, o) {
    const d = halfToFloat(v.getUint16(p, true));
    for (let g = 0; g < 8; g++) {
      const a = p + 2 + 8 * g;
      const signs = v.getUint32(a + 4, true);
      const db = f(f(d * (0.5 + (signs >>> 28))) * 0.25);
      for (let l = 0; l < 4; l++) {
        const grid = 8 * b[a + l]!;
        const sign = 8 * ((signs >>> (7 * l)) & 127);
        for (let j = 0; j < 8; j++) out[o + 32 * g + 8 * l + j] = f(db * IQ2_XXS_GRID[grid + j]!) * SIGN_FACTORS[sign + j]!;
      }
    }
  },
};

/** src: whole blocks of `type` -> out: [blocks * blockSize] (overwritten). */
export function dequantize(type: DequantType, src: Uint8Array, out: Float32Array): void {
  const blocks = dequantBlocks(type, src, out);
  const v = new DataView(src.buffer, src.byteOffset, src.byteLength);
  if (type === 'F32') {
    for (let i = 0; i < blocks; i++) out[i] = v.getFloat32(4 * i, true);
  } else if (type === 'F16') {
    for (let i = 0; i < blocks; i++) out[i] = halfToFloat(v.getUint16(2 * i, true));
  } else if (type === 'BF16') {
    for (let i = 0; i < blocks; i++) out[i] = bf16(v.getUint16(2 * i, true));
  } else {
    const fn = BLOCKS[type];
    const [values, bytes] = GGML_BLOCKS[type];
    for (let i = 0; i < blocks; i++) fn(src, v, i * bytes, out, i * values);
  }
}

const BF16_BITS = new Uint32Array(1);
const BF16_VALUE = new Float32Array(BF16_BITS.buffer);

/** bfloat16 bits -> its value. */
function bf16(h: number): number {
  BF16_BITS[0] = h << 16;
  return BF16_VALUE[0]!;
}
