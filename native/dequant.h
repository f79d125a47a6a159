// Dequantisation of GGML tensor blocks to float32 (formats and formulas: src/engine/dequant.ts, whose
// TypeScript reference this computes bit for bit: float32 arithmetic, one rounding per operation).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sae {

// The block shape of a ggml type id we dequantise: values per block and bytes per block; false for
// any other id.
bool dequant_block_shape(int type, std::size_t& values, std::size_t& bytes);

// src: `blocks` blocks of ggml type `type` (one dequant_block_shape accepts) -> out: [blocks * values],
// over the process pool, each thread owning a contiguous run of blocks.
void dequantize(int type, const std::uint8_t* src, std::size_t blocks, float* out);

}  // namespace sae
