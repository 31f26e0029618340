// One-element definitions every vector path reproduces, and their tails.
#pragma once

#include <cmath>
#include <cstdint>

#include "elementwise/elementwise.h"

namespace qtorch {
namespace kernels {

// round half to even, shift by the zero point, clamp to [lo, hi]; all exact in float.
inline uint8_t finish_u8(float scaled, int32_t zero_point, uint8_t lo, uint8_t hi) {
  const float q = std::nearbyint(scaled) + static_cast<float>(zero_point);
  const float flo = lo, fhi = hi;
  return static_cast<uint8_t>(q < flo ? flo : (q > fhi ? fhi : q));
}

inline uint8_t add_value(uint8_t a, uint8_t b, const AddParams& p) {
  const float fa = static_cast<float>(int32_t(a) - p.a_zero_point) * p.a_multiplier;
  const float fb = static_cast<float>(int32_t(b) - p.b_zero_point) * p.b_multiplier;
  return finish_u8(fa + fb, p.out_zero_point, p.out_min, p.out_max);
}

inline uint8_t mul_value(uint8_t a, uint8_t b, const MulParams& p) {
  const int32_t product = (int32_t(a) - p.a_zero_point) * (int32_t(b) - p.b_zero_point);
  return finish_u8(static_cast<float>(product) * p.multiplier, p.out_zero_point, p.out_min, p.out_max);
}

inline uint8_t clamp_value(uint8_t x, uint8_t lo, uint8_t hi) { return x < lo ? lo : (x > hi ? hi : x); }

}  // namespace kernels
}  // namespace qtorch
