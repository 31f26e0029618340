// Reference implementation: every other path must produce the same bits.
#include <cmath>
#include <limits>

#include "quantize/quantize.h"
#include "quantize/quantize_scalar.h"

namespace qtorch {
namespace kernels {
namespace {

template <typename Q>
void quantize(size_t n, const float* x, Q* y, float inv_scale, int32_t zero_point) {
  for (size_t i = 0; i < n; ++i) y[i] = quantize_value<Q>(x[i], inv_scale, zero_point);
}

template <typename Q>
void quantize_channel(size_t n, const float* x, Q* y, float inv_scale, int32_t zero_point) {
  for (size_t i = 0; i < n; ++i) y[i] = quantize_channel_value<Q>(x[i], inv_scale, zero_point);
}

template <typename Q>
void quantize_channels(size_t channels, const float* x, Q* y, const float* inv_scales,
                       const int32_t* zero_points) {
  for (size_t c = 0; c < channels; ++c) y[c] = quantize_channel_value<Q>(x[c], inv_scales[c], zero_points[c]);
}

template <typename Q>
void dequantize(size_t n, const Q* x, float* y, float scale, int32_t zero_point) {
  for (size_t i = 0; i < n; ++i) y[i] = dequantize_value(x[i], scale, zero_point);
}

template <typename Q>
void dequantize_channels(size_t channels, const Q* x, float* y, const float* scales,
                         const int32_t* zero_points) {
  for (size_t c = 0; c < channels; ++c) y[c] = dequantize_value(x[c], scales[c], zero_points[c]);
}

template <typename In, typename Out>
void requantize(size_t n, const In* x, Out* y, int32_t zp_in, float multiplier, int32_t zp_out) {
  for (size_t i = 0; i < n; ++i) y[i] = requantize_value<Out>(int32_t(x[i]) - zp_in, multiplier, zp_out);
}

}  // namespace

const QuantizeUkernels kQuantizeScalar = {
    quantize<uint8_t>,           quantize<int8_t>,
    quantize_channel<uint8_t>,   quantize_channel<int8_t>,   quantize_channel<int32_t>,
    quantize_channels<uint8_t>,  quantize_channels<int8_t>,  quantize_channels<int32_t>,
    dequantize<uint8_t>,         dequantize<int8_t>,         dequantize<int32_t>,
    dequantize_channels<uint8_t>, dequantize_channels<int8_t>, dequantize_channels<int32_t>,
    requantize<uint8_t, uint8_t>, requantize<uint8_t, int8_t>, requantize<int8_t, uint8_t>,
    requantize<int8_t, int8_t>,
};

}  // namespace kernels
}  // namespace qtorch
