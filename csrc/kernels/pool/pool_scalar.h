// One-channel definitions every vector path reproduces, and their tails.
#pragma once

#include <cmath>
#include <cstdint>

#include "elementwise/elementwise_scalar.h"
#include "pool/pool.h"

namespace qtorch {
namespace kernels {

// c is the element's offset in every row (output offset plus channel).
inline uint8_t max_pool_value(size_t count, const uint8_t* const* rows, size_t c) {
  uint8_t m = rows[0][c];
  for (size_t k = 1; k < count; ++k) m = rows[k][c] > m ? rows[k][c] : m;
  return m;
}

inline uint8_t avg_pool_value(size_t count, const uint8_t* const* rows, size_t c, const AvgPoolParams& p) {
  int32_t acc = p.bias;
  for (size_t k = 0; k < count; ++k) acc += rows[k][c];
  return finish_u8(static_cast<float>(acc) * p.multiplier, p.zero_point, 0, 255);
}

inline uint8_t bilinear_value(const uint8_t* const* rows, const float* w, size_t c) {
  const float top = w[2] * float(rows[0][c]) + w[3] * float(rows[1][c]);
  const float bottom = w[2] * float(rows[2][c]) + w[3] * float(rows[3][c]);
  return finish_u8(w[0] * top + w[1] * bottom, 0, 0, 255);
}

}  // namespace kernels
}  // namespace qtorch
