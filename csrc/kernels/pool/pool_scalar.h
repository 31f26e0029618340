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

// Windows of at most this many taps have a byte sum and a bias (-zero_point * taps) that fit
// int32, so the vector paths sum them in int32 lanes. Larger ones (global pooling of planes
// past ~8.4M bytes) are summed in int64: by avg_pool_wide, or vpsadbw's 64-bit sums for runs.
constexpr size_t kAvgPoolInt32Taps = 0x7fffffff / 255;

// sum: the window's plain byte sum (p.bias not yet added), exact in int64.
inline uint8_t avg_pool_finish(int64_t sum, const AvgPoolParams& p) {
  return finish_u8(static_cast<float>(p.bias + sum) * p.multiplier, p.zero_point, 0, 255);
}

inline uint8_t avg_pool_value(size_t count, const uint8_t* const* rows, size_t c, const AvgPoolParams& p) {
  int64_t sum = 0;
  for (size_t k = 0; k < count; ++k) sum += rows[k][c];
  return avg_pool_finish(sum, p);
}

inline uint8_t avg_pool_run(size_t length, const uint8_t* x, const AvgPoolParams& p) {
  // int32 sums of chunks that cannot overflow them, added in int64: the compiler vectorizes
  // the chunk loop (a plain int64 sum of bytes runs ~20x slower).
  int64_t sum = 0;
  for (size_t from = 0; from < length; from += kAvgPoolInt32Taps) {
    const size_t to = length - from > kAvgPoolInt32Taps ? from + kAvgPoolInt32Taps : length;
    int32_t chunk = 0;
    for (size_t k = from; k < to; ++k) chunk += x[k];
    sum += chunk;
  }
  return avg_pool_finish(sum, p);
}

// avg_pool of windows of more than kAvgPoolInt32Taps taps, on every path: int64 sums of 64
// channels at a time, so each tap's row is read once per block and in order (the per-channel
// definition would walk all the taps once per channel).
inline void avg_pool_wide(size_t outputs, size_t channels, size_t count, const uint8_t* const* rows, size_t row_step,
                          uint8_t* y, size_t y_step, const AvgPoolParams& p) {
  constexpr size_t kBlock = 64;
  for (size_t o = 0; o < outputs; ++o) {
    for (size_t c0 = 0; c0 < channels; c0 += kBlock) {
      const size_t n = channels - c0 < kBlock ? channels - c0 : kBlock, off = o * row_step + c0;
      int64_t sums[kBlock] = {};
      for (size_t k = 0; k < count; ++k) {
        const uint8_t* row = rows[k] + off;
        for (size_t j = 0; j < n; ++j) sums[j] += row[j];
      }
      for (size_t j = 0; j < n; ++j) y[o * y_step + c0 + j] = avg_pool_finish(sums[j], p);
    }
  }
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
