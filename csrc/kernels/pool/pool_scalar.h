// One-channel definitions every vector path reproduces, and their tails.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

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

// sum: the window's plain byte sum (p.bias not yet added).
inline uint8_t avg_pool_finish(int32_t sum, const AvgPoolParams& p) {
  return finish_u8(static_cast<float>(p.bias + sum) * p.multiplier, p.zero_point, 0, 255);
}

inline uint8_t avg_pool_value(size_t count, const uint8_t* const* rows, size_t c, const AvgPoolParams& p) {
  int32_t sum = 0;
  for (size_t k = 0; k < count; ++k) sum += rows[k][c];
  return avg_pool_finish(sum, p);
}

inline uint8_t avg_pool_run(size_t length, const uint8_t* x, const AvgPoolParams& p) {
  int32_t sum = 0;
  for (size_t k = 0; k < length; ++k) sum += x[k];
  return avg_pool_finish(sum, p);
}

// Row r's columns [from, width) split into phases (the definition in pool.h).
inline void deinterleave_tail(size_t from, size_t width, size_t phases, const uint8_t* x, uint8_t* y,
                              size_t phase_step) {
  if (from >= width) return;
  if (phases == 1) return static_cast<void>(std::memcpy(y + from, x + from, width - from));
  size_t phase = from % phases, at = from / phases;  // of column c, counted up without divisions
  for (size_t c = from; c < width; ++c) {
    y[phase * phase_step + at] = x[c];
    if (++phase == phases) phase = 0, ++at;
  }
}

inline uint8_t bilinear_value(const uint8_t* const* rows, const float* w, size_t c) {
  const float top = w[2] * float(rows[0][c]) + w[3] * float(rows[1][c]);
  const float bottom = w[2] * float(rows[2][c]) + w[3] * float(rows[3][c]);
  return finish_u8(w[0] * top + w[1] * bottom, 0, 0, 255);
}

}  // namespace kernels
}  // namespace qtorch
