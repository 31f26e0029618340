// One-element quantization arithmetic: the definition every vector path
// reproduces, and what vector kernels use for their tails.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace qtorch {
namespace kernels {

// double holds every int32 exactly, so the clamp is exact for qint32 too.
template <typename Q>
inline Q clamp_to(double q) {
  constexpr double lo = std::numeric_limits<Q>::min(), hi = std::numeric_limits<Q>::max();
  return static_cast<Q>(q < lo ? lo : (q > hi ? hi : q));
}

// Per-tensor form: round after the fused multiply-add with the zero point.
template <typename Q>
inline Q quantize_value(float x, float inv_scale, int32_t zero_point) {
  const float rounded = std::nearbyint(std::fma(x, inv_scale, static_cast<float>(zero_point)));
  if (std::isnan(rounded)) return static_cast<Q>(zero_point);
  return clamp_to<Q>(rounded);
}

// Two-step form (per channel, and int32): round the float sum of the product and
// the zero point; -ffp-contract=off keeps the two roundings apart.
template <typename Q>
inline Q quantize_channel_value(float x, float inv_scale, int32_t zero_point) {
  const float rounded = std::nearbyint(x * inv_scale + static_cast<float>(zero_point));
  if (std::isnan(rounded)) return static_cast<Q>(zero_point);
  return clamp_to<Q>(rounded);
}

template <typename Q>
inline float dequantize_value(Q q, float scale, int32_t zero_point) {
  // int64: an int32 minus a zero point may not fit in int32.
  return static_cast<float>(int64_t(q) - zero_point) * scale;
}

// value is already centred (q - zp_in).
template <typename Out>
inline Out requantize_value(int32_t centred, float multiplier, int32_t zp_out) {
  const float q = std::nearbyint(static_cast<float>(centred) * multiplier + static_cast<float>(zp_out));
  constexpr float lo = std::numeric_limits<Out>::min(), hi = std::numeric_limits<Out>::max();
  return static_cast<Out>(q < lo ? lo : (q > hi ? hi : q));
}

}  // namespace kernels
}  // namespace qtorch
