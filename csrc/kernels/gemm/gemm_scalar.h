// One-element GEMM arithmetic: the definition every vector path reproduces,
// and what vector kernels use for their tails.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "gemm/gemm.h"

namespace qtorch {
namespace kernels {

// Per-output-channel constants of the pipeline (see gemm.h).
struct GemmChannel {
  float ab;          // a_scale * b_scale[n]
  float multiplier;  // ab / c_scale
  int32_t b_zp;
  float bias;        // bias[n] or 0
};

inline GemmChannel gemm_channel(const OutputPipeline& p, size_t n) {
  const size_t i = p.b_per_channel ? n : 0;
  GemmChannel ch;
  ch.ab = p.a_scale * p.b_scales[i];
  ch.multiplier = ch.ab / p.c_scale;
  ch.b_zp = p.b_zero_points ? p.b_zero_points[i] : 0;
  ch.bias = p.bias ? p.bias[n] : 0.f;
  return ch;
}

// acc - a_zp * colsum - b_zp * rowsum + k * a_zp * b_zp, in modular int32
// arithmetic (the true result fits; intermediate terms may not).
inline int32_t gemm_centred(int32_t acc, int32_t a_zp, int32_t col_sum, int32_t b_zp, int32_t row_sum, int32_t k) {
  const uint32_t r = uint32_t(acc) - uint32_t(a_zp) * uint32_t(col_sum) - uint32_t(b_zp) * uint32_t(row_sum) +
                     uint32_t(k) * uint32_t(a_zp) * uint32_t(b_zp);
  return int32_t(r);
}

inline uint8_t gemm_requantize(int32_t raw, const GemmChannel& ch, bool has_bias, int32_t c_zp, bool relu) {
  float x = static_cast<float>(raw);
  if (has_bias) x = x + ch.bias / ch.ab;
  const float q = std::nearbyint(x * ch.multiplier) + static_cast<float>(c_zp);
  if (std::isnan(q)) return static_cast<uint8_t>(c_zp);
  const float lo = relu ? static_cast<float>(c_zp) : 0.f, hi = 255.f;
  return static_cast<uint8_t>(q < lo ? lo : (q > hi ? hi : q));
}

inline float gemm_dequantized(uint8_t q, int32_t c_zp, float c_scale) {
  return static_cast<float>(int32_t(q) - c_zp) * c_scale;
}

inline float gemm_float(int32_t raw, const GemmChannel& ch, bool has_bias, bool relu) {
  float y = static_cast<float>(raw) * ch.ab;
  if (has_bias) y = y + ch.bias;
  if (relu) y = y > 0.f ? y : 0.f;
  return y;
}

// Writes one output element of any pipeline kind.
inline void gemm_store(int32_t raw, const GemmChannel& ch, const OutputPipeline& p, void* c, size_t index) {
  switch (p.output) {
    case GemmOutput::kUint8:
      static_cast<uint8_t*>(c)[index] = gemm_requantize(raw, ch, p.bias != nullptr, p.c_zero_point, p.relu);
      break;
    case GemmOutput::kDequantized:
      static_cast<float*>(c)[index] = gemm_dequantized(
          gemm_requantize(raw, ch, p.bias != nullptr, p.c_zero_point, p.relu), p.c_zero_point, p.c_scale);
      break;
    case GemmOutput::kFloat:
      static_cast<float*>(c)[index] = gemm_float(raw, ch, p.bias != nullptr, p.relu);
      break;
    case GemmOutput::kInt32:
      static_cast<int32_t*>(c)[index] = raw;
      break;
  }
}

// sum_k a[k] (uint8 sums fit in int32 for any K <= kMaxGemmK).
inline int32_t gemm_row_sum(const uint8_t* a, size_t k) {
  int32_t s = 0;
  for (size_t i = 0; i < k; ++i) s += a[i];
  return s;
}

// Row r's sum over every segment (see GemmSegmentsFn).
inline int32_t gemm_segments_row_sum(const GemmSegment* segments, size_t count, size_t lda, size_t r) {
  int32_t s = 0;
  for (size_t i = 0; i < count; ++i) s += gemm_row_sum(segments[i].a + r * lda, segments[i].k);
  return s;
}

inline bool gemm_has_b_zero_points(const OutputPipeline& p, size_t n_begin, size_t n_end) {
  if (p.b_zero_points == nullptr) return false;
  if (!p.b_per_channel) return p.b_zero_points[0] != 0;
  for (size_t n = n_begin; n < n_end; ++n) {
    if (p.b_zero_points[n] != 0) return true;
  }
  return false;
}

// IEEE half bits to float (exact; what F16C's vcvtph2ps and NEON's fcvtl do).
inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1fu) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // inf, NaN (payload kept, quietened below)
    if (mantissa) bits |= 0x00400000u;
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal half: normalise
    uint32_t e = 113u, m = mantissa;
    while ((m & 0x400u) == 0) {
      m <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((m & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// One step of float_range; NaN is tracked apart (comparisons ignore it).
inline void float_range_step(float v, float* min, float* max, bool* nan) {
  *min = v < *min ? v : *min;
  *max = v > *max ? v : *max;
  *nan = *nan || v != v;
}

inline void float_range_finish(bool nan, float* min, float* max) {
  if (nan) *min = *max = std::numeric_limits<float>::quiet_NaN();
}

inline float gemm_f16_finish(float acc, const float* bias, size_t n, bool relu) {
  if (bias) acc = acc + bias[n];
  if (relu) acc = acc > 0.f ? acc : 0.f;
  return acc;
}

}  // namespace kernels
}  // namespace qtorch
