// One-channel depthwise arithmetic: the definition every vector path
// reproduces, and what vector kernels without masked loads use for tail channels.
#pragma once

#include <cmath>
#include <cstdint>

#include "depthwise/depthwise.h"

namespace qtorch {
namespace kernels {

inline int16_t depthwise_weight(const int16_t* packed, size_t tap_pairs, size_t c, size_t t) {
  const size_t block = c / kDepthwiseChannelBlock, lane = c % kDepthwiseChannelBlock;
  return packed[((block * tap_pairs + t / 2) * kDepthwiseChannelBlock + lane) * 2 + t % 2];
}

inline uint8_t depthwise_requantize(int32_t acc, size_t c, const DepthwiseRequant& rq) {
  const float x = static_cast<float>(acc) + rq.biases[c];
  const float q = std::nearbyint(x * rq.multipliers[c]) + static_cast<float>(rq.out_zero_point);
  const float lo = static_cast<float>(rq.out_min), hi = static_cast<float>(rq.out_max);
  return static_cast<uint8_t>(q < lo ? lo : (q > hi ? hi : q));
}

// Channel c of one output pixel whose tap pointers are `taps_in`.
inline uint8_t depthwise_channel(size_t c, size_t taps, const uint8_t* const* taps_in, const int16_t* packed,
                                 const DepthwiseRequant& rq) {
  const size_t pairs = depthwise_tap_pairs(taps);
  int32_t acc = rq.offsets[c];
  for (size_t t = 0; t < taps; ++t) acc += int32_t(taps_in[t][c]) * depthwise_weight(packed, pairs, c, t);
  return depthwise_requantize(acc, c, rq);
}

}  // namespace kernels
}  // namespace qtorch
