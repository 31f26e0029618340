// One-element quantization arithmetic: the definition every vector path
// reproduces, and what vector kernels use for their tails.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace qtorch {
namespace kernels {

template <typename Q>
inline Q quantize_value(float x, float inv_scale, int32_t zero_point) {
  const float rounded = std::nearbyint(x * inv_scale);
  if (std::isnan(rounded)) return static_cast<Q>(zero_point);
  // double holds every int32 exactly, so the clamp is exact for qint32 too.
  const double q = double(rounded) + zero_point;
  constexpr double lo = std::numeric_limits<Q>::min(), hi = std::numeric_limits<Q>::max();
  return static_cast<Q>(q < lo ? lo : (q > hi ? hi : q));
}

template <typename Q>
inline float dequantize_value(Q q, float scale, int32_t zero_point) {
  // int64: an int32 minus a zero point may not fit in int32.
  return static_cast<float>(int64_t(q) - zero_point) * scale;
}

// value is already centred (q - zp_in).
template <typename Out>
inline Out requantize_value(int32_t centred, float multiplier, int32_t zp_out) {
  const float scaled = std::nearbyint(static_cast<float>(centred) * multiplier);
  const float q = scaled + static_cast<float>(zp_out);
  constexpr float lo = std::numeric_limits<Out>::min(), hi = std::numeric_limits<Out>::max();
  return static_cast<Out>(q < lo ? lo : (q > hi ? hi : q));
}

}  // namespace kernels
}  // namespace qtorch
