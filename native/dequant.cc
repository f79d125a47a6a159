// GGML block dequantisation (see dequant.h and src/engine/dequant.ts for the formats). Every value is
// a product or difference of float32 operands rounded once, in the order of src/engine/dequant.ts,
// with no FMA contraction (binding.gyp): the reference's values exactly, for any thread count.
#include "dequant.h"

#include <cstring>

#include "dequant_tables.h"
#include "pool.h"

namespace sae {
namespace {

// ggml type ids (ggml.h enum ggml_type).
enum Type : int {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ2_K = 10, kQ3_K = 11,
  kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kIQ2_XXS = 16, kBF16 = 30,
};

inline std::uint16_t u16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
inline std::uint32_t u32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

inline float bits_to_float(std::uint32_t bits) {
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

// IEEE half bits -> float (exact), without F16C.
inline float half(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000) << 16;
  const std::uint32_t e = (h >> 10) & 0x1f;
  std::uint32_t m = h & 0x3ff;
  if (e == 31) return bits_to_float(sign | 0x7f800000u | (m << 13));
  if (e != 0) return bits_to_float(sign | ((e + 112) << 23) | (m << 13));
  if (m == 0) return bits_to_float(sign);
  // subnormal half: normalise into a float32 exponent
  int shift = 0;
  while ((m & 0x400) == 0) {
    m <<= 1;
    ++shift;
  }
  return bits_to_float(sign | (static_cast<std::uint32_t>(113 - shift) << 23) | ((m & 0x3ff) << 13));
}

inline float fl(int x) { return static_cast<float>(x); }

void q8_0(const std::uint8_t* b, float* y) {
  const float d = half(u16(b));
  for (int i = 0; i < 32; ++i) y[i] = d * fl(static_cast<std::int8_t>(b[2 + i]));
}

void q4_0(const std::uint8_t* b, float* y) {
  const float d = half(u16(b));
  for (int i = 0; i < 16; ++i) {
    const int q = b[2 + i];
    y[i] = fl((q & 0xf) - 8) * d;
    y[i + 16] = fl((q >> 4) - 8) * d;
  }
}

void q4_1(const std::uint8_t* b, float* y) {
  const float d = half(u16(b));
  const float m = half(u16(b + 2));
  for (int i = 0; i < 16; ++i) {
    const int q = b[4 + i];
    y[i] = fl(q & 0xf) * d + m;
    y[i + 16] = fl(q >> 4) * d + m;
  }
}

void q5_0(const std::uint8_t* b, float* y) {
  const float d = half(u16(b));
  const std::uint32_t qh = u32(b + 2);
  for (int i = 0; i < 16; ++i) {
    const int q = b[6 + i];
    y[i] = fl(((q & 0xf) | static_cast<int>(((qh >> i) & 1) << 4)) - 16) * d;
    y[i + 16] = fl(((q >> 4) | static_cast<int>(((qh >> (i + 16)) & 1) << 4)) - 16) * d;
  }
}

void q5_1(const std::uint8_t* b, float* y) {
  const float d = half(u16(b));
  const float m = half(u16(b + 2));
  const std::uint32_t qh = u32(b + 4);
  for (int i = 0; i < 16; ++i) {
    const int q = b[8 + i];
    y[i] = fl((q & 0xf) | static_cast<int>(((qh >> i) & 1) << 4)) * d + m;
    y[i + 16] = fl((q >> 4) | static_cast<int>(((qh >> (i + 16)) & 1) << 4)) * d + m;
  }
}

// scales[16] @0, qs[64] @16, d @80, dmin @82
void q2_k(const std::uint8_t* b, float* y) {
  const float d = half(u16(b + 80));
  const float dmin = half(u16(b + 82));
  for (int g = 0; g < 16; ++g) {
    const int sc = b[g];
    const float dl = d * fl(sc & 0xf);
    const float ml = dmin * fl(sc >> 4);
    const std::uint8_t* q = b + 16 + 32 * (g >> 3) + 16 * (g & 1);
    const int shift = 2 * ((g >> 1) & 3);
    for (int l = 0; l < 16; ++l) y[16 * g + l] = dl * fl((q[l] >> shift) & 3) - ml;
  }
}

// hmask[32] @0, qs[64] @32, scales[12] @96, d @108
void q3_k(const std::uint8_t* b, float* y) {
  const float d = half(u16(b + 108));
  const std::uint8_t* s = b + 96;
  for (int g = 0; g < 16; ++g) {
    const int low = g < 8 ? (s[g] & 0xf) : (s[g - 8] >> 4);
    const int high = (s[8 + (g & 3)] >> (2 * (g >> 2))) & 3;
    const float dl = d * fl((low | (high << 4)) - 32);
    const std::uint8_t* q = b + 32 + 32 * (g >> 3) + 16 * (g & 1);
    const std::uint8_t* h = b + 16 * (g & 1);
    const int shift = 2 * ((g >> 1) & 3);
    const int mask = 1 << ((g >> 1) & 7);
    for (int l = 0; l < 16; ++l) y[16 * g + l] = dl * fl(((q[l] >> shift) & 3) - ((h[l] & mask) ? 0 : 4));
  }
}

// 6-bit scale and min of group j from the 12 scale bytes s (ggml's get_scale_min_k4).
inline void scale_min_k4(const std::uint8_t* s, int j, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// d @0, dmin @2, scales[12] @4, qs[128] @16
void q4_k(const std::uint8_t* b, float* y) {
  const float d = half(u16(b));
  const float dmin = half(u16(b + 2));
  for (int g = 0; g < 8; ++g) {
    int sc = 0;
    int m = 0;
    scale_min_k4(b + 4, g, sc, m);
    const float dl = d * fl(sc);
    const float ml = dmin * fl(m);
    const std::uint8_t* q = b + 16 + 32 * (g >> 1);
    const int shift = 4 * (g & 1);
    for (int l = 0; l < 32; ++l) y[32 * g + l] = dl * fl((q[l] >> shift) & 0xf) - ml;
  }
}

// d @0, dmin @2, scales[12] @4, qh[32] @16, qs[128] @48
void q5_k(const std::uint8_t* b, float* y) {
  const float d = half(u16(b));
  const float dmin = half(u16(b + 2));
  const std::uint8_t* qh = b + 16;
  for (int g = 0; g < 8; ++g) {
    int sc = 0;
    int m = 0;
    scale_min_k4(b + 4, g, sc, m);
    const float dl = d * fl(sc);
    const float ml = dmin * fl(m);
    const std::uint8_t* q = b + 48 + 32 * (g >> 1);
    const int shift = 4 * (g & 1);
    for (int l = 0; l < 32; ++l) y[32 * g + l] = dl * fl(((q[l] >> shift) & 0xf) + (((qh[l] >> g) & 1) ? 16 : 0)) - ml;
  }
}

// ql[128] @0, qh[64] @128, scales[16] (int8) @192, d @208
void q6_k(const std::uint8_t* b, float* y) {
  const float d = half(u16(b + 208));
  for (int half_ = 0; half_ < 2; ++half_) {
    const std::uint8_t* ql = b + 64 * half_;
    const std::uint8_t* qh = b + 128 + 32 * half_;
    const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192 + 8 * half_);
    float* o = y + 128 * half_;
    for (int l = 0; l < 32; ++l) {
      const int is = l >> 4;
      const int h = qh[l];
      const int q1 = ((ql[l] & 0xf) | ((h & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xf) | (((h >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
      o[l] = d * fl(sc[is]) * fl(q1);
      o[l + 32] = d * fl(sc[is + 2]) * fl(q2);
      o[l + 64] = d * fl(sc[is + 4]) * fl(q3);
      o[l + 96] = d * fl(sc[is + 6]) * fl(q4);
    }
  }
}

// d @0, then 8 groups of two uint32 (4 grid indices; 4 x 7 sign bits and a 4-bit scale)
void iq2_xxs(const std::uint8_t* b, float* y) {
  const float d = half(u16(b));
  for (int g = 0; g < 8; ++g) {
    const std::uint8_t* a = b + 2 + 8 * g;
    const std::uint32_t signs = u32(a + 4);
    const float db = d * (0.5f + static_cast<float>(signs >> 28)) * 0.25f;
    for (int l = 0; l < 4; ++l) {
      const std::uint8_t* grid = kIq2XxsGrid + 8 * a[l];
      const int sign = kIq2XxsSigns[(signs >> (7 * l)) & 127];
      float* o = y + 32 * g + 8 * l;
      for (int j = 0; j < 8; ++j) {
        // v negated by flipping its sign bit where sign bit j is set (branch-free: signs are random)
        std::uint32_t v;
        const float x = db * static_cast<float>(grid[j]);
        std::memcpy(&v, &x, sizeof v);
        v ^= static_cast<std::uint32_t>((sign >> j) & 1) << 31;
        std::memcpy(o + j, &v, sizeof v);
      }
    }
  }
}

void f32(const std::uint8_t* b, float* y) { std::memcpy(y, b, sizeof(float)); }
void f16(const std::uint8_t* b, float* y) { *y = half(u16(b)); }
void bf16(const std::uint8_t* b, float* y) { *y = bits_to_float(static_cast<std::uint32_t>(u16(b)) << 16); }

struct Format {
  int type;
  std::size_t values;
  std::size_t bytes;
  void (*block)(const std::uint8_t*, float*);
};

constexpr Format kFormats[] = {
    {kF32, 1, 4, f32},         {kF16, 1, 2, f16},         {kBF16, 1, 2, bf16},       {kQ4_0, 32, 18, q4_0},
    {kQ4_1, 32, 20, q4_1},     {kQ5_0, 32, 22, q5_0},     {kQ5_1, 32, 24, q5_1},     {kQ8_0, 32, 34, q8_0},
    {kQ2_K, 256, 84, q2_k},    {kQ3_K, 256, 110, q3_k},   {kQ4_K, 256, 144, q4_k},   {kQ5_K, 256, 176, q5_k},
    {kQ6_K, 256, 210, q6_k},   {kIQ2_XXS, 256, 66, iq2_xxs},
};

const Format* format_of(int type) {
  for (const Format& f : kFormats) {
    if (f.type == type) return &f;
  }
  return nullptr;
}

}  // namespace

bool dequant_block_shape(int type, std::size_t& values, std::size_t& bytes) {
  const Format* f = format_of(type);
  if (f == nullptr) return false;
  values = f->values;
  bytes = f->bytes;
  return true;
}

void dequantize(int type, const std::uint8_t* src, std::size_t blocks, float* out) {
  const Format* f = format_of(type);
  if (f == nullptr) return;
  if (f->values == 1 && type == kF32) {
    std::memcpy(out, src, blocks * sizeof(float));
    return;
  }
  // blocks of one value: align ranges on 16 values (64-byte lines of out)
  const std::size_t align = f->values == 1 ? 16 : 1;
  parallel_for(blocks, align, blocks * f->values, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) f->block(src + i * f->bytes, out + i * f->values);
  });
}

}  // namespace sae
