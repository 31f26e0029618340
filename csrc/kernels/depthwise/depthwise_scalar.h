// One-channel depthwise arithmetic: the definition every vector path
// reproduces, and what vector kernels use for tail channels.
#pragma once

#include <cmath>
#include <cstdint>

#include "depthwise/depthwise.h"

namespace qtorch {
namespace kernels {

inline int8_t depthwise_weight(const int8_t* packed, size_t taps, size_t c, size_t t) {
  return packed[(c / kDepthwiseChannelBlock * taps + t) * kDepthwiseChannelBlock + c % kDepthwiseChannelBlock];
}

inline uint8_t depthwise_requantize(int32_t acc, size_t c, const DepthwiseRequant& rq) {
  const float x = static_cast<float>(acc) + rq.biases[c];
  const float q = std::nearbyint(x * rq.multipliers[c]) + static_cast<float>(rq.out_zero_point);
  if (std::isnan(q)) return static_cast<uint8_t>(rq.out_zero_point);
  const float lo = static_cast<float>(rq.out_min), hi = static_cast<float>(rq.out_max);
  return static_cast<uint8_t>(q < lo ? lo : (q > hi ? hi : q));
}

// Channel c of one output pixel whose tap pointers are `taps_in`.
inline uint8_t depthwise_channel(size_t c, size_t taps, const uint8_t* const* taps_in, const int8_t* packed,
                                 const DepthwiseRequant& rq) {
  const int32_t zp = rq.weight_zero_points[c];
  int32_t acc = rq.offsets[c];
  for (size_t t = 0; t < taps; ++t) acc += int32_t(taps_in[t][c]) * (depthwise_weight(packed, taps, c, t) - zp);
  return depthwise_requantize(acc, c, rq);
}

// Channels [c0, c1) of `pixels` output pixels through the definition.
inline void depthwise_channels(size_t c0, size_t c1, size_t pixels, size_t taps, const uint8_t* const* indirection,
                               const int8_t* packed, const DepthwiseRequant& rq, uint8_t* out, size_t out_stride) {
  for (size_t p = 0; p < pixels; ++p) {
    for (size_t c = c0; c < c1; ++c) {
      out[p * out_stride + c] = depthwise_channel(c, taps, indirection + p * taps, packed, rq);
    }
  }
}

// The weights of 16 channels [c0, c0 + 16) minus their zero points as int16
// tap pairs, out[(t / 2) * 32 + lane * 2 + t % 2] (zero past the last tap):
// what pmaddwd and NEON vld2 + vmlal consume. ceil(taps / 2) * 32 values.
inline void depthwise_widen_pairs16(const int8_t* packed, size_t taps, size_t c0, const int32_t* weight_zero_points,
                                    int16_t* out) {
  const size_t pairs = (taps + 1) / 2;
  for (size_t i = 0; i < pairs * 32; ++i) out[i] = 0;
  for (size_t lane = 0; lane < 16; ++lane) {
    const int32_t zp = weight_zero_points[c0 + lane];
    for (size_t t = 0; t < taps; ++t) {
      out[(t / 2) * 32 + lane * 2 + t % 2] = static_cast<int16_t>(depthwise_weight(packed, taps, c0 + lane, t) - zp);
    }
  }
}

}  // namespace kernels
}  // namespace qtorch
