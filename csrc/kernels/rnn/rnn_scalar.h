// The scalar definitions of the rnn family (rnn.h), one element at a time;
// vector paths mirror them operation for operation and use them for tails.
// -ffp-contract=off keeps every product and sum separately rounded.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace qtorch {
namespace kernels {
namespace rnn_scalar {

// x86 min/max semantics (the second operand when either is NaN), which every
// vector path reproduces.
inline float max_of(float a, float b) { return a > b ? a : b; }
inline float min_of(float a, float b) { return a < b ? a : b; }

// Cephes expf: e^x = 2^n * e^r with n = floor(x * log2(e) + 1/2) and
// r = x - n * ln2 (ln2 split in two so n * kLn2Hi is exact), e^r by a degree-7
// polynomial. x is clamped to [-87, 88] so 2^n stays a normal float.
constexpr float kExpLo = -87.0f, kExpHi = 88.0f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kExpP0 = 1.9875691500e-4f, kExpP1 = 1.3981999507e-3f, kExpP2 = 8.3334519073e-3f,
                kExpP3 = 4.1665795894e-2f, kExpP4 = 1.6666665459e-1f, kExpP5 = 5.0000001201e-1f;

inline float exp(float x) {
  x = min_of(max_of(x, kExpLo), kExpHi);
  const float n = std::floor(x * kLog2e + 0.5f);
  float r = x - n * kLn2Hi;
  r = r - n * kLn2Lo;
  const float z = r * r;
  float p = kExpP0;
  p = p * r + kExpP1;
  p = p * r + kExpP2;
  p = p * r + kExpP3;
  p = p * r + kExpP4;
  p = p * r + kExpP5;
  p = p * z + r;
  p = p + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float two_n;
  std::memcpy(&two_n, &bits, sizeof(two_n));
  return p * two_n;
}

inline float sigmoid(float x) { return 1.0f / (1.0f + exp(-x)); }

// 1 - 2 / (e^(2x) + 1): saturates cleanly to +-1.
inline float tanh(float x) { return 1.0f - 2.0f / (exp(x + x) + 1.0f); }

inline void lstm_unit(const float* gx, const float* gh, size_t hidden, size_t j, float* c, float* h) {
  const float i = sigmoid(gx[j] + gh[j]);
  const float f = sigmoid(gx[hidden + j] + gh[hidden + j]);
  const float g = tanh(gx[2 * hidden + j] + gh[2 * hidden + j]);
  const float o = sigmoid(gx[3 * hidden + j] + gh[3 * hidden + j]);
  const float c_new = f * c[j] + i * g;
  c[j] = c_new;
  h[j] = o * tanh(c_new);
}

inline void gru_unit(const float* gx, const float* gh, size_t hidden, size_t j, const float* h_prev, float* h) {
  const float r = sigmoid(gx[j] + gh[j]);
  const float z = sigmoid(gx[hidden + j] + gh[hidden + j]);
  const float n = tanh(gx[2 * hidden + j] + r * gh[2 * hidden + j]);
  h[j] = (h_prev[j] - n) * z + n;
}

}  // namespace rnn_scalar
}  // namespace kernels
}  // namespace qtorch
